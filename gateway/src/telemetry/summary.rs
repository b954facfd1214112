//! Summaries with quantiles over a sliding window, as client_golang's (`MaxAge` 10 minutes
//! in 5 age buckets): upstream exposes its push duration and size this way, and dashboards
//! written for upstream query their `quantile` series.
//!
//! Each age bucket keeps a uniform sample of at most [`SAMPLES_PER_BUCKET`] observations
//! (reservoir sampling), so memory stays fixed (32 KiB per age bucket) however many pushes
//! arrive. The rank error of a quantile is then about 0.2 % (one standard deviation) once
//! the window is full, well within upstream's objectives (0.1 ± 0.01, 0.5 ± 0.05,
//! 0.9 ± 0.01), and up to 0.5 % while it fills (the first two minutes of heavy load).
//! `_sum` and `_count` cover every observation since the start, as in Go.

use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::model::{Quantile, Summary};

/// The quantiles upstream exposes.
pub const QUANTILES: [f64; 3] = [0.1, 0.5, 0.9];
/// How far back the quantiles look.
const MAX_AGE: Duration = Duration::from_secs(600);
/// The window moves in this many steps.
const AGE_BUCKETS: u32 = 5;
/// Observations kept per age bucket.
const SAMPLES_PER_BUCKET: usize = 4096;

/// One summary series.
pub struct SlidingSummary {
    inner: Mutex<Inner>,
}

struct Inner {
    count: u64,
    sum: f64,
    /// Oldest first; the last one takes new observations.
    buckets: Vec<AgeBucket>,
}

struct AgeBucket {
    started: Instant,
    seen: u64,
    samples: Vec<f64>,
}

impl AgeBucket {
    fn new(started: Instant) -> AgeBucket {
        AgeBucket {
            started,
            seen: 0,
            samples: Vec::new(),
        }
    }

    fn observe(&mut self, value: f64) {
        self.seen += 1;
        if self.samples.len() < SAMPLES_PER_BUCKET {
            self.samples.push(value);
            return;
        }
        // Reservoir sampling: the n-th value replaces a kept one with probability k/n. A
        // hash of the running count is random enough and needs no generator state.
        let slot = xxhash_rust::xxh3::xxh3_64(&self.seen.to_le_bytes()) % self.seen;
        if let Some(kept) = self.samples.get_mut(slot as usize) {
            *kept = value;
        }
    }
}

impl Default for SlidingSummary {
    fn default() -> Self {
        SlidingSummary::new()
    }
}

impl SlidingSummary {
    /// An empty summary.
    pub fn new() -> SlidingSummary {
        SlidingSummary {
            inner: Mutex::new(Inner {
                count: 0,
                sum: 0.0,
                buckets: vec![AgeBucket::new(Instant::now())],
            }),
        }
    }

    /// Records one value.
    pub fn observe(&self, value: f64) {
        self.observe_at(value, Instant::now());
    }

    /// The summary now: the quantiles of the window (NaN when it holds nothing, as Go).
    pub fn snapshot(&self) -> Summary {
        self.snapshot_at(Instant::now())
    }

    fn observe_at(&self, value: f64, now: Instant) {
        let mut inner = self.inner.lock();
        inner.rotate(now);
        inner.count += 1;
        inner.sum += value;
        if let Some(current) = inner.buckets.last_mut() {
            current.observe(value);
        }
    }

    fn snapshot_at(&self, now: Instant) -> Summary {
        let (count, sum, mut values) = {
            let mut inner = self.inner.lock();
            inner.rotate(now);
            let values: Vec<f64> = inner
                .buckets
                .iter()
                .flat_map(|b| b.samples.iter().copied())
                .collect();
            (inner.count, inner.sum, values)
        };
        values.sort_by(f64::total_cmp);
        let quantiles = QUANTILES
            .iter()
            .map(|&quantile| Quantile {
                quantile,
                value: rank(&values, quantile),
            })
            .collect();
        Summary {
            count,
            sum,
            quantiles,
        }
    }
}

impl Inner {
    /// Starts a new age bucket every `MAX_AGE / AGE_BUCKETS` and forgets those older than
    /// `MAX_AGE`.
    fn rotate(&mut self, now: Instant) {
        let step = MAX_AGE / AGE_BUCKETS;
        let newest = self.buckets.last().map(|b| b.started);
        if newest.is_some_and(|started| now.saturating_duration_since(started) >= step) {
            self.buckets.push(AgeBucket::new(now));
        }
        self.buckets
            .retain(|b| now.saturating_duration_since(b.started) < MAX_AGE + step);
        if self.buckets.is_empty() {
            self.buckets.push(AgeBucket::new(now));
        }
    }
}

/// The value at rank `quantile` of sorted `values`, as client_golang's targeted quantiles
/// report an observed value (no interpolation).
fn rank(values: &[f64], quantile: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let index = (quantile * values.len() as f64).ceil() as usize;
    values[index.saturating_sub(1).min(values.len() - 1)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_of_a_uniform_stream_are_within_upstreams_objectives() {
        let summary = SlidingSummary::new();
        let start = Instant::now();
        // 200,000 values over ten minutes, far more than are kept: the sample of every age
        // bucket must stay representative.
        let mut now = start;
        for i in 0..200_000u32 {
            now = start + Duration::from_millis(u64::from(i) * 3);
            summary.observe_at(f64::from(i.wrapping_mul(7919) % 1000), now);
        }
        let snapshot = summary.snapshot_at(now);
        assert_eq!(snapshot.count, 200_000);
        assert_eq!(snapshot.sum, 200.0 * f64::from((0..1000).sum::<u32>()));
        for (q, objective) in snapshot.quantiles.iter().zip([0.01, 0.05, 0.01]) {
            let true_rank = q.value / 1000.0;
            assert!(
                (true_rank - q.quantile).abs() <= objective,
                "quantile {} is {}",
                q.quantile,
                q.value
            );
        }
    }

    #[test]
    fn old_observations_leave_the_window_but_not_the_count() {
        let summary = SlidingSummary::new();
        let start = Instant::now();
        summary.observe_at(5.0, start);
        let snapshot = summary.snapshot_at(start + Duration::from_secs(60));
        assert!(snapshot.quantiles.iter().all(|q| q.value == 5.0));
        let later = start + MAX_AGE + MAX_AGE / AGE_BUCKETS + Duration::from_secs(1);
        let snapshot = summary.snapshot_at(later);
        assert_eq!((snapshot.count, snapshot.sum), (1, 5.0));
        assert!(snapshot.quantiles.iter().all(|q| q.value.is_nan()));
        summary.observe_at(7.0, later);
        assert!(summary
            .snapshot_at(later)
            .quantiles
            .iter()
            .all(|q| q.value == 7.0));
    }

    #[test]
    fn an_empty_summary_has_nan_quantiles() {
        let snapshot = SlidingSummary::new().snapshot();
        assert_eq!(snapshot.count, 0);
        assert_eq!(snapshot.quantiles.len(), 3);
        assert!(snapshot.quantiles.iter().all(|q| q.value.is_nan()));
    }
}
