//! An OTLP export as pushes: each `ResourceMetrics` becomes one group (its grouping key from
//! `service.namespace`/`service.name`, `service.instance.id` and the promoted resource
//! attributes), carrying a family per metric name plus `target_info` for the other resource
//! attributes, as Prometheus's OTLP receiver derives them. Data points that cannot be stored
//! (delta temporality, bad buckets, labels over the limits, a series twice) are counted and
//! explained in [`Refusals`] instead of failing the export; points flagged
//! `NO_RECORDED_VALUE` are skipped. Point times are dropped (a gateway exposes no
//! timestamps); start times become created timestamps.

use std::collections::{BTreeMap, HashMap, HashSet};

use base64::Engine;

use super::exponential::{native_buckets, schema_for};
use super::names::{label_name, metric_name, Escaping, NameKind};
use super::proto::{self, any_value, metric::Data, AggregationTemporality, NO_RECORDED_VALUE};
use crate::model::{
    is_reserved_label_name, legacy_escaped, Bucket, Exemplar, Extras, GroupingKey, Histogram,
    Label, Metric, MetricFamily, MetricType, NativeHistogram, Quantile, Str, Summary, Timestamp,
    Value, BUCKET_LABEL, INSTANCE_LABEL, JOB_LABEL, QUANTILE_LABEL,
};

/// The label of the instrumentation scope's name.
pub const SCOPE_NAME_LABEL: &str = "otel_scope_name";
/// The label of the instrumentation scope's version.
pub const SCOPE_VERSION_LABEL: &str = "otel_scope_version";
/// The family holding the resource attributes that are not grouping labels.
pub const TARGET_INFO: &str = "target_info";
/// The `job` of a resource without `service.name`, as the OpenTelemetry SDKs default it.
pub const UNKNOWN_SERVICE: &str = "unknown_service";
/// Native histograms' default zero bucket width (client_golang's), for exponential
/// histograms that send none.
const DEFAULT_ZERO_THRESHOLD: f64 = 2.938_735_877_055_719e-39;

const SERVICE_NAME: &str = "service.name";
const SERVICE_NAMESPACE: &str = "service.namespace";
const SERVICE_INSTANCE_ID: &str = "service.instance.id";
/// How many distinct reasons a partial success names; the count covers them all.
const MAX_MESSAGES: usize = 5;
/// The longest reason kept, in bytes.
const MAX_MESSAGE_BYTES: usize = 512;

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
    /// Its families, to replace those of the same names (POST semantics).
    pub families: Vec<MetricFamily>,
    /// How many data points they hold (`target_info` not counted).
    pub points: u64,
}

/// Data points that were refused, with the first few reasons.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Refusals {
    /// How many.
    pub points: u64,
    messages: Vec<String>,
    more: usize,
}

impl Refusals {
    /// Counts `points` refused for `reason` (a reason without points is a warning).
    pub fn add(&mut self, points: u64, reason: impl Into<String>) {
        self.points = self.points.saturating_add(points);
        let mut reason = reason.into();
        // A reason quotes client data (names, keys): the answer stays small however long.
        if reason.len() > MAX_MESSAGE_BYTES {
            let mut end = MAX_MESSAGE_BYTES;
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            reason.truncate(end);
            reason.push('…');
        }
        if self.messages.contains(&reason) {
            return;
        }
        if self.messages.len() < MAX_MESSAGES {
            self.messages.push(reason);
        } else {
            self.more += 1;
        }
    }

    /// Whether anything was refused or warned about.
    pub fn is_empty(&self) -> bool {
        self.points == 0 && self.messages.is_empty()
    }

    /// The reasons as one message.
    pub fn message(&self) -> String {
        let mut message = self.messages.join("; ");
        if self.more > 0 {
            message.push_str(&format!(" (and {} more reasons)", self.more));
        }
        message
    }
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

/// The translation of one `ResourceMetrics`.
struct Group<'a> {
    settings: &'a Settings,
    refused: &'a mut Refusals,
    families: Vec<FamilyBuilder>,
    by_name: HashMap<Str, usize>,
    /// Grouping label names: a data point's attribute of such a name is overridden.
    grouping_names: HashSet<Str>,
    points: u64,
}

