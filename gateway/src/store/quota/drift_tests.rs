//! Random sequences of every kind of change, with the quota counters compared after each
//! one to a recount over the stored groups, and a replay of the journal compared at the end.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::label_match::{anchored, LabelMatcher};
use crate::model::{GroupingKey, Label, Metric, MetricFamily, MetricType, Value};
use crate::selector::Selector;
use crate::store::{
    Change, Consistency, GroupTtl, Journal, PushMode, Quota, QuotaUsage, Store, StoreConfig,
};
use crate::test_rng::Rng;

/// Keeps every change, owned, to replay it into another store.
#[derive(Default, Clone)]
struct Recorder(Arc<Mutex<Vec<Change<'static>>>>);

impl Journal for Recorder {
    fn append(&mut self, change: &Change<'_>) -> std::io::Result<u64> {
        let owned = change.to_static();
        let mut changes = self.0.lock();
        changes.push(owned);
        Ok(changes.len() as u64)
    }

    fn as_any(&mut self) -> &mut dyn std::any::Any {
        self
    }
}

fn quota(name: &str, matcher: LabelMatcher, series: usize, groups: usize) -> Quota {
    Quota {
        name: name.into(),
        matcher,
        max_series: Some(series),
        max_groups: Some(groups),
    }
}

fn all_quotas() -> Vec<Quota> {
    let team_a = LabelMatcher {
        labels: Default::default(),
        labels_regex: vec![("job".into(), anchored("team-a-.*").expect("regex"))],
    };
    let instance_x = LabelMatcher {
        labels: [("instance".to_string(), "x".to_string())].into(),
        labels_regex: Vec::new(),
    };
    vec![
        quota("team-a", team_a, 8, 2),
        quota("instance-x", instance_x, 6, 3),
        quota("everything", LabelMatcher::default(), 14, 5),
    ]
}

fn random_key(rng: &mut Rng) -> GroupingKey {
    let job = ["team-a-1", "team-a-2", "team-b"][rng.below(3)];
    let mut labels = vec![Label::new("job", job)];
    match rng.below(3) {
        0 => {}
        1 => labels.push(Label::new("instance", "")),
        _ => labels.push(Label::new("instance", "x")),
    }
    GroupingKey::new(labels)
}

/// Up to two families; the parsers merge a name given twice, but the store must not count
/// it twice when a caller does not.
fn random_families(rng: &mut Rng) -> Vec<MetricFamily> {
    (0..rng.below(3))
        .map(|_| {
            let name = ["a", "b", "c"][rng.below(3)];
            // Types that differ between pushes make some of them inconsistent.
            let (metric_type, value) = if rng.below(4) == 0 {
                (MetricType::Counter, Value::Counter(1.0))
            } else {
                (MetricType::Gauge, Value::Gauge(1.0))
            };
            let series = rng.below(5);
            let first = rng.below(3);
            MetricFamily {
                name: name.into(),
                help: None,
                metric_type,
                metrics: (first..first + series)
                    .map(|i| Metric::new(vec![Label::new("i", i.to_string())], value.clone()))
                    .collect(),
            }
        })
        .collect()
}

/// The usage as the rules would count it now, from what is stored.
fn recount(store: &Store) -> Vec<QuotaUsage> {
    let groups = store.groups();
    store
        .quotas()
        .into_iter()
        .map(|quota| {
            let members: Vec<_> = groups
                .iter()
                .filter(|g| quota.matcher.matches(&g.key))
                .collect();
            QuotaUsage {
                name: quota.name.clone(),
                series: members
                    .iter()
                    .flat_map(|g| &g.families)
                    .map(|f| f.len())
                    .sum(),
                groups: members.len(),
                max_series: quota.max_series,
                max_groups: quota.max_groups,
            }
        })
        .collect()
}

fn run(seed: u64, consistency: Consistency) {
    let config = || StoreConfig {
        consistency,
        ..StoreConfig::default()
    };
    let store = Store::new(config());
    let recorder = Recorder::default();
    store.set_journal(Box::new(recorder.clone()));
    store.set_quotas(all_quotas());
    let selector = Selector::parse(r#"{job=~"team-a.*",instance!="x"}"#).expect("selector");
    let mut rng = Rng(seed);
    for step in 0..400 {
        let now = f64::from(step);
        let op = rng.below(20);
        match op {
            0..=11 => {
                let mode = match rng.below(3) {
                    0 => PushMode::Replace,
                    1 => PushMode::Merge,
                    // Aggregating pushes add series to families in place.
                    _ => PushMode::Aggregate,
                };
                let ttl = (rng.below(3) == 0).then_some(GroupTtl::After(Duration::from_secs(3)));
                let _ = store.push_with(
                    random_key(&mut rng),
                    random_families(&mut rng),
                    mode,
                    now,
                    ttl,
                    None,
                );
            }
            12 | 13 => {
                store.delete(&random_key(&mut rng)).expect("delete");
            }
            14 => {
                store
                    .delete_matching(std::slice::from_ref(&selector))
                    .expect("delete by matcher");
            }
            15 if rng.below(4) == 0 => {
                store.wipe().expect("wipe");
            }
            16 => {
                store.expire(now, |_| Some(10.0)).expect("expire");
            }
            17 => {
                // A reload: some of the quotas, in some order.
                let mut quotas = all_quotas();
                quotas.rotate_left(rng.below(3));
                quotas.truncate(1 + rng.below(3));
                store.set_quotas(quotas);
            }
            18 => {
                // A replica loading a snapshot of the same state.
                store.replace_all(store.groups());
            }
            _ => {}
        }
        assert_eq!(
            store.quota_usage(),
            recount(&store),
            "seed {seed}, step {step}, op {op}"
        );
    }
    // A restart: the same rules, the journal replayed from the start.
    let restarted = Store::new(config());
    restarted.set_quotas(store.quotas());
    for change in recorder.0.lock().drain(..) {
        restarted.replay(change);
    }
    let keys = |store: &Store| -> Vec<_> { store.groups().into_iter().map(|g| g.key).collect() };
    assert_eq!(keys(&restarted), keys(&store), "seed {seed}");
    assert_eq!(restarted.quota_usage(), recount(&restarted), "seed {seed}");
    assert_eq!(restarted.quota_usage(), store.quota_usage(), "seed {seed}");
}

#[test]
fn usage_counters_match_a_recount_after_any_sequence_of_changes() {
    for seed in 1..=40 {
        run(seed * 0x9E37_79B9, Consistency::Checked);
        run(seed * 0x85EB_CA6B, Consistency::Unchecked);
    }
}
