//! The size limits of a push (grouping labels, series, labels per series, label length)
//! and the store's total capacity (groups, series).

use std::collections::HashSet;

use crate::model::{GroupingKey, Label, Metric, MetricFamily};

use super::{PushError, PushMode, State, Store};

impl Store {
    /// Refuses a grouping key with more labels than `--push.max-grouping-labels`, so that
    /// a push can be refused before its body is read.
    ///
    /// # Errors
    /// [`PushError::TooLarge`] with the reason.
    pub fn check_grouping_key(&self, key: &GroupingKey) -> Result<(), PushError> {
        let limit = self.shared.config.limits.max_grouping_labels;
        let grouping = key.labels().len();
        if grouping > limit {
            return Err(PushError::TooLarge(format!(
                "grouping key has {grouping} labels, more than the limit of {limit} (--push.max-grouping-labels)"
            )));
        }
        Ok(())
    }

    pub(super) fn check_push_limits(
        &self,
        key: &GroupingKey,
        families: &[MetricFamily],
    ) -> Result<(), PushError> {
        self.check_grouping_key(key)?;
        let limits = &self.shared.config.limits;
        let series: usize = families.iter().map(|f| f.metrics.len()).sum();
        if series > limits.max_series_per_push {
            return Err(PushError::TooLarge(format!(
                "push has {series} metrics, more than the limit of {} (--push.max-series)",
                limits.max_series_per_push
            )));
        }
        let crowded = families
            .iter()
            .flat_map(|f| f.metrics.iter().map(move |m| (f, m)))
            .find(|(_, m)| m.labels.len() > limits.max_labels_per_series);
        if let Some((family, metric)) = crowded {
            return Err(PushError::TooLarge(format!(
                "metric {:?} has {} labels, more than the limit of {} (--push.max-labels-per-series)",
                family.name.chars().take(64).collect::<String>(),
                metric.labels.len(),
                limits.max_labels_per_series
            )));
        }
        let too_long = |label: &Label| {
            label.name.len() > limits.max_label_length
                || label.value.len() > limits.max_label_length
        };
        let long_label = key.labels().iter().find(|l| too_long(l)).or_else(|| {
            families
                .iter()
                .flat_map(|f| &f.metrics)
                .flat_map(|m| m.labels.iter().chain(exemplar_labels(m)))
                .find(|l| too_long(l))
        });
        if let Some(label) = long_label {
            return Err(PushError::TooLarge(format!(
                "label {:?} is longer than the limit of {} bytes (--push.max-label-length)",
                label.name.chars().take(64).collect::<String>(),
                limits.max_label_length
            )));
        }
        Ok(())
    }

    /// Refuses a push that would take the store past its total limits.
    pub(super) fn check_capacity(
        &self,
        state: &State,
        key: &GroupingKey,
        families: &[MetricFamily],
        mode: PushMode,
    ) -> Result<(), PushError> {
        let limits = &self.shared.config.limits;
        let group = state.groups.get(key);
        if limits.max_groups > 0 && group.is_none() && state.groups.len() >= limits.max_groups {
            return Err(PushError::Full(format!(
                "the gateway stores {} groups, its limit (--storage.max-groups)",
                state.groups.len()
            )));
        }
        if limits.max_series > 0 {
            let replaced: usize = group.map_or(0, |g| match mode {
                PushMode::Replace => g.families.values().map(|f| f.family.metrics.len()).sum(),
                // Nothing is replaced; what the group stores already is not added.
                PushMode::Aggregate => families
                    .iter()
                    .map(|f| {
                        let positions = g.positions.get(&f.name);
                        f.metrics
                            .iter()
                            .filter(|m| {
                                positions.is_some_and(|p| {
                                    p.contains_key(&super::series_id(&f.name, m.labels.iter()))
                                })
                            })
                            .count()
                    })
                    .sum(),
                PushMode::Merge => families
                    .iter()
                    .map(|f| &*f.name)
                    .collect::<HashSet<&str>>()
                    .into_iter()
                    .filter_map(|name| g.families.get(name))
                    .map(|f| f.family.metrics.len())
                    .sum(),
            });
            let added: usize = families.iter().map(|f| f.metrics.len()).sum();
            let after = state.series_total - replaced + added;
            if after > limits.max_series && added > replaced {
                return Err(PushError::Full(format!(
                    "the push would store {after} metrics, more than the limit of {} (--storage.max-series)",
                    limits.max_series
                )));
            }
        }
        Ok(())
    }
}

/// The labels of every exemplar a metric carries.
fn exemplar_labels(metric: &Metric) -> impl Iterator<Item = &Label> {
    metric.extras.iter().flat_map(|extras| {
        extras
            .exemplar
            .iter()
            .chain(extras.bucket_exemplars.iter().flatten())
            .chain(&extras.exemplars)
            .flat_map(|e| &e.labels)
    })
}