struct FamilyBuilder {
    family: MetricFamily,
    series: HashSet<Box<[Label]>>,
}

/// What a data point becomes before its labels are added.
type Point = (Value, Option<Box<Extras>>);

impl<'a> Group<'a> {
    fn new(settings: &'a Settings, refused: &'a mut Refusals) -> Group<'a> {
        Group {
            settings,
            refused,
            families: Vec::new(),
            by_name: HashMap::new(),
            grouping_names: HashSet::new(),
            points: 0,
        }
    }

    fn translate(&mut self, resource_metrics: proto::ResourceMetrics) -> Option<GroupPush> {
        let attributes = resource_metrics
            .resource
            .map(|r| attribute_strings(&r.attributes))
            .unwrap_or_default();
        let key = match self.grouping_key(&attributes) {
            Ok(key) => key,
            Err(reason) => {
                let points = resource_metrics
                    .scope_metrics
                    .iter()
                    .flat_map(|s| &s.metrics)
                    .map(recorded_points)
                    .sum();
                self.refused.add(points, reason);
                return None;
            }
        };
        self.grouping_names = key.labels().iter().map(|l| l.name.clone()).collect();
        for scope_metrics in resource_metrics.scope_metrics {
            let scope_labels = scope_labels(scope_metrics.scope.as_ref());
            for metric in scope_metrics.metrics {
                self.add_metric(metric, &scope_labels);
            }
        }
        if self.families.is_empty() {
            return None;
        }
        self.add_target_info(&attributes);
        Some(GroupPush {
            key,
            families: self.families.drain(..).map(|b| b.family).collect(),
            points: self.points,
        })
    }

    /// `job`, `instance` and the promoted attributes.
    fn grouping_key(&self, attributes: &[(String, String)]) -> Result<GroupingKey, String> {
        let get = |name: &str| {
            attributes
                .iter()
                .rev()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.as_str())
                .filter(|value| !value.is_empty())
        };
        let service = get(SERVICE_NAME).unwrap_or(UNKNOWN_SERVICE);
        let job = match get(SERVICE_NAMESPACE) {
            Some(namespace) => format!("{namespace}/{service}"),
            None => service.to_string(),
        };
        let mut labels = vec![Label::new(JOB_LABEL, job)];
        if let Some(instance) = get(SERVICE_INSTANCE_ID) {
            labels.push(Label::new(INSTANCE_LABEL, instance));
        }
        for promoted in &self.settings.promote {
            if let (Some(value), Some(name)) =
                (get(promoted), label_name(promoted, self.settings.escaping))
            {
                labels.push(Label::new(name, value));
            }
        }
        for label in &labels {
            if label.value.len() > self.settings.max_label_length {
                return Err(format!(
                    "resource refused: its grouping label {} is longer than {} bytes (--push.max-label-length)",
                    label.name, self.settings.max_label_length
                ));
            }
        }
        Ok(GroupingKey::new(labels))
    }

    /// `target_info` with the resource attributes that name no grouping label.
    fn add_target_info(&mut self, attributes: &[(String, String)]) {
        let identifying = [SERVICE_NAME, SERVICE_NAMESPACE, SERVICE_INSTANCE_ID];
        let rest: Vec<(String, String)> = attributes
            .iter()
            .filter(|(key, _)| {
                !identifying.contains(&key.as_str()) && !self.settings.promote.contains(key)
            })
            .cloned()
            .collect();
        if rest.is_empty() {
            return;
        }
        let labels = match self.labels(&rest, &[], MetricType::Gauge) {
            Ok(labels) => labels,
            Err(reason) => {
                self.refused
                    .add(0, format!("{TARGET_INFO} left out: {reason}"));
                return;
            }
        };
        self.add_series(
            TARGET_INFO,
            None,
            MetricType::Gauge,
            labels,
            (Value::Gauge(1.0), None),
            false,
        );
    }

    fn add_metric(&mut self, metric: proto::Metric, scope_labels: &[Label]) {
        let points = recorded_points(&metric);
        let Some(data) = metric.data else {
            return;
        };
        let (metric_type, kind, temporality) = match &data {
            Data::Gauge(_) => (MetricType::Gauge, NameKind::Gauge, None),
            Data::Sum(sum) if sum.is_monotonic => (
                MetricType::Counter,
                NameKind::Counter,
                Some(sum.aggregation_temporality),
            ),
            Data::Sum(sum) => (
                MetricType::Gauge,
                NameKind::Other,
                Some(sum.aggregation_temporality),
            ),
            Data::Histogram(h) => (
                MetricType::Histogram,
                NameKind::Other,
                Some(h.aggregation_temporality),
            ),
            Data::ExponentialHistogram(h) => (
                MetricType::Histogram,
                NameKind::Other,
                Some(h.aggregation_temporality),
            ),
            Data::Summary(_) => (MetricType::Summary, NameKind::Other, None),
        };
        let temporality = temporality.map(|t| {
            AggregationTemporality::try_from(t).unwrap_or(AggregationTemporality::Unspecified)
        });
        // A non-monotonic delta sum is still an increment: neither may be stored as a level.
        match temporality {
            Some(AggregationTemporality::Delta) => {
                self.refused.add(
                    points,
                    format!(
                        "metric {:?}: delta temporality is not supported, export cumulative temporality (OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=cumulative)",
                        metric.name
                    ),
                );
                return;
            }
            Some(AggregationTemporality::Unspecified) => {
                self.refused.add(
                    points,
                    format!(
                        "metric {:?}: aggregation temporality unspecified",
                        metric.name
                    ),
                );
                return;
            }
            _ => {}
        }
        let Some(name) = metric_name(&metric.name, &metric.unit, kind, self.settings.escaping)
        else {
            self.refused.add(
                points,
                format!("metric {:?} has no usable name", metric.name),
            );
            return;
        };
        let help = (!metric.description.is_empty()).then_some(metric.description.as_str());
        macro_rules! each_point {
            ($points:expr, $convert:expr) => {
                for point in $points {
                    if point.flags & NO_RECORDED_VALUE != 0 {
                        continue;
                    }
                    let converted: Result<Point, String> = $convert(&point);
                    self.add_point(
                        &name,
                        help,
                        metric_type,
                        &point.attributes,
                        scope_labels,
                        converted,
                    );
                }
            };
        }
        match data {
            Data::Gauge(gauge) => each_point!(gauge.data_points, |p| number(p, metric_type)),
            Data::Sum(sum) => each_point!(sum.data_points, |p| number(p, metric_type)),
            Data::Histogram(h) => each_point!(h.data_points, explicit_histogram),
            Data::ExponentialHistogram(h) => {
                each_point!(h.data_points, exponential_histogram)
            }
            Data::Summary(s) => each_point!(s.data_points, summary),
        }
    }

    fn add_point(
        &mut self,
        name: &str,
        help: Option<&str>,
        metric_type: MetricType,
        attributes: &[proto::KeyValue],
        scope_labels: &[Label],
        converted: Result<Point, String>,
    ) {
        let refuse = |refused: &mut Refusals, reason: String| {
            refused.add(1, format!("metric {name:?}: {reason}"));
        };
        let point = match converted {
            Ok(point) => point,
            Err(reason) => return refuse(self.refused, reason),
        };
        let labels = match self.labels(&attribute_strings(attributes), scope_labels, metric_type) {
            Ok(labels) => labels,
            Err(reason) => return refuse(self.refused, reason),
        };
        self.add_series(name, help, metric_type, labels, point, true);
    }

    fn add_series(
        &mut self,
        name: &str,
        help: Option<&str>,
        metric_type: MetricType,
        labels: Vec<Label>,
        (value, extras): Point,
        is_data_point: bool,
    ) {
        let index = match self.by_name.get(name) {
            Some(&index) => index,
            None => {
                let name = Str::from(name);
                self.by_name.insert(name.clone(), self.families.len());
                self.families.push(FamilyBuilder {
                    family: MetricFamily {
                        name,
                        help: help.map(Str::from),
                        metric_type,
                        metrics: Vec::new(),
                    },
                    series: HashSet::new(),
                });
                self.families.len() - 1
            }
        };
        let builder = &mut self.families[index];
        let stored_type = builder.family.metric_type;
        if stored_type != metric_type {
            self.refused.add(
                u64::from(is_data_point),
                format!(
                    "metric {name:?} is a {} here and a {} elsewhere in the same resource",
                    metric_type.as_str(),
                    stored_type.as_str()
                ),
            );
            return;
        }
        let labels = labels.into_boxed_slice();
        if !builder.series.insert(labels.clone()) {
            self.refused.add(
                u64::from(is_data_point),
                format!("metric {name:?}: the same series twice in one resource"),
            );
            return;
        }
        builder.family.metrics.push(Metric {
            labels,
            value,
            extras,
        });
        self.points += u64::from(is_data_point);
    }

    /// A series' labels from its attributes (keys translated; values of keys that translate
    /// alike joined by `;`, as Prometheus does) and its scope, sorted by name.
    fn labels(
        &self,
        attributes: &[(String, String)],
        scope_labels: &[Label],
        metric_type: MetricType,
    ) -> Result<Vec<Label>, String> {
        let mut sorted: Vec<&(String, String)> = attributes.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        let mut by_name: BTreeMap<String, String> = BTreeMap::new();
        for (key, value) in sorted {
            if value.is_empty() {
                continue;
            }
            let name = label_name(key, self.settings.escaping)
                .ok_or_else(|| format!("attribute {key:?} has no usable label name"))?;
            if self.grouping_names.contains(name.as_str()) {
                continue;
            }
            by_name
                .entry(name)
                .and_modify(|joined| {
                    joined.push(';');
                    joined.push_str(value);
                })
                .or_insert_with(|| value.clone());
        }
        for label in scope_labels {
            by_name.insert(label.name.to_string(), label.value.to_string());
        }
        if by_name.len() > self.settings.max_labels_per_series {
            return Err(format!(
                "{} labels, more than {} (--push.max-labels-per-series)",
                by_name.len(),
                self.settings.max_labels_per_series
            ));
        }
        let mut escaped_names = HashSet::new();
        let mut labels = Vec::with_capacity(by_name.len());
        for (name, value) in by_name {
            let limit = self.settings.max_label_length;
            if name.len() > limit || value.len() > limit {
                return Err(format!(
                    "label {name:?} or its value is longer than {limit} bytes (--push.max-label-length)"
                ));
            }
            if is_reserved_label_name(&name) {
                return Err(format!("label name {name:?} is reserved"));
            }
            let special = match metric_type {
                MetricType::Histogram => name == BUCKET_LABEL,
                MetricType::Summary => name == QUANTILE_LABEL,
                _ => false,
            };
            if special {
                return Err(format!(
                    "a {} must not have the label {name:?}",
                    metric_type.as_str()
                ));
            }
            if !escaped_names.insert(legacy_escaped(&name, true).into_owned()) {
                return Err(format!(
                    "label {name:?} looks like another label once escaped"
                ));
            }
            labels.push(Label::new(name, value));
        }
        Ok(labels)
    }
}

