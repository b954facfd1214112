//! The metrics of the configuration file's rules: refusals by the access rules, and each
//! quota's usage and limits.

use crate::model::{Label, Metric, MetricFamily, MetricType, Value};
use crate::store::QuotaUsage;

/// Requests refused by an `[[access]]` entry, by user and action.
pub const ACCESS_DENIED: &str = "pushgateway_access_denied_total";
/// Series stored in the groups a quota counts.
pub const QUOTA_SERIES: &str = "pushgateway_quota_series";
/// Groups a quota counts.
pub const QUOTA_GROUPS: &str = "pushgateway_quota_groups";
/// A quota's series limit (only for quotas that have one).
pub const QUOTA_MAX_SERIES: &str = "pushgateway_quota_max_series";
/// A quota's group limit (only for quotas that have one).
pub const QUOTA_MAX_GROUPS: &str = "pushgateway_quota_max_groups";

/// The names and types above, which pushes may not use.
pub const TYPES: [(&str, MetricType); 5] = [
    (ACCESS_DENIED, MetricType::Counter),
    (QUOTA_SERIES, MetricType::Gauge),
    (QUOTA_GROUPS, MetricType::Gauge),
    (QUOTA_MAX_SERIES, MetricType::Gauge),
    (QUOTA_MAX_GROUPS, MetricType::Gauge),
];

/// The refusal counter from (user, action, count); no family before the first refusal.
pub fn access_families(denied: &[(String, &str, u64)]) -> Vec<MetricFamily> {
    let metrics: Vec<Metric> = denied
        .iter()
        .map(|(user, action, count)| {
            Metric::new(
                vec![
                    Label::new("action", *action),
                    Label::new("user", user.as_str()),
                ],
                Value::Counter(*count as f64),
            )
        })
        .collect();
    if metrics.is_empty() {
        return Vec::new();
    }
    vec![MetricFamily {
        name: ACCESS_DENIED.into(),
        help: Some(
            "Requests refused by an [[access]] entry of --config.file, by user (empty: no user) and action (push, delete, scrape, admin)."
                .into(),
        ),
        metric_type: MetricType::Counter,
        metrics,
    }]
}

/// Usage and limits of every quota; none without quotas.
pub fn quota_families(usage: &[QuotaUsage]) -> Vec<MetricFamily> {
    if usage.is_empty() {
        return Vec::new();
    }
    let gauge =
        |name: &str, help: &str, value: &dyn Fn(&QuotaUsage) -> Option<usize>| MetricFamily {
            name: name.into(),
            help: Some(help.into()),
            metric_type: MetricType::Gauge,
            metrics: usage
                .iter()
                .filter_map(|quota| {
                    value(quota).map(|v| {
                        Metric::new(
                            vec![Label::new("quota", quota.name.as_str())],
                            Value::Gauge(v as f64),
                        )
                    })
                })
                .collect(),
        };
    vec![
        gauge(
            QUOTA_SERIES,
            "Series stored in the groups a [[quota]] of --config.file counts (a histogram or summary counts once).",
            &|q| Some(q.series),
        ),
        gauge(
            QUOTA_GROUPS,
            "Groups a [[quota]] of --config.file counts.",
            &|q| Some(q.groups),
        ),
        gauge(
            QUOTA_MAX_SERIES,
            "The series limit of a [[quota]] of --config.file (quotas without one have no series here).",
            &|q| q.max_series,
        ),
        gauge(
            QUOTA_MAX_GROUPS,
            "The group limit of a [[quota]] of --config.file (quotas without one have no series here).",
            &|q| q.max_groups,
        ),
    ]
}
