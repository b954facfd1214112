//! A push applied to the state, after its checks (or replayed): PUT replaces the group, POST
//! the families it names, an aggregating push adds to the series it names; then the group's
//! push time and own TTL. Above both `group` (the map it changes) and `aggregate` (how
//! series add up).

use std::sync::Arc;

use crate::model::{GroupingKey, MetricFamily, Str};

use super::aggregate::apply_aggregate;
use super::group::{count_ttl, group_entry, insert_family, remove_family};
use super::{GroupTtl, PushMode, State, StoredFamily};

/// Applies a checked (or replayed) push of `families` to `key`'s group.
pub(super) fn apply(
    state: &mut State,
    key: Arc<GroupingKey>,
    families: Vec<MetricFamily>,
    mode: PushMode,
    now: f64,
    ttl: Option<GroupTtl>,
) {
    let replaced: Vec<Str> = match (mode, state.groups.get(&*key)) {
        (_, None) | (PushMode::Aggregate, _) => Vec::new(),
        (PushMode::Replace, Some(group)) => group.families.keys().cloned().collect(),
        (PushMode::Merge, Some(group)) => families
            .iter()
            .filter(|f| group.families.contains_key(&f.name))
            .map(|f| f.name.clone())
            .collect(),
    };
    for name in replaced {
        remove_family(state, &key, &name);
    }
    if mode == PushMode::Aggregate {
        apply_aggregate(state, &key, families, now);
    } else {
        for family in families {
            insert_family(state, &key, StoredFamily::new(family, now, key.clone()));
        }
    }
    let version = state.bump();
    let group = group_entry(state, &key, now);
    group.push_time = now;
    let had_ttl = std::mem::replace(&mut group.ttl, ttl).is_some();
    state.times_version = version;
    count_ttl(state, had_ttl, ttl.is_some());
}
