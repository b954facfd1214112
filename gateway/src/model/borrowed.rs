//! Borrowed views of one label and one value, the currency between the packed storage,
//! the merged label sets and the encoders: numbers by value (the store keeps them in a
//! column of plain `f64`s), everything else by reference.

use super::{Histogram, Label, MetricType, Summary, Value};

/// A label borrowed from wherever it is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LabelRef<'a> {
    /// The label name.
    pub name: &'a str,
    /// The label value (may be empty).
    pub value: &'a str,
}

impl<'a> From<&'a Label> for LabelRef<'a> {
    fn from(label: &'a Label) -> LabelRef<'a> {
        LabelRef {
            name: &label.name,
            value: &label.value,
        }
    }
}

impl From<LabelRef<'_>> for Label {
    fn from(label: LabelRef<'_>) -> Label {
        Label::new(label.name, label.value)
    }
}

/// A value borrowed from wherever it is stored (numbers by value: the store keeps them in
/// a column of plain `f64`s).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ValueRef<'a> {
    /// Counter value.
    Counter(f64),
    /// Gauge value.
    Gauge(f64),
    /// Untyped value.
    Untyped(f64),
    /// Summary value.
    Summary(&'a Summary),
    /// Histogram value, also used by gauge histograms.
    Histogram(&'a Histogram),
}

impl<'a> From<&'a Value> for ValueRef<'a> {
    fn from(value: &'a Value) -> ValueRef<'a> {
        match value {
            Value::Counter(v) => ValueRef::Counter(*v),
            Value::Gauge(v) => ValueRef::Gauge(*v),
            Value::Untyped(v) => ValueRef::Untyped(*v),
            Value::Summary(s) => ValueRef::Summary(s),
            Value::Histogram(h) => ValueRef::Histogram(h),
        }
    }
}

impl ValueRef<'_> {
    /// An owned copy.
    pub fn to_value(self) -> Value {
        match self {
            ValueRef::Counter(v) => Value::Counter(v),
            ValueRef::Gauge(v) => Value::Gauge(v),
            ValueRef::Untyped(v) => Value::Untyped(v),
            ValueRef::Summary(s) => Value::Summary(Box::new(s.clone())),
            ValueRef::Histogram(h) => Value::Histogram(Box::new(h.clone())),
        }
    }

    /// Whether this value may stand in a family of the given type.
    pub fn fits(self, family_type: MetricType) -> bool {
        matches!(
            (self, family_type),
            (ValueRef::Counter(_), MetricType::Counter)
                | (ValueRef::Gauge(_), MetricType::Gauge)
                | (ValueRef::Untyped(_), MetricType::Untyped)
                | (ValueRef::Summary(_), MetricType::Summary)
                | (ValueRef::Histogram(_), MetricType::Histogram)
                | (ValueRef::Histogram(_), MetricType::GaugeHistogram)
        )
    }
}
