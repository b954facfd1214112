//! Quotas: limits on the groups and series stored under a set of grouping labels (a team's
//! jobs, say). Each group remembers which quotas it counts towards, and each quota keeps
//! its usage as groups and families come and go, so that a push is checked against the
//! usage counters of its own group's quotas, never by scanning the store. Only a change of
//! the rules (a reload) counts everything once.
//!
//! The verdict depends only on the rules and the stored state, so replicas applying the
//! same stream with the same rules reach the same one.

use std::sync::Arc;

use crate::label_match::LabelMatcher;
use crate::model::{GroupingKey, MetricFamily};

use super::{PushError, State, Store};

/// One quota of the configuration file.
#[derive(Debug, Clone)]
pub struct Quota {
    /// Its name, the `quota` label of its metrics.
    pub name: String,
    /// The groups it counts.
    pub matcher: LabelMatcher,
    /// Most series (metrics, a histogram counting once) in those groups, if limited.
    pub max_series: Option<usize>,
    /// Most of those groups, if limited.
    pub max_groups: Option<usize>,
}

impl Quota {
    /// One line describing it, for the replicas' settings comparison.
    pub fn describe(&self) -> String {
        let limit = |l: Option<usize>| l.map_or("none".to_string(), |l| l.to_string());
        format!(
            "name={:?} match={} max_series={} max_groups={}",
            self.name,
            self.matcher.describe(),
            limit(self.max_series),
            limit(self.max_groups)
        )
    }
}

/// A quota's limits and what the groups it counts hold now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaUsage {
    /// The quota's name.
    pub name: String,
    /// Series stored in its groups.
    pub series: usize,
    /// Its groups.
    pub groups: usize,
    /// Its series limit, if any.
    pub max_series: Option<usize>,
    /// Its group limit, if any.
    pub max_groups: Option<usize>,
}

/// A quota with its usage counters, kept in the store's state.
#[derive(Debug)]
pub(super) struct Counted {
    quota: Quota,
    pub(super) series: usize,
    pub(super) groups: usize,
}

/// The quotas a group counts towards: indexes into the state's quotas.
pub(super) type Membership = Arc<[u32]>;

/// The quotas whose conditions `key` meets.
pub(super) fn membership(quotas: &[Counted], key: &GroupingKey) -> Membership {
    quotas
        .iter()
        .enumerate()
        .filter(|(_, counted)| counted.quota.matcher.matches(key))
        .map(|(i, _)| i as u32)
        .collect()
}

/// A new group enters the quotas of `membership`.
pub(super) fn add_group(quotas: &mut [Counted], membership: &[u32]) {
    for &i in membership {
        quotas[i as usize].groups += 1;
    }
}

/// A group leaves the quotas of `membership`.
pub(super) fn remove_group(quotas: &mut [Counted], membership: &[u32]) {
    for &i in membership {
        quotas[i as usize].groups -= 1;
    }
}

/// `count` series come (`added`) or go in a group of `membership`.
pub(super) fn change_series(quotas: &mut [Counted], membership: &[u32], count: usize, added: bool) {
    for &i in membership {
        let series = &mut quotas[i as usize].series;
        *series = if added {
            *series + count
        } else {
            *series - count
        };
    }
}

/// Whether a new group `key` would exceed one of its quotas' group limits.
pub(super) fn group_limit_reached(quotas: &[Counted], key: &GroupingKey) -> bool {
    quotas.iter().any(|counted| {
        counted
            .quota
            .max_groups
            .is_some_and(|max| counted.groups >= max && counted.quota.matcher.matches(key))
    })
}

impl Store {
    /// Replaces the quotas and counts their usage once over every stored group (a reload).
    pub fn set_quotas(&self, quotas: Vec<Quota>) {
        let mut state = self.shared.state.write();
        let mut counted: Vec<Counted> = quotas
            .into_iter()
            .map(|quota| Counted {
                quota,
                series: 0,
                groups: 0,
            })
            .collect();
        for (key, group) in state.groups.iter_mut() {
            group.quotas = membership(&counted, key);
            let series = group.families.values().map(|f| f.len()).sum();
            add_group(&mut counted, &group.quotas);
            change_series(&mut counted, &group.quotas, series, true);
        }
        state.quotas = counted;
    }

