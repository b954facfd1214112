//! Groups chosen by label selectors: the listing of `/api/v1/groups` (a page in key order)
//! and the groups a matcher delete removes. Each is one pass over the groups; ordering
//! costs only what is returned.

use std::cmp::Ordering;
use std::sync::Arc;

use crate::model::GroupingKey;
use crate::selector::Selector;

use super::group::Group;
use super::{State, Store};

/// One group as listed: its key, last successful push and size.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupSummary {
    /// The grouping key.
    pub key: Arc<GroupingKey>,
    /// Unix time of the last successful push, 0 if none.
    pub push_time: f64,
    /// Stored series (a summary or histogram counts once).
    pub series: usize,
}

/// One page of a listing, in grouping-key order.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupPage {
    /// The groups of this page.
    pub groups: Vec<GroupSummary>,
    /// Whether more groups match after the last one of this page.
    pub more: bool,
}

fn summary(key: &Arc<GroupingKey>, group: &Group) -> GroupSummary {
    GroupSummary {
        key: key.clone(),
        push_time: group.push_time,
        series: group.series(),
    }
}

fn any_matches(selectors: &[Selector], key: &GroupingKey) -> bool {
    selectors.iter().any(|s| s.matches(key))
}

/// The groups any of `selectors` matches (none for no selector), in no particular order.
pub(super) fn matching(state: &State, selectors: &[Selector]) -> Vec<GroupSummary> {
    state
        .groups
        .iter()
        .filter(|(key, _)| any_matches(selectors, key))
        .map(|(key, group)| summary(key, group))
        .collect()
}

impl Store {
    /// The groups any of `selectors` matches (every group when there is none) whose key
    /// sorts after `after`, at most `limit` of them (0: no limit), in key order. Paging by
    /// the last key returned stays stable while groups come and go.
    pub fn list_groups(
        &self,
        selectors: &[Selector],
        after: Option<&GroupingKey>,
        limit: usize,
    ) -> GroupPage {
        let state = self.shared.state.read();
        let mut found: Vec<(&Arc<GroupingKey>, &Group)> = state
            .groups
            .iter()
            .filter(|(key, _)| after.is_none_or(|after| key.as_ref() > after))
            .filter(|(key, _)| selectors.is_empty() || any_matches(selectors, key))
            .collect();
        let by_key = |a: &(&Arc<GroupingKey>, &Group),
                      b: &(&Arc<GroupingKey>, &Group)|
         -> Ordering { a.0.cmp(b.0) };
        let more = limit > 0 && found.len() > limit;
        if more {
            // The first `limit` keys without sorting the rest.
            found.select_nth_unstable_by(limit, by_key);
            found.truncate(limit);
        }
        found.sort_unstable_by(by_key);
        GroupPage {
            groups: found
                .into_iter()
                .map(|(key, group)| summary(key, group))
                .collect(),
            more,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Label, Metric, MetricFamily, MetricType, Value};
    use crate::store::{PushMode, StoreConfig};

    fn key(job: &str) -> GroupingKey {
        GroupingKey::new(vec![Label::new("job", job)])
    }

    fn store_with(jobs: &[&str]) -> Store {
        let store = Store::new(StoreConfig::default());
        for job in jobs {
            let family = MetricFamily {
                name: "x".into(),
                help: None,
                metric_type: MetricType::Gauge,
                metrics: vec![
                    Metric::new(vec![Label::new("i", "1")], Value::Gauge(1.0)),
                    Metric::new(vec![Label::new("i", "2")], Value::Gauge(2.0)),
                ],
            };
            store
                .push(key(job), vec![family], PushMode::Replace, 1.0)
                .expect("push");
        }
        store
    }

    fn jobs(page: &GroupPage) -> Vec<String> {
        page.groups
            .iter()
            .map(|g| g.key.get("job").map(|v| v.to_string()).unwrap_or_default())
            .collect()
    }

    #[test]
    fn pages_follow_key_order_and_end() {
        let store = store_with(&["e", "b", "d", "a", "c"]);
        let first = store.list_groups(&[], None, 2);
        assert_eq!(jobs(&first), ["a", "b"]);
        assert!(first.more);
        assert_eq!(first.groups[0].series, 2);
        let second = store.list_groups(&[], Some(&first.groups[1].key), 2);
        assert_eq!(jobs(&second), ["c", "d"]);
        let third = store.list_groups(&[], Some(&second.groups[1].key), 2);
        assert_eq!(jobs(&third), ["e"]);
        assert!(!third.more);
        assert_eq!(
            jobs(&store.list_groups(&[], None, 0)),
            ["a", "b", "c", "d", "e"]
        );
    }

    #[test]
    fn selectors_are_ored_and_delete_removes_exactly_the_matches() {
        let store = store_with(&["a1", "a2", "b1", "c1"]);
        let selectors = [
            Selector::parse(r#"{job=~"a.*"}"#).expect("selector"),
            Selector::parse(r#"{job="c1"}"#).expect("selector"),
        ];
        let listed = store.list_groups(&selectors, None, 0);
        assert_eq!(jobs(&listed), ["a1", "a2", "c1"]);
        let (_, deleted) = store.delete_matching(&selectors).expect("delete");
        assert_eq!(deleted, listed.groups);
        assert_eq!(jobs(&store.list_groups(&[], None, 0)), ["b1"]);
        assert_eq!(store.stats().series, 2);
        let (seq, none) = store.delete_matching(&selectors).expect("delete");
        assert!(none.is_empty() && seq.is_none());
    }
}
