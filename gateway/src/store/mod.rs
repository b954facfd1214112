//! The metric store: groups of metric families keyed by their grouping labels, the push
//! semantics (PUT replaces a group, POST replaces the families it names, DELETE removes a
//! group), push timestamps, and the consistency index that lets a push be checked in time
//! proportional to its own size.
//!
//! The index keeps, per metric name, the groups that own a family of that name and how
//! many of them have each type, and, per series, how often it is stored. A push consults
//! only the entries of the names and series it carries (plus the group it replaces), never
//! the rest of the store. Encoding, files and HTTP are left to other modules; a push is
//! parsed before it gets here, and no lock is held across an `.await`.

mod check;
mod journal;
mod series;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use parking_lot::RwLock;

pub use check::Rejection;
use check::{base_name, check_push_alone, derived_names};
pub use journal::{Change, Journal, PushError};
pub use series::{series_id, SeriesId, SeriesIndex};

use crate::model::{
    GroupingKey, Label, Metric, MetricFamily, MetricType, NameValidation, Series, Str,
    INSTANCE_LABEL,
};

/// Name of the per-group gauge with the time of the last successful change.
pub const PUSH_TIME_METRIC: &str = "push_time_seconds";
/// Help of [`PUSH_TIME_METRIC`].
pub const PUSH_TIME_HELP: &str =
    "Last Unix time when changing this group in the Pushgateway succeeded.";
/// Name of the per-group gauge with the time of the last failed change.
pub const PUSH_FAILURE_TIME_METRIC: &str = "push_failure_time_seconds";
/// Help of [`PUSH_FAILURE_TIME_METRIC`].
pub const PUSH_FAILURE_TIME_HELP: &str =
    "Last Unix time when changing this group in the Pushgateway failed.";

/// How a push treats the families already in its group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushMode {
    /// PUT: the push replaces every family of the group.
    Replace,
    /// POST: the push replaces only the families it names.
    Merge,
}

/// Whether pushes are checked for consistency before they are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Consistency {
    /// Inconsistent pushes are rejected (the default).
    #[default]
    Checked,
    /// Everything is stored; the exposition leaves out what does not fit.
    Unchecked,
}

/// Limits on pushes and on what is stored; 0 means no limit for the totals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most metrics in one push.
    pub max_series_per_push: usize,
    /// Longest label name or value in bytes.
    pub max_label_length: usize,
    /// Most labels in a grouping key, `job` included.
    pub max_grouping_labels: usize,
    /// Most labels a pushed metric carries itself (grouping labels not counted).
    pub max_labels_per_series: usize,
    /// Most metrics stored (0: unlimited).
    pub max_series: usize,
    /// Most groups stored (0: unlimited).
    pub max_groups: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_series_per_push: usize::MAX,
            max_label_length: usize::MAX,
            max_grouping_labels: usize::MAX,
            max_labels_per_series: usize::MAX,
            max_series: 0,
            max_groups: 0,
        }
    }
}

/// What the store needs to know from the configuration.
#[derive(Debug, Clone, Default)]
pub struct StoreConfig {
    /// Whether pushes are checked.
    pub consistency: Consistency,
    /// The gateway's own metric names and types, which pushes must not contradict.
    pub reserved: HashMap<String, MetricType>,
    /// Push and store limits.
    pub limits: Limits,
}

/// A family as stored in a group, with the time it was pushed.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredFamily {
    /// The family; its metrics keep only the labels their group does not supply, sorted
    /// ([`StoredFamily::series`] gives the full label sets).
    pub family: MetricFamily,
    /// Unix time in seconds of the push that stored it.
    pub pushed_at: f64,
    /// The group it belongs to.
    pub group: Arc<GroupingKey>,
}

impl StoredFamily {
    /// Stores `family` (with full or lean label sets) as pushed to `group` at `pushed_at`.
    pub fn new(mut family: MetricFamily, pushed_at: f64, group: Arc<GroupingKey>) -> StoredFamily {
        // The group's labels are kept once, in the key, instead of in every series.
        for metric in &mut family.metrics {
            metric.labels = group.own_labels(std::mem::take(&mut metric.labels));
        }
        StoredFamily {
            family,
            pushed_at,
            group,
        }
    }