/// The scope's name and version as labels (shared by every series of the scope).
fn scope_labels(scope: Option<&proto::InstrumentationScope>) -> Vec<Label> {
    let Some(scope) = scope else {
        return Vec::new();
    };
    [
        (SCOPE_NAME_LABEL, &scope.name),
        (SCOPE_VERSION_LABEL, &scope.version),
    ]
    .into_iter()
    .filter(|(_, value)| !value.is_empty())
    .map(|(name, value)| Label::new(name, value.as_str()))
    .collect()
}

/// How many data points a metric carries, not counting those without a recorded value.
fn recorded_points(metric: &proto::Metric) -> u64 {
    fn count<'p>(flags: impl Iterator<Item = &'p u32>) -> u64 {
        flags.filter(|&&f| f & NO_RECORDED_VALUE == 0).count() as u64
    }
    match &metric.data {
        None => 0,
        Some(Data::Gauge(g)) => count(g.data_points.iter().map(|p| &p.flags)),
        Some(Data::Sum(s)) => count(s.data_points.iter().map(|p| &p.flags)),
        Some(Data::Histogram(h)) => count(h.data_points.iter().map(|p| &p.flags)),
        Some(Data::ExponentialHistogram(h)) => count(h.data_points.iter().map(|p| &p.flags)),
        Some(Data::Summary(s)) => count(s.data_points.iter().map(|p| &p.flags)),
    }
}

