//! Rejection reasons of the store, and the per-push checks that need no stored state:
//! timestamps, values that do not fit their family's type, bad or duplicate label names,
//! explicit `quantile`/`le` labels, and duplicate series inside the push.

use std::collections::HashSet;

use crate::model::{
    is_legacy_label_name, is_reserved_label_name, legacy_escaped, LabelRef, MetricFamily,
    MetricType, NameValidation, Value, BUCKET_LABEL, QUANTILE_LABEL,
};

use super::series::{escaped_series_id, series_id, SeriesId};

/// Why a push was refused. The messages follow upstream's wording where it has one.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Rejection {
    /// A sample carries a timestamp.
    #[error("pushed metrics must not have timestamps")]
    Timestamp,
    /// A metric's value does not match its family's declared type.
    #[error("collected metric {name:?} {{ {labels}}} is not a {expected}")]
    WrongValueType {
        /// Family name.
        name: String,
        /// The metric's labels, rendered.
        labels: String,
        /// The family type.
        expected: String,
    },
    /// A label name that is invalid or reserved.
    #[error("collected metric {name:?} {{ {labels}}} has a label with an invalid name: {label}")]
    InvalidLabelName {
        /// Family name.
        name: String,
        /// The metric's labels, rendered.
        labels: String,
        /// The offending label name.
        label: String,
    },
    /// The same label name twice in one metric.
    #[error("collected metric {name:?} {{ {labels}}} has two or more labels with the same name: {label}")]
    DuplicateLabelName {
        /// Family name.
        name: String,
        /// The metric's labels, rendered.
        labels: String,
        /// The repeated label name.
        label: String,
    },
    /// A summary with a `quantile` label or a histogram with an `le` label.
    #[error("{kind} metric {name:?} {{ {labels}}} must not have an explicit {label:?} label")]
    ExplicitSpecialLabel {
        /// "summary" or "histogram".
        kind: &'static str,
        /// Family name.
        name: String,
        /// The metric's labels, rendered.
        labels: String,
        /// `quantile` or `le`.
        label: &'static str,
    },
    /// A series that exists already (in this push, another group, or the gateway itself).
    #[error("collected metric {name:?} {{ {labels}}} was collected before with the same name and label values")]
    DuplicateSeries {
        /// Family name.
        name: String,
        /// The metric's labels, rendered.
        labels: String,
    },
    /// The name is stored (or used by the gateway) with another type.
    #[error("gathered metric family {name} has type {pushed} but should have {stored}")]
    TypeConflict {
        /// Family name.
        name: String,
        /// The pushed type.
        pushed: MetricType,
        /// The type already in use.
        stored: MetricType,
    },
    /// A name the gateway uses for its own metrics.
    #[error("metric family {name:?} is one of the Pushgateway's own metrics and cannot be pushed")]
    OwnMetric {
        /// The name.
        name: String,
    },
    /// A group whose `push_time_seconds` series would equal another group's: the two
    /// grouping keys differ only in an explicit empty `instance` label.
    #[error("grouping key {key} clashes with the existing group {other}: they differ only by an empty instance label")]
    GroupClash {
        /// The pushed grouping key.
        key: String,
        /// The existing one.
        other: String,
    },
    /// An aggregating push that cannot be added to what its group stores (differing bucket
    /// bounds, summary quantiles, native histograms Prometheus could not add, a differing
    /// help). Refused even with the consistency check off: there is no sum to store.
    #[error("cannot add to metric {name:?}{series}: {reason}")]
    NotAggregable {
        /// Family name.
        name: String,
        /// The series' labels, rendered with a leading space, or empty for the family.
        series: String,
        /// What cannot be added.
        reason: String,
    },
    /// A name that collides with the `_count`/`_sum`/`_bucket` series of a summary or histogram.
    #[error(
        "collected metric named {name:?} collides with previously collected {kind} named {other:?}"
    )]
    SuffixCollision {
        /// The colliding name.
        name: String,
        /// "summary" or "histogram".
        kind: &'static str,
        /// The summary or histogram.
        other: String,
    },
}

impl Rejection {
    /// Whether it refuses an aggregating push for what cannot be added (as opposed to a
    /// consistency rule, which `--push.disable-consistency-check` turns off).
    pub fn is_aggregation(&self) -> bool {
        matches!(
            self,
            Rejection::NotAggregable { .. } | Rejection::TypeConflict { .. }
        )
    }
}

/// Renders labels the way upstream's messages do: `name:"value" `.
pub(crate) fn render_labels(labels: &[crate::model::Label]) -> String {
    labels
        .iter()
        .map(|l| format!("{}:{:?} ", l.name, l.value))
        .collect()
}

