//! Attribute values as label values, as the Collector's `AsString` writes them.

use base64::Engine;

use crate::otlp::proto::{self, any_value};

/// Attributes as key and value strings.
pub(super) fn attribute_strings(attributes: &[proto::KeyValue]) -> Vec<(String, String)> {
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
pub(super) fn any_value_string(value: &proto::AnyValue) -> String {
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
