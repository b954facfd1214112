//! The `Idempotency-Key` table: a push carrying a key its group saw within the window is
//! answered as the first one was and changes nothing, so that a retried aggregating push is
//! counted once.
//!
//! Keys belong to the group they were pushed to (deleting or expiring the group forgets
//! them) and are remembered only for applied pushes: a refused push changed nothing, so its
//! retry is checked again. Every change here is a function of the journaled pushes and
//! their times (never of the local clock), so that a replayed log, a restored snapshot and
//! every Redis replica remember the same keys and reach the same verdicts. The number of
//! keys is bounded; when the table is full of keys still in their window, a new key is
//! refused (429) rather than forgotten early, which could count a retry twice.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::sync::Arc;

use crate::model::{GroupingKey, Str};

use super::{PushError, State};

/// The longest key accepted, in bytes (the IETF draft sets none; UUIDs take 36).
pub const MAX_IDEMPOTENCY_KEY_BYTES: usize = 256;

/// How long and how many keys are remembered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IdempotencyConfig {
    /// Seconds a key is remembered after the push that carried it.
    pub window: f64,
    /// Most keys remembered at once.
    pub max_keys: usize,
}

impl Default for IdempotencyConfig {
    fn default() -> Self {
        IdempotencyConfig {
            window: 600.0,
            max_keys: 100_000,
        }
    }
}

/// A key a group remembers: when it was pushed, and the journal sequence of that push
/// (for a retry to wait until it is durable; `None` once restored, when it is).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct SeenKey {
    pub(super) time: f64,
    pub(super) seq: Option<u64>,
}

/// Every remembered key in the order they fall out of the window: by time, then group and
/// key, so that the order does not depend on the order they were learned in.
#[derive(Default)]
pub(super) struct KeyTable {
    by_time: BTreeSet<(Time, Arc<GroupingKey>, Str)>,
}

/// A time with a total order, for the table.
#[derive(Debug, Clone, Copy)]
struct Time(f64);

impl PartialEq for Time {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Time {}
impl PartialOrd for Time {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Time {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// What the table says about a keyed push at `now`.
pub(super) enum Verdict {
    /// Seen within the window: answer as before, with the sequence to wait for.
    Seen(Option<u64>),
    /// New: the push goes ahead.
    New,
}

/// Forgets the keys whose window ended at `now`, then looks `key` up in `group`.
///
/// # Errors
/// [`PushError::Full`] when the key is new and the table holds `max_keys` live keys.
pub(super) fn admit(
    state: &mut State,
    group: &GroupingKey,
    key: &Str,
    now: f64,
    config: IdempotencyConfig,
) -> Result<Verdict, PushError> {
    prune(state, now, config.window);
    let seen = state
        .groups
        .get(group)
        .and_then(|g| g.keys.get(key))
        .filter(|seen| seen.time + config.window > now);
    if let Some(seen) = seen {
        return Ok(Verdict::Seen(seen.seq));
    }
    if state.keys.by_time.len() >= config.max_keys {
        return Err(PushError::Full(format!(
            "the gateway remembers {} idempotency keys from the last {}s, its limit (--aggregate.idempotency-max-keys); retry later",
            state.keys.by_time.len(),
            config.window
        )));
    }
    Ok(Verdict::New)
}

/// Drops every key whose window ended at `now`.
pub(super) fn prune(state: &mut State, now: f64, window: f64) {
    while let Some(first) = state.keys.by_time.first() {
        if first.0 .0 + window > now {
            break;
        }
        let Some((time, group, key)) = state.keys.by_time.pop_first() else {
            break;
        };
        if let Some(g) = state.groups.get_mut(&group) {
            if g.keys.get(&key).is_some_and(|seen| seen.time == time.0) {
                g.keys.remove(&key);
            }
        }
    }
}

/// Remembers `key` for the group `group` (which exists: the push was applied).
pub(super) fn remember(state: &mut State, group: &Arc<GroupingKey>, key: Str, seen: SeenKey) {
    let Some(g) = state.groups.get_mut(&**group) else {
        return;
    };
    if let Some(old) = g.keys.insert(key.clone(), seen) {
        state
            .keys
            .by_time
            .remove(&(Time(old.time), group.clone(), key.clone()));
    }
    state
        .keys
        .by_time
        .insert((Time(seen.time), group.clone(), key));
}

/// Forgets the keys of a group that is being removed.
pub(super) fn forget_group(state: &mut State, group: &GroupingKey) {
    let Some(g) = state.groups.get_mut(group) else {
        return;
    };
    let keys = std::mem::take(&mut g.keys);
    let Some((group, _)) = state.groups.get_key_value(group) else {
        return;
    };
    let group = group.clone();
    for (key, seen) in keys {
        state
            .keys
            .by_time
            .remove(&(Time(seen.time), group.clone(), key));
    }
}

/// Number of keys remembered.
pub(super) fn count(state: &State) -> usize {
    state.keys.by_time.len()
}
