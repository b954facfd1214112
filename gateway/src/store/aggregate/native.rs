//! Adding two native histograms the way Prometheus adds them (`FloatHistogram.Add` in
//! `model/histogram`): the zero buckets are reconciled first (the wider threshold wins,
//! moved up to a bucket boundary when it would cut a populated bucket, and the buckets it
//! covers join the zero count), then the finer schema is reduced to the coarser one, and
//! the buckets are added index by index, the spans becoming the union of both.
//!
//! Only the exponential schemas (-4 to 8) are added; anything else, or buckets that do not
//! match their spans, is refused before anything is merged ([`check`]), so that [`add`]
//! cannot fail when a journaled push is replayed.

use crate::model::{native_bucket_bound as bound, BucketSpan, NativeHistogram};

/// The coarsest and the finest exponential schema Prometheus defines.
const SCHEMAS: std::ops::RangeInclusive<i32> = -4..=8;

/// The largest bucket index (in magnitude) that is added: far beyond the largest float at
/// the finest schema (index 262,144), and small enough that every span offset of a sum
/// fits an `i32`.
const MAX_INDEX: i64 = 1 << 24;

/// The most rounds of zero-bucket reconciliation; each round moves a threshold up to the
/// next populated bucket, so real histograms need a handful. A bound that keeps hostile
/// input from looping.
const MAX_RECONCILE_ROUNDS: usize = 10_000;

/// Why a native histogram cannot be added, or `Ok` when [`add`] can take it.
pub(crate) fn check(h: &NativeHistogram) -> Result<(), String> {
    if !SCHEMAS.contains(&h.schema) {
        return Err(format!(
            "native histogram schema {} cannot be added (only the exponential schemas -4 to 8 can)",
            h.schema
        ));
    }
    if !(h.zero_threshold.is_finite() && h.zero_threshold >= 0.0) {
        return Err("native histogram zero threshold is not a finite non-negative number".into());
    }
    if h.zero_count_float
        .is_some_and(|c| !(c.is_finite() && c >= 0.0))
    {
        return Err("native histogram zero count is not a finite non-negative number".into());
    }
    for (side, spans, deltas, counts) in [
        (
            "positive",
            &h.positive_spans,
            &h.positive_deltas,
            &h.positive_counts,
        ),
        (
            "negative",
            &h.negative_spans,
            &h.negative_deltas,
            &h.negative_counts,
        ),
    ] {
        let buckets: u64 = spans.iter().map(|s| u64::from(s.length)).sum();
        let given = if is_float(h) {
            counts.len()
        } else {
            deltas.len()
        };
        if (!deltas.is_empty() && !counts.is_empty()) || buckets != given as u64 {
            return Err(format!(
                "native histogram {side} spans cover {buckets} buckets but {given} are given"
            ));
        }
        if counts.iter().any(|c| !(c.is_finite() && *c >= 0.0)) {
            return Err(format!(
                "native histogram has a {side} bucket count that is not a finite non-negative number"
            ));
        }
        let mut index: i64 = 0;
        for span in spans {
            // The first offset is the start index, later ones the gap after the last span.
            index += i64::from(span.offset);
            let end = index + i64::from(span.length);
            if index.abs() > MAX_INDEX || end.abs() > MAX_INDEX {
                return Err(format!(
                    "native histogram {side} bucket index {index} is beyond every float"
                ));
            }
            index = end;
        }
        let mut running: i64 = 0;
        for delta in deltas {
            running = running
                .checked_add(*delta)
                .filter(|c| *c >= 0)
                .ok_or_else(|| format!("native histogram has a negative {side} bucket count"))?;
        }
    }
    Ok(())
}

/// Whether the histogram carries float counts (else integer counts as deltas).
fn is_float(h: &NativeHistogram) -> bool {
    !h.positive_counts.is_empty() || !h.negative_counts.is_empty() || h.zero_count_float.is_some()
}

