//! What a push's labels become before they are checked and stored: the grouping labels
//! win, `instance=""` is added where missing, labels are sorted, and the push-time families
//! the store maintains itself are dropped.

use crate::model::{GroupingKey, Label, MetricFamily, Str};

use super::{Store, PUSH_FAILURE_TIME_METRIC, PUSH_TIME_METRIC};

impl Store {
    /// Applies the grouping labels (they win over pushed labels), adds `instance=""` where
    /// no instance is set, sorts labels, and drops families named like the push
    /// timestamps, which the store maintains itself (upstream overwrites them too). The
    /// checks and the journal see these full label sets; storing drops the group's again.
    pub(super) fn sanitize(
        &self,
        key: &GroupingKey,
        mut families: Vec<MetricFamily>,
    ) -> Vec<MetricFamily> {
        families.retain(|f| &*f.name != PUSH_TIME_METRIC && &*f.name != PUSH_FAILURE_TIME_METRIC);
        for family in &mut families {
            for metric in &mut family.metrics {
                let mut labels = std::mem::take(&mut metric.labels).into_vec();
                sanitize_labels(
                    &mut labels,
                    key.labels(),
                    &self.shared.instance,
                    &self.shared.empty,
                );
                metric.labels = labels.into_boxed_slice();
            }
        }
        families
    }
}

/// Overwrites or adds the grouping labels, adds an empty `instance` if there is none, and
/// sorts the labels by name. One sort and one merge with the (sorted) grouping labels, so
/// that a push costs O(n log n) in its labels however many grouping labels it has.
pub(super) fn sanitize_labels(
    labels: &mut Vec<Label>,
    grouping: &[Label],
    instance: &Str,
    empty: &Str,
) {
    labels.sort_by(|a, b| a.name.cmp(&b.name));
    let mut merged = Vec::with_capacity(labels.len() + grouping.len() + 1);
    let mut pushed = std::mem::take(labels).into_iter().peekable();
    for grouping_label in grouping {
        while let Some(label) = pushed.next_if(|l| l.name < grouping_label.name) {
            merged.push(label);
        }
        let mut overridden = false;
        while let Some(mut label) = pushed.next_if(|l| l.name == grouping_label.name) {
            label.value = grouping_label.value.clone();
            merged.push(label);
            overridden = true;
        }
        if !overridden {
            merged.push(grouping_label.clone());
        }
    }
    merged.extend(pushed);
    if let Err(at) = merged.binary_search_by(|l| l.name.cmp(instance)) {
        merged.insert(
            at,
            Label {
                name: instance.clone(),
                value: empty.clone(),
            },
        );
    }
    *labels = merged;
}
