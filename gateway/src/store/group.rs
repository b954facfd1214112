//! The group map: groups with their timestamps, and the steps every push, failure, delete
//! and restore is made of (families in and out of a group, keeping the name and series
//! indexes in step).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use crate::model::{GroupingKey, Label, MetricFamily, Str, INSTANCE_LABEL};

use super::aggregate::{apply_aggregate, Positions};
use super::idempotency::{forget_group, SeenKey};
use super::{journal, series_id, Change, GroupView, PushError, PushMode, State, StoredFamily};

pub(super) struct Group {
    pub(super) families: HashMap<Str, Arc<StoredFamily>>,
    pub(super) push_time: f64,
    pub(super) failure_time: f64,
    pub(super) created: f64,
    /// Where each series of an aggregated family sits (built by the first aggregating push
    /// to reach the family, dropped when the family is replaced or removed).
    pub(super) positions: HashMap<Str, Positions>,
    /// The idempotency keys of its pushes still remembered.
    pub(super) keys: HashMap<Str, SeenKey>,
}

impl Group {
    /// Whether its last successful push (or, without one, its last failure) is at least
    /// its TTL before `now`.
    pub(super) fn is_due(
        &self,
        key: &GroupingKey,
        now: f64,
        ttl: impl Fn(&GroupingKey) -> Option<f64>,
    ) -> bool {
        let last = if self.push_time > 0.0 {
            self.push_time
        } else {
            self.failure_time
        };
        ttl(key).is_some_and(|ttl| last + ttl <= now)
    }

    pub(super) fn empty(created: f64) -> Group {
        Group {
            families: HashMap::new(),
            push_time: 0.0,
            failure_time: 0.0,
            created,
            positions: HashMap::new(),
            keys: HashMap::new(),
        }
    }
}

pub(super) fn group_views(state: &State) -> Vec<GroupView> {
    state
        .groups
        .iter()
        .map(|(key, group)| {
            let mut families: Vec<_> = group.families.values().cloned().collect();
            families.sort_by(|a, b| a.family.name.cmp(&b.family.name));
            let mut keys: Vec<(Str, f64)> = group
                .keys
                .iter()
                .map(|(key, seen)| (key.clone(), seen.time))
                .collect();
            keys.sort_by(|a, b| a.0.cmp(&b.0));
            GroupView {
                key: key.clone(),
                families,
                push_time: group.push_time,
                failure_time: group.failure_time,
                created: group.created,
                keys,
            }
        })
        .collect()
}

pub(super) fn sorted(mut views: Vec<GroupView>) -> Vec<GroupView> {
    views.sort_by(|a, b| a.key.cmp(&b.key));
    views
}

pub(super) fn clear(state: &mut State) {
    let next_version = state.next_version + 1;
    let journal = state.journal.take();
    *state = State {
        next_version,
        times_version: next_version,
        journal,
        ..State::default()
    };
}

/// The existing group whose timestamp series would equal those of a new group `key`: the
/// same labels but for an `instance` that is empty in one and absent in the other.
pub(super) fn clashing_group<'a>(
    state: &'a State,
    key: &GroupingKey,
) -> Option<&'a Arc<GroupingKey>> {
    let labels = key.labels();
    let twin = match key.get(INSTANCE_LABEL) {
        Some(value) if value.is_empty() => GroupingKey::new(
            labels
                .iter()
                .filter(|l| &*l.name != INSTANCE_LABEL)
                .cloned()
                .collect(),
        ),
        Some(_) => return None,
        None => {
            let mut with_instance = labels.to_vec();
            with_instance.push(Label::new(INSTANCE_LABEL, ""));
            GroupingKey::new(with_instance)
        }
    };
    state.groups.get_key_value(&twin).map(|(k, _)| k)
}

/// Sets the failure time of `key`'s group. A group is created for it only as far as
/// `max_groups` (0: no limit) allows: a refused push must not be a way past the limit.
pub(super) fn record_failure(
    state: &mut State,
    key: &Arc<GroupingKey>,
    now: f64,
    max_groups: usize,
) -> Result<(), PushError> {
    if !state.groups.contains_key(&**key) {
        let full = max_groups > 0 && state.groups.len() >= max_groups;
        // Nor may it create a group that would duplicate another's timestamps.
        if full || clashing_group(state, key).is_some() {
            return Ok(());
        }
    }
    let change = Change::Failure {
        key: Cow::Borrowed(key),
        time: now,
    };
    journal(state, &change)?;
    let group = state
        .groups
        .entry(key.clone())
        .or_insert_with(|| Group::empty(now));
    group.failure_time = now;
    state.times_version = state.bump();
    Ok(())
}

pub(super) fn apply(
    state: &mut State,
    key: Arc<GroupingKey>,
    families: Vec<MetricFamily>,
    mode: PushMode,
    now: f64,
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
            insert_family(state, &key, family, now);
        }
    }
    let version = state.bump();
    let group = state.groups.entry(key).or_insert_with(|| Group::empty(now));
    group.push_time = now;
    state.times_version = version;
}

pub(super) fn insert_family(
    state: &mut State,
    key: &Arc<GroupingKey>,
    family: MetricFamily,
    now: f64,
) {
    let stored = Arc::new(StoredFamily::new(family, now, key.clone()));
    let name = stored.family.name.clone();
    for series in stored.series() {
        state.series.add(series_id(&name, series.labels()));
    }
    state.series_total += stored.family.metrics.len();
    let version = state.bump();
    let metric_type = stored.family.metric_type;
    let entry = state.names.entry(name.clone()).or_default();
    entry.owners.insert(key.clone(), stored.clone());
    entry.type_counts.add(metric_type);
    entry.version = version;
    state
        .groups
        .entry(key.clone())
        .or_insert_with(|| Group::empty(now))
        .families
        .insert(name, stored);
}

pub(super) fn remove_family(state: &mut State, key: &GroupingKey, name: &str) {
    let Some(group) = state.groups.get_mut(key) else {
        return;
    };
    group.positions.remove(name);
    let Some(old) = group.families.remove(name) else {
        return;
    };
    for series in old.series() {
        state.series.remove(series_id(name, series.labels()));
    }
    state.series_total -= old.family.metrics.len();
    let version = state.bump();
    if let Some(entry) = state.names.get_mut(name) {
        entry.owners.remove(key);
        entry.type_counts.remove(old.family.metric_type);
        entry.version = version;
        if entry.owners.is_empty() {
            state.names.remove(name);
        }
    }
}

pub(super) fn remove_group(state: &mut State, key: &GroupingKey) {
    let Some(group) = state.groups.get(key) else {
        return;
    };
    let names: Vec<Str> = group.families.keys().cloned().collect();
    for name in names {
        remove_family(state, key, &name);
    }
    forget_group(state, key);
    state.groups.remove(key);
    state.times_version = state.bump();
}
