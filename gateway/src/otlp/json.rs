//! The OTLP/JSON rules that differ from serde's defaults, for the message types in
//! [`super::proto`]: 64-bit integers as decimal strings or numbers, doubles also as `"NaN"`,
//! `"Infinity"` and `"-Infinity"`, enums as numbers or their names, trace and span ids as
//! hex, `bytesValue` as base64, `null` as the field's default, and each oneof as one of
//! several keys (more than one of them is an error; the shapes are in [`super::proto`]).
//! Unknown keys are ignored, as the specification asks.

use std::fmt;
use std::marker::PhantomData;

use base64::Engine;
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

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
        Some(Enum::Name(name)) => match name.as_str() {
            "AGGREGATION_TEMPORALITY_UNSPECIFIED" => Ok(0),
            "AGGREGATION_TEMPORALITY_DELTA" => Ok(1),
            "AGGREGATION_TEMPORALITY_CUMULATIVE" => Ok(2),
            _ => Err(de::Error::custom(format!(
                "unknown aggregation temporality {name:?}"
            ))),
        },
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Enum {
    Number(Integer<i32>),
    Name(String),
}

/// An integer written as a JSON number or a decimal string.
pub struct Integer<T>(pub T);

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
pub struct Double(pub f64);

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
pub struct Hex(pub Vec<u8>);

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
pub fn one_of<T>(
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

/// Bytes written as base64 (`bytesValue`).
pub struct Base64(pub Vec<u8>);

impl<'de> Deserialize<'de> for Base64 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map(Base64)
            .map_err(|e| de::Error::custom(format!("bytesValue: {e}")))
    }
}
