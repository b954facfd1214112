//! The data model shared by the parser, the store and the encoders: metric families, their
//! samples, label sets and grouping keys, plus the name rules of the exposition formats.
//!
//! Nothing here does I/O or knows about HTTP; the types mirror the `io.prometheus.client`
//! protobuf model closely enough that every wire format maps onto them without loss.

use std::fmt;

mod borrowed;
mod native;
mod packed;
mod series;

pub use borrowed::{LabelRef, ValueRef};
pub use native::{bound as native_bucket_bound, Boundaries, NativeBucket};
pub use packed::{PackedBuilder, PackedLabels, PackedSeries};
pub use series::{Series, SeriesLabels};

/// Shared, immutable string: label names and values repeat across series, so they are
/// reference counted instead of copied. One word wide (length and count live in the
/// allocation), which halves a label next to `Arc<str>`'s pointer and length.
pub type Str = arcstr::ArcStr;

/// The type of a metric family, as declared by `# TYPE` or the protobuf enum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MetricType {
    /// A monotonically increasing value.
    Counter,
    /// A value that can go up and down.
    Gauge,
    /// Quantiles plus sum and count.
    Summary,
    /// A value without a declared type.
    Untyped,
    /// Cumulative buckets plus sum and count.
    Histogram,
    /// A histogram whose buckets may go down (OpenMetrics gaugehistogram).
    GaugeHistogram,
}

impl MetricType {
    /// Every type, at its [`MetricType::index`].
    pub const ALL: [MetricType; 6] = [
        MetricType::Counter,
        MetricType::Gauge,
        MetricType::Summary,
        MetricType::Untyped,
        MetricType::Histogram,
        MetricType::GaugeHistogram,
    ];

    /// A small number for the type, its position in [`MetricType::ALL`]. The persistence
    /// codec writes it to disk, so a number once given never changes.
    pub fn index(self) -> usize {
        match self {
            MetricType::Counter => 0,
            MetricType::Gauge => 1,
            MetricType::Summary => 2,
            MetricType::Untyped => 3,
            MetricType::Histogram => 4,
            MetricType::GaugeHistogram => 5,
        }
    }

    /// The lower-case name used in `# TYPE` lines.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Summary => "summary",
            MetricType::Untyped => "untyped",
            MetricType::Histogram => "histogram",
            MetricType::GaugeHistogram => "gaugehistogram",
        }
    }

    /// The upper-case name used by the protobuf enum and the JSON API.
    pub fn as_upper_str(self) -> &'static str {
        match self {
            MetricType::Counter => "COUNTER",
            MetricType::Gauge => "GAUGE",
            MetricType::Summary => "SUMMARY",
            MetricType::Untyped => "UNTYPED",
            MetricType::Histogram => "HISTOGRAM",
            MetricType::GaugeHistogram => "GAUGE_HISTOGRAM",
        }
    }

    /// Parses a `# TYPE` keyword the way upstream does: any letter case, and
    /// `gauge_histogram`/`gaugehistogram` for the gauge histogram.
    pub fn from_keyword(keyword: &str) -> Option<MetricType> {
        match keyword.to_ascii_uppercase().as_str() {
            "COUNTER" => Some(MetricType::Counter),
            "GAUGE" => Some(MetricType::Gauge),
            "SUMMARY" => Some(MetricType::Summary),
            "UNTYPED" => Some(MetricType::Untyped),
            "HISTOGRAM" => Some(MetricType::Histogram),
            "GAUGE_HISTOGRAM" | "GAUGEHISTOGRAM" => Some(MetricType::GaugeHistogram),
            _ => None,
        }
    }

    /// Whether samples of this type are exposed with `_sum`/`_count` (and maybe `_bucket`).
    pub fn is_histogram_like(self) -> bool {
        matches!(self, MetricType::Histogram | MetricType::GaugeHistogram)
    }

    /// The label the exposition gives each sample of this type (a summary's `quantile`, a
    /// histogram's `le`), which a series of its own must therefore not have.
    pub fn sample_label(self) -> Option<&'static str> {
        match self {
            MetricType::Summary => Some(QUANTILE_LABEL),
            t if t.is_histogram_like() => Some(BUCKET_LABEL),
            _ => None,
        }
    }
}

impl fmt::Display for MetricType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_upper_str())
    }
}

/// One label: name and value.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Label {
    /// The label name.
    pub name: Str,
    /// The label value (may be empty).
    pub value: Str,
}

