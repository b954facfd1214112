//! The OTLP metrics messages (opentelemetry-proto `v1`, proto3) that the gateway reads and
//! answers with, declared by hand with prost's derive macros field by field from the schema
//! (no protoc at build time). Fields the gateway has no use for (`schema_url`, `min`/`max`,
//! dropped-attribute counts, `metadata`) are left out: prost skips unknown fields.
//!
//! The same types decode OTLP/JSON (serde, lowerCamelCase keys); the JSON rules that differ
//! from serde's defaults (64-bit integers as strings, hex ids, enums as numbers or names,
//! oneofs as sibling keys) live in [`super::json`]; the shapes of the messages with a oneof
//! are at the end of this file.

#![allow(missing_docs)]

use serde::Deserialize;

use super::json;

/// `opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest`.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ExportMetricsServiceRequest {
    #[prost(message, repeated, tag = "1")]
    #[serde(deserialize_with = "json::null_as_default")]
    pub resource_metrics: Vec<ResourceMetrics>,
}

/// `ExportMetricsServiceResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ExportMetricsServiceResponse {
    #[prost(message, optional, tag = "1")]
    pub partial_success: Option<ExportMetricsPartialSuccess>,
}

/// `ExportMetricsPartialSuccess`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ExportMetricsPartialSuccess {
    #[prost(int64, tag = "1")]
    pub rejected_data_points: i64,
    #[prost(string, tag = "2")]
    pub error_message: String,
}

/// `google.rpc.Status`, the body of an OTLP/HTTP error response.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Status {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
}

#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ResourceMetrics {
    #[prost(message, optional, tag = "1")]
    pub resource: Option<Resource>,
    #[prost(message, repeated, tag = "2")]
    #[serde(deserialize_with = "json::null_as_default")]
    pub scope_metrics: Vec<ScopeMetrics>,
}

#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Resource {
    #[prost(message, repeated, tag = "1")]
    #[serde(deserialize_with = "json::null_as_default")]
    pub attributes: Vec<KeyValue>,
}

#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ScopeMetrics {
    #[prost(message, optional, tag = "1")]
    pub scope: Option<InstrumentationScope>,
    #[prost(message, repeated, tag = "2")]
    #[serde(deserialize_with = "json::null_as_default")]
    pub metrics: Vec<Metric>,
}

#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct InstrumentationScope {
    #[prost(string, tag = "1")]
    #[serde(deserialize_with = "json::null_as_default")]
    pub name: String,
    #[prost(string, tag = "2")]
    #[serde(deserialize_with = "json::null_as_default")]
    pub version: String,
}

#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct KeyValue {
    #[prost(string, tag = "1")]
    #[serde(deserialize_with = "json::null_as_default")]
    pub key: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<AnyValue>,
}

impl KeyValue {
    /// An attribute with a string value.
    pub fn string(key: &str, value: &str) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(value.into())),
            }),
        }
    }
}

/// `AnyValue`: a oneof, which OTLP/JSON writes as one key of the object.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(try_from = "AnyValueJson")]
pub struct AnyValue {
    #[prost(oneof = "any_value::Value", tags = "1, 2, 3, 4, 5, 6, 7")]
    pub value: Option<any_value::Value>,
}

pub mod any_value {
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Value {
        #[prost(string, tag = "1")]
        StringValue(String),
        #[prost(bool, tag = "2")]
        BoolValue(bool),
        #[prost(int64, tag = "3")]
        IntValue(i64),
        #[prost(double, tag = "4")]
        DoubleValue(f64),
        #[prost(message, tag = "5")]
        ArrayValue(super::ArrayValue),
        #[prost(message, tag = "6")]
        KvlistValue(super::KeyValueList),
        #[prost(bytes, tag = "7")]
        BytesValue(Vec<u8>),
    }
}

#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ArrayValue {
    #[prost(message, repeated, tag = "1")]
    #[serde(deserialize_with = "json::null_as_default")]
    pub values: Vec<AnyValue>,
}