/// Checks a sanitised push on its own, before any stored state is consulted, and returns
/// the series identities of every family (in family order) for the store's checks.
pub(crate) fn check_push_alone(
    families: &[MetricFamily],
    validation: NameValidation,
) -> Result<Vec<Vec<SeriesId>>, Rejection> {
    if families
        .iter()
        .any(|f| f.metrics.iter().any(|m| m.timestamp_ms().is_some()))
    {
        return Err(Rejection::Timestamp);
    }
    let mut seen = HashSet::new();
    let mut ids = Vec::with_capacity(families.len());
    for family in families {
        let mut family_ids = Vec::with_capacity(family.metrics.len());
        for metric in &family.metrics {
            let labels = || render_labels(&metric.labels);
            if !metric.value.fits(family.metric_type) {
                return Err(Rejection::WrongValueType {
                    name: family.name.to_string(),
                    labels: labels(),
                    expected: family.metric_type.as_str().to_string(),
                });
            }
            for (i, label) in metric.labels.iter().enumerate() {
                if i > 0 && metric.labels[i - 1].name == label.name {
                    return Err(Rejection::DuplicateLabelName {
                        name: family.name.to_string(),
                        labels: labels(),
                        label: label.name.to_string(),
                    });
                }
                if !validation.is_valid_label_name(&label.name)
                    || is_reserved_label_name(&label.name)
                {
                    return Err(Rejection::InvalidLabelName {
                        name: family.name.to_string(),
                        labels: labels(),
                        label: label.name.to_string(),
                    });
                }
                let special = match metric.value {
                    Value::Summary(_) if &*label.name == QUANTILE_LABEL => {
                        Some(("summary", QUANTILE_LABEL))
                    }
                    Value::Histogram(_) if &*label.name == BUCKET_LABEL => {
                        Some(("histogram", BUCKET_LABEL))
                    }
                    _ => None,
                };
                if let Some((kind, label)) = special {
                    return Err(Rejection::ExplicitSpecialLabel {
                        kind,
                        name: family.name.to_string(),
                        labels: labels(),
                        label,
                    });
                }
            }
            // Names outside the classic set are escaped on the default scrape; two that
            // escape alike would be one label twice there.
            if metric
                .labels
                .iter()
                .any(|l| !crate::model::is_legacy_label_name(&l.name))
            {
                let mut escaped: Vec<String> = metric
                    .labels
                    .iter()
                    .map(|l| legacy_escaped(&l.name, true).into_owned())
                    .collect();
                escaped.sort();
                if let Some(pair) = escaped.windows(2).find(|w| w[0] == w[1]) {
                    return Err(Rejection::DuplicateLabelName {
                        name: family.name.to_string(),
                        labels: labels(),
                        label: pair[0].clone(),
                    });
                }
            }
            let id = series_id(&family.name, &metric.labels);
            if !seen.insert(id) {
                return Err(Rejection::DuplicateSeries {
                    name: family.name.to_string(),
                    labels: labels(),
                });
            }
            family_ids.push(id);
        }
        check_escaped_series(family)?;
        ids.push(family_ids);
    }
    Ok(ids)
}

/// Refuses two series of a family that differ only in label names the default scrape
/// escapes alike (`{a.b="1"}` and `{a_b="1"}`): that scrape would show one series twice.
fn check_escaped_series(family: &MetricFamily) -> Result<(), Rejection> {
    let escapes =
        |m: &crate::model::Metric| m.labels.iter().any(|l| !is_legacy_label_name(&l.name));
    if !family.metrics.iter().any(escapes) {
        return Ok(());
    }
    let mut seen = HashSet::with_capacity(family.metrics.len());
    for metric in &family.metrics {
        let id = escaped_series_id(
            &family.name,
            metric.labels.iter().map(LabelRef::from),
            |n| legacy_escaped(n, true),
        );
        if !id.is_some_and(|id| seen.insert(id)) {
            return Err(Rejection::DuplicateSeries {
                name: family.name.to_string(),
                labels: render_labels(&metric.labels),
            });
        }
    }
    Ok(())
}

/// The names a summary or histogram named `name` would expose besides itself.
pub(crate) fn derived_names(name: &str, metric_type: MetricType) -> Vec<String> {
    match metric_type {
        MetricType::Summary => vec![format!("{name}_count"), format!("{name}_sum")],
        t if t.is_histogram_like() => vec![
            format!("{name}_count"),
            format!("{name}_sum"),
            format!("{name}_bucket"),
        ],
        _ => Vec::new(),
    }
}

/// If `name` ends in `_count`, `_sum` or `_bucket`, the base name and whether the suffix
/// was `_bucket` (which a summary does not expose).
pub(crate) fn base_name(name: &str) -> Option<(&str, bool)> {
    if let Some(base) = name.strip_suffix("_count") {
        Some((base, false))
    } else if let Some(base) = name.strip_suffix("_sum") {
        Some((base, false))
    } else {
        name.strip_suffix("_bucket").map(|base| (base, true))
    }
}