/// One histogram with its buckets spelled out: `(index, count)` in index order, empty
/// buckets inside spans included (they take part in reconciliation as in Prometheus).
#[derive(Debug, Clone, PartialEq)]
struct Expanded {
    schema: i32,
    zero_threshold: f64,
    zero_count: f64,
    positive: Vec<(i64, f64)>,
    negative: Vec<(i64, f64)>,
}

impl Expanded {
    fn of(h: &NativeHistogram) -> Expanded {
        let float = is_float(h);
        Expanded {
            schema: h.schema,
            zero_threshold: h.zero_threshold,
            zero_count: if float {
                h.zero_count_float.unwrap_or(0.0)
            } else {
                h.zero_count.unwrap_or(0) as f64
            },
            positive: expand(&h.positive_spans, &h.positive_deltas, &h.positive_counts),
            negative: expand(&h.negative_spans, &h.negative_deltas, &h.negative_counts),
        }
    }

    /// Prometheus's `zeroCountForLargerThreshold`: the zero count this histogram would
    /// have with a zero threshold of `larger`, and that threshold, moved up to the upper
    /// bound of a populated bucket it would otherwise cut.
    fn zero_count_for(&self, larger: f64) -> (f64, f64) {
        let mut larger = larger;
        if larger == self.zero_threshold {
            return (self.zero_count, larger);
        }
        'outer: loop {
            let mut count = self.zero_count;
            for &(index, c) in &self.positive {
                let (lower, upper) = (bound(index - 1, self.schema), bound(index, self.schema));
                if lower >= larger {
                    break;
                }
                count += c;
                if upper > larger {
                    if c != 0.0 {
                        larger = upper;
                    }
                    break;
                }
            }
            for &(index, c) in &self.negative {
                let (lower, upper) = (-bound(index, self.schema), -bound(index - 1, self.schema));
                if upper <= -larger {
                    break;
                }
                count += c;
                if lower < -larger {
                    if c != 0.0 {
                        // The positive side must be counted again for the wider threshold.
                        larger = -lower;
                        continue 'outer;
                    }
                    break;
                }
            }
            return (count, larger);
        }
    }

    /// Drops the buckets inside the zero bucket (their counts are in the zero count).
    fn trim_to_zero_bucket(&mut self) {
        let (schema, threshold) = (self.schema, self.zero_threshold);
        self.positive
            .retain(|&(index, _)| bound(index - 1, schema) >= threshold);
        self.negative
            .retain(|&(index, _)| bound(index - 1, schema) >= threshold);
    }

    /// The buckets at a coarser `schema`: each group of `2^(from - to)` buckets becomes one.
    fn reduce_to(&mut self, schema: i32) {
        if schema >= self.schema {
            return;
        }
        // In i64 and at most 63: a replayed record is not checked again, and must not panic.
        let shift = (i64::from(self.schema) - i64::from(schema)).min(63);
        for side in [&mut self.positive, &mut self.negative] {
            let mut reduced: Vec<(i64, f64)> = Vec::with_capacity(side.len());
            for &(index, count) in side.iter() {
                let target = ((index - 1) >> shift) + 1;
                match reduced.last_mut() {
                    Some(last) if last.0 == target => last.1 += count,
                    _ => reduced.push((target, count)),
                }
            }
            *side = reduced;
        }
        self.schema = schema;
    }
}

/// `(index, count)` of every bucket the spans cover; integer histograms give deltas to the
/// previous bucket. Assumes [`check`] passed (stops early otherwise).
fn expand(spans: &[BucketSpan], deltas: &[i64], counts: &[f64]) -> Vec<(i64, f64)> {
    let mut out = Vec::with_capacity(counts.len().max(deltas.len()));
    let (mut index, mut position, mut running) = (0i64, 0usize, 0i64);
    for span in spans {
        index += i64::from(span.offset);
        for _ in 0..span.length {
            let count = if counts.is_empty() {
                let Some(delta) = deltas.get(position) else {
                    return out;
                };
                running = running.saturating_add(*delta);
                running as f64
            } else {
                let Some(count) = counts.get(position) else {
                    return out;
                };
                *count
            };
            out.push((index, count));
            position += 1;
            index += 1;
        }
    }
    out
}

