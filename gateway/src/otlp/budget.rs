//! What decoding a body would allocate, estimated in one pass over its bytes before anything
//! is decoded, so that a body of tiny nested messages (an empty data point is 2 bytes on the
//! wire and over a hundred in memory) is refused instead of inflating to many times the
//! body cap. Protobuf is walked field by field along the OTLP schema; JSON is scanned for
//! objects and arrays. Both also bound the nesting depth.

use std::mem::size_of;

use super::proto;

/// Decoded structures may take this many times the body's size (real exports take 2 to 8).
pub const MAX_INFLATION: usize = 16;
/// What any body may decode to, however small it is.
pub const INFLATION_FLOOR: usize = 1 << 20;
/// The deepest nesting of messages (or JSON objects and arrays) accepted. An export needs
/// about ten levels, plus two per level of nested attribute values.
pub const MAX_DEPTH: usize = 32;

/// Why a body would cost more than its size justifies.
pub type Refusal = String;

fn budget(body_len: usize) -> usize {
    body_len.saturating_mul(MAX_INFLATION).max(INFLATION_FLOOR)
}

/// The message types of an export, for the walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Message {
    Request,
    ResourceMetrics,
    Resource,
    ScopeMetrics,
    Scope,
    Metric,
    Points(Point),
    NumberPoint,
    HistogramPoint,
    ExponentialPoint,
    Buckets,
    SummaryPoint,
    Quantile,
    Exemplar,
    KeyValue,
    AnyValue,
    ArrayValue,
    KeyValueList,
}

/// Which data point a metric's data message holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Point {
    Number,
    Histogram,
    Exponential,
    Summary,
}

impl Message {
    /// The memory one decoded message takes, its own heap parts aside.
    fn size(self) -> usize {
        match self {
            Message::Request => size_of::<proto::ExportMetricsServiceRequest>(),
            Message::ResourceMetrics => size_of::<proto::ResourceMetrics>(),
            Message::Resource => size_of::<proto::Resource>(),
            Message::ScopeMetrics => size_of::<proto::ScopeMetrics>(),
            Message::Scope => size_of::<proto::InstrumentationScope>(),
            Message::Metric | Message::Points(_) => size_of::<proto::Metric>(),
            Message::NumberPoint => size_of::<proto::NumberDataPoint>(),
            Message::HistogramPoint => size_of::<proto::HistogramDataPoint>(),
            Message::ExponentialPoint => size_of::<proto::ExponentialHistogramDataPoint>(),
            Message::Buckets => size_of::<proto::exponential_histogram_data_point::Buckets>(),
            Message::SummaryPoint => size_of::<proto::SummaryDataPoint>(),
            Message::Quantile => size_of::<proto::summary_data_point::ValueAtQuantile>(),
            Message::Exemplar => size_of::<proto::Exemplar>(),
            Message::KeyValue => size_of::<proto::KeyValue>(),
            Message::AnyValue => size_of::<proto::AnyValue>(),
            Message::ArrayValue => size_of::<proto::ArrayValue>(),
            Message::KeyValueList => size_of::<proto::KeyValueList>(),
        }
    }

    /// The message type of a length-delimited field, `None` for strings, bytes and packed
    /// numbers.
    fn child(self, tag: u64) -> Option<Message> {
        use Message as M;
        Some(match (self, tag) {
            (M::Request, 1) => M::ResourceMetrics,
            (M::ResourceMetrics, 1) => M::Resource,
            (M::ResourceMetrics, 2) => M::ScopeMetrics,
            (M::Resource, 1) | (M::Scope, 3) => M::KeyValue,
            (M::ScopeMetrics, 1) => M::Scope,
            (M::ScopeMetrics, 2) => M::Metric,
            (M::Metric, 5 | 7) => M::Points(Point::Number),
            (M::Metric, 9) => M::Points(Point::Histogram),
            (M::Metric, 10) => M::Points(Point::Exponential),
            (M::Metric, 11) => M::Points(Point::Summary),
            (M::Metric, 12) => M::KeyValue,
            (M::Points(Point::Number), 1) => M::NumberPoint,
            (M::Points(Point::Histogram), 1) => M::HistogramPoint,
            (M::Points(Point::Exponential), 1) => M::ExponentialPoint,
            (M::Points(Point::Summary), 1) => M::SummaryPoint,
            (M::NumberPoint, 7) | (M::HistogramPoint, 9) | (M::ExponentialPoint, 1) => M::KeyValue,
            (M::SummaryPoint, 7) | (M::Exemplar, 7) | (M::KeyValueList, 1) => M::KeyValue,
            (M::NumberPoint, 5) | (M::HistogramPoint, 8) | (M::ExponentialPoint, 11) => M::Exemplar,
            (M::ExponentialPoint, 8 | 9) => M::Buckets,
            (M::SummaryPoint, 6) => M::Quantile,
            (M::KeyValue, 2) | (M::ArrayValue, 1) => M::AnyValue,
            (M::AnyValue, 5) => M::ArrayValue,
            (M::AnyValue, 6) => M::KeyValueList,
            _ => return None,
        })
    }

