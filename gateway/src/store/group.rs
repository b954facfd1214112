//! The group map: groups with their timestamps, and the steps every push, failure, delete
//! and restore is made of (families in and out of a group, keeping the name and series
//! indexes in step).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::model::{GroupingKey, Label, MetricFamily, Str, INSTANCE_LABEL};

use super::idempotency::{forget_group, SeenKey};
use super::quota::{self, Membership};
use super::{
    journal, series_id, Change, GroupTtl, GroupView, PushError, PushMode, SeriesId, State,
    StoredFamily,
};

/// Where each series of an aggregated family sits in its metrics, by series id.
pub(super) type Positions = HashMap<super::SeriesId, u32>;

pub(super) struct Group {
    pub(super) families: HashMap<Str, Arc<StoredFamily>>,
    pub(super) push_time: f64,
    pub(super) failure_time: f64,
    pub(super) created: f64,
    /// Set by the last successful push's `Pushgateway-TTL`; `None`: the expiry rules.
    pub(super) ttl: Option<GroupTtl>,
    /// The quotas it counts towards, decided when it is created (or the rules reloaded).
    pub(super) quotas: Membership,
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
        let ttl = match self.ttl {
            Some(own) => own.seconds(),
            None => ttl(key),
        };
        ttl.is_some_and(|ttl| last + ttl <= now)
    }

    /// Its series count (a summary or histogram counts once).
    pub(super) fn series(&self) -> usize {
        self.families.values().map(|f| f.len()).sum()
    }

    fn empty(created: f64, quotas: Membership) -> Group {
        Group {
            families: HashMap::new(),
            push_time: 0.0,
            failure_time: 0.0,
            created,
            ttl: None,
            quotas,
            positions: HashMap::new(),
            keys: HashMap::new(),
        }
    }
}

/// The group of `key`, created empty at `created` (and counted by its quotas) if new.
pub(super) fn group_entry<'a>(
    state: &'a mut State,
    key: &Arc<GroupingKey>,
    created: f64,
) -> &'a mut Group {
    let State { groups, quotas, .. } = state;
    groups.entry(key.clone()).or_insert_with(|| {
        let member_of = quota::membership(quotas, key);
        quota::add_group(quotas, &member_of);
        Group::empty(created, member_of)
    })
}

/// The number of series a push of `families` to `group` in `mode` takes out of it.
pub(super) fn replaced_series(
    group: Option<&Group>,
    families: &[MetricFamily],
    mode: PushMode,
) -> usize {
    group.map_or(0, |g| match mode {
        PushMode::Replace => g.families.values().map(|f| f.len()).sum(),
        // Nothing is replaced; the pushed series the group stores already are not added.
        PushMode::Aggregate => families
            .iter()
            .map(|f| {
                let positions = g.positions.get(&f.name);
                f.metrics
                    .iter()
                    .filter(|m| {
                        positions
                            .is_some_and(|p| p.contains_key(&series_id(&f.name, m.labels.iter())))
                    })
                    .count()
            })
            .sum(),
        PushMode::Merge => families
            .iter()
            .map(|f| &*f.name)
            .collect::<HashSet<&str>>()
            .into_iter()
            .filter_map(|name| g.families.get(name))
            .map(|f| f.len())
            .sum(),
    })
}

/// Every group's view, in key order.
pub(super) fn group_views(state: &State) -> Vec<GroupView> {
    state
        .groups
        .iter()
        .map(|(key, group)| group_view(key, group))
        .collect()
}

/// A group's view: its families and idempotency keys sorted, each family shared, not copied.
pub(super) fn group_view(key: &Arc<GroupingKey>, group: &Group) -> GroupView {
    let mut families: Vec<_> = group.families.values().cloned().collect();
    families.sort_by(|a, b| a.name.cmp(&b.name));
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
        ttl: group.ttl,
        keys,
    }
}

