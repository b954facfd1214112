//! The metric store: groups of metric families keyed by their grouping labels, the push
//! semantics (PUT replaces a group, POST replaces the families it names, an aggregating
//! push adds to the series it names, DELETE removes a group), idempotency keys, push
//! timestamps, and the consistency index that lets a push be checked in time
//! proportional to its own size.
//!
//! The index keeps, per metric name, the groups that own a family of that name and how
//! many of them have each type, and, per series, how often it is stored. A push consults
//! only the entries of the names and series it carries (plus the group it replaces), never
//! the rest of the store. Encoding, files and HTTP are left to other modules; a push is
//! parsed before it gets here, and no lock is held across an `.await`.

pub(crate) mod aggregate;
mod apply;
mod check;
mod consistency;
mod family;
mod group;
mod idempotency;
mod index;
mod journal;
mod limits;
mod quota;
mod restore;
mod sanitize;
mod select;
mod series;
mod snapshot;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;

use apply::apply;
use check::check_push_alone;
pub use check::Rejection;
pub use family::{is_misfit_label_name, StoredFamily};
use group::{clear, group_views, record_failure, remove_group, replaced_series, Group};
pub use idempotency::{IdempotencyConfig, MAX_IDEMPOTENCY_KEY_BYTES};
use idempotency::{KeyTable, SeenKey, Verdict};
use index::NameEntry;
pub use journal::{Change, Journal, PushError};
pub use quota::{Quota, QuotaUsage};
pub use select::{GroupPage, GroupSummary, ViewPage};
pub use series::{escaped_series_id, series_id, SeriesId, SeriesIndex};
pub use snapshot::{GroupTimes, NameSnapshot, Snapshot, Stats};

pub use restore::{PreparedChange, RestoredGroup};

use crate::model::{GroupingKey, MetricFamily, MetricType, NameValidation, Str, INSTANCE_LABEL};
use crate::selector::Selector;

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
    /// PUT or POST under `/aggregate`: the push adds to the series it names and keeps
    /// everything else (see [`aggregate`]).
    Aggregate,
}

/// A TTL a push set for its own group (the `Pushgateway-TTL` header), in place of the
/// expiry rules until a later push without one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupTtl {
    /// The group never expires.
    Never,
    /// The group expires this long after its last successful push.
    After(Duration),
}

impl GroupTtl {
    /// The TTL in seconds, `None` for a group that never expires.
    pub fn seconds(self) -> Option<f64> {
        match self {
            GroupTtl::Never => None,
            GroupTtl::After(ttl) => Some(ttl.as_secs_f64()),
        }
    }
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
    /// How idempotency keys are remembered.
    pub idempotency: IdempotencyConfig,
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
    /// The TTL its last successful push set, if it set one.
    pub ttl: Option<GroupTtl>,
    /// The idempotency keys it remembers with the time of their push, sorted by key.
    pub keys: Vec<(Str, f64)>,
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

#[derive(Default)]
struct State {
    journal: Option<Box<dyn Journal>>,
    /// Ordered by key, so that listings and pages are range reads that need no sort
    /// (a lookup costs O(log groups), as does creating or removing a group).
    groups: BTreeMap<Arc<GroupingKey>, Group>,
    names: BTreeMap<Str, NameEntry>,
    series: SeriesIndex,
    series_total: usize,
    keys: KeyTable,
    next_version: u64,
    times_version: u64,
    maybe_inconsistent: bool,
    /// How many groups have a TTL of their own, so that expiry knows whether to look.
    groups_with_ttl: usize,
    /// The quotas with their usage.
    quotas: Vec<quota::Counted>,
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
        self.push_with(key, families, mode, now, None, None)
    }