/// Adds `other`'s buckets to `into` (both at the same schema), leaving out those of
/// `other` that lie inside the zero bucket (counted in its zero count already).
fn add_side(
    into: &[(i64, f64)],
    other: &[(i64, f64)],
    schema: i32,
    threshold: f64,
) -> Vec<(i64, f64)> {
    let other = other
        .iter()
        .skip_while(|&&(index, _)| bound(index, schema) <= threshold);
    let mut out = Vec::with_capacity(into.len() + other.size_hint().0);
    let mut mine = into.iter().peekable();
    for &(index, count) in other {
        while let Some(&(i, c)) = mine.next_if(|&&(i, _)| i < index) {
            out.push((i, c));
        }
        match mine.next_if(|&&(i, _)| i == index) {
            Some(&(_, c)) => out.push((index, c + count)),
            None => out.push((index, count)),
        }
    }
    out.extend(mine);
    out
}

/// Spans, plus deltas (integer) or counts (float), of buckets in index order.
fn compress(buckets: &[(i64, f64)], float: bool) -> (Vec<BucketSpan>, Vec<i64>, Vec<f64>) {
    let mut spans: Vec<BucketSpan> = Vec::new();
    let mut next = 0i64; // the index after the last span
    for &(index, _) in buckets {
        match spans.last_mut() {
            Some(span) if index == next => span.length += 1,
            _ => {
                let start = if spans.is_empty() { 0 } else { next };
                let offset = i32::try_from(index - start).unwrap_or(i32::MAX);
                spans.push(BucketSpan { offset, length: 1 });
            }
        }
        next = index + 1;
    }
    if float {
        return (spans, Vec::new(), buckets.iter().map(|b| b.1).collect());
    }
    let mut previous = 0i64;
    let deltas = buckets
        .iter()
        .map(|&(_, count)| {
            let count = count as i64;
            let delta = count.wrapping_sub(previous);
            previous = count;
            delta
        })
        .collect();
    (spans, deltas, Vec::new())
}

