//! The per-name index: for every metric name, the groups owning a family of that name and
//! how many of those families have each type, so that a push is checked against only the
//! names it carries.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::model::{GroupingKey, MetricType};

use super::StoredFamily;

#[derive(Default)]
pub(super) struct NameEntry {
    pub(super) owners: BTreeMap<Arc<GroupingKey>, Arc<StoredFamily>>,
    pub(super) type_counts: TypeCounts,
    pub(super) version: u64,
}

/// How many families of a name have each type, by [`MetricType::index`].
#[derive(Default, Clone, Copy)]
pub(super) struct TypeCounts([u32; MetricType::ALL.len()]);

impl TypeCounts {
    pub(super) fn add(&mut self, t: MetricType) {
        self.0[t.index()] += 1;
    }
    pub(super) fn remove(&mut self, t: MetricType) {
        let slot = &mut self.0[t.index()];
        *slot = slot.saturating_sub(1);
    }
    pub(super) fn has(&self, t: MetricType) -> bool {
        self.0[t.index()] > 0
    }
    /// How many different types the name has.
    pub(super) fn kinds(&self) -> usize {
        self.0.iter().filter(|&&c| c > 0).count()
    }
    pub(super) fn any(&self) -> bool {
        self.0.iter().any(|&c| c > 0)
    }
    pub(super) fn other_than(&self, t: MetricType) -> Option<MetricType> {
        MetricType::ALL.into_iter().find(|&o| o != t && self.has(o))
    }
}