impl Label {
    /// Builds a label from anything string-like.
    pub fn new(name: impl Into<Str>, value: impl Into<Str>) -> Label {
        Label {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// A summary quantile.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quantile {
    /// The quantile rank, 0..=1.
    pub quantile: f64,
    /// The observed value at that rank.
    pub value: f64,
}

/// A summary sample.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Summary {
    /// Number of observations.
    pub count: u64,
    /// Sum of observations.
    pub sum: f64,
    /// Quantiles in pushed order.
    pub quantiles: Vec<Quantile>,
}

/// A classic histogram bucket.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bucket {
    /// Inclusive upper bound (`le`).
    pub upper_bound: f64,
    /// Cumulative count of observations up to the bound.
    pub count: f64,
}

/// A histogram sample. Counts are kept as `f64` with a flag telling whether they were pushed
/// as floats, because the text format allows both and the protobuf format keeps them apart.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Histogram {
    /// Number of observations.
    pub count: f64,
    /// True when the counts were pushed as floats (float histograms).
    pub float_counts: bool,
    /// Sum of observations.
    pub sum: f64,
    /// Classic buckets in pushed order.
    pub buckets: Vec<Bucket>,
}

/// The value of one metric (series, or series group for summaries and histograms).
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// Counter value.
    Counter(f64),
    /// Gauge value.
    Gauge(f64),
    /// Untyped value.
    Untyped(f64),
    /// Summary value (boxed: most series are plain numbers, and they stay small).
    Summary(Box<Summary>),
    /// Histogram value, also used by gauge histograms (boxed, as summaries).
    Histogram(Box<Histogram>),
}

impl Value {
    /// Whether this value may stand in a family of the given type.
    pub fn fits(&self, family_type: MetricType) -> bool {
        matches!(
            (self, family_type),
            (Value::Counter(_), MetricType::Counter)
                | (Value::Gauge(_), MetricType::Gauge)
                | (Value::Untyped(_), MetricType::Untyped)
                | (Value::Summary(_), MetricType::Summary)
                | (Value::Histogram(_), MetricType::Histogram)
                | (Value::Histogram(_), MetricType::GaugeHistogram)
        )
    }
}

/// One metric of a family: its labels (sorted by name once stored) and value.
#[derive(Clone, Debug, PartialEq)]
pub struct Metric {
    /// Labels, sorted by name after the store sanitised them (a boxed slice: the store
    /// keeps millions of these, and a `Vec`'s capacity word is dead weight).
    pub labels: Box<[Label]>,
    /// The value.
    pub value: Value,
    /// What plain samples never have (a timestamp, protobuf-only parts); boxed, so that
    /// it costs one word when absent.
    pub extras: Option<Box<Extras>>,
}

impl Metric {
    /// A metric with labels and a value and nothing else.
    pub fn new(labels: Vec<Label>, value: Value) -> Metric {
        Metric {
            labels: labels.into_boxed_slice(),
            value,
            extras: None,
        }
    }

    /// The pushed timestamp in milliseconds, if any (pushes with timestamps are refused).
    pub fn timestamp_ms(&self) -> Option<i64> {
        self.extras.as_ref().and_then(|e| e.timestamp_ms)
    }

    /// Builds the extras from a timestamp and protobuf-only parts, `None` when empty.
    pub fn extras_from(timestamp_ms: Option<i64>, mut extras: Extras) -> Option<Box<Extras>> {
        extras.timestamp_ms = timestamp_ms;
        (extras != Extras::default()).then(|| Box::new(extras))
    }
}

/// A point in time as protobuf's `Timestamp` has it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Timestamp {
    /// Seconds since the Unix epoch.
    pub seconds: i64,
    /// Nanoseconds within the second.
    pub nanos: i32,
}

/// An exemplar: a sample of a traced observation.
#[derive(Clone, Debug, PartialEq)]
pub struct Exemplar {
    /// Exemplar labels (e.g. `trace_id`).
    pub labels: Vec<Label>,
    /// Observed value.
    pub value: f64,
    /// When it was observed.
    pub timestamp: Option<Timestamp>,
}

/// A span of consecutive native-histogram buckets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BucketSpan {
    /// Gap to the previous span (or the start index for the first span).
    pub offset: i32,
    /// Number of consecutive buckets.
    pub length: u32,
}

