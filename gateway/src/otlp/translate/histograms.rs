//! Histogram data points: explicit buckets as classic histograms (cumulative bucket
//! counts with `+Inf`), exponential ones as native histograms.

use super::extras::{created, exemplar};
use super::Point;
use crate::model::{Bucket, Exemplar, Extras, Histogram, Metric, NativeHistogram, Value};
use crate::otlp::exponential::{native_buckets, schema_for};
use crate::otlp::proto;

/// Native histograms' default zero bucket width (client_golang's), for exponential
/// histograms that send none.
const DEFAULT_ZERO_THRESHOLD: f64 = 2.938_735_877_055_719e-39;

pub(super) fn explicit_histogram(point: &proto::HistogramDataPoint) -> Result<Point, String> {
    let bounds = &point.explicit_bounds;
    let counts = &point.bucket_counts;
    if !counts.is_empty() && counts.len() != bounds.len() + 1 {
        return Err(format!(
            "{} bucket counts for {} explicit bounds (there must be one more count than bounds)",
            counts.len(),
            bounds.len()
        ));
    }
    if bounds.iter().any(|b| b.is_nan()) || bounds.windows(2).any(|w| w[0] >= w[1]) {
        return Err("explicit bounds must increase".into());
    }
    let mut buckets = Vec::with_capacity(counts.len());
    let mut cumulative: u64 = 0;
    for (&bound, &count) in bounds.iter().zip(counts) {
        cumulative = cumulative.saturating_add(count);
        if bound != f64::INFINITY {
            buckets.push(Bucket {
                upper_bound: bound,
                count: cumulative as f64,
            });
        }
    }
    if !counts.is_empty() {
        buckets.push(Bucket {
            upper_bound: f64::INFINITY,
            count: point.count as f64,
        });
    }
    let mut bucket_exemplars: Vec<Option<Exemplar>> = Vec::new();
    if !buckets.is_empty() {
        for converted in point.exemplars.iter().filter_map(exemplar) {
            // The exemplar belongs to the first bucket whose bound holds its value.
            let index = buckets
                .iter()
                .position(|b| converted.value <= b.upper_bound)
                .unwrap_or(buckets.len() - 1);
            bucket_exemplars.resize(buckets.len(), None);
            bucket_exemplars[index] = Some(converted);
        }
    }
    let histogram = Histogram {
        count: point.count as f64,
        float_counts: false,
        sum: point.sum.unwrap_or(f64::NAN),
        buckets,
    };
    let extras = Extras {
        created: created(point.start_time_unix_nano),
        bucket_exemplars,
        ..Extras::default()
    };
    Ok((
        Value::Histogram(Box::new(histogram)),
        Metric::extras_from(None, extras),
    ))
}

pub(super) fn exponential_histogram(
    point: &proto::ExponentialHistogramDataPoint,
) -> Result<Point, String> {
    check_native_count(point)?;
    let (schema, reduction) = schema_for(point.scale)?;
    let side = |buckets: &Option<proto::exponential_histogram_data_point::Buckets>| match buckets {
        Some(b) => native_buckets(b.offset, &b.bucket_counts, reduction),
        None => Ok((Vec::new(), Vec::new())),
    };
    let (positive_spans, positive_deltas) = side(&point.positive)?;
    let (negative_spans, negative_deltas) = side(&point.negative)?;
    let zero_threshold = if point.zero_threshold > 0.0 && point.zero_threshold.is_finite() {
        point.zero_threshold
    } else {
        DEFAULT_ZERO_THRESHOLD
    };
    let native = NativeHistogram {
        schema,
        zero_threshold,
        zero_count: Some(point.zero_count),
        zero_count_float: None,
        negative_spans,
        negative_deltas,
        negative_counts: Vec::new(),
        positive_spans,
        positive_deltas,
        positive_counts: Vec::new(),
    };
    let histogram = Histogram {
        count: point.count as f64,
        float_counts: false,
        sum: point.sum.unwrap_or(f64::NAN),
        buckets: Vec::new(),
    };
    let extras = Extras {
        created: created(point.start_time_unix_nano),
        native: Some(native),
        // Native histogram exemplars need a time to be ingested.
        exemplars: point
            .exemplars
            .iter()
            .filter_map(exemplar)
            .filter(|e| e.timestamp.is_some())
            .collect(),
        ..Extras::default()
    };
    Ok((
        Value::Histogram(Box::new(histogram)),
        Metric::extras_from(None, extras),
    ))
}

/// Refuses a count that disagrees with the buckets as Prometheus's native histogram
/// validation does (the count equals the observations in the buckets, or, without a sum, is
/// at least that): Prometheus would refuse the histogram when it scrapes it.
fn check_native_count(point: &proto::ExponentialHistogramDataPoint) -> Result<(), String> {
    let buckets = [&point.positive, &point.negative]
        .into_iter()
        .flatten()
        .flat_map(|b| b.bucket_counts.iter().copied());
    let in_buckets = std::iter::once(point.zero_count)
        .chain(buckets)
        .try_fold(0u64, u64::checked_add)
        .ok_or("exponential histogram bucket counts add up to more than 2^64")?;
    let count = point.count;
    let without_sum = point.sum.is_none_or(f64::is_nan);
    if in_buckets > count || (in_buckets != count && !without_sum) {
        return Err(format!(
            "exponential histogram count {count} disagrees with the {in_buckets} observations in its buckets"
        ));
    }
    Ok(())
}