    /// Every quota's limits and usage, in configuration order.
    pub fn quota_usage(&self) -> Vec<QuotaUsage> {
        let state = self.shared.state.read();
        state
            .quotas
            .iter()
            .map(|counted| QuotaUsage {
                name: counted.quota.name.clone(),
                series: counted.series,
                groups: counted.groups,
                max_series: counted.quota.max_series,
                max_groups: counted.quota.max_groups,
            })
            .collect()
    }

    /// The quotas in force (for the replicas' settings comparison).
    pub fn quotas(&self) -> Vec<Quota> {
        let state = self.shared.state.read();
        state.quotas.iter().map(|c| c.quota.clone()).collect()
    }

    /// Refuses a push that would take one of its group's quotas past a limit; a push that
    /// does not grow the usage passes even over a limit (one lowered by a reload), so that
    /// a team can always replace what it has.
    pub(super) fn check_quotas(
        &self,
        state: &State,
        key: &GroupingKey,
        families: &[MetricFamily],
        replaced: usize,
    ) -> Result<(), PushError> {
        if state.quotas.is_empty() {
            return Ok(());
        }
        let group = state.groups.get(key);
        let new_membership;
        let member_of: &[u32] = match group {
            Some(group) => &group.quotas,
            None => {
                new_membership = membership(&state.quotas, key);
                &new_membership
            }
        };
        let added: usize = families.iter().map(|f| f.metrics.len()).sum();
        for &i in member_of {
            let counted = &state.quotas[i as usize];
            let quota = &counted.quota;
            if let Some(max) = quota
                .max_groups
                .filter(|&max| group.is_none() && counted.groups >= max)
            {
                return Err(PushError::OverQuota(format!(
                    "quota {:?} ({}) allows {max} groups and {} are stored; the push would add group {key}",
                    quota.name,
                    quota.matcher.describe(),
                    counted.groups,
                )));
            }
            if let Some(max) = quota.max_series {
                let after = counted.series - replaced + added;
                if after > max && added > replaced {
                    return Err(PushError::OverQuota(format!(
                        "quota {:?} ({}) allows {max} series and {} are stored; the push would make them {after}",
                        quota.name,
                        quota.matcher.describe(),
                        counted.series,
                    )));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod drift_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::label_match::anchored;
    use crate::model::{Label, Metric, MetricType, Value};
    use crate::store::{PushMode, StoreConfig};

    fn key(job: &str, instance: &str) -> GroupingKey {
        GroupingKey::new(vec![
            Label::new("job", job),
            Label::new("instance", instance),
        ])
    }

    fn family(name: &str, series: usize) -> MetricFamily {
        MetricFamily {
            name: name.into(),
            help: None,
            metric_type: MetricType::Gauge,
            metrics: (0..series)
                .map(|i| Metric::new(vec![Label::new("i", i.to_string())], Value::Gauge(1.0)))
                .collect(),
        }
    }

    fn team_quota(max_series: Option<usize>, max_groups: Option<usize>) -> Quota {
        Quota {
            name: "team-a".into(),
            matcher: LabelMatcher {
                labels: Default::default(),
                labels_regex: vec![("job".into(), anchored("team-a-.*").expect("regex"))],
            },
            max_series,
            max_groups,
        }
    }

    fn push(
        store: &Store,
        key: GroupingKey,
        families: Vec<MetricFamily>,
        mode: PushMode,
    ) -> Result<(), PushError> {
        store.push(key, families, mode, 1.0).map(|_| ())
    }

    fn usage(store: &Store) -> (usize, usize) {
        let usage = store.quota_usage();
        (usage[0].series, usage[0].groups)
    }

    #[test]
    fn series_over_the_quota_are_refused_and_change_nothing() {
        let store = Store::new(StoreConfig::default());
        store.set_quotas(vec![team_quota(Some(10), None)]);
        push(
            &store,
            key("team-a-1", "a"),
            vec![family("m", 6)],
            PushMode::Replace,
        )
        .expect("fits");
        push(
            &store,
            key("team-b", "a"),
            vec![family("m", 50)],
            PushMode::Replace,
        )
        .expect("not counted");
        assert_eq!(usage(&store), (6, 1));
        let refused = push(
            &store,
            key("team-a-2", "a"),
            vec![family("m", 5)],
            PushMode::Replace,
        )
        .expect_err("11 > 10");
        assert!(
            matches!(&refused, PushError::OverQuota(why) if why.contains("\"team-a\"") && why.contains("10 series") && why.contains("6 are stored")),
            "{refused:?}"
        );
        assert_eq!(usage(&store), (6, 1));
        assert_eq!(store.stats().groups, 2, "no group, not even a failure time");
        // Replacing what the team has fits even when it is as large.
        push(
            &store,
            key("team-a-1", "a"),
            vec![family("m", 10)],
            PushMode::Replace,
        )
        .expect("replace");
        assert_eq!(usage(&store), (10, 1));
        // POST replaces only the families it names.
        push(
            &store,
            key("team-a-1", "a"),
            vec![family("n", 1)],
            PushMode::Merge,
        )
        .expect_err("11");
        push(
            &store,
            key("team-a-1", "a"),
            vec![family("m", 9), family("n", 1)],
            PushMode::Merge,
        )
        .expect("10");
        store.delete(&key("team-a-1", "a")).expect("delete");
        assert_eq!(usage(&store), (0, 0));
    }

    #[test]
    fn groups_over_the_quota_are_refused_even_as_failures() {
        let store = Store::new(StoreConfig::default());
        store.set_quotas(vec![team_quota(None, Some(2))]);
        for instance in ["a", "b"] {
            push(
                &store,
                key("team-a-1", instance),
                vec![family("m", 1)],
                PushMode::Replace,
            )
            .expect("fits");
        }
        let refused = push(
            &store,
            key("team-a-1", "c"),
            vec![family("m", 1)],
            PushMode::Replace,
        );
        assert!(
            matches!(refused, Err(PushError::OverQuota(_))),
            "{refused:?}"
        );
        // An inconsistent push to a new group would record a failure time: not past the quota.
        let mut counter = family("m", 1);
        counter.metric_type = MetricType::Counter;
        let inconsistent = push(
            &store,
            key("team-a-1", "c"),
            vec![counter],
            PushMode::Replace,
        );
        assert!(
            matches!(inconsistent, Err(PushError::Rejected(_))),
            "{inconsistent:?}"
        );
        assert_eq!(usage(&store), (2, 2));
        assert_eq!(store.stats().groups, 2);
        // Existing groups may still be pushed to.
        push(
            &store,
            key("team-a-1", "a"),
            vec![family("m", 3)],
            PushMode::Replace,
        )
        .expect("existing");
        store.wipe().expect("wipe");
        assert_eq!(usage(&store), (0, 0));
        push(
            &store,
            key("team-a-1", "c"),
            vec![family("m", 1)],
            PushMode::Replace,
        )
        .expect("room again");
    }

    #[test]
    fn new_rules_count_what_is_stored_and_restores_are_counted() {
        let store = Store::new(StoreConfig::default());
        push(
            &store,
            key("team-a-1", "a"),
            vec![family("m", 4), family("n", 2)],
            PushMode::Replace,
        )
        .expect("push");
        push(
            &store,
            key("team-a-2", "a"),
            vec![family("m", 1)],
            PushMode::Replace,
        )
        .expect("push");
        store.set_quotas(vec![team_quota(Some(5), Some(1))]);
        assert_eq!(usage(&store), (7, 2), "over both limits after the reload");
        // Shrinking is allowed over a limit; growing is not.
        push(
            &store,
            key("team-a-1", "a"),
            vec![family("m", 1)],
            PushMode::Replace,
        )
        .expect("shrink");
        assert_eq!(usage(&store), (2, 2));
        push(
            &store,
            key("team-a-3", "a"),
            vec![family("m", 1)],
            PushMode::Replace,
        )
        .expect_err("groups");

        let copy = Store::new(StoreConfig::default());
        copy.set_quotas(vec![team_quota(Some(5), Some(1))]);
        copy.replace_all(store.groups());
        assert_eq!(usage(&copy), (2, 2));
        copy.set_quotas(Vec::new());
        assert!(copy.quota_usage().is_empty());
    }
}