/// The sparse buckets of a native histogram, kept exactly as pushed.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct NativeHistogram {
    /// Resolution schema.
    pub schema: i32,
    /// Width of the zero bucket.
    pub zero_threshold: f64,
    /// Observations in the zero bucket (integer form).
    pub zero_count: Option<u64>,
    /// Observations in the zero bucket (float histograms).
    pub zero_count_float: Option<f64>,
    /// Negative bucket spans.
    pub negative_spans: Vec<BucketSpan>,
    /// Negative bucket deltas (integer histograms).
    pub negative_deltas: Vec<i64>,
    /// Negative bucket counts (float histograms).
    pub negative_counts: Vec<f64>,
    /// Positive bucket spans.
    pub positive_spans: Vec<BucketSpan>,
    /// Positive bucket deltas (integer histograms).
    pub positive_deltas: Vec<i64>,
    /// Positive bucket counts (float histograms).
    pub positive_counts: Vec<f64>,
}

impl NativeHistogram {
    /// Whether any sparse bucket or zero bucket setting is present.
    pub fn is_native(&self) -> bool {
        !self.positive_spans.is_empty()
            || !self.negative_spans.is_empty()
            || self.zero_threshold != 0.0
            || self.zero_count.unwrap_or(0) != 0
            || self.zero_count_float.unwrap_or(0.0) != 0.0
    }
}

/// Parts of a metric that plain samples do not have.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Extras {
    /// Timestamp in milliseconds, if pushed.
    pub timestamp_ms: Option<i64>,
    /// Created timestamp of a counter, summary or histogram.
    pub created: Option<Timestamp>,
    /// Exemplar of a counter.
    pub exemplar: Option<Exemplar>,
    /// Exemplars of the classic buckets, index-aligned with the buckets.
    pub bucket_exemplars: Vec<Option<Exemplar>>,
    /// Native histogram buckets.
    pub native: Option<NativeHistogram>,
    /// Exemplars of a native histogram.
    pub exemplars: Vec<Exemplar>,
}

/// A metric family: name, optional help, type and metrics.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricFamily {
    /// Metric name.
    pub name: Str,
    /// Help text, if any was given.
    pub help: Option<Str>,
    /// Declared type.
    pub metric_type: MetricType,
    /// The metrics, in pushed order.
    pub metrics: Vec<Metric>,
}

/// The labels that identify a group: `job` plus any further grouping labels, sorted by name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupingKey {
    labels: Vec<Label>,
    /// Whether `instance` is among the labels (asked once per series merged with them).
    has_instance: bool,
}

impl GroupingKey {
    /// Builds a key from labels in any order; a later duplicate name wins, as in upstream's map.
    pub fn new(mut labels: Vec<Label>) -> GroupingKey {
        // Stable sort keeps the pushed order among equal names, so the last one is kept below.
        labels.sort_by(|a, b| a.name.cmp(&b.name));
        let mut deduped: Vec<Label> = Vec::with_capacity(labels.len());
        for label in labels {
            match deduped.last_mut() {
                Some(last) if last.name == label.name => *last = label,
                _ => deduped.push(label),
            }
        }
        let has_instance = deduped.iter().any(|l| &*l.name == INSTANCE_LABEL);
        GroupingKey {
            labels: deduped,
            has_instance,
        }
    }

    /// Whether `instance` is one of its labels.
    pub fn has_instance(&self) -> bool {
        self.has_instance
    }

    /// The labels, sorted by name.
    pub fn labels(&self) -> &[Label] {
        &self.labels
    }

    /// The value of a grouping label (a binary search: the labels are sorted by name).
    pub fn get(&self, name: &str) -> Option<&Str> {
        self.labels
            .binary_search_by(|l| (*l.name).cmp(name))
            .ok()
            .map(|i| &self.labels[i].value)
    }
}

impl fmt::Display for GroupingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, label) in self.labels.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}={:?}", label.name, label.value)?;
        }
        f.write_str("}")
    }
}

/// Which names are acceptable: the classic rules, or any UTF-8 (`--push.enable-utf8-names`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum NameValidation {
    /// `[a-zA-Z_:][a-zA-Z0-9_:]*` for metrics, `[a-zA-Z_][a-zA-Z0-9_]*` for labels.
    #[default]
    Legacy,
    /// Any non-empty valid UTF-8.
    Utf8,
}

