//! Opt-in expiry of stale groups: a group that has had no successful push for its TTL is
//! removed exactly like a DELETE (journaled, so also in the persistence file). The TTL is
//! the first matching rule's (rules match grouping labels exactly or by a fully anchored
//! regular expression), else the default; with neither, groups live forever, as upstream.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;

use crate::label_match::LabelMatcher;
use crate::model::GroupingKey;
use crate::store::{PushError, Store};

/// One rule: the groups it matches, and their TTL.
#[derive(Debug, Clone)]
pub struct ExpiryRule {
    /// The groups it applies to (all conditions must hold).
    pub matcher: LabelMatcher,
    /// The TTL of matching groups.
    pub ttl: Duration,
}

/// The expiry settings.
#[derive(Debug, Clone, Default)]
pub struct ExpiryPolicy {
    /// TTL of groups no rule matches; `None`: they never expire.
    pub default_ttl: Option<Duration>,
    /// Rules in file order; the first match wins.
    pub rules: Vec<ExpiryRule>,
}

impl ExpiryPolicy {
    /// Whether any group can expire at all.
    pub fn is_enabled(&self) -> bool {
        self.default_ttl.is_some() || !self.rules.is_empty()
    }

    /// The TTL of a group, if it expires.
    pub fn ttl_for(&self, key: &GroupingKey) -> Option<Duration> {
        self.rules
            .iter()
            .find(|rule| rule.matcher.matches(key))
            .map(|rule| rule.ttl)
            .or(self.default_ttl)
    }

    /// Unix time at which a group whose last successful push was at `last_push` expires.
    pub fn deadline(&self, key: &GroupingKey, last_push: f64) -> Option<f64> {
        self.ttl_for(key).map(|ttl| last_push + ttl.as_secs_f64())
    }
}

/// Applies the policy to the store; the policy can be replaced at run time (reload).
#[derive(Default)]
pub struct Expirer {
    policy: RwLock<Arc<ExpiryPolicy>>,
    expired: AtomicU64,
}

