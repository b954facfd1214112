//! A stored metric's full label set without a copy of it: the store keeps only the labels
//! a metric does not get from its group (one copy of `job`, the grouping labels and the
//! default `instance=""` per group instead of one per series), and readers merge the
//! group's labels back in while they iterate.

use std::cmp::Ordering;

use super::borrowed::{LabelRef, ValueRef};
use super::packed::{PackedLabels, PackedSeries};
use super::{Extras, GroupingKey, Label, Metric, INSTANCE_LABEL};

/// A stored series (or a metric of the gateway's own) together with the group that
/// supplies the rest of its labels.
#[derive(Clone, Copy, Debug)]
pub struct Series<'a> {
    source: Source<'a>,
    /// The group it was pushed to; `None` for metrics that carry all their labels (the
    /// gateway's own).
    pub group: Option<&'a GroupingKey>,
}

#[derive(Clone, Copy, Debug)]
enum Source<'a> {
    Metric(&'a Metric),
    /// A series of a packed family, by index.
    /// (A `u32` keeps a series at 24 bytes, where renders hold millions; families past 4
    /// billion series are far beyond any memory.)
    Packed(&'a PackedSeries, u32),
}

impl<'a> Series<'a> {
    /// A metric of the group `group`.
    pub fn new(metric: &'a Metric, group: &'a GroupingKey) -> Series<'a> {
        Series {
            source: Source::Metric(metric),
            group: Some(group),
        }
    }

    /// A metric that carries all its labels itself.
    pub fn alone(metric: &'a Metric) -> Series<'a> {
        Series {
            source: Source::Metric(metric),
            group: None,
        }
    }

    /// Series `index` of a packed family of the group `group`.
    pub fn packed(series: &'a PackedSeries, index: usize, group: &'a GroupingKey) -> Series<'a> {
        Series {
            source: Source::Packed(series, u32::try_from(index).unwrap_or(u32::MAX)),
            group: Some(group),
        }
    }

    /// Its full label set, sorted by name.
    pub fn labels(&self) -> SeriesLabels<'a> {
        let own = match self.source {
            Source::Metric(metric) => OwnLabels::Slice(metric.labels.iter()),
            Source::Packed(series, i) => OwnLabels::Packed(series.labels(i as usize)),
        };
        match self.group {
            Some(group) => SeriesLabels::merged(own, group),
            None => SeriesLabels::alone(own),
        }
    }

    /// Its value.
    pub fn value(&self) -> ValueRef<'a> {
        match self.source {
            Source::Metric(metric) => ValueRef::from(&metric.value),
            Source::Packed(series, i) => series
                .value(i as usize)
                .unwrap_or(ValueRef::Untyped(f64::NAN)),
        }
    }

    /// What plain samples never have, if it has any.
    pub fn extras(&self) -> Option<&'a Extras> {
        match self.source {
            Source::Metric(metric) => metric.extras.as_deref(),
            Source::Packed(series, i) => series.extras(i as usize),
        }
    }

    /// The pushed timestamp in milliseconds, if any (pushes with timestamps are refused).
    pub fn timestamp_ms(&self) -> Option<i64> {
        self.extras().and_then(|e| e.timestamp_ms)
    }

    /// A copy as a metric with only its own labels (those its group does not supply).
    pub fn to_own_metric(&self) -> Metric {
        match self.source {
            Source::Metric(metric) => metric.clone(),
            Source::Packed(series, i) => series
                .metric(i as usize)
                .unwrap_or_else(|| Metric::new(Vec::new(), self.value().to_value())),
        }
    }
}

/// A series' own labels, wherever they are stored.
#[derive(Clone, Debug)]
enum OwnLabels<'a> {
    Slice(std::slice::Iter<'a, Label>),
    Packed(PackedLabels<'a>),
}

impl OwnLabels<'_> {
    fn has_instance(&self) -> bool {
        match self {
            OwnLabels::Slice(labels) => labels.clone().any(|l| &*l.name == INSTANCE_LABEL),
            OwnLabels::Packed(labels) => labels.has_instance(),
        }
    }
}

impl<'a> Iterator for OwnLabels<'a> {
    type Item = LabelRef<'a>;

    fn next(&mut self) -> Option<LabelRef<'a>> {
        match self {
            OwnLabels::Slice(labels) => labels.next().map(LabelRef::from),
            OwnLabels::Packed(labels) => labels.next(),
        }
    }
}

/// The merge, in name order, of a metric's own labels (sorted), its group's labels (which
/// win over an own label of the same name, as grouping labels win over pushed ones) and
/// `instance=""` when neither has an instance.
#[derive(Clone, Debug)]
pub struct SeriesLabels<'a> {
    own: OwnLabels<'a>,
    own_next: Option<LabelRef<'a>>,
    group: &'a [Label],
    empty_instance: bool,
}

const EMPTY_INSTANCE: LabelRef<'static> = LabelRef {
    name: INSTANCE_LABEL,
    value: "",
};