impl NameValidation {
    /// Whether `name` is a valid metric name under this scheme.
    pub fn is_valid_metric_name(self, name: &str) -> bool {
        match self {
            NameValidation::Legacy => is_legacy_metric_name(name),
            NameValidation::Utf8 => !name.is_empty(),
        }
    }

    /// Whether `name` is a valid label name under this scheme.
    pub fn is_valid_label_name(self, name: &str) -> bool {
        match self {
            NameValidation::Legacy => is_legacy_label_name(name),
            NameValidation::Utf8 => !name.is_empty(),
        }
    }
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`
pub fn is_legacy_metric_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_alphabetic() || b == b'_' || b == b':' => {}
        _ => return false,
    }
    bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`
pub fn is_legacy_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_alphabetic() || b == b'_' => {}
        _ => return false,
    }
    bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A name as a scrape without UTF-8 names shows it: unchanged if it is a classic name (or
/// empty), otherwise with every character outside the classic set replaced by `_`
/// (Prometheus' underscore escaping, the default).
pub fn legacy_escaped(name: &str, is_label: bool) -> std::borrow::Cow<'_, str> {
    if is_unescaped(name, is_label) {
        return std::borrow::Cow::Borrowed(name);
    }
    let escaped = name
        .char_indices()
        .map(|(i, c)| {
            if is_classic_char(i, c, is_label) {
                c
            } else {
                '_'
            }
        })
        .collect();
    std::borrow::Cow::Owned(escaped)
}

/// Whether every escaping scheme leaves `name` as it is: a classic name, or empty.
pub fn is_unescaped(name: &str, is_label: bool) -> bool {
    let valid = if is_label {
        is_legacy_label_name(name)
    } else {
        is_legacy_metric_name(name)
    };
    valid || name.is_empty()
}

/// Whether `c`, at byte offset `i` of a name (as in Go's range over a string), is in the
/// classic character set, which escaping keeps as it is.
pub fn is_classic_char(i: usize, c: char, is_label: bool) -> bool {
    c.is_ascii_alphabetic() || c == '_' || (!is_label && c == ':') || (c.is_ascii_digit() && i > 0)
}

/// Whether a label name is reserved for Prometheus: it starts with `__`, or would once a
/// scrape without UTF-8 names escapes it (`..name..` is shown as `__name__`).
pub fn is_reserved_label_name(name: &str) -> bool {
    name.starts_with(RESERVED_LABEL_PREFIX)
        || legacy_escaped(name, true).starts_with(RESERVED_LABEL_PREFIX)
}

/// Label names starting with this are reserved for Prometheus itself.
pub const RESERVED_LABEL_PREFIX: &str = "__";
/// The label every pushed sample carries, empty when nobody set it.
pub const INSTANCE_LABEL: &str = "instance";
/// The grouping label every group has.
pub const JOB_LABEL: &str = "job";
/// Summary quantile label.
pub const QUANTILE_LABEL: &str = "quantile";
/// Histogram bucket label.
pub const BUCKET_LABEL: &str = "le";
/// The most runes an exemplar's label names and values may have together (OpenMetrics).
pub const EXEMPLAR_MAX_RUNES: usize = 128;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_type_index_is_its_place_in_all() {
        for (place, t) in MetricType::ALL.into_iter().enumerate() {
            assert_eq!(t.index(), place, "{t:?}");
        }
        // Persisted: the numbers of existing types never change.
        assert_eq!(MetricType::Counter.index(), 0);
        assert_eq!(MetricType::GaugeHistogram.index(), 5);
    }

    #[test]
    fn legacy_names() {
        for (name, metric, label) in [
            ("foo", true, true),
            ("_foo9", true, true),
            ("foo:bar", true, false),
            (":foo", true, false),
            ("9foo", false, false),
            ("", false, false),
            ("foo-bar", false, false),
            ("föo", false, false),
        ] {
            assert_eq!(is_legacy_metric_name(name), metric, "metric {name:?}");
            assert_eq!(is_legacy_label_name(name), label, "label {name:?}");
        }
    }

    #[test]
    fn grouping_key_sorts_and_last_duplicate_wins() {
        let key = GroupingKey::new(vec![
            Label::new("job", "a"),
            Label::new("b", "1"),
            Label::new("b", "2"),
        ]);
        let names: Vec<_> = key.labels().iter().map(|l| l.name.to_string()).collect();
        assert_eq!(names, ["b", "job"]);
        assert_eq!(key.get("b").map(|v| v.to_string()), Some("2".into()));
    }
}