    /// [`Store::push`] with what a push may carry besides its families: the group's own
    /// TTL (`None`: the expiry rules apply to it again; a refused push leaves the TTL as it
    /// was), and an idempotency key (a key the group saw within the window makes the push
    /// answer as the first did, `Ok` with the first push's journal sequence, and change
    /// nothing; an applied push's key is remembered with it).
    ///
    /// # Errors
    /// As [`Store::push`]; [`PushError::Full`] when the key table is full.
    pub fn push_with(
        &self,
        key: GroupingKey,
        families: Vec<MetricFamily>,
        mode: PushMode,
        now: f64,
        ttl: Option<GroupTtl>,
        idempotency_key: Option<Str>,
    ) -> Result<Option<u64>, PushError> {
        self.check_push_limits(&key, &families)?;
        let key = Arc::new(key);
        let families = self.sanitize(&key, families);
        let checked = self.shared.config.consistency == Consistency::Checked;
        // Names in the body were validated by the text parser already; the protobuf format
        // may carry any UTF-8 name (upstream v1.11 validates with the UTF-8 rules here).
        let alone = check_push_alone(&families, NameValidation::Utf8);
        let aggregating = mode == PushMode::Aggregate;
        let mut state = self.shared.state.write();
        if let Some(idempotency_key) = &idempotency_key {
            let config = self.shared.config.idempotency;
            if let Verdict::Seen(seq) =
                idempotency::admit(&mut state, &key, idempotency_key, now, config)?
            {
                return Ok(seq);
            }
        }
        if aggregating {
            aggregate::index_positions(&mut state, &key, &families);
        }
        let verdict = match &alone {
            Ok(ids) if aggregating => aggregate::check_aggregation(&state, &key, &families, ids)
                .and_then(|()| self.check_against_store(&state, &key, &families, ids, mode)),
            Ok(ids) => self.check_against_store(&state, &key, &families, ids, mode),
            Err(rejection) => Err(rejection.clone()),
        };
        let mut inconsistent = false;
        if let Err(rejection) = verdict {
            // Timestamps are refused even unchecked, as upstream (after its 202), and so
            // is what cannot be added: an aggregate needs well-formed series to add to.
            let fatal = rejection == Rejection::Timestamp
                || (aggregating && (alone.is_err() || rejection.is_aggregation()));
            if checked || fatal {
                let max_groups = self.shared.config.limits.max_groups;
                record_failure(&mut state, &key, now, max_groups)?;
                return Err(PushError::Rejected(rejection));
            }
            inconsistent = true;
        }
        // Only the series limits need it; a push under none does not pay for it.
        let replaced = if self.shared.config.limits.max_series > 0 || !state.quotas.is_empty() {
            replaced_series(state.groups.get(&*key), &families, mode)
        } else {
            0
        };
        self.check_capacity(&state, &key, &families, replaced)?;
        self.check_quotas(&state, &key, &families, replaced)?;
        let seq = journal(
            &mut state,
            &Change::Push {
                key: Cow::Borrowed(&key),
                families: Cow::Borrowed(&families),
                mode,
                time: now,
                inconsistent,
                ttl,
                idempotency_key: idempotency_key.clone(),
            },
        )?;
        // Stored anyway when unchecked; the exposition filters what does not fit.
        state.maybe_inconsistent |= inconsistent;
        apply(&mut state, key.clone(), families, mode, now, ttl);
        if let Some(idempotency_key) = idempotency_key {
            idempotency::remember(
                &mut state,
                &key,
                idempotency_key,
                SeenKey { time: now, seq },
            );
        }
        Ok(seq)
    }

    /// Removes a group; a no-op for an unknown group.
    ///
    /// # Errors
    /// [`PushError::Unavailable`] when the change cannot be journaled.
    pub fn delete(&self, key: &GroupingKey) -> Result<Option<u64>, PushError> {
        let mut state = self.shared.state.write();
        let seq = journal(
            &mut state,
            &Change::Delete {
                key: Cow::Borrowed(key),
            },
        )?;
        remove_group(&mut state, key);
        Ok(seq)
    }

    /// Removes every group that any of `selectors` matches, as one journaled change, and
    /// returns them in key order. Nothing is journaled when nothing matches. One pass over
    /// the groups, then each removal costs the size of its group.
    ///
    /// # Errors
    /// [`PushError::Unavailable`] when the change cannot be journaled; nothing is removed.
    pub fn delete_matching(
        &self,
        selectors: &[Selector],
    ) -> Result<(Option<u64>, Vec<GroupSummary>), PushError> {
        let mut state = self.shared.state.write();
        let matching = select::matching(&state, selectors);
        if matching.is_empty() {
            return Ok((None, matching));
        }
        let seq = journal(
            &mut state,
            &Change::DeleteMatching {
                selectors: Cow::Borrowed(selectors),
            },
        )?;
        for group in &matching {
            remove_group(&mut state, &group.key);
        }
        Ok((seq, matching))
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

    /// Number of idempotency keys remembered.
    pub fn idempotency_keys(&self) -> usize {
        idempotency::count(&self.shared.state.read())
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
        Ok((result, views))
    }

    /// Removes, like DELETEs, every group whose last successful push (or, for a group that
    /// never had one, its last failure) is at least its TTL before `now`. A group's TTL is
    /// its own ([`GroupTtl`]) if its last push set one, else what `ttl` gives (in seconds,
    /// `None` for groups that never expire).
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
            journal(
                &mut state,
                &Change::Delete {
                    key: Cow::Borrowed(&key),
                },
            )?;
            remove_group(&mut state, &key);
            removed.push((*key).clone());
        }
        // In key order, as the group map is.
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

    /// Whether any group has a TTL of its own (then expiry must look even without rules).
    pub fn has_group_ttls(&self) -> bool {
        self.shared.state.read().groups_with_ttl > 0
    }

    /// Runs `f` on the journal under the store's lock, without copying any state.
    pub fn cut_journal_only(&self, f: impl FnOnce(Option<&mut (dyn Journal + 'static)>)) {
        let mut state = self.shared.state.write();
        f(state.journal.as_deref_mut());
    }
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

#[cfg(test)]
mod tests;