impl<'a> SeriesLabels<'a> {
    /// The labels of a series of `group` whose own labels are `own`, sorted by name.
    pub fn new(own: &'a [Label], group: &'a GroupingKey) -> SeriesLabels<'a> {
        SeriesLabels::merged(OwnLabels::Slice(own.iter()), group)
    }

    /// A full label set (sorted by name) as it is, with no group to merge.
    pub fn full(labels: &'a [Label]) -> SeriesLabels<'a> {
        SeriesLabels::alone(OwnLabels::Slice(labels.iter()))
    }

    fn merged(mut own: OwnLabels<'a>, group: &'a GroupingKey) -> SeriesLabels<'a> {
        let needs_instance = !group.has_instance() && !own.has_instance();
        SeriesLabels {
            own_next: own.next(),
            own,
            group: group.labels(),
            empty_instance: needs_instance,
        }
    }

    fn alone(mut own: OwnLabels<'a>) -> SeriesLabels<'a> {
        SeriesLabels {
            own_next: own.next(),
            own,
            group: &[],
            empty_instance: false,
        }
    }

    /// Whether there is no label at all.
    pub fn is_empty(&self) -> bool {
        self.own_next.is_none() && self.group.is_empty() && !self.empty_instance
    }

    /// Compares two label sets as upstream orders series: fewer labels first, then the
    /// values in label-name order.
    pub fn cmp_for_exposition(&self, other: &SeriesLabels<'_>) -> Ordering {
        // One pass over both: the first differing value decides unless a set runs out first.
        let (mut a, mut b) = (self.clone(), other.clone());
        let mut values = Ordering::Equal;
        loop {
            match (a.next(), b.next()) {
                (Some(x), Some(y)) => {
                    values = values.then_with(|| cmp_bytes(x.value, y.value));
                }
                (Some(_), None) => return Ordering::Greater,
                (None, Some(_)) => return Ordering::Less,
                (None, None) => return values,
            }
        }
    }
}

impl<'a> Iterator for SeriesLabels<'a> {
    type Item = LabelRef<'a>;

    fn next(&mut self) -> Option<LabelRef<'a>> {
        // The smallest name of the three sources; every source with that name moves on,
        // and on equal names the group's label is the one taken.
        let mut next = self.group.first().map(LabelRef::from);
        let (mut from_group, mut from_own, mut from_instance) = (next.is_some(), false, false);
        if let Some(own) = self.own_next {
            match next.map_or(Ordering::Less, |n| cmp_bytes(own.name, n.name)) {
                Ordering::Less => (next, from_group, from_own) = (Some(own), false, true),
                Ordering::Equal => from_own = true,
                Ordering::Greater => {}
            }
        }
        if self.empty_instance {
            match next.map_or(Ordering::Less, |n| cmp_bytes(INSTANCE_LABEL, n.name)) {
                Ordering::Less => {
                    (next, from_group, from_own) = (Some(EMPTY_INSTANCE), false, false);
                    from_instance = true;
                }
                Ordering::Equal => from_instance = true,
                Ordering::Greater => {}
            }
        }
        let next = next?;
        if from_group {
            self.group = &self.group[1..];
        }
        if from_own {
            self.own_next = self.own.next();
        }
        if from_instance {
            self.empty_instance = false;
        }
        Some(next)
    }
}

/// `a.cmp(b)` as an inlined loop: label names and values are short, and a call to
/// `memcmp` per comparison dominated the merge of label sets.
#[inline]
fn cmp_bytes(a: &str, b: &str) -> Ordering {
    for (x, y) in a.bytes().zip(b.bytes()) {
        if x != y {
            return x.cmp(&y);
        }
    }
    a.len().cmp(&b.len())
}

impl GroupingKey {
    /// Whether a series of this group gets `label` from the group anyway: a grouping label
    /// overrides a pushed one of the same name, and `instance=""` is added when missing.
    pub fn supplies(&self, label: LabelRef<'_>) -> bool {
        self.get(label.name).is_some()
            || (label.name == INSTANCE_LABEL
                && label.value.is_empty()
                && self.get(INSTANCE_LABEL).is_none())
    }

    /// `labels` without those the group supplies; the same allocation when there are none.
    pub fn own_labels(&self, labels: Box<[Label]>) -> Box<[Label]> {
        let keep = self.own_mask(&labels);
        let own = keep.iter().filter(|&&k| k).count();
        if own == labels.len() {
            return labels;
        }
        // Sized exactly, so that no shrinking reallocation leaves a small hole per series.
        let mut kept = Vec::with_capacity(own);
        kept.extend(
            labels
                .into_vec()
                .into_iter()
                .zip(keep)
                .filter_map(|(label, keep)| keep.then_some(label)),
        );
        kept.into_boxed_slice()
    }

