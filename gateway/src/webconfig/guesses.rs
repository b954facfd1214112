//! Password guessing from one address: every wrong password costs a bcrypt check, tens of
//! milliseconds of CPU. Each address may fail [`FREE_FAILURES`] checks at once, then one
//! per [`REFILL`]; while it has none left, its credentials that are not cached yet are not
//! checked at all (the client gets 429 with `Retry-After`). Clients whose verdict is cached,
//! and other addresses, are not affected, and a few typos stay free.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Failed checks an address may make in a burst.
const FREE_FAILURES: f64 = 10.0;
/// How long until an address may fail one more check.
const REFILL: Duration = Duration::from_secs(1);
/// Addresses tracked at most; the table starts over when full (an attacker with more
/// addresses than this still waits for the bounded bcrypt queue).
const MAX_ADDRESSES: usize = 10_000;

/// Per address: failures still allowed, and when that was computed.
static BUDGETS: LazyLock<Mutex<HashMap<IpAddr, (f64, Instant)>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

fn refilled(budget: (f64, Instant), now: Instant) -> f64 {
    let (left, at) = budget;
    let gained = now.saturating_duration_since(at).as_secs_f64() / REFILL.as_secs_f64();
    (left + gained).min(FREE_FAILURES)
}

/// Whether `peer` may have uncached credentials checked now.
pub fn may_check(peer: IpAddr) -> bool {
    let now = Instant::now();
    BUDGETS
        .lock()
        .get(&peer)
        .is_none_or(|&budget| refilled(budget, now) >= 1.0)
}

/// Counts a failed check against `peer`.
pub fn record_failure(peer: IpAddr) {
    let now = Instant::now();
    let mut budgets = BUDGETS.lock();
    if budgets.len() >= MAX_ADDRESSES && !budgets.contains_key(&peer) {
        budgets.clear();
    }
    let left = budgets
        .get(&peer)
        .map_or(FREE_FAILURES, |&budget| refilled(budget, now));
    budgets.insert(peer, ((left - 1.0).max(0.0), now));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_may_fail_a_few_times_then_once_per_refill() {
        let peer: IpAddr = "192.0.2.7".parse().expect("an address");
        let other: IpAddr = "192.0.2.8".parse().expect("an address");
        for _ in 0..FREE_FAILURES as usize {
            assert!(may_check(peer));
            record_failure(peer);
        }
        assert!(!may_check(peer), "the burst is spent");
        assert!(may_check(other), "other addresses are not affected");
        let budget = BUDGETS.lock()[&peer];
        assert!(
            refilled(budget, budget.1 + REFILL) >= 1.0,
            "one more after a refill"
        );
    }
}