pub(super) fn clear(state: &mut State) {
    let next_version = state.next_version + 1;
    let journal = state.journal.take();
    // The rules stay; nothing is counted any more.
    let mut quotas = std::mem::take(&mut state.quotas);
    for counted in &mut quotas {
        counted.series = 0;
        counted.groups = 0;
    }
    *state = State {
        next_version,
        times_version: next_version,
        journal,
        quotas,
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
        // Nor may it create a group that would duplicate another's timestamps, or one
        // past a quota.
        if full
            || clashing_group(state, key).is_some()
            || quota::group_limit_reached(&state.quotas, key)
        {
            return Ok(());
        }
    }
    let change = Change::Failure {
        key: Cow::Borrowed(key),
        time: now,
    };
    journal(state, &change)?;
    group_entry(state, key, now).failure_time = now;
    state.times_version = state.bump();
    Ok(())
}

/// Keeps [`State::groups_with_ttl`] in step when a group's TTL goes from `had` to `has`.
pub(super) fn count_ttl(state: &mut State, had: bool, has: bool) {
    match (had, has) {
        (false, true) => state.groups_with_ttl += 1,
        (true, false) => state.groups_with_ttl -= 1,
        _ => {}
    }
}

/// Stores `stored` (a family of the group `key`, pushed at `stored.pushed_at`).
pub(super) fn insert_family(state: &mut State, key: &Arc<GroupingKey>, stored: StoredFamily) {
    let stored = Arc::new(stored);
    let ids = stored
        .series()
        .map(|series| series_id(&stored.name, series.labels()));
    insert_identified(state, key, stored.clone(), ids);
}

/// [`insert_family`] for a family whose series identities `ids` are known already (a
/// replayed push prepared them off the lock).
pub(super) fn insert_identified(
    state: &mut State,
    key: &Arc<GroupingKey>,
    stored: Arc<StoredFamily>,
    ids: impl IntoIterator<Item = SeriesId>,
) {
    // A family of the same name earlier in the same push is replaced, not counted twice.
    remove_family(state, key, &stored.name);
    for id in ids {
        state.series.add(id);
    }
    link_family(state, key, stored);
}

/// Adds a family whose series the series index counts already (and whose name the group
/// does not hold yet) to the name index, its group and the group's quotas.
pub(super) fn link_family(state: &mut State, key: &Arc<GroupingKey>, stored: Arc<StoredFamily>) {
    let name = stored.name.clone();
    let count = stored.len();
    state.series_total += count;
    let version = state.bump();
    let metric_type = stored.metric_type;
    let entry = state.names.entry(name.clone()).or_default();
    entry.owners.insert(key.clone(), stored.clone());
    entry.type_counts.add(metric_type);
    entry.version = version;
    let group = group_entry(state, key, stored.pushed_at);
    group.families.insert(name, stored);
    let member_of = group.quotas.clone();
    quota::change_series(&mut state.quotas, &member_of, count, true);
}

pub(super) fn remove_family(state: &mut State, key: &GroupingKey, name: &str) {
    let Some(group) = state.groups.get_mut(key) else {
        return;
    };
    group.positions.remove(name);
    let Some(old) = group.families.remove(name) else {
        return;
    };
    let member_of = group.quotas.clone();
    quota::change_series(&mut state.quotas, &member_of, old.len(), false);
    for series in old.series() {
        state.series.remove(series_id(name, series.labels()));
    }
    state.series_total -= old.len();
    let version = state.bump();
    if let Some(entry) = state.names.get_mut(name) {
        entry.owners.remove(key);
        entry.type_counts.remove(old.metric_type);
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
    let had_ttl = group.ttl.is_some();
    for name in names {
        remove_family(state, key, &name);
    }
    forget_group(state, key);
    if let Some(group) = state.groups.remove(key) {
        quota::remove_group(&mut state.quotas, &group.quotas);
    }
    count_ttl(state, had_ttl, false);
    state.times_version = state.bump();
}
