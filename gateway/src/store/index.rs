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

/// How many families of a name have each type.
#[derive(Default, Clone, Copy)]
pub(super) struct TypeCounts([u32; 6]);

impl TypeCounts {
    pub(super) fn slot(t: MetricType) -> usize {
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
    pub(super) fn add(&mut self, t: MetricType) {
        self.0[Self::slot(t)] += 1;
    }
    pub(super) fn remove(&mut self, t: MetricType) {
        let slot = &mut self.0[Self::slot(t)];
        *slot = slot.saturating_sub(1);
    }
    pub(super) fn has(&self, t: MetricType) -> bool {
        self.0[Self::slot(t)] > 0
    }
    pub(super) fn any(&self) -> bool {
        self.0.iter().any(|&c| c > 0)
    }
    pub(super) fn other_than(&self, t: MetricType) -> Option<MetricType> {
        Self::ALL.into_iter().find(|&o| o != t && self.has(o))
    }
}