    /// How much memory one byte of a non-message length-delimited field may become: packed
    /// varints (one byte each) decode to eight-byte numbers.
    fn bytes_factor(self, tag: u64) -> usize {
        match (self, tag) {
            (Message::Buckets, 2) => size_of::<u64>(),
            _ => 1,
        }
    }
}

/// Checks what a protobuf export would decode to.
///
/// # Errors
/// The reason, when the estimate exceeds the budget or the nesting [`MAX_DEPTH`]; a body
/// that is not valid protobuf is left to the decoder.
pub fn check_protobuf(body: &[u8]) -> Result<(), Refusal> {
    let limit = budget(body.len());
    let mut cost = Message::Request.size();
    // (message type, the bytes of it still to walk)
    let mut stack: Vec<(Message, &[u8])> = vec![(Message::Request, body)];
    while let Some((message, rest)) = stack.last_mut() {
        let message = *message;
        if rest.is_empty() {
            stack.pop();
            continue;
        }
        let Some(key) = read_varint(rest) else {
            return Ok(());
        };
        let (tag, wire_type) = (key >> 3, key & 7);
        match wire_type {
            0 => {
                if read_varint(rest).is_none() {
                    return Ok(());
                }
            }
            1 | 5 => {
                let width = if wire_type == 1 { 8 } else { 4 };
                if rest.len() < width {
                    return Ok(());
                }
                *rest = &rest[width..];
            }
            2 => {
                let Some(length) = read_varint(rest).and_then(|l| usize::try_from(l).ok()) else {
                    return Ok(());
                };
                if rest.len() < length {
                    return Ok(());
                }
                let (field, after) = rest.split_at(length);
                *rest = after;
                match message.child(tag) {
                    Some(child) => {
                        cost = cost.saturating_add(child.size());
                        if stack.len() >= MAX_DEPTH {
                            return Err(format!("messages nested more than {MAX_DEPTH} deep"));
                        }
                        stack.push((child, field));
                    }
                    None => {
                        cost = cost.saturating_add(length.saturating_mul(message.bytes_factor(tag)))
                    }
                }
            }
            // Groups and invalid wire types: the decoder says what is wrong.
            _ => return Ok(()),
        }
        if cost > limit {
            return Err(too_costly(body.len(), limit));
        }
    }
    Ok(())
}

/// What one JSON object or array is counted as: about the size of a decoded message.
const JSON_CONTAINER_COST: usize = 128;

/// Checks what a JSON export would decode to: every object and array outside strings
/// counts as one decoded message.
///
/// # Errors
/// The reason, when the estimate exceeds the budget or the nesting [`MAX_DEPTH`] (twice
/// that for JSON, where every repeated field adds an array level).
pub fn check_json(body: &[u8]) -> Result<(), Refusal> {
    let limit = budget(body.len());
    let mut cost: usize = 0;
    let mut depth: usize = 0;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in body {
        if in_string {
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > 2 * MAX_DEPTH {
                    return Err(format!(
                        "objects and arrays nested more than {} deep",
                        2 * MAX_DEPTH
                    ));
                }
                cost = cost.saturating_add(JSON_CONTAINER_COST);
                if cost > limit {
                    return Err(too_costly(body.len(), limit));
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

fn too_costly(body_len: usize, limit: usize) -> Refusal {
    format!(
        "the {body_len}-byte body holds too many small messages: decoding it would take more than {limit} bytes ({MAX_INFLATION} times its size)"
    )
}

/// Reads a varint off the front of `bytes`, `None` when it is cut or too long.
fn read_varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut value: u64 = 0;
    for (i, &byte) in bytes.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            *bytes = &bytes[i + 1..];
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;

    #[test]
    fn many_empty_messages_are_refused_and_real_ones_pass() {
        // 2-byte empty resources, one after the other.
        let bomb = [0x0a, 0x00].repeat(2 << 20);
        assert!(check_protobuf(&bomb).is_err());
        let request = proto::ExportMetricsServiceRequest {
            resource_metrics: vec![proto::ResourceMetrics::default(); 10],
        };
        assert!(check_protobuf(&request.encode_to_vec()).is_ok());
        let json_bomb = format!("[{}]", "{},".repeat(1 << 20));
        assert!(check_json(json_bomb.as_bytes()).is_err());
        assert!(check_json(br#"{"resourceMetrics":[{"resource":{}}]}"#).is_ok());
    }

    #[test]
    fn deep_nesting_is_refused() {
        // AnyValue { array_value { values { AnyValue ... } } } many levels deep.
        let mut value = proto::AnyValue::default();
        for _ in 0..40 {
            value = proto::AnyValue {
                value: Some(proto::any_value::Value::ArrayValue(proto::ArrayValue {
                    values: vec![value],
                })),
            };
        }
        let request = proto::ExportMetricsServiceRequest {
            resource_metrics: vec![proto::ResourceMetrics {
                resource: Some(proto::Resource {
                    attributes: vec![proto::KeyValue {
                        key: "deep".into(),
                        value: Some(value),
                    }],
                }),
                scope_metrics: vec![],
            }],
        };
        assert!(check_protobuf(&request.encode_to_vec()).is_err());
        let deep_json = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert!(check_json(deep_json.as_bytes()).is_err());
    }
}
