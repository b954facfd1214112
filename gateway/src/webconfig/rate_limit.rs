//! `rate_limit` of the web config: one token bucket for the whole server, as
//! exporter-toolkit's (`golang.org/x/time/rate` with `Every(interval)` and `burst`). The
//! bucket starts full with `burst` tokens, gains one every `interval` up to `burst`, and a
//! request that finds it empty is refused (the caller answers 429).
//!
//! The bucket is kept as the time at which it will be full again (the "generic cell rate"
//! form of a token bucket), so that a check is one comparison under a short lock and needs
//! no timer.

use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// The settings: both must be positive for a limit (interval 0 is "no limiter").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Time between two tokens.
    pub interval: Duration,
    /// Tokens the bucket holds at most: requests allowed at once after a quiet spell.
    pub burst: u32,
}

/// A token bucket shared by every connection.
#[derive(Debug)]
pub struct RateLimiter {
    limit: RateLimit,
    /// When the bucket would hold no tokens at all if nothing else came; `<= now` is full.
    empty_until: Mutex<Instant>,
}

impl RateLimiter {
    /// A full bucket.
    pub fn new(limit: RateLimit) -> RateLimiter {
        RateLimiter {
            limit,
            empty_until: Mutex::new(Instant::now()),
        }
    }

    /// The settings of this bucket.
    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    /// Takes a token if there is one; otherwise how long until there is.
    pub fn acquire(&self) -> Result<(), Duration> {
        self.acquire_at(Instant::now())
    }

    fn acquire_at(&self, now: Instant) -> Result<(), Duration> {
        let capacity = self
            .limit
            .interval
            .checked_mul(self.limit.burst)
            .unwrap_or(Duration::MAX);
        let mut empty_until = self.empty_until.lock();
        let debt = empty_until.saturating_duration_since(now);
        let after = debt.saturating_add(self.limit.interval);
        if after > capacity {
            return Err(after - capacity);
        }
        // Only an interval of centuries could overflow; such a bucket refuses.
        let until = now.checked_add(after).ok_or(self.limit.interval)?;
        *empty_until = until;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(interval_ms: u64, burst: u32) -> RateLimiter {
        RateLimiter::new(RateLimit {
            interval: Duration::from_millis(interval_ms),
            burst,
        })
    }

    #[test]
    fn a_full_bucket_allows_burst_requests_then_one_per_interval() {
        let limiter = limiter(1000, 3);
        let start = Instant::now();
        *limiter.empty_until.lock() = start;
        for _ in 0..3 {
            assert_eq!(limiter.acquire_at(start), Ok(()));
        }
        assert_eq!(limiter.acquire_at(start), Err(Duration::from_secs(1)));
        let later = start + Duration::from_millis(400);
        assert_eq!(limiter.acquire_at(later), Err(Duration::from_millis(600)));
        let one_token = start + Duration::from_secs(1);
        assert_eq!(limiter.acquire_at(one_token), Ok(()));
        assert!(limiter.acquire_at(one_token).is_err());
    }

    #[test]
    fn a_quiet_spell_refills_only_up_to_burst() {
        let limiter = limiter(10, 2);
        let start = Instant::now();
        *limiter.empty_until.lock() = start;
        let much_later = start + Duration::from_secs(3600);
        assert_eq!(limiter.acquire_at(much_later), Ok(()));
        assert_eq!(limiter.acquire_at(much_later), Ok(()));
        assert!(limiter.acquire_at(much_later).is_err());
    }

    #[test]
    fn huge_settings_do_not_overflow() {
        let limiter = RateLimiter::new(RateLimit {
            interval: Duration::MAX,
            burst: u32::MAX,
        });
        let now = Instant::now();
        *limiter.empty_until.lock() = now;
        assert!(limiter.acquire_at(now).is_err());
        // Go's longest duration, about 292 years.
        let limiter = RateLimiter::new(RateLimit {
            interval: Duration::from_nanos(i64::MAX as u64),
            burst: 1,
        });
        *limiter.empty_until.lock() = now;
        assert_eq!(limiter.acquire_at(now), Ok(()));
        assert!(limiter.acquire_at(now).is_err());
    }
}
