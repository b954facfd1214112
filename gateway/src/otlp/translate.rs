//! An OTLP export as pushes: each `ResourceMetrics` becomes one group (its grouping key from
//! `service.namespace`/`service.name`, `service.instance.id` and the promoted resource
//! attributes), carrying a family per metric name plus `target_info` for the other resource
//! attributes, as Prometheus's OTLP receiver derives them. Cumulative families and delta
//! families (increments, which `web` adds to the group as an aggregating push) are kept
//! apart. Data points that cannot be stored (up-down counters in delta, temporality
//! unspecified, bad buckets, labels over the limits, a series twice) are counted and
//! explained in [`Refusals`] instead of failing the export; points flagged
//! `NO_RECORDED_VALUE` are skipped. Point times are dropped (a gateway exposes no
//! timestamps); start times become created timestamps.

mod attributes;
mod extras;
mod group;
mod histograms;
mod numbers;
mod refusals;
mod summaries;

pub use refusals::Refusals;

use super::names::Escaping;
use super::proto;
use crate::model::{Extras, GroupingKey, MetricFamily, Value};
use group::Group;

/// The label of the instrumentation scope's name.
pub const SCOPE_NAME_LABEL: &str = "otel_scope_name";
/// The label of the instrumentation scope's version.
pub const SCOPE_VERSION_LABEL: &str = "otel_scope_version";
/// The family holding the resource attributes that are not grouping labels.
pub const TARGET_INFO: &str = "target_info";
/// The `job` of a resource without `service.name`, as the OpenTelemetry SDKs default it.
pub const UNKNOWN_SERVICE: &str = "unknown_service";

const SERVICE_NAME: &str = "service.name";
const SERVICE_NAMESPACE: &str = "service.namespace";
const SERVICE_INSTANCE_ID: &str = "service.instance.id";

/// How exports are translated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Name rules: escaped as Prometheus does by default, or UTF-8 as sent.
    pub escaping: Escaping,
    /// Resource attributes that become grouping labels (`--otlp.promote-resource-attributes`).
    pub promote: Vec<String>,
    /// Most labels of one series (`--push.max-labels-per-series`).
    pub max_labels_per_series: usize,
    /// Longest label name or value in bytes (`--push.max-label-length`).
    pub max_label_length: usize,
}

/// One group's share of an export.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupPush {
    /// The group.
    pub key: GroupingKey,
    /// Its cumulative families (and `target_info`), to replace those of the same names
    /// (POST semantics).
    pub families: Vec<MetricFamily>,
    /// How many data points they hold (`target_info` not counted).
    pub points: u64,
    /// Its delta families (monotonic sums, histograms): increments, to be added to what
    /// the group stores (an aggregating push), never stored as levels.
    pub deltas: Vec<MetricFamily>,
    /// How many data points the deltas hold.
    pub delta_points: u64,
}

/// An export as pushes.
#[derive(Debug, Default)]
pub struct Translation {
    /// One push per resource that kept anything.
    pub groups: Vec<GroupPush>,
    /// What was refused.
    pub refused: Refusals,
}

/// Translates an export.
pub fn translate(request: proto::ExportMetricsServiceRequest, settings: &Settings) -> Translation {
    let mut translation = Translation::default();
    for resource_metrics in request.resource_metrics {
        let mut group = Group::new(settings, &mut translation.refused);
        if let Some(push) = group.translate(resource_metrics) {
            translation.groups.push(push);
        }
    }
    translation
}

/// What a data point becomes before its labels are added.
type Point = (Value, Option<Box<Extras>>);

#[cfg(test)]
mod tests;
