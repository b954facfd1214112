//! Groups in key order, a page at a time: the listing of `/api/v1/groups`, the pages of
//! `/api/v1/metrics`, and the groups a matcher delete removes. The group map is ordered
//! by key, so a page after a cursor is a range read under a short read lock that costs
//! what it returns (plus, with selectors, the groups it skips), never a sort of the store.

use std::ops::Bound;
use std::sync::Arc;

use crate::model::GroupingKey;
use crate::selector::Selector;

use super::group::{group_view, Group};
use super::{GroupView, State, Store};

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

/// One page of groups with their families, in grouping-key order.
#[derive(Debug, Clone)]
pub struct ViewPage {
    /// The groups of this page (their families shared with the store, not copied).
    pub groups: Vec<GroupView>,
    /// Whether a group follows the last one of this page.
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

/// The groups any of `selectors` matches (none for no selector), in key order.
pub(super) fn matching(state: &State, selectors: &[Selector]) -> Vec<GroupSummary> {
    state
        .groups
        .iter()
        .filter(|(key, _)| any_matches(selectors, key))
        .map(|(key, group)| summary(key, group))
        .collect()
}

/// The groups whose key sorts after `after` (all without it), in key order.
fn groups_after<'a>(
    state: &'a State,
    after: Option<&GroupingKey>,
) -> impl Iterator<Item = (&'a Arc<GroupingKey>, &'a Group)> {
    let start = after.map_or(Bound::Unbounded, Bound::Excluded);
    state
        .groups
        .range::<GroupingKey, _>((start, Bound::Unbounded))
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
        let mut found = groups_after(&state, after)
            .filter(|(key, _)| selectors.is_empty() || any_matches(selectors, key));
        let limit = if limit == 0 { usize::MAX } else { limit };
        let groups: Vec<GroupSummary> = found
            .by_ref()
            .take(limit)
            .map(|(key, group)| summary(key, group))
            .collect();
        let more = found.next().is_some();
        GroupPage { groups, more }
    }

    /// The groups whose key sorts after `after` (from the first without it), in key order:
    /// at most `limit` groups, and no more once they hold `series_budget` series (but at
    /// least one group, however large). Costs what it returns, under the read lock.
    pub fn group_page(
        &self,
        after: Option<&GroupingKey>,
        limit: usize,
        series_budget: usize,
    ) -> ViewPage {
        let state = self.shared.state.read();
        let mut following = groups_after(&state, after).peekable();
        let mut groups = Vec::new();
        let mut series = 0;
        while groups.len() < limit && (groups.is_empty() || series < series_budget) {
            let Some((key, group)) = following.next() else {
                break;
            };
            series += group.series();
            groups.push(group_view(key, group));
        }
        let more = following.peek().is_some();
        ViewPage { groups, more }
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
    fn view_pages_stop_at_the_limit_or_the_series_budget() {
        let store = store_with(&["c", "a", "b", "d"]);
        let keys = |page: &ViewPage| -> Vec<String> {
            page.groups
                .iter()
                .map(|g| g.key.get("job").map(|v| v.to_string()).unwrap_or_default())
                .collect()
        };
        let page = store.group_page(None, 3, usize::MAX);
        assert_eq!(
            (keys(&page), page.more),
            (vec!["a".into(), "b".into(), "c".into()], true)
        );
        // Two series per group: a budget of 3 takes two groups, a budget of 1 still one.
        assert_eq!(keys(&store.group_page(None, 10, 3)), ["a", "b"]);
        assert_eq!(keys(&store.group_page(None, 10, 1)), ["a"]);
        let last = store.group_page(Some(&key("b")), 10, usize::MAX);
        assert_eq!(
            (keys(&last), last.more),
            (vec!["c".into(), "d".into()], false)
        );
        // A cursor naming no stored group continues after where it would sort.
        assert_eq!(keys(&store.group_page(Some(&key("bb")), 1, 1)), ["c"]);
        assert!(store.group_page(Some(&key("d")), 1, 1).groups.is_empty());
    }

    #[test]
    fn pages_see_every_group_once_while_groups_come_and_go() {
        let store = store_with(&["a", "b", "c", "d", "e"]);
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = store.group_page(after.as_deref(), 2, usize::MAX);
            assert!(page.groups.len() <= 2);
            for group in &page.groups {
                let job = group
                    .key
                    .get("job")
                    .map(|v| v.to_string())
                    .unwrap_or_default();
                if job == "b" {
                    // Behind the cursor: not seen; ahead of it: seen; gone: not seen.
                    store
                        .push(key("a0"), vec![], PushMode::Replace, 2.0)
                        .expect("push");
                    store
                        .push(key("cc"), vec![], PushMode::Replace, 2.0)
                        .expect("push");
                    store.delete(&key("d")).expect("delete");
                }
                seen.push(job);
            }
            after = page.groups.last().map(|g| g.key.clone());
            if !page.more {
                break;
            }
        }
        assert_eq!(seen, ["a", "b", "c", "cc", "e"]);
        let all: Vec<_> = store.groups().into_iter().map(|g| g.key).collect();
        let mut sorted = all.clone();
        sorted.sort();
        assert_eq!(all, sorted);
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
