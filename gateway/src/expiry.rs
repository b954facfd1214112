//! Opt-in expiry of stale groups: a group that has had no successful push for its TTL is
//! removed exactly like a DELETE (journaled, so also in the persistence file). The TTL is
//! the one the group's last push set with the `Pushgateway-TTL` header (checked against
//! [`TtlBounds`]), else the first matching rule's (rules match grouping labels exactly or
//! by a fully anchored regular expression), else the default; with none, groups live
//! forever, as upstream.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;

use crate::duration::parse_go_duration;
use crate::label_match::LabelMatcher;
use crate::model::GroupingKey;
use crate::store::{GroupTtl, PushError, Store};

/// The request header with which a push sets its group's own TTL.
pub const TTL_HEADER: &str = "pushgateway-ttl";

/// What a push may ask for with [`TTL_HEADER`] (`--expiry.max-ttl`, `--expiry.allow-no-ttl`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TtlBounds {
    /// The longest TTL accepted; a longer one is refused, not shortened (`None`: no cap).
    pub max: Option<Duration>,
    /// Whether `0` ("never expire") is accepted.
    pub allow_never: bool,
}

impl TtlBounds {
    /// The TTL a header value asks for: a Go duration, `0` for "never expire".
    ///
    /// # Errors
    /// The reason, for a 400: not a duration, `0` when not allowed, above the cap.
    pub fn check(&self, text: &str) -> Result<GroupTtl, String> {
        let ttl = parse_go_duration(text.trim())
            .map_err(|e| format!("invalid Pushgateway-TTL header: {e}"))?;
        if ttl.is_zero() {
            return if self.allow_never {
                Ok(GroupTtl::Never)
            } else {
                Err(
                    "Pushgateway-TTL 0 (never expire) is not allowed here; the operator \
                     can allow it with --expiry.allow-no-ttl"
                        .into(),
                )
            };
        }
        match self.max {
            Some(max) if ttl > max => Err(format!(
                "Pushgateway-TTL {} is longer than --expiry.max-ttl={}",
                crate::duration::format_flag_duration(ttl),
                crate::duration::format_flag_duration(max)
            )),
            _ => Ok(GroupTtl::After(ttl)),
        }
    }
}

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

    /// The TTL in seconds of a group with its own TTL `own`, if it expires.
    pub fn seconds_for(&self, key: &GroupingKey, own: Option<GroupTtl>) -> Option<f64> {
        match own {
            Some(own) => own.seconds(),
            None => self.ttl_for(key).map(|d| d.as_secs_f64()),
        }
    }

    /// Unix time at which a group whose last successful push was at `last_push` expires.
    pub fn deadline(
        &self,
        key: &GroupingKey,
        own: Option<GroupTtl>,
        last_push: f64,
    ) -> Option<f64> {
        self.seconds_for(key, own).map(|ttl| last_push + ttl)
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
        if !policy.is_enabled() && !store.has_group_ttls() {
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
        (policy.is_enabled() || store.has_group_ttls())
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
    fn a_group_ttl_overrides_the_rules_until_a_push_without_one() {
        let store = Store::new(StoreConfig::default());
        let family = || MetricFamily {
            name: "m".into(),
            help: None,
            metric_type: MetricType::Gauge,
            metrics: vec![Metric::new(vec![], Value::Gauge(1.0))],
        };
        let push_ttl = |key: GroupingKey, at: f64, ttl: Option<GroupTtl>| {
            store
                .push_with(key, vec![family()], PushMode::Replace, at, ttl, None)
                .expect("push");
        };
        // No rules at all: only the groups' own TTLs expire anything.
        let expirer = Expirer::new(ExpiryPolicy::default());
        push_ttl(
            key("a", "1"),
            1000.0,
            Some(GroupTtl::After(Duration::from_secs(5))),
        );
        push_ttl(key("b", "1"), 1000.0, None);
        assert!(store.has_group_ttls());
        assert!(expirer.sweep(&store, 1004.9).expect("sweep").is_empty());
        assert_eq!(
            expirer.sweep(&store, 1005.0).expect("sweep"),
            vec![key("a", "1")]
        );
        assert!(!store.has_group_ttls());
        // With rules: the header's TTL wins (shorter or longer), `Never` too, and a push
        // without it falls back to the rules.
        expirer.set_policy(policy());
        push_ttl(
            key("backup", "x"),
            2000.0,
            Some(GroupTtl::After(Duration::from_secs(50))),
        );
        push_ttl(key("other", "x"), 2000.0, Some(GroupTtl::Never));
        // Only the group without a TTL of its own follows the default rule (100 s).
        assert_eq!(
            expirer.sweep(&store, 2049.0).expect("sweep"),
            vec![key("b", "1")]
        );
        push_ttl(key("backup", "x"), 2001.0, None); // back to the rule's 10 s
        assert_eq!(
            expirer.sweep(&store, 2011.0).expect("sweep"),
            vec![key("backup", "x")]
        );
        assert!(expirer.sweep(&store, 1e12).expect("sweep").is_empty());
        assert_eq!(
            policy().deadline(&key("other", "x"), Some(GroupTtl::Never), 2000.0),
            None
        );
        assert_eq!(
            policy().deadline(&key("other", "x"), None, 2000.0),
            Some(2100.0)
        );
    }

    #[test]
    fn ttl_header_values_are_checked_against_the_bounds() {
        let open = TtlBounds::default();
        assert_eq!(
            open.check("90s"),
            Ok(GroupTtl::After(Duration::from_secs(90)))
        );
        assert_eq!(
            open.check(" 1h30m "),
            Ok(GroupTtl::After(Duration::from_secs(5400)))
        );
        for bad in ["", "-1s", "10", "1d", "abc", "99999999999h"] {
            assert!(open.check(bad).is_err(), "{bad:?}");
        }
        assert!(open
            .check("0")
            .expect_err("0")
            .contains("--expiry.allow-no-ttl"));
        assert!(open.check("0s").is_err());
        let bounded = TtlBounds {
            max: Some(Duration::from_secs(3600)),
            allow_never: true,
        };
        assert_eq!(bounded.check("0"), Ok(GroupTtl::Never));
        assert_eq!(
            bounded.check("1h"),
            Ok(GroupTtl::After(Duration::from_secs(3600)))
        );
        let err = bounded.check("1h0m1s").expect_err("above the cap");
        assert!(err.contains("--expiry.max-ttl=1h0m0s"), "{err}");
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
