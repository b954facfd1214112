//! Restore: journaled changes replayed and snapshot groups loaded, without checks or
//! journaling.

use std::sync::Arc;

use super::apply::apply;
use super::group::{clear, count_ttl, group_entry, insert_family, remove_group};
use super::idempotency::{self, SeenKey};
use super::select::matching;
use super::{Change, Consistency, GroupView, State, Store};

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
                state.maybe_inconsistent |= inconsistent;
                let key = Arc::new(key.into_owned());
                if idempotency_key.is_some() {
                    // As the live push did before its verdict.
                    idempotency::prune(&mut state, time, self.shared.config.idempotency.window);
                }
                apply(
                    &mut state,
                    key.clone(),
                    families.into_owned(),
                    mode,
                    time,
                    ttl,
                );
                if let Some(idempotency_key) = idempotency_key {
                    let seen = SeenKey { time, seq: None };
                    idempotency::remember(&mut state, &key, idempotency_key, seen);
                }
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

    /// Restores one group from a snapshot: its families with their push times, and its
    /// timestamps.
    pub fn restore_group(&self, view: GroupView) {
        let mut state = self.shared.state.write();
        self.restore_into(&mut state, view);
    }

    /// Replaces every group with `views` under one lock, so that no reader sees the store
    /// empty or half restored (a replica reloading a snapshot).
    pub fn replace_all(&self, views: Vec<GroupView>) {
        let mut state = self.shared.state.write();
        clear(&mut state);
        for view in views {
            self.restore_into(&mut state, view);
        }
    }

    pub(super) fn restore_into(&self, state: &mut State, view: GroupView) {
        // What was stored unchecked may be inconsistent: keep the exposition's filter on.
        state.maybe_inconsistent |= self.shared.config.consistency == Consistency::Unchecked;
        let key = view.key;
        let keys = view.keys;
        for stored in view.families {
            let mut stored = Arc::unwrap_or_clone(stored);
            stored.group = key.clone();
            insert_family(state, &key, stored);
        }
        let group = group_entry(state, &key, view.created);
        group.push_time = view.push_time;
        group.failure_time = view.failure_time;
        group.created = view.created;
        let had_ttl = std::mem::replace(&mut group.ttl, view.ttl).is_some();
        for (idempotency_key, time) in keys {
            idempotency::remember(state, &key, idempotency_key, SeenKey { time, seq: None });
        }
        state.times_version = state.bump();
        count_ttl(state, had_ttl, view.ttl.is_some());
    }
}