    /// Which of `labels` are the series' own: one merge with the group's labels when
    /// `labels` are sorted by name (as stored metrics are), a lookup per label otherwise.
    fn own_mask(&self, labels: &[Label]) -> Vec<bool> {
        if !labels.is_sorted_by(|a, b| a.name <= b.name) {
            return labels.iter().map(|l| !self.supplies(l.into())).collect();
        }
        let group_instance = self.get(INSTANCE_LABEL).is_some();
        let mut group = self.labels().iter().peekable();
        labels
            .iter()
            .map(|label| {
                while group.next_if(|g| g.name < label.name).is_some() {}
                let overridden = group.peek().is_some_and(|g| g.name == label.name);
                let default_instance =
                    &*label.name == INSTANCE_LABEL && label.value.is_empty() && !group_instance;
                !(overridden || default_instance)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Value;

    fn key(labels: &[(&str, &str)]) -> GroupingKey {
        GroupingKey::new(labels.iter().map(|(n, v)| Label::new(*n, *v)).collect())
    }

    fn labels(labels: &[(&str, &str)]) -> Box<[Label]> {
        labels.iter().map(|(n, v)| Label::new(*n, *v)).collect()
    }

    fn pairs(labels: SeriesLabels<'_>) -> Vec<(String, String)> {
        labels
            .map(|l| (l.name.to_string(), l.value.to_string()))
            .collect()
    }

    #[test]
    fn merges_in_name_order_with_an_empty_instance() {
        let group = key(&[("job", "j"), ("a", "1")]);
        let own = labels(&[("b", "2"), ("z", "3")]);
        let merged = pairs(SeriesLabels::new(&own, &group));
        let expected = [
            ("a", "1"),
            ("b", "2"),
            ("instance", ""),
            ("job", "j"),
            ("z", "3"),
        ];
        assert_eq!(merged.len(), expected.len());
        for ((name, value), (want_name, want_value)) in merged.iter().zip(expected) {
            assert_eq!((name.as_str(), value.as_str()), (want_name, want_value));
        }
    }

    #[test]
    fn grouping_labels_win_and_an_own_instance_stays() {
        let group = key(&[("job", "j")]);
        let own = labels(&[("instance", "i"), ("job", "pushed")]);
        let merged = pairs(SeriesLabels::new(&own, &group));
        assert_eq!(
            merged,
            [("instance".into(), "i".into()), ("job".into(), "j".into())]
        );
    }

    #[test]
    fn own_labels_drop_what_the_group_supplies() {
        let group = key(&[("job", "j")]);
        let full = labels(&[("a", "1"), ("instance", ""), ("job", "j")]);
        let own = group.own_labels(full.clone());
        assert_eq!(&*own, &*labels(&[("a", "1")]));
        // Merging the group back in gives the full set again.
        assert_eq!(
            pairs(SeriesLabels::new(&own, &group)),
            pairs(SeriesLabels::new(&full, &group))
        );
        // A set instance is the series' own.
        let with_instance = labels(&[("instance", "i")]);
        assert_eq!(group.own_labels(with_instance.clone()), with_instance);
    }

    #[test]
    fn a_series_view_stays_small() {
        // Renders hold one per stored series.
        assert!(std::mem::size_of::<Series<'_>>() <= 24);
    }

    #[test]
    fn packed_series_merge_like_slices() {
        let group = key(&[("job", "j"), ("m", "g")]);
        let sets = [
            labels(&[("a", "1"), ("z", "2")]),
            labels(&[("instance", "i"), ("n", "")]),
            labels(&[]),
        ];
        let packed = PackedSeries::from_metrics(
            sets.iter()
                .map(|l| Metric::new(l.to_vec(), Value::Gauge(0.0))),
        );
        for (i, own) in sets.iter().enumerate() {
            let from_packed = pairs(Series::packed(&packed, i, &group).labels());
            assert_eq!(from_packed, pairs(SeriesLabels::new(own, &group)), "{i}");
        }
    }

    #[test]
    fn exposition_order_counts_labels_first_then_compares_values() {
        let group = key(&[("job", "j")]);
        // The shorter set sorts first even though its first value is greater.
        let fewer = labels(&[("a", "9")]);
        let more = labels(&[("a", "0"), ("b", "1")]);
        let same_length = labels(&[("a", "0"), ("b", "2")]);
        let fewer = SeriesLabels::new(&fewer, &group);
        let more = SeriesLabels::new(&more, &group);
        let same_length = SeriesLabels::new(&same_length, &group);
        assert_eq!(fewer.cmp_for_exposition(&more), Ordering::Less);
        assert_eq!(more.cmp_for_exposition(&fewer), Ordering::Greater);
        assert_eq!(more.cmp_for_exposition(&same_length), Ordering::Less);
        assert_eq!(same_length.cmp_for_exposition(&more), Ordering::Greater);
        assert_eq!(more.cmp_for_exposition(&more.clone()), Ordering::Equal);
    }
}
