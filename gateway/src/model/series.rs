//! A stored metric's full label set without a copy of it: the store keeps only the labels
//! a metric does not get from its group (one copy of `job`, the grouping labels and the
//! default `instance=""` per group instead of one per series), and readers merge the
//! group's labels back in while they iterate.

use std::cmp::Ordering;
use std::sync::LazyLock;

use super::{GroupingKey, Label, Metric, INSTANCE_LABEL};

/// The `instance=""` that every pushed series without an instance is exposed with.
static EMPTY_INSTANCE: LazyLock<Label> = LazyLock::new(|| Label::new(INSTANCE_LABEL, ""));

/// A metric together with the group that supplies the rest of its labels.
#[derive(Clone, Copy, Debug)]
pub struct Series<'a> {
    /// The metric, with only the labels its group does not supply.
    pub metric: &'a Metric,
    /// The group it was pushed to; `None` for metrics that carry all their labels (the
    /// gateway's own).
    pub group: Option<&'a GroupingKey>,
}

impl<'a> Series<'a> {
    /// A metric of the group `group`.
    pub fn new(metric: &'a Metric, group: &'a GroupingKey) -> Series<'a> {
        Series {
            metric,
            group: Some(group),
        }
    }

    /// A metric that carries all its labels itself.
    pub fn alone(metric: &'a Metric) -> Series<'a> {
        Series {
            metric,
            group: None,
        }
    }

    /// Its full label set, sorted by name.
    pub fn labels(&self) -> SeriesLabels<'a> {
        match self.group {
            Some(group) => SeriesLabels::new(&self.metric.labels, group),
            None => SeriesLabels {
                own: &self.metric.labels,
                group: &[],
                empty_instance: None,
            },
        }
    }
}

/// The merge, in name order, of a metric's own labels (sorted), its group's labels (which
/// win over an own label of the same name, as grouping labels win over pushed ones) and
/// `instance=""` when neither has an instance.
#[derive(Clone, Debug)]
pub struct SeriesLabels<'a> {
    own: &'a [Label],
    group: &'a [Label],
    empty_instance: Option<&'a Label>,
}

impl<'a> SeriesLabels<'a> {
    /// The labels of a series of `group` whose own labels are `own`, sorted by name.
    pub fn new(own: &'a [Label], group: &'a GroupingKey) -> SeriesLabels<'a> {
        let needs_instance =
            !own.iter().any(|l| &*l.name == INSTANCE_LABEL) && group.get(INSTANCE_LABEL).is_none();
        SeriesLabels {
            own,
            group: group.labels(),
            empty_instance: needs_instance.then(|| &*EMPTY_INSTANCE),
        }
    }

    /// Whether there is no label at all.
    pub fn is_empty(&self) -> bool {
        self.own.is_empty() && self.group.is_empty() && self.empty_instance.is_none()
    }

    /// Compares two label sets as upstream orders series: fewer labels first, then the
    /// values in label-name order.
    pub fn cmp_for_exposition(&self, other: &SeriesLabels<'_>) -> Ordering {
        // One pass over both: the first differing value decides unless a set runs out first.
        let (mut a, mut b) = (self.clone(), other.clone());
        let mut values = Ordering::Equal;
        loop {
            match (a.next(), b.next()) {
                (Some(x), Some(y)) => values = values.then_with(|| x.value.cmp(&y.value)),
                (Some(_), None) => return Ordering::Greater,
                (None, Some(_)) => return Ordering::Less,
                (None, None) => return values,
            }
        }
    }
}

impl<'a> Iterator for SeriesLabels<'a> {
    type Item = &'a Label;

    fn next(&mut self) -> Option<&'a Label> {
        let group = self.group.first();
        let own = self.own.first();
        // The group's label goes first on equal names, so it is the one taken.
        let mut next = group;
        for candidate in [own, self.empty_instance].into_iter().flatten() {
            if next.is_none_or(|n| candidate.name < n.name) {
                next = Some(candidate);
            }
        }
        let next = next?;
        if group.is_some_and(|g| g.name == next.name) {
            self.group = &self.group[1..];
        }
        if own.is_some_and(|o| o.name == next.name) {
            self.own = &self.own[1..];
        }
        if self.empty_instance.is_some_and(|i| i.name == next.name) {
            self.empty_instance = None;
        }
        Some(next)
    }
}

impl GroupingKey {
    /// Whether a series of this group gets `label` from the group anyway: a grouping label
    /// overrides a pushed one of the same name, and `instance=""` is added when missing.
    pub fn supplies(&self, label: &Label) -> bool {
        self.get(&label.name).is_some()
            || (&*label.name == INSTANCE_LABEL
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
            return labels.iter().map(|l| !self.supplies(l)).collect();
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
