//! Family assembly: the families and metrics under construction, how `_sum`/`_count`/
//! `_bucket` lines join their summary or histogram, and the finished `MetricFamily` list.

use crate::model::{Label, Metric, MetricFamily, MetricType, Str, Value};

use super::Parser;

/// A family under construction: its type stays unset until a TYPE line or a sample fixes it.
pub(super) struct FamilyBuilder {
    pub(super) name: Str,
    pub(super) help: Option<Str>,
    pub(super) metric_type: Option<MetricType>,
    pub(super) metrics: Vec<MetricBuilder>,
}

impl FamilyBuilder {
    /// The effective type as upstream's getter reports it: unset reads as counter.
    fn effective_type(&self) -> MetricType {
        self.metric_type.unwrap_or(MetricType::Counter)
    }
}

#[derive(Default)]
pub(super) struct MetricBuilder {
    pub(super) labels: Vec<Label>,
    pub(super) value: Option<Value>,
    pub(super) timestamp_ms: Option<i64>,
}

/// Which special sample of a summary or histogram the current line is.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Suffix {
    None,
    Sum,
    Count,
}

impl Parser<'_> {
    pub(super) fn finish(self) -> Vec<MetricFamily> {
        self.families
            .into_iter()
            .filter(|f| !f.metrics.is_empty())
            .map(|f| {
                let metric_type = f.effective_type();
                MetricFamily {
                    name: f.name,
                    help: f.help,
                    metric_type,
                    metrics: f
                        .metrics
                        .into_iter()
                        .map(|m| Metric {
                            labels: m.labels.into_boxed_slice(),
                            value: m.value.unwrap_or_else(|| empty_value(metric_type)),
                            extras: Metric::extras_from(m.timestamp_ms, Default::default()),
                        })
                        .collect(),
                }
            })
            .collect()
    }

    pub(super) fn family(&self) -> Option<&FamilyBuilder> {
        self.current_family.map(|i| &self.families[i])
    }

    pub(super) fn family_type(&self) -> MetricType {
        self.family()
            .map(FamilyBuilder::effective_type)
            .unwrap_or(MetricType::Counter)
    }

    pub(super) fn family_name(&self) -> String {
        self.family()
            .map(|f| f.name.to_string())
            .unwrap_or_default()
    }

    /// Finds or creates the family the current token names, recognising `_sum`, `_count`
    /// and `_bucket` lines of an already declared summary or histogram.
    pub(super) fn set_or_create_current_family(&mut self) {
        self.suffix = Suffix::None;
        let name = self.token_string();
        if !self.validation.is_valid_metric_name(&name) {
            self.error(format!("invalid metric name {name:?}"));
            return;
        }
        if let Some(&i) = self.family_index.get(name.as_str()) {
            self.current_family = Some(i);
            return;
        }
        let (base, suffix) = split_suffix(&name, false);
        if suffix != Suffix::None {
            if let Some(&i) = self.family_index.get(base) {
                if self.families[i].effective_type() == MetricType::Summary {
                    self.current_family = Some(i);
                    self.suffix = suffix;
                    return;
                }
            }
        }
        let (base, suffix) = split_suffix(&name, true);
        if base.len() != name.len() {
            if let Some(&i) = self.family_index.get(base) {
                if self.families[i].effective_type().is_histogram_like() {
                    self.current_family = Some(i);
                    self.suffix = suffix;
                    return;
                }
            }
        }
        let name: Str = name.into();
        self.family_index.insert(name.clone(), self.families.len());
        self.current_family = Some(self.families.len());
        self.families.push(FamilyBuilder {
            name,
            help: None,
            metric_type: None,
            metrics: Vec::new(),
        });
    }

    pub(super) fn ensure_type_set(&mut self) {
        if let Some(i) = self.current_family {
            let family = &mut self.families[i];
            if family.metric_type.is_none() {
                family.metric_type = Some(MetricType::Untyped);
            }
        }
    }

    /// Decides which metric the current line writes to: summaries and histograms merge
    /// lines with the same labels; every other line is a metric of its own.
    pub(super) fn place_current_metric(&mut self) {
        let Some(family_index) = self.current_family else {
            return;
        };
        let family_type = self.families[family_index].effective_type();
        let metric = std::mem::take(&mut self.current_metric);
        if family_type == MetricType::Summary || family_type.is_histogram_like() {
            let mut signature = std::mem::take(&mut self.signature_labels);
            signature.sort();
            let key = (family_index, signature);
            if let Some(&slot) = self.signatures.get(&key) {
                self.current_metric_slot = Some(slot);
                return;
            }
            let slot = self.families[family_index].metrics.len();
            self.signatures.insert(key, slot);
            self.families[family_index].metrics.push(metric);
            self.current_metric_slot = Some(slot);
        } else {
            let slot = self.families[family_index].metrics.len();
            self.families[family_index].metrics.push(metric);
            self.current_metric_slot = Some(slot);
        }
    }

    pub(super) fn current_metric_mut(&mut self) -> Option<&mut MetricBuilder> {
        let family = self.current_family?;
        let slot = self.current_metric_slot?;
        self.families[family].metrics.get_mut(slot)
    }
}

/// Splits `_sum`/`_count` (and `_bucket` for histograms) off a sample name.
pub(super) fn split_suffix(name: &str, with_bucket: bool) -> (&str, Suffix) {
    if name.len() > 6 && name.ends_with("_count") {
        (&name[..name.len() - 6], Suffix::Count)
    } else if name.len() > 4 && name.ends_with("_sum") {
        (&name[..name.len() - 4], Suffix::Sum)
    } else if with_bucket && name.len() > 7 && name.ends_with("_bucket") {
        (&name[..name.len() - 7], Suffix::None)
    } else {
        (name, Suffix::None)
    }
}

pub(super) fn empty_value(metric_type: MetricType) -> Value {
    match metric_type {
        MetricType::Counter => Value::Counter(0.0),
        MetricType::Gauge => Value::Gauge(0.0),
        MetricType::Untyped => Value::Untyped(0.0),
        MetricType::Summary => Value::Summary(Box::default()),
        MetricType::Histogram | MetricType::GaugeHistogram => Value::Histogram(Box::default()),
    }
}