#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct KeyValueList {
    #[prost(message, repeated, tag = "1")]
    #[serde(deserialize_with = "json::null_as_default")]
    pub values: Vec<KeyValue>,
}

/// `Metric`: its data is a oneof, written in OTLP/JSON as one of five keys.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(try_from = "MetricJson")]
pub struct Metric {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub description: String,
    #[prost(string, tag = "3")]
    pub unit: String,
    #[prost(oneof = "metric::Data", tags = "5, 7, 9, 10, 11")]
    pub data: Option<metric::Data>,
}

pub mod metric {
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Data {
        #[prost(message, tag = "5")]
        Gauge(super::Gauge),
        #[prost(message, tag = "7")]
        Sum(super::Sum),
        #[prost(message, tag = "9")]
        Histogram(super::Histogram),
        #[prost(message, tag = "10")]
        ExponentialHistogram(super::ExponentialHistogram),
        #[prost(message, tag = "11")]
        Summary(super::Summary),
    }
}

/// `AggregationTemporality`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum AggregationTemporality {
    Unspecified = 0,
    Delta = 1,
    Cumulative = 2,
}

/// `DataPointFlags.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK`.
pub const NO_RECORDED_VALUE: u32 = 1;

#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Gauge {
    #[prost(message, repeated, tag = "1")]
    #[serde(deserialize_with = "json::null_as_default")]
    pub data_points: Vec<NumberDataPoint>,
}

#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Sum {
    #[prost(message, repeated, tag = "1")]
    #[serde(deserialize_with = "json::null_as_default")]
    pub data_points: Vec<NumberDataPoint>,
    #[prost(enumeration = "AggregationTemporality", tag = "2")]
    #[serde(deserialize_with = "json::temporality")]
    pub aggregation_temporality: i32,
    #[prost(bool, tag = "3")]
    #[serde(deserialize_with = "json::null_as_default")]
    pub is_monotonic: bool,
}

#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Histogram {
    #[prost(message, repeated, tag = "1")]
    #[serde(deserialize_with = "json::null_as_default")]
    pub data_points: Vec<HistogramDataPoint>,
    #[prost(enumeration = "AggregationTemporality", tag = "2")]
    #[serde(deserialize_with = "json::temporality")]
    pub aggregation_temporality: i32,
}

#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ExponentialHistogram {
    #[prost(message, repeated, tag = "1")]
    #[serde(deserialize_with = "json::null_as_default")]
    pub data_points: Vec<ExponentialHistogramDataPoint>,
    #[prost(enumeration = "AggregationTemporality", tag = "2")]
    #[serde(deserialize_with = "json::temporality")]
    pub aggregation_temporality: i32,
}

#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Summary {
    #[prost(message, repeated, tag = "1")]
    #[serde(deserialize_with = "json::null_as_default")]
    pub data_points: Vec<SummaryDataPoint>,
}

/// `NumberDataPoint`: its value is a oneof (`asDouble` or `asInt` in OTLP/JSON).
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(try_from = "NumberDataPointJson")]
pub struct NumberDataPoint {
    #[prost(message, repeated, tag = "7")]
    pub attributes: Vec<KeyValue>,
    #[prost(fixed64, tag = "2")]
    pub start_time_unix_nano: u64,
    #[prost(fixed64, tag = "3")]
    pub time_unix_nano: u64,
    #[prost(oneof = "number_data_point::Value", tags = "4, 6")]
    pub value: Option<number_data_point::Value>,
    #[prost(message, repeated, tag = "5")]
    pub exemplars: Vec<Exemplar>,
    #[prost(uint32, tag = "8")]
    pub flags: u32,
}

