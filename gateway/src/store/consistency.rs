//! The consistency check of a push against what is stored: type conflicts, `_sum`/
//! `_count`/`_bucket` collisions, the gateway's own metrics, duplicate series and groups
//! whose timestamps would clash. It reads only the index entries of the pushed names.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::model::{GroupingKey, Label, MetricFamily, MetricType};

use super::check::{self, base_name, derived_names};
use super::group::clashing_group;
use super::index::TypeCounts;
use super::{series_id, PushMode, Rejection, SeriesId, State, Store, StoredFamily};

impl Store {
    pub(super) fn check_against_store(
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
                counts.remove(old.metric_type);
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
            // The pushed series this group stores already under the name: those the push
            // replaces, or (aggregating) adds to, found through the family's positions
            // instead of a pass over the family.
            let positions = group.and_then(|g| g.positions.get(name));
            let replaced_ids: HashSet<SeriesId> = match mode {
                PushMode::Aggregate => HashSet::new(),
                _ => replaced(name)
                    .map(|old| old.series().map(|s| series_id(name, s.labels())).collect())
                    .unwrap_or_default(),
            };
            let own = |id: &SeriesId| match mode {
                PushMode::Aggregate => positions.is_some_and(|p| p.contains_key(id)),
                _ => replaced_ids.contains(id),
            };
            for (metric, id) in family.metrics.iter().zip(family_ids) {
                let stored = state.series.count(*id);
                let stored = stored.saturating_sub(u32::from(own(id)));
                // The index holds hashes: a hit is refused only once the labels confirm it.
                let skip_own_group = replaced(name).is_some() || own(id);
                if stored > 0 && stored_elsewhere(state, key, name, &metric.labels, skip_own_group)
                {
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

/// Whether a family named `name` stores a series with exactly the full labels `labels`
/// (sorted), not counting `key`'s own family when `skip_own_group` (the push replaces it,
/// or adds to that very series). Only the groups whose labels are all in `labels` can hold
/// it; each is one binary search. Runs only on a hit of the hashed index, which almost
/// always is a real duplicate that refuses the push.
fn stored_elsewhere(
    state: &State,
    key: &GroupingKey,
    name: &str,
    labels: &[Label],
    skip_own_group: bool,
) -> bool {
    let Some(entry) = state.names.get(name) else {
        return false;
    };
    let has = |wanted: &Label| {
        labels
            .binary_search_by(|l| l.name.cmp(&wanted.name))
            .is_ok_and(|i| labels[i].value == wanted.value)
    };
    entry.owners.iter().any(|(owner, family)| {
        !(skip_own_group && **owner == *key)
            && owner.labels().iter().all(has)
            && family.contains(labels)
    })
}

pub(super) fn type_conflict(name: &str, pushed: MetricType, stored: MetricType) -> Rejection {
    Rejection::TypeConflict {
        name: name.to_string(),
        pushed,
        stored,
    }
}

pub(super) fn suffix_collision(name: &str, kind: &'static str, other: &str) -> Rejection {
    Rejection::SuffixCollision {
        name: name.to_string(),
        kind,
        other: other.to_string(),
    }
}
