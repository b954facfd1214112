//! The buckets of a native histogram as intervals, in the order and form Prometheus's
//! `model/histogram` iterators give them (upstream's `/api/v1/metrics` and UI show these):
//! negative buckets from the most negative up, then the zero bucket, then the positive
//! buckets, each only when it holds observations.
//!
//! With schema `s`, positive bucket `i` is `(2^((i-1)/2^s), 2^(i/2^s)]`; negative bucket
//! `i` mirrors it as `[-2^(i/2^s), -2^((i-1)/2^s))`; the zero bucket is
//! `[-threshold, threshold]`. Go computes bounds of schemas above 0 from a table of its own
//! rounding, so those may differ from ours in the last digit.

use super::{BucketSpan, NativeHistogram};

/// Which ends of a bucket's interval belong to it, numbered as upstream's API does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Boundaries {
    /// `(lower, upper]`: positive buckets.
    LeftOpen = 0,
    /// `[lower, upper)`: negative buckets.
    RightOpen = 1,
    /// `[lower, upper]`: the zero bucket.
    Closed = 3,
}

/// One bucket of a native histogram with its observations.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NativeBucket {
    /// Which ends belong to the bucket.
    pub boundaries: Boundaries,
    /// Lower end.
    pub lower: f64,
    /// Upper end.
    pub upper: f64,
    /// Observations in the bucket.
    pub count: f64,
}

impl NativeHistogram {
    /// Whether upstream's API shows these sparse buckets instead of the classic ones: as
    /// upstream, when there is at least one span.
    pub fn has_spans(&self) -> bool {
        !self.positive_spans.is_empty() || !self.negative_spans.is_empty()
    }

    /// The non-empty buckets, negative, zero, positive, each in increasing order.
    pub fn intervals(&self) -> Vec<NativeBucket> {
        let negative = indexed_counts(
            &self.negative_spans,
            &self.negative_deltas,
            &self.negative_counts,
        );
        let positive = indexed_counts(
            &self.positive_spans,
            &self.positive_deltas,
            &self.positive_counts,
        );
        let mut out = Vec::with_capacity(negative.len() + positive.len() + 1);
        for &(index, count) in negative.iter().rev() {
            out.push(NativeBucket {
                boundaries: Boundaries::RightOpen,
                lower: -bound(index, self.schema),
                upper: -bound(index - 1, self.schema),
                count,
            });
        }
        let zero_count = self
            .zero_count_float
            .filter(|&c| c != 0.0)
            .or(self.zero_count.map(|c| c as f64))
            .unwrap_or(0.0);
        if zero_count != 0.0 {
            out.push(NativeBucket {
                boundaries: Boundaries::Closed,
                lower: -self.zero_threshold,
                upper: self.zero_threshold,
                count: zero_count,
            });
        }
        for &(index, count) in &positive {
            out.push(NativeBucket {
                boundaries: Boundaries::LeftOpen,
                lower: bound(index - 1, self.schema),
                upper: bound(index, self.schema),
                count,
            });
        }
        out
    }
}

/// Bucket index and count of every non-empty bucket of one side; integer histograms carry
/// deltas to the previous bucket, float histograms absolute counts.
fn indexed_counts(spans: &[BucketSpan], deltas: &[i64], counts: &[f64]) -> Vec<(i64, f64)> {
    let mut out = Vec::new();
    let mut index: i64 = 0;
    let mut position = 0usize;
    let mut running: i64 = 0;
    // The first span's offset is its start index; later ones count from the end of the
    // previous span.
    for span in spans {
        index += i64::from(span.offset);
        for _ in 0..span.length {
            let count = if counts.is_empty() {
                let Some(&delta) = deltas.get(position) else {
                    return out;
                };
                running = running.saturating_add(delta);
                running as f64
            } else {
                let Some(&count) = counts.get(position) else {
                    return out;
                };
                count
            };
            if count != 0.0 {
                out.push((index, count));
            }
            position += 1;
            index += 1;
        }
    }
    out
}

/// The upper bound of bucket `index` at `schema`, as Prometheus's `getBound`: the largest
/// finite float for the last bucket before the one that counts infinities.
pub fn bound(index: i64, schema: i32) -> f64 {
    let schema = schema.clamp(-4, 8);
    if schema <= 0 {
        let exponent = index.saturating_mul(1 << -schema);
        if exponent >= 1024 {
            return f64::MAX;
        }
        return 2f64.powi(exponent.clamp(-1100, 1100) as i32);
    }
    let per_power = 1i64 << schema;
    let fraction_index = index.rem_euclid(per_power);
    let exponent = index.div_euclid(per_power) + 1;
    let fraction = (fraction_index as f64 / per_power as f64).exp2() / 2.0;
    if fraction == 0.5 && exponent == 1025 {
        return f64::MAX;
    }
    fraction * 2f64.powi(exponent.clamp(-1100, 1100) as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(offset: i32, length: u32) -> BucketSpan {
        BucketSpan { offset, length }
    }

    #[test]
    fn integer_histogram_of_schema_0() {
        // Observations 1 (bucket 0: (0.5, 1]), 3, 3 (bucket 2: (2, 4]), -1 (negative 0) and
        // one in the zero bucket.
        let native = NativeHistogram {
            schema: 0,
            zero_threshold: 0.001,
            zero_count: Some(1),
            positive_spans: vec![span(0, 1), span(1, 1)],
            positive_deltas: vec![1, 1],
            negative_spans: vec![span(0, 1)],
            negative_deltas: vec![1],
            ..NativeHistogram::default()
        };
        assert!(native.has_spans());
        let got: Vec<_> = native
            .intervals()
            .iter()
            .map(|b| (b.boundaries as u8, b.lower, b.upper, b.count))
            .collect();
        assert_eq!(
            got,
            vec![
                (1, -1.0, -0.5, 1.0),
                (3, -0.001, 0.001, 1.0),
                (0, 0.5, 1.0, 1.0),
                (0, 2.0, 4.0, 2.0),
            ]
        );
    }

    #[test]
    fn float_histogram_skips_empty_buckets_and_orders_negatives_up() {
        let native = NativeHistogram {
            schema: 1,
            negative_spans: vec![span(1, 3)],
            negative_counts: vec![2.5, 0.0, 1.0],
            ..NativeHistogram::default()
        };
        let got: Vec<_> = native
            .intervals()
            .iter()
            .map(|b| (b.lower, b.upper, b.count))
            .collect();
        // Negative buckets 1 and 3 of schema 1: [-2^0.5, -1) and [-2^1.5, -2).
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].1, got[0].2), (-2.0, 1.0));
        assert!((got[0].0 + 2f64.powf(1.5)).abs() < 1e-12);
        assert_eq!((got[1].1, got[1].2), (-1.0, 2.5));
    }

    #[test]
    fn short_or_hostile_input_does_not_panic() {
        let native = NativeHistogram {
            schema: -100,
            positive_spans: vec![span(i32::MAX, u32::MAX), span(i32::MIN, 2)],
            positive_deltas: vec![i64::MAX, i64::MAX],
            ..NativeHistogram::default()
        };
        assert_eq!(native.intervals().len(), 2);
        assert_eq!(bound(4000, 0), f64::MAX);
        assert_eq!(bound(1024, 0), f64::MAX);
    }
}
