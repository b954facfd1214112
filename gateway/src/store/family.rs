//! One family as a group stores it: its series packed with only the labels the group does
//! not supply, kept in upstream's exposition order (sorted once when stored; aggregation's
//! appended series are merged into an index order), found by full label set with a binary
//! search. The push semantics and the index that decide what gets stored are left to the
//! rest of the store.

use std::collections::HashSet;
use std::sync::Arc;

use crate::model::{
    is_reserved_label_name, is_unescaped, legacy_escaped, Extras, GroupingKey, Label, LabelRef,
    Metric, MetricFamily, MetricType, PackedSeries, Series, SeriesLabels, Str, Value,
};

use super::series::escaped_series_id;

/// Whether a series may not have a label named `name`, which only unchecked pushes store:
/// empty, reserved (`__name__`), or its type's `sample_label` (a summary's `quantile`, a
/// histogram's `le`), which the exposition adds to each sample.
pub fn is_misfit_label_name(name: &str, sample_label: Option<&str>) -> bool {
    name.is_empty() || is_reserved_label_name(name) || Some(name) == sample_label
}

/// A family as stored in a group, with the time it was pushed. Its series are packed
/// ([`PackedSeries`]) and kept in upstream's exposition order.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredFamily {
    /// Metric name.
    pub name: Str,
    /// Help text, if any was given.
    pub help: Option<Str>,
    /// Declared type.
    pub metric_type: MetricType,
    /// Unix time in seconds of the push that stored it.
    pub pushed_at: f64,
    /// The group it belongs to.
    pub group: Arc<GroupingKey>,
    /// The series, with only the labels their group does not supply.
    packed: PackedSeries,
    /// The exposition order as indexes into `packed`, once aggregation appended series
    /// (`None`: `packed` is in that order).
    order: Option<Vec<u32>>,
}

impl StoredFamily {
    /// Stores `family` (with full or lean label sets) as pushed to `group` at `pushed_at`.
    pub fn new(family: MetricFamily, pushed_at: f64, group: Arc<GroupingKey>) -> StoredFamily {
        let MetricFamily {
            name,
            help,
            metric_type,
            mut metrics,
        } = family;
        // The group's labels are kept once, in the key, instead of in every series.
        for metric in &mut metrics {
            metric.labels = group.own_labels(std::mem::take(&mut metric.labels));
        }
        // Sorted before packing, where comparing is cheapest; a scrape then only merges.
        if !metrics.is_sorted_by(|a, b| exposition_order(a, b, &group).is_le()) {
            metrics.sort_by(|a, b| exposition_order(a, b, &group));
        }
        StoredFamily {
            name,
            help,
            metric_type,
            pushed_at,
            packed: PackedSeries::from_metrics(metrics.into_iter()),
            group,
            order: None,
        }
    }

    /// A family of already packed series (own labels only, in exposition order).
    pub fn from_packed(
        name: Str,
        help: Option<Str>,
        metric_type: MetricType,
        pushed_at: f64,
        group: Arc<GroupingKey>,
        packed: PackedSeries,
    ) -> StoredFamily {
        let mut stored = StoredFamily {
            name,
            help,
            metric_type,
            pushed_at,
            group,
            packed,
            order: None,
        };
        let group = &stored.group;
        stored
            .packed
            .sort_by(|packed, a, b| exposition_cmp(packed, group, a, b));
        stored
    }

    /// Whether a scrape would leave some of its series out (only unchecked pushes store
    /// such): a value not of its type, a label name it may not have (see
    /// [`is_misfit_label_name`]), or label names the default scrape escapes alike.
    pub(crate) fn has_misfits(&self) -> bool {
        let sample_label = self.metric_type.sample_label();
        !self.packed.values_fit(self.metric_type)
            || self
                .label_names()
                .any(|n| is_misfit_label_name(n, sample_label))
            || self.escapes_alike()
    }

    /// The names of its labels, its group's included (some may come twice).
    pub fn label_names(&self) -> impl Iterator<Item = &str> {
        let own = self.packed.label_names().iter().map(|n| &**n);
        own.chain(self.group.labels().iter().map(|l| &*l.name))
    }

    /// Whether the default scrape, which writes `a.b` as `a_b`, would show one of its
    /// series with a label twice, or two of them alike. Looked at series by series only
    /// when it has a name outside the classic set.
    fn escapes_alike(&self) -> bool {
        if self.label_names().all(|n| is_unescaped(n, true)) {
            return false;
        }
        let mut seen = HashSet::with_capacity(self.packed.len());
        self.series().any(|series| {
            let id = escaped_series_id(&self.name, series.labels(), |n| legacy_escaped(n, true));
            !id.is_some_and(|id| seen.insert(id))
        })
    }

