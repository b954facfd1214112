//! One `ResourceMetrics` assembled into a group's push: its grouping key, a family per
//! metric name with the labels of each series, `target_info`, and what is refused. Families
//! of delta temporality (increments) are kept apart from cumulative ones, and a name may not
//! be both in one resource.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::attributes::attribute_strings;
use super::histograms::{explicit_histogram, exponential_histogram};
use super::numbers::number;
use super::summaries::summary;
use super::{
    GroupPush, Point, Refusals, Settings, SCOPE_NAME_LABEL, SCOPE_VERSION_LABEL,
    SERVICE_INSTANCE_ID, SERVICE_NAME, SERVICE_NAMESPACE, TARGET_INFO, UNKNOWN_SERVICE,
};
use crate::model::{
    is_reserved_label_name, legacy_escaped, GroupingKey, Label, Metric, MetricFamily, MetricType,
    Str, Value, BUCKET_LABEL, INSTANCE_LABEL, JOB_LABEL, QUANTILE_LABEL,
};
use crate::otlp::names::{label_name, metric_name, NameKind};
use crate::otlp::proto::{self, metric::Data, AggregationTemporality, NO_RECORDED_VALUE};

/// The translation of one `ResourceMetrics`.
pub(super) struct Group<'a> {
    settings: &'a Settings,
    refused: &'a mut Refusals,
    families: Vec<FamilyBuilder>,
    by_name: HashMap<Str, usize>,
    /// Grouping label names: a data point's attribute of such a name is overridden.
    grouping_names: HashSet<Str>,
    points: u64,
    delta_points: u64,
}

struct FamilyBuilder {
    family: MetricFamily,
    /// Its points are increments (delta temporality), to be added to what is stored.
    delta: bool,
    series: HashSet<Box<[Label]>>,
}

/// What every series of one metric shares.
#[derive(Clone, Copy)]
struct FamilyHead<'m> {
    name: &'m str,
    help: Option<&'m str>,
    metric_type: MetricType,
    delta: bool,
}

impl<'a> Group<'a> {
    pub(super) fn new(settings: &'a Settings, refused: &'a mut Refusals) -> Group<'a> {
        Group {
            settings,
            refused,
            families: Vec::new(),
            by_name: HashMap::new(),
            grouping_names: HashSet::new(),
            points: 0,
            delta_points: 0,
        }
    }

    pub(super) fn translate(
        &mut self,
        resource_metrics: proto::ResourceMetrics,
    ) -> Option<GroupPush> {
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
        let (deltas, levels): (Vec<FamilyBuilder>, Vec<FamilyBuilder>) =
            self.families.drain(..).partition(|b| b.delta);
        Some(GroupPush {
            key,
            families: levels.into_iter().map(|b| b.family).collect(),
            points: self.points,
            deltas: deltas.into_iter().map(|b| b.family).collect(),
            delta_points: self.delta_points,
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
        let head = FamilyHead {
            name: TARGET_INFO,
            help: None,
            metric_type: MetricType::Gauge,
            delta: false,
        };
        self.add_series(&head, labels, (Value::Gauge(1.0), None), false);
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
        // Deltas are increments, added to what the group stores (an aggregating push);
        // never stored as a level. A non-monotonic delta sum's points are changes of a
        // gauge, and the aggregation keeps a gauge's last value instead of adding it.
        let delta = match temporality {
            None | Some(AggregationTemporality::Cumulative) => false,
            Some(AggregationTemporality::Delta) if metric_type == MetricType::Gauge => {
                self.refused.add(
                    points,
                    format!(
                        "metric {:?}: a non-monotonic sum (up-down counter) with delta temporality is not supported, since its changes would have to be added to a gauge; export it with cumulative temporality",
                        metric.name
                    ),
                );
                return;
            }
            Some(AggregationTemporality::Delta) => true,
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
        };
        let Some(name) = metric_name(&metric.name, &metric.unit, kind, self.settings.escaping)
        else {
            self.refused.add(
                points,
                format!("metric {:?} has no usable name", metric.name),
            );
            return;
        };
        let head = FamilyHead {
            name: &name,
            help: (!metric.description.is_empty()).then_some(metric.description.as_str()),
            metric_type,
            delta,
        };
        macro_rules! each_point {
            ($points:expr, $convert:expr) => {
                for point in $points {
                    if point.flags & NO_RECORDED_VALUE != 0 {
                        continue;
                    }
                    let converted: Result<Point, String> = $convert(&point);
                    self.add_point(&head, &point.attributes, scope_labels, converted);
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
        head: &FamilyHead,
        attributes: &[proto::KeyValue],
        scope_labels: &[Label],
        converted: Result<Point, String>,
    ) {
        let name = head.name;
        let refuse = |refused: &mut Refusals, reason: String| {
            refused.add(1, format!("metric {name:?}: {reason}"));
        };
        let point = match converted {
            Ok(point) => point,
            Err(reason) => return refuse(self.refused, reason),
        };
        // Refused here, one point, rather than by the store, with the resource's deltas.
        if head.delta {
            if let Err(reason) = addable(&point.0) {
                return refuse(self.refused, reason);
            }
        }
        let attributes = attribute_strings(attributes);
        let labels = match self.labels(&attributes, scope_labels, head.metric_type) {
            Ok(labels) => labels,
            Err(reason) => return refuse(self.refused, reason),
        };
        self.add_series(head, labels, point, true);
    }

    fn add_series(
        &mut self,
        head: &FamilyHead,
        labels: Vec<Label>,
        (value, extras): Point,
        is_data_point: bool,
    ) {
        let FamilyHead {
            name,
            help,
            metric_type,
            delta,
        } = *head;
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
                    delta,
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
        // One family is either added to what is stored or replaces it, never both.
        if builder.delta != delta {
            let temporality = |delta| if delta { "delta" } else { "cumulative" };
            self.refused.add(
                u64::from(is_data_point),
                format!(
                    "metric {name:?} has {} temporality here and {} elsewhere in the same resource",
                    temporality(delta),
                    temporality(builder.delta)
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
        let points = if delta {
            &mut self.delta_points
        } else {
            &mut self.points
        };
        *points += u64::from(is_data_point);
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

/// Why an increment cannot be added to a sum: it would make the sum NaN or infinite for
/// good. A histogram without a sum (OTLP's is optional) has nothing to add to `_sum`.
fn addable(value: &Value) -> Result<(), String> {
    match value {
        Value::Counter(v) if !v.is_finite() => Err(format!("a delta of {v} cannot be added")),
        Value::Histogram(h) if !h.sum.is_finite() => Err(
            "a delta histogram without a finite sum cannot be added (its _sum would be lost)"
                .into(),
        ),
        _ => Ok(()),
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