impl NumberDataPoint {
    /// A point of a double value started at `start_time_unix_nano`.
    pub fn double(attributes: Vec<KeyValue>, value: f64, start_time_unix_nano: u64) -> Self {
        NumberDataPoint {
            attributes,
            start_time_unix_nano,
            time_unix_nano: start_time_unix_nano.saturating_add(1_000_000_000),
            value: Some(number_data_point::Value::AsDouble(value)),
            exemplars: Vec::new(),
            flags: 0,
        }
    }
}

pub mod number_data_point {
    #[derive(Clone, Copy, PartialEq, prost::Oneof)]
    pub enum Value {
        #[prost(double, tag = "4")]
        AsDouble(f64),
        #[prost(sfixed64, tag = "6")]
        AsInt(i64),
    }
}

#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HistogramDataPoint {
    #[prost(message, repeated, tag = "9")]
    #[serde(deserialize_with = "json::null_as_default")]
    pub attributes: Vec<KeyValue>,
    #[prost(fixed64, tag = "2")]
    #[serde(deserialize_with = "json::uint64")]
    pub start_time_unix_nano: u64,
    #[prost(fixed64, tag = "3")]
    #[serde(deserialize_with = "json::uint64")]
    pub time_unix_nano: u64,
    #[prost(fixed64, tag = "4")]
    #[serde(deserialize_with = "json::uint64")]
    pub count: u64,
    #[prost(double, optional, tag = "5")]
    #[serde(deserialize_with = "json::optional_double")]
    pub sum: Option<f64>,
    #[prost(fixed64, repeated, tag = "6")]
    #[serde(deserialize_with = "json::uint64s")]
    pub bucket_counts: Vec<u64>,
    #[prost(double, repeated, tag = "7")]
    #[serde(deserialize_with = "json::doubles")]
    pub explicit_bounds: Vec<f64>,
    #[prost(message, repeated, tag = "8")]
    #[serde(deserialize_with = "json::null_as_default")]
    pub exemplars: Vec<Exemplar>,
    #[prost(uint32, tag = "10")]
    #[serde(deserialize_with = "json::uint32")]
    pub flags: u32,
}

#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ExponentialHistogramDataPoint {
    #[prost(message, repeated, tag = "1")]
    #[serde(deserialize_with = "json::null_as_default")]
    pub attributes: Vec<KeyValue>,
    #[prost(fixed64, tag = "2")]
    #[serde(deserialize_with = "json::uint64")]
    pub start_time_unix_nano: u64,
    #[prost(fixed64, tag = "3")]
    #[serde(deserialize_with = "json::uint64")]
    pub time_unix_nano: u64,
    #[prost(fixed64, tag = "4")]
    #[serde(deserialize_with = "json::uint64")]
    pub count: u64,
    #[prost(double, optional, tag = "5")]
    #[serde(deserialize_with = "json::optional_double")]
    pub sum: Option<f64>,
    #[prost(sint32, tag = "6")]
    #[serde(deserialize_with = "json::int32")]
    pub scale: i32,
    #[prost(fixed64, tag = "7")]
    #[serde(deserialize_with = "json::uint64")]
    pub zero_count: u64,
    #[prost(message, optional, tag = "8")]
    pub positive: Option<exponential_histogram_data_point::Buckets>,
    #[prost(message, optional, tag = "9")]
    pub negative: Option<exponential_histogram_data_point::Buckets>,
    #[prost(uint32, tag = "10")]
    #[serde(deserialize_with = "json::uint32")]
    pub flags: u32,
    #[prost(message, repeated, tag = "11")]
    #[serde(deserialize_with = "json::null_as_default")]
    pub exemplars: Vec<Exemplar>,
    #[prost(double, tag = "14")]
    #[serde(deserialize_with = "json::double")]
    pub zero_threshold: f64,
}

pub mod exponential_histogram_data_point {
    use serde::Deserialize;

    use super::json;

