//! A push applied to the state, after its checks (or replayed): PUT replaces the group, POST
//! the families it names, an aggregating push adds to the series it names; then the group's
//! push time and own TTL. Above both `group` (the map it changes) and `aggregate` (how
//! series add up).

use std::sync::Arc;

use crate::model::{GroupingKey, MetricFamily, Str};

use super::aggregate::apply_aggregate;
use super::group::{count_ttl, group_entry, insert_family, insert_identified, remove_family};
use super::{GroupTtl, PushMode, SeriesId, State, StoredFamily};

/// Applies a checked (or replayed) push of `families` to `key`'s group.
pub(super) fn apply(
    state: &mut State,
    key: Arc<GroupingKey>,
    families: Vec<MetricFamily>,
    mode: PushMode,
    now: f64,
    ttl: Option<GroupTtl>,
) {
    remove_replaced(state, &key, mode, families.iter().map(|f| &f.name));
    if mode == PushMode::Aggregate {
        apply_aggregate(state, &key, families, now);
    } else {
        for family in families {
            insert_family(state, &key, StoredFamily::new(family, now, key.clone()));
        }
    }
    stamp(state, &key, now, ttl);
}

/// A family of a replayed PUT or POST, stored and its series identified ahead of time.
pub(super) struct PreparedFamily {
    /// The family, stored against the push's key.
    pub(super) stored: Arc<StoredFamily>,
    /// Its series' identities.
    pub(super) ids: Vec<SeriesId>,
}

/// Applies a replayed PUT or POST whose families were prepared off the lock, as [`apply`]
/// would apply them.
pub(super) fn apply_prepared(
    state: &mut State,
    key: Arc<GroupingKey>,
    families: Vec<PreparedFamily>,
    mode: PushMode,
    now: f64,
    ttl: Option<GroupTtl>,
) {
    remove_replaced(state, &key, mode, families.iter().map(|f| &f.stored.name));
    for family in families {
        insert_identified(state, &key, family.stored, family.ids);
    }
    stamp(state, &key, now, ttl);
}

/// Takes out what a push in `mode` of the names `pushed` replaces: a PUT the whole group,
/// a POST the families of those names.
fn remove_replaced<'a>(
    state: &mut State,
    key: &GroupingKey,
    mode: PushMode,
    pushed: impl Iterator<Item = &'a Str>,
) {
    let replaced: Vec<Str> = match (mode, state.groups.get(key)) {
        (_, None) | (PushMode::Aggregate, _) => Vec::new(),
        (PushMode::Replace, Some(group)) => group.families.keys().cloned().collect(),
        (PushMode::Merge, Some(group)) => pushed
            .filter(|name| group.families.contains_key(*name))
            .cloned()
            .collect(),
    };
    for name in replaced {
        remove_family(state, key, &name);
    }
}

/// The group's push time and own TTL after a push.
fn stamp(state: &mut State, key: &Arc<GroupingKey>, now: f64, ttl: Option<GroupTtl>) {
    let version = state.bump();
    let group = group_entry(state, key, now);
    group.push_time = now;
    let had_ttl = std::mem::replace(&mut group.ttl, ttl).is_some();
    state.times_version = version;
    count_ttl(state, had_ttl, ttl.is_some());
}