    /// Its metrics with their full label sets.
    pub fn series(&self) -> impl Iterator<Item = Series<'_>> {
        self.family
            .metrics
            .iter()
            .map(|metric| Series::new(metric, &self.group))
    }
}

/// A read-only view of one group.
#[derive(Debug, Clone)]
pub struct GroupView {
    /// The grouping key.
    pub key: Arc<GroupingKey>,
    /// The pushed families, sorted by name.
    pub families: Vec<Arc<StoredFamily>>,
    /// Time of the last successful change, 0 if none.
    pub push_time: f64,
    /// Time of the last failed change, 0 if none.
    pub failure_time: f64,
    /// Time of the group's first change. Upstream stamps its timestamp families with it
    /// until their own first change (`time_stamp` in `/api/v1/metrics`).
    pub created: f64,
}

impl GroupView {
    /// When `push_time_seconds` was last set: the last success, else the group's creation.
    pub fn push_time_stamp(&self) -> f64 {
        if self.push_time > 0.0 {
            self.push_time
        } else {
            self.created
        }
    }

    /// When `push_failure_time_seconds` was last set: the last failure, else the creation.
    pub fn failure_time_stamp(&self) -> f64 {
        if self.failure_time > 0.0 {
            self.failure_time
        } else {
            self.created
        }
    }
}

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

/// A cheap-to-clone handle on the store.
#[derive(Clone)]
pub struct Store {
    shared: Arc<Shared>,
}

struct Shared {
    state: RwLock<State>,
    config: StoreConfig,
    /// One shared empty string for the `instance=""` added to most samples.
    empty: Str,
    instance: Str,
}

struct Group {
    families: HashMap<Str, Arc<StoredFamily>>,
    push_time: f64,
    failure_time: f64,
    created: f64,
}

impl Group {
    /// Whether its last successful push (or, without one, its last failure) is at least
    /// its TTL before `now`.
    fn is_due(
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

    fn empty(created: f64) -> Group {
        Group {
            families: HashMap::new(),
            push_time: 0.0,
            failure_time: 0.0,
            created,
        }
    }
}

#[derive(Default)]
struct NameEntry {
    owners: BTreeMap<Arc<GroupingKey>, Arc<StoredFamily>>,
    type_counts: TypeCounts,
    version: u64,
}

/// How many families of a name have each type.
#[derive(Default, Clone, Copy)]
struct TypeCounts([u32; 6]);

impl TypeCounts {
    fn slot(t: MetricType) -> usize {
        match t {
            MetricType::Counter => 0,
            MetricType::Gauge => 1,
            MetricType::Summary => 2,
            MetricType::Untyped => 3,
            MetricType::Histogram => 4,
            MetricType::GaugeHistogram => 5,
        }
    }
    const ALL: [MetricType; 6] = [
        MetricType::Counter,
        MetricType::Gauge,
        MetricType::Summary,
        MetricType::Untyped,
        MetricType::Histogram,
        MetricType::GaugeHistogram,
    ];
    fn add(&mut self, t: MetricType) {
        self.0[Self::slot(t)] += 1;
    }
    fn remove(&mut self, t: MetricType) {
        let slot = &mut self.0[Self::slot(t)];
        *slot = slot.saturating_sub(1);
    }
    fn has(&self, t: MetricType) -> bool {
        self.0[Self::slot(t)] > 0
    }
    fn any(&self) -> bool {
        self.0.iter().any(|&c| c > 0)
    }
    fn other_than(&self, t: MetricType) -> Option<MetricType> {
        Self::ALL.into_iter().find(|&o| o != t && self.has(o))
    }
}

#[derive(Default)]
struct State {
    journal: Option<Box<dyn Journal>>,
    groups: HashMap<Arc<GroupingKey>, Group>,
    names: BTreeMap<Str, NameEntry>,
    series: SeriesIndex,
    series_total: usize,
    next_version: u64,
    times_version: u64,
    maybe_inconsistent: bool,
}

impl State {
    fn bump(&mut self) -> u64 {
        self.next_version += 1;
        self.next_version
    }
}

// === impl Store ===

impl Store {
    /// An empty store.
    pub fn new(config: StoreConfig) -> Store {
        Store {
            shared: Arc::new(Shared {
                state: RwLock::new(State::default()),
                config,
                empty: "".into(),
                instance: INSTANCE_LABEL.into(),
            }),
        }
    }

