//! Restore: journaled changes replayed and snapshot groups loaded, without checks or
//! journaling. A snapshot's groups come prepared ([`RestoredGroup`]: their series
//! identities computed on the threads that decoded them) and go in under one lock with the
//! indexes sized for them, so that a restart's time under the lock is little more than
//! linking them in.

use std::sync::Arc;

use super::apply::{apply, apply_prepared, PreparedFamily};
use super::check::{base_name, derived_names};
use super::group::{
    clashing_group, clear, count_ttl, group_entry, link_family, remove_family, remove_group,
};
use super::idempotency::{self, SeenKey};
use super::select::matching;
use super::{
    series_id, Change, Consistency, GroupTtl, GroupView, PushMode, SeriesId, State, Store,
    StoredFamily,
};
use crate::model::{GroupingKey, MetricType, Str};

impl Store {
    /// Re-applies a journaled change during restore, without checks or journaling.
    pub fn replay(&self, change: Change<'_>) {
        let mut state = self.shared.state.write();
        match change {
            Change::Push {
                key,
                families,
                mode,
                time,
                inconsistent,
                ttl,
                idempotency_key,
            } => {
                let key = Arc::new(key.into_owned());
                let push = ReplayedPush {
                    key: key.clone(),
                    time,
                    inconsistent,
                    idempotency_key,
                };
                self.replay_push(&mut state, push, |state| {
                    apply(state, key, families.into_owned(), mode, time, ttl);
                });
            }
            Change::Failure { key, time } => {
                let key = Arc::new(key.into_owned());
                group_entry(&mut state, &key, time).failure_time = time;
                state.times_version = state.bump();
            }
            Change::Delete { key } => remove_group(&mut state, &key),
            Change::Wipe => clear(&mut state),
            Change::DeleteMatching { selectors } => {
                for group in matching(&state, &selectors) {
                    remove_group(&mut state, &group.key);
                }
            }
        }
    }

    /// Re-applies a journaled change prepared by [`PreparedChange::new`].
    pub fn replay_prepared(&self, change: PreparedChange) {
        match change.0 {
            Prepared::Other(change) => self.replay(change),
            Prepared::Push {
                push,
                families,
                mode,
                ttl,
            } => {
                let mut state = self.shared.state.write();
                let (key, time) = (push.key.clone(), push.time);
                self.replay_push(&mut state, push, |state| {
                    apply_prepared(state, key, families, mode, time, ttl);
                });
            }
        }
    }

    /// A replayed push's bookkeeping around `apply`: the inconsistency mark, and its
    /// idempotency key pruned and remembered as the live push did.
    fn replay_push(&self, state: &mut State, push: ReplayedPush, apply: impl FnOnce(&mut State)) {
        state.maybe_inconsistent |= push.inconsistent;
        if push.idempotency_key.is_some() {
            // As the live push did before its verdict.
            idempotency::prune(state, push.time, self.shared.config.idempotency.window);
        }
        apply(state);
        if let Some(idempotency_key) = push.idempotency_key {
            let seen = SeenKey {
                time: push.time,
                seq: None,
            };
            idempotency::remember(state, &push.key, idempotency_key, seen);
        }
    }

    /// Restores one group from a snapshot: its families with their push times, and its
    /// timestamps.
    pub fn restore_group(&self, view: GroupView) {
        self.restore_groups(vec![RestoredGroup::new(view)]);
    }

    /// Makes room in the series index for a restore of about `series` series, before the
    /// first of them arrives.
    pub fn reserve_restore(&self, series: usize) {
        self.shared.state.write().series.reserve(series);
    }

    /// Restores groups from a snapshot under one lock, with the indexes sized for them
    /// first: the bulk of a restart, so it only links in what [`RestoredGroup::new`]
    /// prepared (on the decoding threads).
    pub fn restore_groups(&self, groups: Vec<RestoredGroup>) {
        let mut state = self.shared.state.write();
        self.restore_all(&mut state, groups);
    }

    /// Replaces every group with `views` under one lock, so that no reader sees the store
    /// empty or half restored (a replica reloading a snapshot).
    pub fn replace_all(&self, views: Vec<GroupView>) {
        let groups: Vec<RestoredGroup> = views.into_iter().map(RestoredGroup::new).collect();
        let mut state = self.shared.state.write();
        clear(&mut state);
        self.restore_all(&mut state, groups);
    }

    fn restore_all(&self, state: &mut State, groups: Vec<RestoredGroup>) {
        let ids: Vec<SeriesId> = groups.iter().flat_map(|g| g.ids.iter().copied()).collect();
        // All at once, in the index's own order; a family replaced below takes its old
        // series out again, which gives the same counts as adding in group order.
        let repeated = state.series.add_all(&ids);
        let misfits = groups.iter().any(|g| g.misfits);
        let mut names: Vec<Str> = Vec::new();
        let mut keys = Vec::with_capacity(groups.len());
        for group in groups {
            names.extend(group.view.families.iter().map(|f| f.name.clone()));
            keys.push(group.view.key.clone());
            self.restore_into(state, group);
        }
        // A snapshot does not say whether unchecked pushes made the store inconsistent:
        // found out here, so that the exposition's filter is on when it must be.
        if misfits || state.series.any_repeated(&repeated) || clashes(state, &names, &keys) {
            state.maybe_inconsistent = true;
        }
    }