impl Expirer {
    /// An expirer with the given policy.
    pub fn new(policy: ExpiryPolicy) -> Expirer {
        Expirer {
            policy: RwLock::new(Arc::new(policy)),
            expired: AtomicU64::new(0),
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> Arc<ExpiryPolicy> {
        self.policy.read().clone()
    }

    /// Replaces the policy (after a reload).
    pub fn set_policy(&self, policy: ExpiryPolicy) {
        *self.policy.write() = Arc::new(policy);
    }

    /// Groups expired so far.
    pub fn expired_total(&self) -> u64 {
        self.expired.load(Ordering::Relaxed)
    }

    /// Removes every group whose deadline is at or before `now` (Unix seconds); returns
    /// the removed keys.
    ///
    /// # Errors
    /// When a removal cannot be journaled; nothing more is removed then.
    pub fn sweep(&self, store: &Store, now: f64) -> Result<Vec<GroupingKey>, PushError> {
        let policy = self.policy();
        if !policy.is_enabled() {
            return Ok(Vec::new());
        }
        let removed = store.expire(now, |key| policy.ttl_for(key).map(|d| d.as_secs_f64()))?;
        self.expired
            .fetch_add(removed.len() as u64, Ordering::Relaxed);
        for key in &removed {
            tracing::info!(group = %key, "expired a group that had no successful push for its TTL");
        }
        Ok(removed)
    }

    /// Whether a sweep at `now` would remove a group.
    pub fn any_due(&self, store: &Store, now: f64) -> bool {
        let policy = self.policy();
        policy.is_enabled()
            && store.any_expired(now, |key| policy.ttl_for(key).map(|d| d.as_secs_f64()))
    }

    /// Sweeps once a second until the task is dropped.
    pub async fn run(self: Arc<Self>, store: Store) {
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if let Err(e) = self.sweep(&store, crate::clock::unix_now()) {
                tracing::error!(err = %e, "cannot expire groups");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Label, Metric, MetricFamily, MetricType, Value};
    use crate::store::{PushMode, StoreConfig};

    fn key(job: &str, instance: &str) -> GroupingKey {
        GroupingKey::new(vec![
            Label::new("job", job),
            Label::new("instance", instance),
        ])
    }

    fn push(store: &Store, key: GroupingKey, at: f64) {
        let family = MetricFamily {
            name: "m".into(),
            help: None,
            metric_type: MetricType::Gauge,
            metrics: vec![Metric::new(vec![], Value::Gauge(1.0))],
        };
        store
            .push(key, vec![family], PushMode::Replace, at)
            .expect("push");
    }

    fn policy() -> ExpiryPolicy {
        ExpiryPolicy {
            default_ttl: Some(Duration::from_secs(100)),
            rules: vec![
                ExpiryRule {
                    matcher: LabelMatcher {
                        labels: [("job".to_string(), "backup".to_string())].into(),
                        labels_regex: vec![],
                    },
                    ttl: Duration::from_secs(10),
                },
                ExpiryRule {
                    matcher: LabelMatcher {
                        labels: Default::default(),
                        labels_regex: vec![(
                            "job".into(),
                            crate::label_match::anchored("batch-.*").expect("regex"),
                        )],
                    },
                    ttl: Duration::from_secs(1000),
                },
            ],
        }
    }

    #[test]
    fn rules_take_precedence_in_order_then_the_default() {
        let p = policy();
        assert_eq!(
            p.ttl_for(&key("backup", "a")),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            p.ttl_for(&key("batch-7", "a")),
            Some(Duration::from_secs(1000))
        );
        assert_eq!(
            p.ttl_for(&key("other", "a")),
            Some(Duration::from_secs(100))
        );
        assert_eq!(ExpiryPolicy::default().ttl_for(&key("other", "a")), None);
    }

    #[test]
    fn groups_expire_at_their_deadline_and_pushes_renew_it() {
        let store = Store::new(StoreConfig::default());
        let expirer = Expirer::new(policy());
        push(&store, key("backup", "a"), 1000.0);
        push(&store, key("other", "a"), 1000.0);
        assert!(!expirer.any_due(&store, 1009.9));
        assert!(expirer.sweep(&store, 1009.9).expect("sweep").is_empty());
        push(&store, key("backup", "a"), 1005.0); // renews: new deadline 1015
        assert!(expirer.sweep(&store, 1014.0).expect("sweep").is_empty());
        assert!(
            expirer.any_due(&store, 1015.0),
            "the check agrees with the sweep"
        );
        assert_eq!(
            expirer.sweep(&store, 1015.0).expect("sweep"),
            vec![key("backup", "a")]
        );
        assert_eq!(store.stats().groups, 1);
        assert!(expirer.sweep(&store, 1099.0).expect("sweep").is_empty());
        assert_eq!(expirer.sweep(&store, 1100.0).expect("sweep").len(), 1);
        assert_eq!(expirer.expired_total(), 2);
        assert_eq!(store.stats().groups, 0);
    }

    #[test]
    fn deadlines_survive_a_restart_and_expiry_is_persisted() {
        use crate::persist::{FsyncMode, PersistConfig, Persister};
        let dir = std::env::temp_dir().join(format!("pgw-expiry-restart-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let config = PersistConfig {
            file: dir.join("pg.db"),
            interval: Duration::from_secs(3600),
            fsync: FsyncMode::Always,
            start_empty_on_corruption: false,
            max_log_bytes: u64::MAX,
        };
        let store = Store::new(StoreConfig::default());
        let persister = Persister::start(config.clone(), &store).expect("start");
        push(&store, key("backup", "a"), 1000.0);
        push(&store, key("other", "a"), 1000.0);
        drop(persister);

        // After a restart the deadline still counts from the persisted push time.
        let restored = Store::new(StoreConfig::default());
        let persister = Persister::start(config.clone(), &restored).expect("restart");
        let expirer = Expirer::new(policy());
        assert!(expirer.sweep(&restored, 1009.0).expect("sweep").is_empty());
        assert_eq!(expirer.sweep(&restored, 1010.0).expect("sweep").len(), 1);
        drop(persister);

        // The removal itself was journaled: it stays removed after another restart.
        let again = Store::new(StoreConfig::default());
        let _persister = Persister::start(config, &again).expect("restart");
        assert_eq!(again.stats().groups, 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_new_policy_applies_at_once() {
        let store = Store::new(StoreConfig::default());
        let expirer = Expirer::new(ExpiryPolicy::default());
        push(&store, key("other", "a"), 1000.0);
        assert!(expirer
            .sweep(&store, 1_000_000.0)
            .expect("sweep")
            .is_empty());
        expirer.set_policy(policy());
        assert_eq!(expirer.sweep(&store, 1_000_000.0).expect("sweep").len(), 1);
    }
}
