//! The OTLP/JSON rules that differ from serde's defaults, for the message types in
//! [`super::proto`]: 64-bit integers as decimal strings or numbers, doubles also as `"NaN"`,
//! `"Infinity"` and `"-Infinity"`, enums as numbers or their names, trace and span ids as
//! hex, `bytesValue` as base64, `null` as the field's default, and each oneof as one of
//! several keys (more than one of them is an error). Unknown keys are ignored, as the
//! specification asks.

use std::fmt;
use std::marker::PhantomData;

use base64::Engine;
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use super::proto::{
    any_value, exemplar, metric, number_data_point, AggregationTemporality, AnyValue, ArrayValue,
    Exemplar, ExponentialHistogram, Gauge, Histogram, KeyValue, KeyValueList, Metric,
    NumberDataPoint, Sum, Summary,
};

/// `null` or a missing key is the field's default.
pub fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// A `fixed64`/`uint64`: a number or a decimal string.
pub fn uint64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    Ok(Option::<Integer<u64>>::deserialize(deserializer)?.map_or(0, |n| n.0))
}

/// An `int32`/`sint32`: a number or a decimal string.
pub fn int32<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i32, D::Error> {
    Ok(Option::<Integer<i32>>::deserialize(deserializer)?.map_or(0, |n| n.0))
}

/// A `uint32`: a number or a decimal string.
pub fn uint32<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
    Ok(Option::<Integer<u32>>::deserialize(deserializer)?.map_or(0, |n| n.0))
}

/// A `double`: a number, a numeric string, or one of the special values' names.
pub fn double<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    Ok(Option::<Double>::deserialize(deserializer)?.map_or(0.0, |n| n.0))
}

/// An `optional double`: absent or `null` is `None`.
pub fn optional_double<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<f64>, D::Error> {
    Ok(Option::<Double>::deserialize(deserializer)?.map(|n| n.0))
}

/// A `repeated fixed64`/`uint64`.
pub fn uint64s<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u64>, D::Error> {
    let values: Option<Vec<Integer<u64>>> = Option::deserialize(deserializer)?;
    Ok(values
        .unwrap_or_default()
        .into_iter()
        .map(|n| n.0)
        .collect())
}

/// A `repeated double`.
pub fn doubles<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<f64>, D::Error> {
    let values: Option<Vec<Double>> = Option::deserialize(deserializer)?;
    Ok(values
        .unwrap_or_default()
        .into_iter()
        .map(|n| n.0)
        .collect())
}

/// An `AggregationTemporality`: its number or its name.
pub fn temporality<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i32, D::Error> {
    match Option::<Enum>::deserialize(deserializer)? {
        None => Ok(0),
        Some(Enum::Number(n)) => Ok(n.0),
        Some(Enum::Name(name)) => AggregationTemporality::from_str_name(&name)
            .map(|t| t as i32)
            .ok_or_else(|| de::Error::custom(format!("unknown aggregation temporality {name:?}"))),
    }
}