/// Attributes as key and value strings.
fn attribute_strings(attributes: &[proto::KeyValue]) -> Vec<(String, String)> {
    attributes
        .iter()
        .map(|kv| {
            (
                kv.key.clone(),
                kv.value.as_ref().map_or_else(String::new, any_value_string),
            )
        })
        .collect()
}

/// An attribute value as a label value: strings as they are, other scalars as text, arrays
/// and maps as JSON, bytes as base64 (as the Collector's `AsString`).
fn any_value_string(value: &proto::AnyValue) -> String {
    match &value.value {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::BytesValue(b)) => {
            base64::engine::general_purpose::STANDARD.encode(b)
        }
        Some(any_value::Value::ArrayValue(_) | any_value::Value::KvlistValue(_)) => {
            any_value_json(value).to_string()
        }
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => double_string(*d),
        None => String::new(),
    }
}

fn any_value_json(value: &proto::AnyValue) -> serde_json::Value {
    use serde_json::Value as Json;
    match &value.value {
        Some(any_value::Value::StringValue(s)) => Json::String(s.clone()),
        Some(any_value::Value::BoolValue(b)) => Json::Bool(*b),
        Some(any_value::Value::IntValue(i)) => Json::from(*i),
        Some(any_value::Value::DoubleValue(d)) => serde_json::Number::from_f64(*d)
            .map_or_else(|| Json::String(double_string(*d)), Json::Number),
        Some(any_value::Value::BytesValue(b)) => {
            Json::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        Some(any_value::Value::ArrayValue(array)) => {
            Json::Array(array.values.iter().map(any_value_json).collect())
        }
        Some(any_value::Value::KvlistValue(list)) => Json::Object(
            list.values
                .iter()
                .map(|kv| {
                    (
                        kv.key.clone(),
                        kv.value.as_ref().map_or(Json::Null, any_value_json),
                    )
                })
                .collect(),
        ),
        None => Json::Null,
    }
}

/// A double as JavaScript writes it (what the Collector's `AsString` follows): the shortest
/// round-trip digits, exponent notation outside `[1e-6, 1e21)`.
fn double_string(d: f64) -> String {
    if d.is_nan() {
        return "NaN".into();
    }
    if d.is_infinite() {
        return if d > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let magnitude = d.abs();
    if magnitude == 0.0 || (1e-6..1e21).contains(&magnitude) {
        format!("{d}")
    } else {
        let text = format!("{d:e}");
        // JavaScript writes the exponent's sign: 1e+21.
        match text.split_once('e') {
            Some((mantissa, exponent)) if !exponent.starts_with('-') => {
                format!("{mantissa}e+{exponent}")
            }
            _ => text,
        }
    }
}

fn created(start_time_unix_nano: u64) -> Option<Timestamp> {
    (start_time_unix_nano > 0).then(|| nanos_to_timestamp(start_time_unix_nano))
}

fn nanos_to_timestamp(nanos: u64) -> Timestamp {
    Timestamp {
        seconds: (nanos / 1_000_000_000) as i64,
        nanos: (nanos % 1_000_000_000) as i32,
    }
}

/// An exemplar with its value, time and `trace_id`/`span_id` labels; `None` without a
/// value, or with ids of the wrong length (they would not fit OpenMetrics' label budget).
fn exemplar(exemplar: &proto::Exemplar) -> Option<Exemplar> {
    let value = match exemplar.value? {
        proto::exemplar::Value::AsDouble(v) => v,
        proto::exemplar::Value::AsInt(v) => v as f64,
    };
    let mut labels = Vec::new();
    for (name, id, width) in [
        ("trace_id", &exemplar.trace_id, 16),
        ("span_id", &exemplar.span_id, 8),
    ] {
        match id.len() {
            0 => {}
            n if n == width => labels.push(Label::new(name, hex(id))),
            _ => return None,
        }
    }
    Some(Exemplar {
        labels,
        value,
        timestamp: (exemplar.time_unix_nano > 0)
            .then(|| nanos_to_timestamp(exemplar.time_unix_nano)),
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn number(point: &proto::NumberDataPoint, metric_type: MetricType) -> Result<Point, String> {
    let value = match point.value {
        Some(proto::number_data_point::Value::AsDouble(v)) => v,
        Some(proto::number_data_point::Value::AsInt(v)) => v as f64,
        None => return Err("a data point without a value".into()),
    };
    if metric_type != MetricType::Counter {
        return Ok((Value::Gauge(value), None));
    }
    let extras = Extras {
        created: created(point.start_time_unix_nano),
        exemplar: point.exemplars.iter().rev().find_map(exemplar),
        ..Extras::default()
    };
    Ok((Value::Counter(value), Metric::extras_from(None, extras)))
}

fn explicit_histogram(point: &proto::HistogramDataPoint) -> Result<Point, String> {
    let bounds = &point.explicit_bounds;
    let counts = &point.bucket_counts;
    if !counts.is_empty() && counts.len() != bounds.len() + 1 {
        return Err(format!(
            "{} bucket counts for {} explicit bounds (there must be one more count than bounds)",
            counts.len(),
            bounds.len()
        ));
    }
    if bounds.iter().any(|b| b.is_nan()) || bounds.windows(2).any(|w| w[0] >= w[1]) {
        return Err("explicit bounds must increase".into());
    }
    let mut buckets = Vec::with_capacity(counts.len());
    let mut cumulative: u64 = 0;
    for (&bound, &count) in bounds.iter().zip(counts) {
        cumulative = cumulative.saturating_add(count);
        if bound != f64::INFINITY {
            buckets.push(Bucket {
                upper_bound: bound,
                count: cumulative as f64,
            });
        }
    }
    if !counts.is_empty() {
        buckets.push(Bucket {
            upper_bound: f64::INFINITY,
            count: point.count as f64,
        });
    }
    let mut bucket_exemplars: Vec<Option<Exemplar>> = Vec::new();
    if !buckets.is_empty() {
        for converted in point.exemplars.iter().filter_map(exemplar) {
            // The exemplar belongs to the first bucket whose bound holds its value.
            let index = buckets
                .iter()
                .position(|b| converted.value <= b.upper_bound)
                .unwrap_or(buckets.len() - 1);
            bucket_exemplars.resize(buckets.len(), None);
            bucket_exemplars[index] = Some(converted);
        }
    }
    let histogram = Histogram {
        count: point.count as f64,
        float_counts: false,
        sum: point.sum.unwrap_or(f64::NAN),
        buckets,
    };
    let extras = Extras {
        created: created(point.start_time_unix_nano),
        bucket_exemplars,
        ..Extras::default()
    };
    Ok((
        Value::Histogram(Box::new(histogram)),
        Metric::extras_from(None, extras),
    ))
}

fn exponential_histogram(point: &proto::ExponentialHistogramDataPoint) -> Result<Point, String> {
    check_native_count(point)?;
    let (schema, reduction) = schema_for(point.scale)?;
    let side = |buckets: &Option<proto::exponential_histogram_data_point::Buckets>| match buckets {
        Some(b) => native_buckets(b.offset, &b.bucket_counts, reduction),
        None => Ok((Vec::new(), Vec::new())),
    };
    let (positive_spans, positive_deltas) = side(&point.positive)?;
    let (negative_spans, negative_deltas) = side(&point.negative)?;
    let zero_threshold = if point.zero_threshold > 0.0 && point.zero_threshold.is_finite() {
        point.zero_threshold
    } else {
        DEFAULT_ZERO_THRESHOLD
    };
    let native = NativeHistogram {
        schema,
        zero_threshold,
        zero_count: Some(point.zero_count),
        zero_count_float: None,
        negative_spans,
        negative_deltas,
        negative_counts: Vec::new(),
        positive_spans,
        positive_deltas,
        positive_counts: Vec::new(),
    };
    let histogram = Histogram {
        count: point.count as f64,
        float_counts: false,
        sum: point.sum.unwrap_or(f64::NAN),
        buckets: Vec::new(),
    };
    let extras = Extras {
        created: created(point.start_time_unix_nano),
        native: Some(native),
        // Native histogram exemplars need a time to be ingested.
        exemplars: point
            .exemplars
            .iter()
            .filter_map(exemplar)
            .filter(|e| e.timestamp.is_some())
            .collect(),
        ..Extras::default()
    };
    Ok((
        Value::Histogram(Box::new(histogram)),
        Metric::extras_from(None, extras),
    ))
}

/// Refuses a count that disagrees with the buckets as Prometheus's native histogram
/// validation does (the count equals the observations in the buckets, or, without a sum, is
/// at least that): Prometheus would refuse the histogram when it scrapes it.
fn check_native_count(point: &proto::ExponentialHistogramDataPoint) -> Result<(), String> {
    let buckets = [&point.positive, &point.negative]
        .into_iter()
        .flatten()
        .flat_map(|b| b.bucket_counts.iter().copied());
    let in_buckets = std::iter::once(point.zero_count)
        .chain(buckets)
        .try_fold(0u64, u64::checked_add)
        .ok_or("exponential histogram bucket counts add up to more than 2^64")?;
    let count = point.count;
    let without_sum = point.sum.is_none_or(f64::is_nan);
    if in_buckets > count || (in_buckets != count && !without_sum) {
        return Err(format!(
            "exponential histogram count {count} disagrees with the {in_buckets} observations in its buckets"
        ));
    }
    Ok(())
}

fn summary(point: &proto::SummaryDataPoint) -> Result<Point, String> {
    let mut quantiles: Vec<Quantile> = Vec::with_capacity(point.quantile_values.len());
    let mut seen = HashSet::with_capacity(point.quantile_values.len());
    for q in &point.quantile_values {
        // 0.0 and -0.0 are one label value.
        if q.quantile.is_nan() || !seen.insert((q.quantile + 0.0).to_bits()) {
            return Err(format!(
                "quantile {} given twice or not a number",
                q.quantile
            ));
        }
        quantiles.push(Quantile {
            quantile: q.quantile,
            value: q.value,
        });
    }
    let summary = Summary {
        count: point.count,
        sum: point.sum,
        quantiles,
    };
    let extras = Extras {
        created: created(point.start_time_unix_nano),
        ..Extras::default()
    };
    Ok((
        Value::Summary(Box::new(summary)),
        Metric::extras_from(None, extras),
    ))
}

#[cfg(test)]
mod tests;