    /// Its series with their full label sets, in upstream's exposition order.
    pub fn series(&self) -> impl ExactSizeIterator<Item = Series<'_>> + Clone {
        let order = self.order.as_deref();
        (0..self.packed.len()).map(move |k| {
            let i = order.and_then(|o| o.get(k)).map_or(k, |&i| i as usize);
            Series::packed(&self.packed, i, &self.group)
        })
    }

    /// Whether one of its series has exactly the full label set `labels` (sorted by name):
    /// a binary search in the exposition order, then a look at the series that order
    /// cannot tell apart (the same values under other names).
    pub(crate) fn contains(&self, labels: &[Label]) -> bool {
        let target = SeriesLabels::full(labels);
        let ranked = |k: usize| {
            let i = self.order.as_deref().map_or(k, |o| o[k] as usize);
            Series::packed(&self.packed, i, &self.group).labels()
        };
        let (mut low, mut high) = (0, self.packed.len());
        while low < high {
            let mid = low + (high - low) / 2;
            if ranked(mid).cmp_for_exposition(&target).is_lt() {
                low = mid + 1;
            } else {
                high = mid;
            }
        }
        (low..self.packed.len())
            .map(ranked)
            .take_while(|l| l.cmp_for_exposition(&target).is_eq())
            .any(|l| l.eq(SeriesLabels::full(labels)))
    }

    /// Its series in the order they are kept in, which aggregation's positions refer to.
    pub(crate) fn series_as_kept(&self) -> impl Iterator<Item = Series<'_>> {
        (0..self.packed.len()).map(|i| Series::packed(&self.packed, i, &self.group))
    }

    /// Series `i` in the order they are kept in.
    pub(crate) fn series_kept_at(&self, i: usize) -> Option<Series<'_>> {
        (i < self.packed.len()).then(|| Series::packed(&self.packed, i, &self.group))
    }

    /// Number of series (a summary or histogram counts once).
    pub fn len(&self) -> usize {
        self.packed.len()
    }

    /// Whether it has no series.
    pub fn is_empty(&self) -> bool {
        self.packed.is_empty()
    }

    /// A copy as a plain family, with full label sets.
    pub fn to_family(&self) -> MetricFamily {
        MetricFamily {
            name: self.name.clone(),
            help: self.help.clone(),
            metric_type: self.metric_type,
            metrics: self
                .series()
                .map(|s| Metric {
                    labels: s.labels().map(Label::from).collect(),
                    value: s.value().to_value(),
                    extras: s.extras().map(|e| Box::new(e.clone())),
                })
                .collect(),
        }
    }

    /// Replaces the value and extras of the series kept at `i` (aggregation).
    pub(crate) fn set_kept(&mut self, i: usize, value: Value, extras: Option<Box<Extras>>) {
        self.packed.set(i, value, extras);
    }

    /// Appends series (own labels only) after those kept, and puts them in their places
    /// of the exposition order: one merge, in the family's size plus the sort of the new.
    pub(crate) fn append(&mut self, metrics: Vec<Metric>) {
        if metrics.is_empty() {
            return;
        }
        let first_new = self.packed.len();
        let mut builder = std::mem::take(&mut self.packed).into_builder();
        for metric in metrics {
            let labels = metric.labels.iter().map(LabelRef::from);
            builder.push(labels, metric.value, metric.extras);
        }
        self.packed = builder.into_grown();
        let (packed, group) = (&self.packed, &*self.group);
        let cmp = |a: u32, b: u32| exposition_cmp(packed, group, a as usize, b as usize);
        let mut new: Vec<u32> = (first_new as u32..packed.len() as u32).collect();
        new.sort_by(|&a, &b| cmp(a, b));
        let old = self
            .order
            .take()
            .unwrap_or_else(|| (0..first_new as u32).collect());
        let mut order = Vec::with_capacity(packed.len());
        let (mut old, mut new) = (old.into_iter().peekable(), new.into_iter().peekable());
        loop {
            let next = match (old.peek(), new.peek()) {
                (Some(&a), Some(&b)) if cmp(a, b).is_le() => old.next(),
                (Some(_), Some(_)) | (None, Some(_)) => new.next(),
                (Some(_), None) => old.next(),
                (None, None) => break,
            };
            order.extend(next);
        }
        self.order = Some(order);
    }
}

/// Upstream's order of the series kept at `a` and `b` in `packed`, of the group `group`.
fn exposition_cmp(
    packed: &PackedSeries,
    group: &GroupingKey,
    a: usize,
    b: usize,
) -> std::cmp::Ordering {
    let a = Series::packed(packed, a, group).labels();
    a.cmp_for_exposition(&Series::packed(packed, b, group).labels())
}

/// Upstream's order of two metrics (own labels) of `group`.
fn exposition_order(a: &Metric, b: &Metric, group: &GroupingKey) -> std::cmp::Ordering {
    SeriesLabels::new(&a.labels, group).cmp_for_exposition(&SeriesLabels::new(&b.labels, group))
}
