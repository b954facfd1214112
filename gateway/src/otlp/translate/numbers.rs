//! Number data points (gauges and sums) as gauge or counter values.

use super::extras::{created, exemplar};
use super::Point;
use crate::model::{Extras, Metric, MetricType, Value};
use crate::otlp::proto;

pub(super) fn number(
    point: &proto::NumberDataPoint,
    metric_type: MetricType,
) -> Result<Point, String> {
    let value = match point.value {
        Some(proto::number_data_point::Value::AsDouble(v)) => v,
        Some(proto::number_data_point::Value::AsInt(v)) => v as f64,
        None => return Err("a data point without a value".into()),
    };
    if metric_type != MetricType::Counter {
        return Ok((Value::Gauge(value), None));
    }
    let extras = Extras {
        created: created(point.start_time_unix_nano),
        exemplar: point.exemplars.iter().rev().find_map(exemplar),
        ..Extras::default()
    };
    Ok((Value::Counter(value), Metric::extras_from(None, extras)))
}
