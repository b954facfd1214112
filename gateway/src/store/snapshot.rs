//! Read-only cuts of the store: the snapshot a scrape renders (copying only the names that
//! changed), every group for persistence, and the counts for the gateway's own metrics.

use std::ops::Bound::{Excluded, Unbounded};
use std::sync::Arc;

use parking_lot::RwLockReadGuard;

use crate::model::{GroupingKey, MetricType, Str};

use super::group::group_views;
use super::{GroupView, State, Store, StoredFamily};

/// The families of one metric name across groups, for the exposition.
#[derive(Debug, Clone)]
pub struct NameSnapshot {
    /// The metric name.
    pub name: Str,
    /// Changes whenever any family of this name changes.
    pub version: u64,
    /// The type of the first family in grouping-key order, which the exposition uses.
    pub metric_type: MetricType,
    /// The families in grouping-key order; empty when the caller said its copy is fresh.
    pub families: Vec<Arc<StoredFamily>>,
}

/// Push and failure times of one group.
#[derive(Debug, Clone)]
pub struct GroupTimes {
    /// The grouping key.
    pub key: Arc<GroupingKey>,
    /// Time of the last successful change, 0 if none.
    pub push_time: f64,
    /// Time of the last failed change, 0 if none.
    pub failure_time: f64,
}

/// A consistent cut of the store for the exposition.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Every pushed metric name, sorted.
    pub names: Vec<NameSnapshot>,
    /// Every group's timestamps, in grouping-key order; empty when the caller said its
    /// copy of this version is fresh.
    pub times: Vec<GroupTimes>,
    /// Number of groups.
    pub groups: usize,
    /// Changes whenever any group's timestamps change.
    pub times_version: u64,
    /// True when unchecked pushes may have stored inconsistent families.
    pub maybe_inconsistent: bool,
}

/// Counts for the gateway's own metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Number of groups.
    pub groups: usize,
    /// Number of stored metrics (a summary or histogram counts once).
    pub series: usize,
}

impl Store {
    /// Group and series counts.
    pub fn stats(&self) -> Stats {
        let state = self.shared.state.read();
        Stats {
            groups: state.groups.len(),
            series: state.series_total,
        }
    }

    /// Every group with its families, in grouping-key order.
    /// One consistent cut under one read lock, costing a few pointer copies per family
    /// (the series are shared, not copied); readers that need no consistent cut page
    /// through [`Store::group_page`] instead.
    pub fn groups(&self) -> Vec<GroupView> {
        group_views(&self.shared.state.read())
    }

    /// A consistent cut for the exposition. `is_fresh(name, version)` tells whether the
    /// caller already holds that version of a name, in which case its families are not
    /// copied: a scrape after a small push copies only what changed. `times_fresh` does the
    /// same for the groups' timestamps.
    pub fn snapshot(
        &self,
        is_fresh: impl Fn(&str, u64) -> bool,
        times_fresh: impl FnOnce(u64) -> bool,
    ) -> Snapshot {
        let mut state = self.shared.state.read();
        let names = state
            .names
            .iter()
            .map(|(name, entry)| NameSnapshot {
                name: name.clone(),
                version: entry.version,
                metric_type: entry
                    .owners
                    .values()
                    .next()
                    .map_or(MetricType::Untyped, |f| f.metric_type),
                families: if is_fresh(name, entry.version) {
                    Vec::new()
                } else {
                    entry.owners.values().cloned().collect()
                },
            })
            .collect();
        let times_version = state.times_version;
        let groups = state.groups.len();
        let maybe_inconsistent = state.maybe_inconsistent;
        let times = if times_fresh(times_version) {
            Vec::new()
        } else {
            copy_times(&mut state)
        };
        drop(state);
        Snapshot {
            names,
            times,
            groups,
            times_version,
            maybe_inconsistent,
        }
    }
}

/// Group timestamps copied per hold of the read lock. Copying every group's is most of a
/// scrape's time under the lock (some 60 ns a group: 0.6 ms at 10k groups); a push waiting
/// for the lock gets it between two slices instead of after all of them.
pub(super) const TIMES_PER_HOLD: usize = 1024;

/// Every group's timestamps in grouping-key order, copied a slice at a time, the lock
/// yielded to waiting writers between slices. A copy that spans a push is not one cut of
/// the store, but it still names each group once, with timestamps it had: the exposition
/// stays valid, and the next scrape copies again (the push changed the version).
fn copy_times(state: &mut RwLockReadGuard<'_, State>) -> Vec<GroupTimes> {
    let mut times: Vec<GroupTimes> = Vec::with_capacity(state.groups.len());
    loop {
        let rest = match times.last() {
            None => state.groups.range::<GroupingKey, _>(..),
            Some(last) => state
                .groups
                .range::<GroupingKey, _>((Excluded(&*last.key), Unbounded)),
        };
        let before = times.len();
        times.extend(rest.take(TIMES_PER_HOLD).map(|(key, group)| GroupTimes {
            key: key.clone(),
            push_time: group.push_time,
            failure_time: group.failure_time,
        }));
        if times.len() - before < TIMES_PER_HOLD {
            return times;
        }
        RwLockReadGuard::bump(state);
    }
}