    /// The configuration the store was built with.
    pub fn config(&self) -> &StoreConfig {
        &self.shared.config
    }

    /// Applies a push of already parsed families to the group `key` at Unix time `now`.
    ///
    /// With [`Consistency::Checked`] an inconsistent push is refused; a refused push sets
    /// the group's failure time (creating the group if needed) and changes nothing else.
    ///
    /// # Errors
    /// The [`Rejection`] that refused the push. With [`Consistency::Unchecked`] only a push
    /// with timestamps is refused (as upstream, which answers 202 before it finds out).
    pub fn push(
        &self,
        key: GroupingKey,
        families: Vec<MetricFamily>,
        mode: PushMode,
        now: f64,
    ) -> Result<Option<u64>, PushError> {
        self.check_push_limits(&key, &families)?;
        let key = Arc::new(key);
        let families = self.sanitize(&key, families);
        let checked = self.shared.config.consistency == Consistency::Checked;
        // Names in the body were validated by the text parser already; the protobuf format
        // may carry any UTF-8 name (upstream v1.11 validates with the UTF-8 rules here).
        let alone = check_push_alone(&families, NameValidation::Utf8);
        let mut state = self.shared.state.write();
        let verdict = match &alone {
            Ok(ids) => self.check_against_store(&state, &key, &families, ids, mode),
            Err(rejection) => Err(rejection.clone()),
        };
        let mut inconsistent = false;
        if let Err(rejection) = verdict {
            // Timestamps are refused even unchecked, as upstream (after its 202).
            if checked || rejection == Rejection::Timestamp {
                let max_groups = self.shared.config.limits.max_groups;
                record_failure(&mut state, &key, now, max_groups)?;
                return Err(PushError::Rejected(rejection));
            }
            inconsistent = true;
        }
        self.check_capacity(&state, &key, &families, mode)?;
        let seq = journal(
            &mut state,
            &Change::Push {
                key: &key,
                families: &families,
                mode,
                time: now,
                inconsistent,
            },
        )?;
        // Stored anyway when unchecked; the exposition filters what does not fit.
        state.maybe_inconsistent |= inconsistent;
        apply(&mut state, key, families, mode, now);
        Ok(seq)
    }

    /// Removes a group; a no-op for an unknown group.
    ///
    /// # Errors
    /// [`PushError::Unavailable`] when the change cannot be journaled.
    pub fn delete(&self, key: &GroupingKey) -> Result<Option<u64>, PushError> {
        let mut state = self.shared.state.write();
        let seq = journal(&mut state, &Change::Delete { key })?;
        remove_group(&mut state, key);
        Ok(seq)
    }

    /// Removes every group.
    ///
    /// # Errors
    /// [`PushError::Unavailable`] when the change cannot be journaled.
    pub fn wipe(&self) -> Result<Option<u64>, PushError> {
        let mut state = self.shared.state.write();
        let seq = journal(&mut state, &Change::Wipe)?;
        clear(&mut state);
        Ok(seq)
    }

    /// Attaches the journal that records every later change before it is applied.
    pub fn set_journal(&self, journal: Box<dyn Journal>) {
        self.shared.state.write().journal = Some(journal);
    }

