//! The operator's opt-in to aggregation without client changes: groups whose grouping key
//! an `[[aggregate]]` selector of the configuration file matches aggregate when pushed on
//! the ordinary `/metrics/job/...` paths, as if pushed under `/aggregate`.

use crate::model::GroupingKey;
use crate::selector::Selector;

/// The `[[aggregate]]` rules: a group aggregates when any selector matches its key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AggregateRules {
    selectors: Vec<Selector>,
}

impl AggregateRules {
    /// Rules from their selectors, in file order.
    pub fn new(selectors: Vec<Selector>) -> AggregateRules {
        AggregateRules { selectors }
    }

    /// Whether pushes to `key` aggregate.
    pub fn matches(&self, key: &GroupingKey) -> bool {
        self.selectors.iter().any(|s| s.matches(key))
    }

    /// The selectors, in file order.
    pub fn selectors(&self) -> &[Selector] {
        &self.selectors
    }
}