    #[derive(Clone, PartialEq, prost::Message, Deserialize)]
    #[serde(rename_all = "camelCase", default)]
    pub struct Buckets {
        #[prost(sint32, tag = "1")]
        #[serde(deserialize_with = "json::int32")]
        pub offset: i32,
        #[prost(uint64, repeated, tag = "2")]
        #[serde(deserialize_with = "json::uint64s")]
        pub bucket_counts: Vec<u64>,
    }
}

#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SummaryDataPoint {
    #[prost(message, repeated, tag = "7")]
    #[serde(deserialize_with = "json::null_as_default")]
    pub attributes: Vec<KeyValue>,
    #[prost(fixed64, tag = "2")]
    #[serde(deserialize_with = "json::uint64")]
    pub start_time_unix_nano: u64,
    #[prost(fixed64, tag = "3")]
    #[serde(deserialize_with = "json::uint64")]
    pub time_unix_nano: u64,
    #[prost(fixed64, tag = "4")]
    #[serde(deserialize_with = "json::uint64")]
    pub count: u64,
    #[prost(double, tag = "5")]
    #[serde(deserialize_with = "json::double")]
    pub sum: f64,
    #[prost(message, repeated, tag = "6")]
    #[serde(deserialize_with = "json::null_as_default")]
    pub quantile_values: Vec<summary_data_point::ValueAtQuantile>,
    #[prost(uint32, tag = "8")]
    #[serde(deserialize_with = "json::uint32")]
    pub flags: u32,
}

pub mod summary_data_point {
    use serde::Deserialize;

    use super::json;

    #[derive(Clone, PartialEq, prost::Message, Deserialize)]
    #[serde(rename_all = "camelCase", default)]
    pub struct ValueAtQuantile {
        #[prost(double, tag = "1")]
        #[serde(deserialize_with = "json::double")]
        pub quantile: f64,
        #[prost(double, tag = "2")]
        #[serde(deserialize_with = "json::double")]
        pub value: f64,
    }
}

/// `Exemplar`: its value is a oneof, its ids are hex strings in OTLP/JSON.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(try_from = "ExemplarJson")]
pub struct Exemplar {
    #[prost(message, repeated, tag = "7")]
    pub filtered_attributes: Vec<KeyValue>,
    #[prost(fixed64, tag = "2")]
    pub time_unix_nano: u64,
    #[prost(oneof = "exemplar::Value", tags = "3, 6")]
    pub value: Option<exemplar::Value>,
    #[prost(bytes = "vec", tag = "4")]
    pub span_id: Vec<u8>,
    #[prost(bytes = "vec", tag = "5")]
    pub trace_id: Vec<u8>,
}

pub mod exemplar {
    #[derive(Clone, Copy, PartialEq, prost::Oneof)]
    pub enum Value {
        #[prost(double, tag = "3")]
        AsDouble(f64),
        #[prost(sfixed64, tag = "6")]
        AsInt(i64),
    }
}

// === The OTLP/JSON shapes of the messages with a oneof ===

/// The OTLP/JSON shape of [`AnyValue`]: each case of its oneof is a key of its own.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnyValueJson {
    string_value: Option<String>,
    bool_value: Option<bool>,
    int_value: Option<json::Integer<i64>>,
    double_value: Option<json::Double>,
    array_value: Option<ArrayValue>,
    kvlist_value: Option<KeyValueList>,
    bytes_value: Option<json::Base64>,
}

impl TryFrom<AnyValueJson> for AnyValue {
    type Error = String;
    fn try_from(json: AnyValueJson) -> Result<AnyValue, String> {
        use any_value::Value;
        let value = json::one_of(
            [
                json.string_value.map(Value::StringValue),
                json.bool_value.map(Value::BoolValue),
                json.int_value.map(|n| Value::IntValue(n.0)),
                json.double_value.map(|n| Value::DoubleValue(n.0)),
                json.array_value.map(Value::ArrayValue),
                json.kvlist_value.map(Value::KvlistValue),
                json.bytes_value.map(|b| Value::BytesValue(b.0)),
            ],
            "attribute value",
        )?;
        Ok(AnyValue { value })
    }
}