    /// Runs `f` on the journal and returns every group, both under the store's lock, so
    /// that the groups are exactly the state after the journal's last record: the cut a
    /// snapshot is written from.
    ///
    /// # Errors
    /// Whatever `f` returns.
    pub fn cut<T>(
        &self,
        f: impl FnOnce(Option<&mut (dyn Journal + 'static)>) -> std::io::Result<T>,
    ) -> std::io::Result<(T, Vec<GroupView>)> {
        let mut state = self.shared.state.write();
        let result = f(state.journal.as_deref_mut())?;
        let views = group_views(&state);
        drop(state);
        Ok((result, sorted(views)))
    }

    /// Removes, like DELETEs, every group whose last successful push (or, for a group that
    /// never had one, its last failure) is at least its TTL before `now`. `ttl` gives a
    /// group's TTL in seconds, `None` for groups that never expire.
    ///
    /// # Errors
    /// When a removal cannot be journaled; the groups removed before it stay removed.
    pub fn expire(
        &self,
        now: f64,
        ttl: impl Fn(&GroupingKey) -> Option<f64>,
    ) -> Result<Vec<GroupingKey>, PushError> {
        let mut state = self.shared.state.write();
        let due: Vec<Arc<GroupingKey>> = state
            .groups
            .iter()
            .filter(|(key, group)| group.is_due(key, now, &ttl))
            .map(|(key, _)| key.clone())
            .collect();
        let mut removed = Vec::with_capacity(due.len());
        for key in due {
            journal(&mut state, &Change::Delete { key: &key })?;
            remove_group(&mut state, &key);
            removed.push((*key).clone());
        }
        removed.sort();
        Ok(removed)
    }

    /// Whether [`Store::expire`] with the same arguments would remove a group (under the
    /// read lock, changing nothing).
    pub fn any_expired(&self, now: f64, ttl: impl Fn(&GroupingKey) -> Option<f64>) -> bool {
        let state = self.shared.state.read();
        state
            .groups
            .iter()
            .any(|(key, group)| group.is_due(key, now, &ttl))
    }

    /// Runs `f` on the journal under the store's lock, without copying any state.
    pub fn cut_journal_only(&self, f: impl FnOnce(Option<&mut (dyn Journal + 'static)>)) {
        let mut state = self.shared.state.write();
        f(state.journal.as_deref_mut());
    }

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
            } => {
                state.maybe_inconsistent |= inconsistent;
                apply(
                    &mut state,
                    Arc::new(key.clone()),
                    families.to_vec(),
                    mode,
                    time,
                );
            }
            Change::Failure { key, time } => {
                let key = Arc::new(key.clone());
                let group = state
                    .groups
                    .entry(key)
                    .or_insert_with(|| Group::empty(time));
                group.failure_time = time;
                state.times_version = state.bump();
            }
            Change::Delete { key } => remove_group(&mut state, key),
            Change::Wipe => clear(&mut state),
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

    fn restore_into(&self, state: &mut State, view: GroupView) {
        // What was stored unchecked may be inconsistent: keep the exposition's filter on.
        state.maybe_inconsistent |= self.shared.config.consistency == Consistency::Unchecked;
        let key = view.key;
        for stored in view.families {
            let StoredFamily {
                family, pushed_at, ..
            } = Arc::unwrap_or_clone(stored);
            insert_family(state, &key, family, pushed_at);
        }
        let group = state
            .groups
            .entry(key)
            .or_insert_with(|| Group::empty(view.created));
        group.push_time = view.push_time;
        group.failure_time = view.failure_time;
        group.created = view.created;
        state.times_version = state.bump();
    }

    /// Group and series counts.
    pub fn stats(&self) -> Stats {
        let state = self.shared.state.read();
        Stats {
            groups: state.groups.len(),
            series: state.series_total,
        }
    }

    /// Every group with its families, in grouping-key order.
    pub fn groups(&self) -> Vec<GroupView> {
        let views = group_views(&self.shared.state.read());
        sorted(views)
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
        let state = self.shared.state.read();
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
                    .map_or(MetricType::Untyped, |f| f.family.metric_type),
                families: if is_fresh(name, entry.version) {
                    Vec::new()
                } else {
                    entry.owners.values().cloned().collect()
                },
            })
            .collect();
        let times_version = state.times_version;
        let mut times: Vec<GroupTimes> = if times_fresh(times_version) {
            Vec::new()
        } else {
            state
                .groups
                .iter()
                .map(|(key, group)| GroupTimes {
                    key: key.clone(),
                    push_time: group.push_time,
                    failure_time: group.failure_time,
                })
                .collect()
        };
        let groups = state.groups.len();
        let maybe_inconsistent = state.maybe_inconsistent;
        drop(state);
        times.sort_by(|a, b| a.key.cmp(&b.key));
        Snapshot {
            names,
            times,
            groups,
            times_version,
            maybe_inconsistent,
        }
    }

    /// Applies the grouping labels (they win over pushed labels), adds `instance=""` where
    /// no instance is set, sorts labels, and drops families named like the push
    /// timestamps, which the store maintains itself (upstream overwrites them too). The
    /// checks and the journal see these full label sets; storing drops the group's again.
    fn sanitize(&self, key: &GroupingKey, mut families: Vec<MetricFamily>) -> Vec<MetricFamily> {
        families.retain(|f| &*f.name != PUSH_TIME_METRIC && &*f.name != PUSH_FAILURE_TIME_METRIC);
        for family in &mut families {
            for metric in &mut family.metrics {
                let mut labels = std::mem::take(&mut metric.labels).into_vec();
                sanitize_labels(
                    &mut labels,
                    key.labels(),
                    &self.shared.instance,
                    &self.shared.empty,
                );
                metric.labels = labels.into_boxed_slice();
            }
        }
        families
    }

    /// Refuses a grouping key with more labels than `--push.max-grouping-labels`, so that
    /// a push can be refused before its body is read.
    ///
    /// # Errors
    /// [`PushError::TooLarge`] with the reason.
    pub fn check_grouping_key(&self, key: &GroupingKey) -> Result<(), PushError> {
        let limit = self.shared.config.limits.max_grouping_labels;
        let grouping = key.labels().len();
        if grouping > limit {
            return Err(PushError::TooLarge(format!(
                "grouping key has {grouping} labels, more than the limit of {limit} (--push.max-grouping-labels)"
            )));
        }
        Ok(())
    }

    fn check_push_limits(
        &self,
        key: &GroupingKey,
        families: &[MetricFamily],
    ) -> Result<(), PushError> {
        self.check_grouping_key(key)?;
        let limits = &self.shared.config.limits;
        let series: usize = families.iter().map(|f| f.metrics.len()).sum();
        if series > limits.max_series_per_push {
            return Err(PushError::TooLarge(format!(
                "push has {series} metrics, more than the limit of {} (--push.max-series)",
                limits.max_series_per_push
            )));
        }
        let crowded = families
            .iter()
            .flat_map(|f| f.metrics.iter().map(move |m| (f, m)))
            .find(|(_, m)| m.labels.len() > limits.max_labels_per_series);
        if let Some((family, metric)) = crowded {
            return Err(PushError::TooLarge(format!(
                "metric {:?} has {} labels, more than the limit of {} (--push.max-labels-per-series)",
                family.name.chars().take(64).collect::<String>(),
                metric.labels.len(),
                limits.max_labels_per_series
            )));
        }
        let too_long = |label: &Label| {
            label.name.len() > limits.max_label_length
                || label.value.len() > limits.max_label_length
        };
        let long_label = key.labels().iter().find(|l| too_long(l)).or_else(|| {
            families
                .iter()
                .flat_map(|f| &f.metrics)
                .flat_map(|m| m.labels.iter().chain(exemplar_labels(m)))
                .find(|l| too_long(l))
        });
        if let Some(label) = long_label {
            return Err(PushError::TooLarge(format!(
                "label {:?} is longer than the limit of {} bytes (--push.max-label-length)",
                label.name.chars().take(64).collect::<String>(),
                limits.max_label_length
            )));
        }
        Ok(())
    }

    /// Refuses a push that would take the store past its total limits.
    fn check_capacity(
        &self,
        state: &State,
        key: &GroupingKey,
        families: &[MetricFamily],
        mode: PushMode,
    ) -> Result<(), PushError> {
        let limits = &self.shared.config.limits;
        let group = state.groups.get(key);
        if limits.max_groups > 0 && group.is_none() && state.groups.len() >= limits.max_groups {
            return Err(PushError::Full(format!(
                "the gateway stores {} groups, its limit (--storage.max-groups)",
                state.groups.len()
            )));
        }
        if limits.max_series > 0 {
            let replaced: usize = group.map_or(0, |g| match mode {
                PushMode::Replace => g.families.values().map(|f| f.family.metrics.len()).sum(),
                PushMode::Merge => families
                    .iter()
                    .map(|f| &*f.name)
                    .collect::<HashSet<&str>>()
                    .into_iter()
                    .filter_map(|name| g.families.get(name))
                    .map(|f| f.family.metrics.len())
                    .sum(),
            });
            let added: usize = families.iter().map(|f| f.metrics.len()).sum();
            let after = state.series_total - replaced + added;
            if after > limits.max_series && added > replaced {
                return Err(PushError::Full(format!(
                    "the push would store {after} metrics, more than the limit of {} (--storage.max-series)",
                    limits.max_series
                )));
            }
        }
        Ok(())
    }

    fn check_against_store(
        &self,
        state: &State,
        key: &GroupingKey,
        families: &[MetricFamily],
        ids: &[Vec<SeriesId>],
        mode: PushMode,
    ) -> Result<(), Rejection> {
        let reserved = &self.shared.config.reserved;
        let pushed: HashMap<&str, MetricType> =
            families.iter().map(|f| (&*f.name, f.metric_type)).collect();
        let group = state.groups.get(key);
        if group.is_none() {
            if let Some(other) = clashing_group(state, key) {
                return Err(Rejection::GroupClash {
                    key: key.to_string(),
                    other: other.to_string(),
                });
            }
        }
        // The family of this group that the push replaces, if any.
        let replaced = |name: &str| -> Option<&Arc<StoredFamily>> {
            let family = group?.families.get(name)?;
            (mode == PushMode::Replace || pushed.contains_key(name)).then_some(family)
        };
        // Types a name has in the store once this push's replacements are taken out.
        let remaining = |name: &str| -> TypeCounts {
            let mut counts = state
                .names
                .get(name)
                .map(|e| e.type_counts)
                .unwrap_or_default();
            if let Some(old) = replaced(name) {
                counts.remove(old.family.metric_type);
            }
            counts
        };
        // Types a name would have after the push, the gateway's own metrics included.
        let after = |name: &str| -> TypeCounts {
            let mut counts = remaining(name);
            if let Some(&t) = pushed.get(name) {
                counts.add(t);
            }
            if let Some(&t) = reserved.get(name) {
                counts.add(t);
            }
            counts
        };

        for (family, family_ids) in families.iter().zip(ids) {
            let name = &*family.name;
            let pushed_type = family.metric_type;
            if reserved.contains_key(name) {
                return Err(Rejection::OwnMetric {
                    name: name.to_string(),
                });
            }
            if let Some(stored) = remaining(name).other_than(pushed_type) {
                return Err(type_conflict(name, pushed_type, stored));
            }
            if let Some((base, is_bucket)) = base_name(name) {
                let base_types = after(base);
                if base_types.has(MetricType::Summary) && !is_bucket {
                    return Err(suffix_collision(name, "summary", base));
                }
                if base_types.has(MetricType::Histogram)
                    || base_types.has(MetricType::GaugeHistogram)
                {
                    return Err(suffix_collision(name, "histogram", base));
                }
            }
            for derived in derived_names(name, pushed_type) {
                if after(&derived).any() {
                    let kind = if pushed_type == MetricType::Summary {
                        "summary"
                    } else {
                        "histogram"
                    };
                    return Err(suffix_collision(&derived, kind, name));
                }
            }
            let replaced_ids: HashSet<SeriesId> = replaced(name)
                .map(|old| old.series().map(|s| series_id(name, s.labels())).collect())
                .unwrap_or_default();
            for (metric, id) in family.metrics.iter().zip(family_ids) {
                let stored = state.series.count(*id);
                let stored = stored - u32::from(replaced_ids.contains(id));
                if stored > 0 {
                    return Err(Rejection::DuplicateSeries {
                        name: name.to_string(),
                        labels: check::render_labels(&metric.labels),
                    });
                }
            }
        }
        Ok(())
    }
}

fn group_views(state: &State) -> Vec<GroupView> {
    state
        .groups
        .iter()
        .map(|(key, group)| {
            let mut families: Vec<_> = group.families.values().cloned().collect();
            families.sort_by(|a, b| a.family.name.cmp(&b.family.name));
            GroupView {
                key: key.clone(),
                families,
                push_time: group.push_time,
                failure_time: group.failure_time,
                created: group.created,
            }
        })
        .collect()
}

fn sorted(mut views: Vec<GroupView>) -> Vec<GroupView> {
    views.sort_by(|a, b| a.key.cmp(&b.key));
    views
}

/// Records a change in the journal, if there is one, before it is applied.
fn journal(state: &mut State, change: &Change<'_>) -> Result<Option<u64>, PushError> {
    match state.journal.as_mut() {
        None => Ok(None),
        Some(journal) => journal.append(change).map(Some).map_err(|e| {
            // A change too large to record is the push's fault, not the disk's.
            if e.kind() == std::io::ErrorKind::FileTooLarge {
                PushError::TooLarge(e.to_string())
            } else {
                PushError::Unavailable(e.to_string())
            }
        }),
    }
}

fn clear(state: &mut State) {
    let next_version = state.next_version + 1;
    let journal = state.journal.take();
    *state = State {
        next_version,
        times_version: next_version,
        journal,
        ..State::default()
    };
}

fn type_conflict(name: &str, pushed: MetricType, stored: MetricType) -> Rejection {
    Rejection::TypeConflict {
        name: name.to_string(),
        pushed,
        stored,
    }
}

fn suffix_collision(name: &str, kind: &'static str, other: &str) -> Rejection {
    Rejection::SuffixCollision {
        name: name.to_string(),
        kind,
        other: other.to_string(),
    }
}

/// The labels of every exemplar a metric carries.
fn exemplar_labels(metric: &Metric) -> impl Iterator<Item = &Label> {
    metric.extras.iter().flat_map(|extras| {
        extras
            .exemplar
            .iter()
            .chain(extras.bucket_exemplars.iter().flatten())
            .chain(&extras.exemplars)
            .flat_map(|e| &e.labels)
    })
}

/// Overwrites or adds the grouping labels, adds an empty `instance` if there is none, and
/// sorts the labels by name. One sort and one merge with the (sorted) grouping labels, so
/// that a push costs O(n log n) in its labels however many grouping labels it has.
fn sanitize_labels(labels: &mut Vec<Label>, grouping: &[Label], instance: &Str, empty: &Str) {
    labels.sort_by(|a, b| a.name.cmp(&b.name));
    let mut merged = Vec::with_capacity(labels.len() + grouping.len() + 1);
    let mut pushed = std::mem::take(labels).into_iter().peekable();
    for grouping_label in grouping {
        while let Some(label) = pushed.next_if(|l| l.name < grouping_label.name) {
            merged.push(label);
        }
        let mut overridden = false;
        while let Some(mut label) = pushed.next_if(|l| l.name == grouping_label.name) {
            label.value = grouping_label.value.clone();
            merged.push(label);
            overridden = true;
        }
        if !overridden {
            merged.push(grouping_label.clone());
        }
    }
    merged.extend(pushed);
    if let Err(at) = merged.binary_search_by(|l| l.name.cmp(instance)) {
        merged.insert(
            at,
            Label {
                name: instance.clone(),
                value: empty.clone(),
            },
        );
    }
    *labels = merged;
}

/// The existing group whose timestamp series would equal those of a new group `key`: the
/// same labels but for an `instance` that is empty in one and absent in the other.
fn clashing_group<'a>(state: &'a State, key: &GroupingKey) -> Option<&'a Arc<GroupingKey>> {
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
fn record_failure(
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
    journal(state, &Change::Failure { key, time: now })?;
    let group = state
        .groups
        .entry(key.clone())
        .or_insert_with(|| Group::empty(now));
    group.failure_time = now;
    state.times_version = state.bump();
    Ok(())
}

fn apply(
    state: &mut State,
    key: Arc<GroupingKey>,
    families: Vec<MetricFamily>,
    mode: PushMode,
    now: f64,
) {
    let replaced: Vec<Str> = match (mode, state.groups.get(&*key)) {
        (_, None) => Vec::new(),
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
    for family in families {
        insert_family(state, &key, family, now);
    }
    let version = state.bump();
    let group = state.groups.entry(key).or_insert_with(|| Group::empty(now));
    group.push_time = now;
    state.times_version = version;
}

fn insert_family(state: &mut State, key: &Arc<GroupingKey>, family: MetricFamily, now: f64) {
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

fn remove_family(state: &mut State, key: &GroupingKey, name: &str) {
    let Some(old) = state
        .groups
        .get_mut(key)
        .and_then(|g| g.families.remove(name))
    else {
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

fn remove_group(state: &mut State, key: &GroupingKey) {
    let Some(group) = state.groups.get(key) else {
        return;
    };
    let names: Vec<Str> = group.families.keys().cloned().collect();
    for name in names {
        remove_family(state, key, &name);
    }
    state.groups.remove(key);
    state.times_version = state.bump();
}

#[cfg(test)]
mod tests;
