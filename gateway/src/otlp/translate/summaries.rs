//! Summary data points as summaries with their quantiles.

use std::collections::HashSet;

use super::extras::created;
use super::Point;
use crate::model::{Extras, Metric, Quantile, Summary, Value};
use crate::otlp::proto;

pub(super) fn summary(point: &proto::SummaryDataPoint) -> Result<Point, String> {
    let mut quantiles: Vec<Quantile> = Vec::with_capacity(point.quantile_values.len());
    let mut seen = HashSet::with_capacity(point.quantile_values.len());
    for q in &point.quantile_values {
        // 0.0 and -0.0 are one label value.
        if q.quantile.is_nan() || !seen.insert((q.quantile + 0.0).to_bits()) {
            return Err(format!(
                "quantile {} given twice or not a number",
                q.quantile
            ));
        }
        quantiles.push(Quantile {
            quantile: q.quantile,
            value: q.value,
        });
    }
    let summary = Summary {
        count: point.count,
        sum: point.sum,
        quantiles,
    };
    let extras = Extras {
        created: created(point.start_time_unix_nano),
        ..Extras::default()
    };
    Ok((
        Value::Summary(Box::new(summary)),
        Metric::extras_from(None, extras),
    ))
}