/// `stored + pushed` as Prometheus adds native histograms. Both must pass [`check`].
pub(crate) fn add(stored: &NativeHistogram, pushed: &NativeHistogram) -> NativeHistogram {
    let float = is_float(stored) || is_float(pushed);
    let mut sum = Expanded::of(stored);
    let other = Expanded::of(pushed);
    // reconcileZeroBuckets: both end with the same threshold, at a bucket boundary.
    let (mut other_zero_count, mut other_threshold) = (other.zero_count, other.zero_threshold);
    for _ in 0..MAX_RECONCILE_ROUNDS {
        if other_threshold == sum.zero_threshold {
            break;
        }
        if sum.zero_threshold > other_threshold {
            (other_zero_count, other_threshold) = other.zero_count_for(sum.zero_threshold);
        }
        if other_threshold > sum.zero_threshold {
            (sum.zero_count, sum.zero_threshold) = sum.zero_count_for(other_threshold);
            sum.trim_to_zero_bucket();
        }
    }
    sum.zero_count += other_zero_count;
    // The coarser schema wins.
    let schema = sum.schema.min(other.schema);
    sum.reduce_to(schema);
    let mut other = other;
    other.reduce_to(schema);
    let threshold = sum.zero_threshold;
    let positive = add_side(&sum.positive, &other.positive, schema, threshold);
    let negative = add_side(&sum.negative, &other.negative, schema, threshold);
    let (mut positive_spans, positive_deltas, positive_counts) = compress(&positive, float);
    let (negative_spans, negative_deltas, negative_counts) = compress(&negative, float);
    let had_spans =
        |h: &NativeHistogram| !h.positive_spans.is_empty() || !h.negative_spans.is_empty();
    if positive_spans.is_empty()
        && negative_spans.is_empty()
        && (had_spans(stored) || had_spans(pushed))
    {
        // An empty native histogram keeps its no-op span, which marks it as native.
        positive_spans.push(BucketSpan {
            offset: 0,
            length: 0,
        });
    }
    let integer_zero = stored.zero_count.is_some() || pushed.zero_count.is_some();
    NativeHistogram {
        schema,
        zero_threshold: threshold,
        zero_count: (!float && (integer_zero || sum.zero_count != 0.0))
            .then_some(sum.zero_count as u64),
        zero_count_float: float.then_some(sum.zero_count),
        negative_spans,
        negative_deltas,
        negative_counts,
        positive_spans,
        positive_deltas,
        positive_counts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(offset: i32, length: u32) -> BucketSpan {
        BucketSpan { offset, length }
    }

    /// An integer histogram with positive buckets given as absolute counts.
    fn int_hist(
        schema: i32,
        threshold: f64,
        zero: u64,
        spans: &[(i32, u32)],
        counts: &[i64],
    ) -> NativeHistogram {
        let mut previous = 0;
        NativeHistogram {
            schema,
            zero_threshold: threshold,
            zero_count: Some(zero),
            positive_spans: spans.iter().map(|&(o, l)| span(o, l)).collect(),
            positive_deltas: counts
                .iter()
                .map(|&c| {
                    let d = c - previous;
                    previous = c;
                    d
                })
                .collect(),
            ..NativeHistogram::default()
        }
    }

    fn buckets(h: &NativeHistogram) -> (i32, f64, f64, Vec<(i64, f64)>) {
        let e = Expanded::of(h);
        (e.schema, e.zero_threshold, e.zero_count, e.positive)
    }

    #[test]
    fn same_schema_adds_bucket_by_bucket_and_unions_spans() {
        // Buckets 1,2 and 5 in one, 2,3 in the other.
        let a = int_hist(0, 0.0, 1, &[(1, 2), (2, 1)], &[3, 4, 5]);
        let b = int_hist(0, 0.0, 2, &[(2, 2)], &[10, 20]);
        assert_eq!(check(&a), Ok(()));
        assert_eq!(check(&b), Ok(()));
        let sum = add(&a, &b);
        assert_eq!(
            buckets(&sum),
            (0, 0.0, 3.0, vec![(1, 3.0), (2, 14.0), (3, 20.0), (5, 5.0)])
        );
        // Integer in, integer out: deltas, and spans as consecutive runs.
        assert_eq!(sum.positive_spans, vec![span(1, 3), span(1, 1)]);
        assert_eq!(sum.positive_deltas, vec![3, 11, 6, -15]);
        assert!(sum.positive_counts.is_empty());
        assert_eq!(sum.zero_count, Some(3));
        assert_eq!(sum.zero_count_float, None);
    }

    #[test]
    fn the_coarser_schema_wins() {
        // Schema 1 buckets 1..=4 are schema 0 buckets 1 (1,2) and 2 (3,4).
        let fine = int_hist(1, 0.0, 0, &[(1, 4)], &[1, 2, 3, 4]);
        let coarse = int_hist(0, 0.0, 0, &[(1, 1)], &[10]);
        for sum in [add(&fine, &coarse), add(&coarse, &fine)] {
            assert_eq!(buckets(&sum), (0, 0.0, 0.0, vec![(1, 13.0), (2, 7.0)]));
        }
        // Indexes at or below zero reduce as Go's arithmetic shift does: schema 2 buckets
        // -3..=0 are schema 0 bucket 0, bucket -4 is bucket -1.
        let mut e = Expanded::of(&int_hist(2, 0.0, 0, &[(-4, 5)], &[1, 1, 1, 1, 1]));
        e.reduce_to(0);
        assert_eq!(e.positive, vec![(-1, 1.0), (0, 4.0)]);
    }

    #[test]
    fn a_wider_zero_bucket_swallows_the_narrower_ones_buckets() {
        // a: zero threshold 0.5, nothing else. b: threshold 0, buckets (0.5,1] and (1,2].
        let a = int_hist(0, 0.5, 4, &[], &[]);
        let b = int_hist(0, 0.0, 1, &[(0, 2)], &[2, 3]);
        // b's bucket 0 is (0.5,1]: its lower bound 0.5 is at the threshold, so it stays.
        let sum = add(&a, &b);
        assert_eq!(buckets(&sum), (0, 0.5, 5.0, vec![(0, 2.0), (1, 3.0)]));
        // A threshold of 0.7 cuts the populated bucket (0.5,1]: it moves up to 1 and the
        // bucket joins the zero bucket, on whichever side it is.
        let c = int_hist(0, 0.7, 4, &[], &[]);
        for sum in [add(&c, &b), add(&b, &c)] {
            assert_eq!(buckets(&sum), (0, 1.0, 7.0, vec![(1, 3.0)]), "{sum:?}");
        }
    }

    #[test]
    fn float_with_integer_gives_float() {
        let a = int_hist(0, 0.0, 1, &[(0, 1)], &[2]);
        let b = NativeHistogram {
            schema: 0,
            zero_count_float: Some(0.5),
            positive_spans: vec![span(0, 1)],
            positive_counts: vec![1.5],
            ..NativeHistogram::default()
        };
        let sum = add(&a, &b);
        assert_eq!(sum.positive_counts, vec![3.5]);
        assert!(sum.positive_deltas.is_empty());
        assert_eq!(sum.zero_count_float, Some(1.5));
        assert_eq!(sum.zero_count, None);
    }

    #[test]
    fn empty_native_histograms_stay_native() {
        let empty = int_hist(3, 0.0, 0, &[(0, 0)], &[]);
        let sum = add(&empty, &empty);
        assert!(sum.is_native());
        assert_eq!(sum.schema, 3);
    }

    #[test]
    fn what_cannot_be_added_is_refused() {
        let mut custom = int_hist(-53, 0.0, 0, &[(0, 1)], &[1]);
        assert!(check(&custom).unwrap_err().contains("schema -53"));
        custom.schema = 9;
        assert!(check(&custom).is_err());
        let short = int_hist(0, 0.0, 0, &[(0, 3)], &[1]);
        assert!(check(&short).unwrap_err().contains("cover 3 buckets but 1"));
        let mut negative = int_hist(0, 0.0, 0, &[(0, 2)], &[1]);
        negative.positive_deltas = vec![1, -2];
        assert!(check(&negative).unwrap_err().contains("negative"));
        let nan = NativeHistogram {
            zero_threshold: f64::NAN,
            ..NativeHistogram::default()
        };
        assert!(check(&nan).is_err());
    }

    #[test]
    fn unchecked_input_does_not_panic() {
        // What replay may meet in a damaged or hostile record: never checked, never a panic.
        let wild = NativeHistogram {
            schema: i32::MAX,
            zero_threshold: f64::NAN,
            zero_count: Some(u64::MAX),
            positive_spans: vec![span(i32::MIN, 3), span(i32::MAX, 2)],
            positive_deltas: vec![i64::MAX, i64::MIN, 1],
            ..NativeHistogram::default()
        };
        let tame = int_hist(i32::MIN, 1.0, 1, &[(0, 1)], &[1]);
        let _ = add(&wild, &tame);
        let _ = add(&tame, &wild);
        let _ = add(&wild, &wild);
    }

    #[test]
    fn indexes_beyond_every_float_are_refused() {
        let far = int_hist(0, 0.0, 0, &[(i32::MAX, 1), (i32::MAX, 1)], &[1, 1]);
        assert!(check(&far).unwrap_err().contains("bucket index"));
        let low = int_hist(-4, 0.0, 0, &[(i32::MIN, 1)], &[1]);
        assert!(check(&low).is_err());
        // The widest indexes allowed still add up with offsets that fit.
        let a = int_hist(-4, 0.0, 0, &[(-MAX_INDEX as i32, 1)], &[1]);
        let b = int_hist(8, 0.0, 0, &[(MAX_INDEX as i32 - 1, 1)], &[1]);
        let sum = add(&a, &b);
        assert_eq!(check(&sum), Ok(()));
        let total: f64 = buckets(&sum).3.iter().map(|b| b.1).sum();
        assert_eq!(total, 2.0);
    }
}
