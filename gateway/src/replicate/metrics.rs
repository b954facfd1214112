//! The replication's own metrics, exposed by every replica next to the gateway's others.

use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::model::{MetricFamily, MetricType};

/// Entries the stream holds beyond what this replica applied.
pub const LAG: &str = "pushgateway_replication_lag_entries";
/// The last applied entry.
pub const APPLIED: &str = "pushgateway_replication_applied_position";
/// Entries that could not be applied, and gaps in the stream.
pub const APPLY_ERRORS: &str = "pushgateway_replication_apply_errors_total";
/// Failed Redis commands.
pub const REDIS_ERRORS: &str = "pushgateway_redis_errors_total";
/// Redis round-trip time.
pub const REDIS_ROUNDTRIP: &str = "pushgateway_redis_roundtrip_seconds";
/// The entry the latest snapshot in Redis covers.
pub const SNAPSHOT_POSITION: &str = "pushgateway_replication_snapshot_position";
/// Age of the latest snapshot in Redis.
pub const SNAPSHOT_AGE: &str = "pushgateway_replication_snapshot_age_seconds";
/// Whether this replica holds the leader lease.
pub const LEADER: &str = "pushgateway_replication_leader";

/// Whether this replica's check-affecting settings differ from those stored in Redis.
pub const SETTINGS_MISMATCH: &str = "pushgateway_replication_settings_mismatch";

/// Changes too few Redis replicas confirmed in time (answered 503).
pub const UNCONFIRMED: &str = "pushgateway_redis_unconfirmed_writes_total";

/// Every replication metric name with its type, which pushes must not contradict.
pub const TYPES: [(&str, MetricType); 10] = [
    (LAG, MetricType::Gauge),
    (APPLIED, MetricType::Gauge),
    (APPLY_ERRORS, MetricType::Counter),
    (REDIS_ERRORS, MetricType::Counter),
    (REDIS_ROUNDTRIP, MetricType::Histogram),
    (SNAPSHOT_POSITION, MetricType::Gauge),
    (SNAPSHOT_AGE, MetricType::Gauge),
    (LEADER, MetricType::Gauge),
    (SETTINGS_MISMATCH, MetricType::Gauge),
    (UNCONFIRMED, MetricType::Counter),
];

/// The metrics, updated by the replication tasks.
pub struct ReplicationMetrics {
    registry: Registry,
    /// See [`LAG`].
    pub lag: Gauge,
    /// See [`APPLIED`].
    pub applied: Gauge,
    /// See [`APPLY_ERRORS`].
    pub apply_errors: Counter,
    /// See [`REDIS_ERRORS`].
    pub redis_errors: Counter,
    /// See [`REDIS_ROUNDTRIP`].
    pub roundtrip: Histogram,
    /// See [`SNAPSHOT_POSITION`].
    pub snapshot_position: Gauge,
    /// See [`SNAPSHOT_AGE`].
    pub snapshot_age: Gauge<f64, AtomicU64>,
    /// See [`LEADER`].
    pub leader: Gauge,
    /// See [`SETTINGS_MISMATCH`].
    pub settings_mismatch: Gauge,
    /// See [`UNCONFIRMED`].
    pub unconfirmed: Counter,
}

impl ReplicationMetrics {
    /// Registers every metric.
    pub fn new() -> ReplicationMetrics {
        let mut registry = Registry::default();
        let lag = Gauge::default();
        registry.register(
            LAG,
            "Entries of the change stream this replica has not applied yet",
            lag.clone(),
        );
        let applied = Gauge::default();
        registry.register(
            APPLIED,
            "Sequence number of the last change-stream entry this replica applied",
            applied.clone(),
        );
        let apply_errors = Counter::default();
        registry.register(
            trim_total(APPLY_ERRORS),
            "Change-stream entries this replica could not apply, and gaps that made it reload the snapshot",
            apply_errors.clone(),
        );
        let redis_errors = Counter::default();
        registry.register(
            trim_total(REDIS_ERRORS),
            "Redis commands that failed or timed out",
            redis_errors.clone(),
        );
        let roundtrip = Histogram::new(exponential_buckets(0.0001, 4.0, 9));
        registry.register(
            REDIS_ROUNDTRIP,
            "Round-trip time of the lease renewal sent to Redis every second",
            roundtrip.clone(),
        );
        let snapshot_position = Gauge::default();
        registry.register(
            SNAPSHOT_POSITION,
            "Sequence number of the last change-stream entry the snapshot in Redis covers",
            snapshot_position.clone(),
        );
        let snapshot_age = Gauge::<f64, AtomicU64>::default();
        registry.register(
            SNAPSHOT_AGE,
            "Seconds since the snapshot in Redis was written (since this replica started, while there is none)",
            snapshot_age.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            LEADER,
            "1 when this replica holds the leader lease (snapshots, expiry sweeps), else 0",
            leader.clone(),
        );
        let settings_mismatch = Gauge::default();
        registry.register(
            SETTINGS_MISMATCH,
            "1 while this replica's check-affecting settings differ from those stored in Redis (it is unready), else 0",
            settings_mismatch.clone(),
        );
        let unconfirmed = Counter::default();
        registry.register(
            trim_total(UNCONFIRMED),
            "Changes that too few Redis replicas confirmed in time (--storage.redis.min-replicas-acks); the push got 503",
            unconfirmed.clone(),
        );
        ReplicationMetrics {
            registry,
            lag,
            applied,
            apply_errors,
            redis_errors,
            roundtrip,
            snapshot_position,
            snapshot_age,
            leader,
            settings_mismatch,
            unconfirmed,
        }
    }

    /// The metrics as families for the exposition.
    pub fn families(&self) -> Vec<MetricFamily> {
        crate::registry::registry_families(&self.registry)
    }
}

impl Default for ReplicationMetrics {
    fn default() -> Self {
        ReplicationMetrics::new()
    }
}

fn trim_total(name: &str) -> &str {
    name.trim_end_matches("_total")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposed_types_match_the_declared_ones() {
        let metrics = ReplicationMetrics::new();
        metrics.roundtrip.observe(0.001);
        let families = metrics.families();
        assert_eq!(families.len(), TYPES.len());
        for (name, metric_type) in TYPES {
            let family = families
                .iter()
                .find(|f| &*f.name == name)
                .unwrap_or_else(|| panic!("{name} is not exposed"));
            assert_eq!(family.metric_type, metric_type, "{name}");
        }
    }
}