    fn restore_into(&self, state: &mut State, restored: RestoredGroup) {
        // What was stored unchecked may be inconsistent: keep the exposition's filter on.
        state.maybe_inconsistent |= self.shared.config.consistency == Consistency::Unchecked;
        let view = restored.view;
        let key = view.key;
        // A family can only replace one of the same name in a group restored over an
        // existing one, or in a damaged block naming it twice: otherwise nothing is removed.
        let replaces = state.groups.contains_key(&key)
            || !view.families.windows(2).all(|w| w[0].name < w[1].name);
        for stored in view.families {
            if replaces {
                remove_family(state, &key, &stored.name);
            }
            link_family(state, &key, stored);
        }
        let group = group_entry(state, &key, view.created);
        group.push_time = view.push_time;
        group.failure_time = view.failure_time;
        group.created = view.created;
        let had_ttl = std::mem::replace(&mut group.ttl, view.ttl).is_some();
        for (idempotency_key, time) in view.keys {
            idempotency::remember(state, &key, idempotency_key, SeenKey { time, seq: None });
        }
        state.times_version = state.bump();
        count_ttl(state, had_ttl, view.ttl.is_some());
    }
}

/// What a replayed push records besides its families.
struct ReplayedPush {
    key: Arc<GroupingKey>,
    time: f64,
    inconsistent: bool,
    idempotency_key: Option<Str>,
}

/// A journaled change made ready for [`Store::replay_prepared`] without the store's lock,
/// on the thread that decoded it: a PUT's or POST's families are stored (packed, sorted)
/// and their series identified there, so that replaying them only links them in. Other
/// changes (an aggregating push adds to what is stored) are replayed as they are.
pub struct PreparedChange(Prepared);

enum Prepared {
    Push {
        push: ReplayedPush,
        families: Vec<PreparedFamily>,
        mode: PushMode,
        ttl: Option<GroupTtl>,
    },
    Other(Change<'static>),
}

impl PreparedChange {
    /// Prepares `change`.
    pub fn new(change: Change<'static>) -> PreparedChange {
        match change {
            Change::Push {
                key,
                families,
                mode,
                time,
                inconsistent,
                ttl,
                idempotency_key,
            } if mode != PushMode::Aggregate => {
                let key = Arc::new(key.into_owned());
                let families = families
                    .into_owned()
                    .into_iter()
                    .map(|family| {
                        let stored = StoredFamily::new(family, time, key.clone());
                        let ids = stored
                            .series()
                            .map(|series| series_id(&stored.name, series.labels()))
                            .collect();
                        PreparedFamily {
                            stored: Arc::new(stored),
                            ids,
                        }
                    })
                    .collect();
                let push = ReplayedPush {
                    key,
                    time,
                    inconsistent,
                    idempotency_key,
                };
                PreparedChange(Prepared::Push {
                    push,
                    families,
                    mode,
                    ttl,
                })
            }
            other => PreparedChange(Prepared::Other(other)),
        }
    }
}

/// Whether the restored `names` and groups `keys` clash with what is stored as the
/// consistency check would have refused: a name of more than one type, a name that is
/// another's `_count`, `_sum` or `_bucket`, or a group whose timestamp series are
/// another's. (A push of the gateway's own names stores nothing.)
fn clashes(state: &State, names: &[Str], keys: &[Arc<GroupingKey>]) -> bool {
    let types = |name: &str| state.names.get(name).map(|e| e.type_counts);
    let suffixed = |name: &str| {
        base_name(name).is_some_and(|(base, is_bucket)| {
            types(base).is_some_and(|t| {
                (t.has(MetricType::Summary) && !is_bucket)
                    || t.has(MetricType::Histogram)
                    || t.has(MetricType::GaugeHistogram)
            })
        })
    };
    let derived_stored = |name: &str| {
        let Some(t) = types(name) else {
            return false;
        };
        MetricType::ALL.into_iter().filter(|&k| t.has(k)).any(|k| {
            derived_names(name, k)
                .iter()
                .any(|d| state.names.contains_key(d.as_str()))
        })
    };
    let clash = |name: &str| {
        types(name).is_some_and(|t| t.kinds() > 1) || suffixed(name) || derived_stored(name)
    };
    // A whole snapshot names each of the store's names in many groups: looking at every
    // stored name once is then less work (a few lookups each, under the write lock).
    let names_clash = if names.len() > state.names.len() {
        state.names.keys().any(|name| clash(name))
    } else {
        names.iter().any(|name| clash(name))
    };
    names_clash || keys.iter().any(|key| clashing_group(state, key).is_some())
}

/// A group read from a snapshot and made ready for [`Store::restore_groups`] without the
/// store's lock, on any thread: the identities of its series are computed here, so that
/// restoring only links it into the indexes.
pub struct RestoredGroup {
    view: GroupView,
    /// The series identities of its families, in order.
    ids: Vec<SeriesId>,
    /// Whether a family holds series a scrape would leave out.
    misfits: bool,
}

impl RestoredGroup {
    /// Prepares `view`. Its families are normally stored against its key already (as
    /// snapshots and upstream's file decode them); one stored against another key is
    /// stored again against this one.
    pub fn new(mut view: GroupView) -> RestoredGroup {
        let key = view.key.clone();
        view.families = std::mem::take(&mut view.families)
            .into_iter()
            .map(|stored| {
                if Arc::ptr_eq(&stored.group, &key) || stored.group == key {
                    return stored;
                }
                let family = stored.to_family();
                Arc::new(StoredFamily::new(family, stored.pushed_at, key.clone()))
            })
            .collect();
        let series = view.families.iter().map(|f| f.len()).sum();
        let mut ids = Vec::with_capacity(series);
        for stored in &view.families {
            ids.extend(
                stored
                    .series()
                    .map(|series| series_id(&stored.name, series.labels())),
            );
        }
        let misfits = view.families.iter().any(|f| f.has_misfits());
        RestoredGroup { view, ids, misfits }
    }

    /// The group.
    pub fn view(&self) -> &GroupView {
        &self.view
    }

    /// How many series it holds.
    pub fn series(&self) -> usize {
        self.ids.len()
    }
}
