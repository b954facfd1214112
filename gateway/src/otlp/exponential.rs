//! OTLP exponential histogram buckets as native histogram spans and deltas, as Prometheus
//! converts them: OTLP bucket `i` covers `(base^i, base^(i+1)]`, native bucket `i + 1` covers
//! the same range; scales above 8 are reduced to 8 by merging neighbouring buckets (every
//! reduction by one merges pairs), scales below -4 have no native schema. Empty buckets are
//! left out, and a run of more than two of them starts a new span, as client_golang lays
//! them out. The result never has more buckets than were sent.

use crate::model::BucketSpan;

/// The finest native histogram schema.
pub const MAX_SCHEMA: i32 = 8;
/// The coarsest native histogram schema.
pub const MIN_SCHEMA: i32 = -4;

/// The native schema for an OTLP scale and how many times buckets must be halved to reach
/// it, or why there is none.
///
/// # Errors
/// A scale below [`MIN_SCHEMA`].
pub fn schema_for(scale: i32) -> Result<(i32, u32), String> {
    if scale < MIN_SCHEMA {
        return Err(format!(
            "exponential histogram scale {scale} is below {MIN_SCHEMA}, the coarsest native histogram schema"
        ));
    }
    if scale > MAX_SCHEMA {
        // Shifting by 63 already puts every index into the same bucket.
        let reduction = (i64::from(scale) - i64::from(MAX_SCHEMA)).min(63) as u32;
        return Ok((MAX_SCHEMA, reduction));
    }
    Ok((scale, 0))
}

/// The spans and deltas of one side's buckets: `counts[k]` is OTLP bucket `offset + k`.
///
/// # Errors
/// When a bucket index leaves the range of a span offset, or a count does not fit a delta.
pub fn native_buckets(
    offset: i32,
    counts: &[u64],
    reduction: u32,
) -> Result<(Vec<BucketSpan>, Vec<i64>), String> {
    // Merge first: after the reduction, consecutive OTLP buckets share a native index.
    let mut merged: Vec<(i64, u64)> = Vec::new();
    for (k, &count) in counts.iter().enumerate() {
        let index = ((i64::from(offset) + k as i64) >> reduction) + 1;
        match merged.last_mut() {
            Some((last, total)) if *last == index => *total = total.saturating_add(count),
            _ => merged.push((index, count)),
        }
    }
    let mut spans: Vec<BucketSpan> = Vec::new();
    let mut deltas: Vec<i64> = Vec::new();
    let mut previous_index: Option<i64> = None;
    let mut previous_count: i64 = 0;
    for (index, count) in merged.into_iter().filter(|&(_, count)| count > 0) {
        let count = i64::try_from(count)
            .map_err(|_| format!("exponential histogram bucket count {count} is too large"))?;
        let out_of_range = || format!("exponential histogram bucket index {index} is out of range");
        match previous_index {
            Some(previous) if index - previous - 1 <= 2 => {
                // A small gap is cheaper filled with empty buckets than as a new span.
                for _ in 0..index - previous - 1 {
                    deltas.push(-previous_count);
                    previous_count = 0;
                }
                if let Some(span) = spans.last_mut() {
                    span.length += (index - previous) as u32;
                }
            }
            Some(previous) => {
                let gap = i32::try_from(index - previous - 1).map_err(|_| out_of_range())?;
                spans.push(BucketSpan {
                    offset: gap,
                    length: 1,
                });
            }
            None => {
                let start = i32::try_from(index).map_err(|_| out_of_range())?;
                spans.push(BucketSpan {
                    offset: start,
                    length: 1,
                });
            }
        }
        deltas.push(count - previous_count);
        previous_count = count;
        previous_index = Some(index);
    }
    Ok((spans, deltas))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(offset: i32, length: u32) -> BucketSpan {
        BucketSpan { offset, length }
    }

    #[test]
    fn buckets_shift_by_one_at_the_same_scale() {
        // OTLP buckets 0, 1, 2 are native buckets 1, 2, 3.
        let (spans, deltas) = native_buckets(0, &[1, 2, 1], 0).unwrap();
        assert_eq!(spans, [span(1, 3)]);
        assert_eq!(deltas, [1, 1, -1]);
    }

    #[test]
    fn empty_buckets_fill_small_gaps_and_split_large_ones() {
        let (spans, deltas) = native_buckets(-2, &[3, 0, 0, 4, 0, 0, 0, 5], 0).unwrap();
        // Indices -1, 2 (gap of 2: filled), 6 (gap of 3: a new span).
        assert_eq!(spans, [span(-1, 4), span(3, 1)]);
        assert_eq!(deltas, [3, -3, 0, 4, 1]);
        let (spans, deltas) = native_buckets(5, &[0, 0, 7], 0).unwrap();
        assert_eq!(spans, [span(8, 1)]);
        assert_eq!(deltas, [7]);
        assert_eq!(native_buckets(0, &[0, 0], 0).unwrap(), (vec![], vec![]));
    }

    #[test]
    fn reduction_merges_neighbours() {
        // Scale 10 to 8: four OTLP buckets per native one. OTLP 0..=3 → native 1,
        // 4..=7 → native 2; -1 → (-1 >> 2) + 1 = 0.
        let (spans, deltas) = native_buckets(-1, &[1, 1, 1, 1, 1, 2], 2).unwrap();
        assert_eq!(spans, [span(0, 3)]);
        assert_eq!(deltas, [1, 3, -2]);
        assert_eq!(schema_for(10), Ok((8, 2)));
        assert_eq!(schema_for(3), Ok((3, 0)));
        assert_eq!(schema_for(i32::MAX), Ok((8, 63)));
        assert!(schema_for(-5).is_err());
    }

    #[test]
    fn extreme_offsets_and_counts_are_refused_not_wrapped() {
        assert!(native_buckets(i32::MAX, &[1], 0).is_err());
        assert!(native_buckets(i32::MAX - 3, &[1], 0).is_ok());
        assert!(native_buckets(0, &[u64::MAX], 0).is_err());
        // Reduced far enough, any offset lands near zero.
        assert_eq!(
            native_buckets(i32::MIN, &[1], 63).unwrap(),
            (vec![span(0, 1)], vec![1])
        );
    }
}
