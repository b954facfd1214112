//! What data points of every kind share: start times as created timestamps, exemplars.

use crate::model::{Exemplar, Label, Timestamp};
use crate::otlp::proto;

pub(super) fn created(start_time_unix_nano: u64) -> Option<Timestamp> {
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
pub(super) fn exemplar(exemplar: &proto::Exemplar) -> Option<Exemplar> {
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