impl AggregationTemporality {
    /// The value named as in the `.proto` file.
    pub fn from_str_name(name: &str) -> Option<AggregationTemporality> {
        match name {
            "AGGREGATION_TEMPORALITY_UNSPECIFIED" => Some(AggregationTemporality::Unspecified),
            "AGGREGATION_TEMPORALITY_DELTA" => Some(AggregationTemporality::Delta),
            "AGGREGATION_TEMPORALITY_CUMULATIVE" => Some(AggregationTemporality::Cumulative),
            _ => None,
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Enum {
    Number(Integer<i32>),
    Name(String),
}

/// An integer written as a JSON number or a decimal string.
struct Integer<T>(T);

impl<'de, T> Deserialize<'de> for Integer<T>
where
    T: TryFrom<u64> + TryFrom<i64> + std::str::FromStr,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IntegerVisitor<T>(PhantomData<T>);
        impl<T> Visitor<'_> for IntegerVisitor<T>
        where
            T: TryFrom<u64> + TryFrom<i64> + std::str::FromStr,
        {
            type Value = Integer<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer or a decimal string")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                T::try_from(v)
                    .map(Integer)
                    .map_err(|_| E::custom(format!("integer {v} out of range")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                T::try_from(v)
                    .map(Integer)
                    .map_err(|_| E::custom(format!("integer {v} out of range")))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                // `1e3` is an integer to JavaScript; a fraction is not.
                if v.fract() == 0.0 && v.abs() < 9.007_199_254_740_992e15 {
                    self.visit_i64(v as i64)
                } else {
                    Err(E::custom(format!("{v} is not an integer")))
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                v.parse()
                    .map(Integer)
                    .map_err(|_| E::custom(format!("{v:?} is not an integer in range")))
            }
        }
        deserializer.deserialize_any(IntegerVisitor(PhantomData))
    }
}

/// A double written as a JSON number or a string.
struct Double(f64);

impl<'de> Deserialize<'de> for Double {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DoubleVisitor;
        impl Visitor<'_> for DoubleVisitor {
            type Value = Double;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number, \"NaN\", \"Infinity\" or \"-Infinity\"")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Double, E> {
                Ok(Double(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Double, E> {
                Ok(Double(v as f64))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Double, E> {
                Ok(Double(v as f64))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Double, E> {
                match v {
                    "NaN" => Ok(Double(f64::NAN)),
                    "Infinity" => Ok(Double(f64::INFINITY)),
                    "-Infinity" => Ok(Double(f64::NEG_INFINITY)),
                    _ => v
                        .parse()
                        .map(Double)
                        .map_err(|_| E::custom(format!("{v:?} is not a number"))),
                }
            }
        }
        deserializer.deserialize_any(DoubleVisitor)
    }
}

/// Bytes written as a hex string (trace and span ids).
struct Hex(Vec<u8>);

impl<'de> Deserialize<'de> for Hex {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        if text.len() % 2 != 0 {
            return Err(de::Error::custom("hex id of odd length"));
        }
        let digit = |b: u8| char::from(b).to_digit(16);
        text.as_bytes()
            .chunks(2)
            .map(|pair| match (digit(pair[0]), digit(pair[1])) {
                (Some(high), Some(low)) => Ok((high * 16 + low) as u8),
                _ => Err(de::Error::custom(format!("{text:?} is not a hex id"))),
            })
            .collect::<Result<_, _>>()
            .map(Hex)
    }
}

/// Keeps the one value of a oneof, or says that there were several.
fn one_of<T>(
    candidates: impl IntoIterator<Item = Option<T>>,
    what: &str,
) -> Result<Option<T>, String> {
    let mut present = candidates.into_iter().flatten();
    let first = present.next();
    if present.next().is_some() {
        return Err(format!("{what} has more than one value"));
    }
    Ok(first)
}

/// The OTLP/JSON shape of [`AnyValue`]: each case of its oneof is a key of its own.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnyValueJson {
    string_value: Option<String>,
    bool_value: Option<bool>,
    int_value: Option<Integer<i64>>,
    double_value: Option<Double>,
    array_value: Option<ArrayValue>,
    kvlist_value: Option<KeyValueList>,
    bytes_value: Option<String>,
}

impl TryFrom<AnyValueJson> for AnyValue {
    type Error = String;
    fn try_from(json: AnyValueJson) -> Result<AnyValue, String> {
        use any_value::Value;
        let bytes = json
            .bytes_value
            .map(|text| {
                base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .map_err(|e| format!("bytesValue: {e}"))
            })
            .transpose()?;
        let value = one_of(
            [
                json.string_value.map(Value::StringValue),
                json.bool_value.map(Value::BoolValue),
                json.int_value.map(|n| Value::IntValue(n.0)),
                json.double_value.map(|n| Value::DoubleValue(n.0)),
                json.array_value.map(Value::ArrayValue),
                json.kvlist_value.map(Value::KvlistValue),
                bytes.map(Value::BytesValue),
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
    #[serde(default, deserialize_with = "null_as_default")]
    name: String,
    #[serde(default, deserialize_with = "null_as_default")]
    description: String,
    #[serde(default, deserialize_with = "null_as_default")]
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
        let data = one_of(
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
    #[serde(default, deserialize_with = "null_as_default")]
    attributes: Vec<KeyValue>,
    #[serde(default, deserialize_with = "uint64")]
    start_time_unix_nano: u64,
    #[serde(default, deserialize_with = "uint64")]
    time_unix_nano: u64,
    as_double: Option<Double>,
    as_int: Option<Integer<i64>>,
    #[serde(default, deserialize_with = "null_as_default")]
    exemplars: Vec<Exemplar>,
    #[serde(default, deserialize_with = "uint32")]
    flags: u32,
}

impl TryFrom<NumberDataPointJson> for NumberDataPoint {
    type Error = String;
    fn try_from(json: NumberDataPointJson) -> Result<NumberDataPoint, String> {
        use number_data_point::Value;
        let value = one_of(
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
    #[serde(default, deserialize_with = "null_as_default")]
    filtered_attributes: Vec<KeyValue>,
    #[serde(default, deserialize_with = "uint64")]
    time_unix_nano: u64,
    as_double: Option<Double>,
    as_int: Option<Integer<i64>>,
    span_id: Option<Hex>,
    trace_id: Option<Hex>,
}

impl TryFrom<ExemplarJson> for Exemplar {
    type Error = String;
    fn try_from(json: ExemplarJson) -> Result<Exemplar, String> {
        use exemplar::Value;
        let value = one_of(
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