/// The OTLP/JSON shape of [`Metric`]: each case of its oneof is a key of its own.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricJson {
    #[serde(default, deserialize_with = "json::null_as_default")]
    name: String,
    #[serde(default, deserialize_with = "json::null_as_default")]
    description: String,
    #[serde(default, deserialize_with = "json::null_as_default")]
    unit: String,
    gauge: Option<Gauge>,
    sum: Option<Sum>,
    histogram: Option<Histogram>,
    exponential_histogram: Option<ExponentialHistogram>,
    summary: Option<Summary>,
}

impl TryFrom<MetricJson> for Metric {
    type Error = String;
    fn try_from(json: MetricJson) -> Result<Metric, String> {
        use metric::Data;
        let data = json::one_of(
            [
                json.gauge.map(Data::Gauge),
                json.sum.map(Data::Sum),
                json.histogram.map(Data::Histogram),
                json.exponential_histogram.map(Data::ExponentialHistogram),
                json.summary.map(Data::Summary),
            ],
            "metric",
        )?;
        Ok(Metric {
            name: json.name,
            description: json.description,
            unit: json.unit,
            data,
        })
    }
}

/// The OTLP/JSON shape of [`NumberDataPoint`]: each case of its oneof is a key of its own.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NumberDataPointJson {
    #[serde(default, deserialize_with = "json::null_as_default")]
    attributes: Vec<KeyValue>,
    #[serde(default, deserialize_with = "json::uint64")]
    start_time_unix_nano: u64,
    #[serde(default, deserialize_with = "json::uint64")]
    time_unix_nano: u64,
    as_double: Option<json::Double>,
    as_int: Option<json::Integer<i64>>,
    #[serde(default, deserialize_with = "json::null_as_default")]
    exemplars: Vec<Exemplar>,
    #[serde(default, deserialize_with = "json::uint32")]
    flags: u32,
}

impl TryFrom<NumberDataPointJson> for NumberDataPoint {
    type Error = String;
    fn try_from(json: NumberDataPointJson) -> Result<NumberDataPoint, String> {
        use number_data_point::Value;
        let value = json::one_of(
            [
                json.as_double.map(|n| Value::AsDouble(n.0)),
                json.as_int.map(|n| Value::AsInt(n.0)),
            ],
            "data point",
        )?;
        Ok(NumberDataPoint {
            attributes: json.attributes,
            start_time_unix_nano: json.start_time_unix_nano,
            time_unix_nano: json.time_unix_nano,
            value,
            exemplars: json.exemplars,
            flags: json.flags,
        })
    }
}

/// The OTLP/JSON shape of [`Exemplar`]: each case of its oneof is a key of its own.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExemplarJson {
    #[serde(default, deserialize_with = "json::null_as_default")]
    filtered_attributes: Vec<KeyValue>,
    #[serde(default, deserialize_with = "json::uint64")]
    time_unix_nano: u64,
    as_double: Option<json::Double>,
    as_int: Option<json::Integer<i64>>,
    span_id: Option<json::Hex>,
    trace_id: Option<json::Hex>,
}

impl TryFrom<ExemplarJson> for Exemplar {
    type Error = String;
    fn try_from(json: ExemplarJson) -> Result<Exemplar, String> {
        use exemplar::Value;
        let value = json::one_of(
            [
                json.as_double.map(|n| Value::AsDouble(n.0)),
                json.as_int.map(|n| Value::AsInt(n.0)),
            ],
            "exemplar",
        )?;
        Ok(Exemplar {
            filtered_attributes: json.filtered_attributes,
            time_unix_nano: json.time_unix_nano,
            value,
            span_id: json.span_id.map_or_else(Vec::new, |h| h.0),
            trace_id: json.trace_id.map_or_else(Vec::new, |h| h.0),
        })
    }
}
