//! Replicated state on Redis (`--storage=redis`): every replica keeps the whole store in
//! memory and applies one shared, ordered stream of changes, so that scrapes stay local
//! and every replica serves the same state.
//!
//! A push is parsed by the replica that receives it, appended to the Redis stream, and
//! answered once this replica's applier has applied that very entry, with the verdict the
//! store gave it. The store's check is deterministic, so conflicting pushes racing through
//! different replicas get the same verdict everywhere. The leader (a Redis lease) writes
//! snapshots that let the stream be trimmed and new replicas start quickly, and sends the
//! expiry sweeps, so that a group expires once, at one point of the stream.

mod applier;
pub mod entry;
mod lease;
mod local_copy;
pub mod metrics;
pub mod redis_side;
mod config;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::{AsyncConnectionConfig, Client, IntoConnectionInfo, Script};
use tokio::sync::oneshot;

use crate::clock::unix_now;
use crate::expiry::Expirer;
use crate::store::{PushError, Store};
pub use entry::ChangeRequest;
use metrics::ReplicationMetrics;
use redis_side::Keys;
pub use config::{ExposeMode, LocalCopy, RedisConfig};

/// Most entries applied per read.
const READ_BATCH: usize = 512;
/// How long a read waits for new entries before it reports "caught up".
const READ_BLOCK: Duration = Duration::from_millis(1000);
/// How often the lease is renewed (and the stream head and snapshot looked up).
const LEASE_TICK: Duration = Duration::from_secs(1);
/// How long the lease lasts without renewal: a dead leader is replaced after this.
const LEASE_TTL: Duration = Duration::from_secs(10);
/// How long snapshot uploads and downloads may take.
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(120);
/// The longest pause between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What applying an entry gave.
type Verdict = Result<(), PushError>;

/// Why replication cannot start.
#[derive(Debug, thiserror::Error)]
#[error("invalid --storage.redis.url: {0}")]
pub struct ReplicationError(String);

/// The handle the web layer and the tasks share.
pub struct Replicator {
    config: RedisConfig,
    store: Store,
    expirer: Arc<Expirer>,
    keys: Keys,
    client: Client,
    commands: ConnectionManager,
    /// Unique per process, so that a restarted replica never takes an old entry as its own.
    replica_id: String,
    next_nonce: AtomicU64,
    waiters: Mutex<HashMap<u64, oneshot::Sender<Verdict>>>,
    /// The last applied entry; held while an entry is applied, so that a snapshot taken
    /// under it matches its position.
    applied: Mutex<u64>,
    /// The origin field of that entry (unknown after loading a snapshot), to notice a Redis
    /// that reused its number for another entry.
    last_origin: Mutex<Option<String>>,
    /// Held while the local copy is written (by the timer or at the stop).
    copy_writer: Mutex<()>,
    ready: AtomicBool,
    leader: AtomicBool,
    /// The position of the newest snapshot known to be in Redis.
    published: AtomicU64,
    snapshot_running: AtomicBool,
    metrics: ReplicationMetrics,
    append: Script,
    /// Unix time of the start, for the snapshot age before the first snapshot.
    started_at: f64,
}

impl Replicator {
    /// Connects lazily (Redis may come up later) and starts the applier and the lease
    /// tasks.
    ///
    /// # Errors
    /// When the URL cannot be used.
    pub fn start(
        config: RedisConfig,
        store: Store,
        expirer: Arc<Expirer>,
    ) -> Result<Arc<Replicator>, ReplicationError> {
        let mut info = config
            .url
            .as_str()
            .into_connection_info()
            .map_err(|e| ReplicationError(e.to_string()))?;
        if let Some(password) = &config.password {
            let settings = info.redis_settings().clone().set_password(password);
            info = info.set_redis_settings(settings);
        }
        let client = Client::open(info).map_err(|e| ReplicationError(e.to_string()))?;
        let commands = ConnectionManager::new_lazy_with_config(
            client.clone(),
            ConnectionManagerConfig::new()
                .set_connection_timeout(Some(config.timeout))
                .set_response_timeout(Some(config.timeout))
                .set_number_of_retries(1)
                .set_max_delay(MAX_BACKOFF),
        )
        .map_err(|e| ReplicationError(e.to_string()))?;
        let replica_id = format!(
            "{}-{}-{:x}",
            hostname(),
            std::process::id(),
            (unix_now() * 1e6) as u64
        );
        let replicator = Arc::new(Replicator {
            keys: Keys::new(&config.key_prefix),
            config,
            store,
            expirer,
            client,
            commands,
            replica_id,
            next_nonce: AtomicU64::new(1),
            waiters: Mutex::new(HashMap::new()),
            applied: Mutex::new(0),
            last_origin: Mutex::new(None),
            copy_writer: Mutex::new(()),
            ready: AtomicBool::new(false),
            leader: AtomicBool::new(false),
            published: AtomicU64::new(0),
            snapshot_running: AtomicBool::new(false),
            metrics: ReplicationMetrics::new(),
            append: redis_side::append_script(),
            started_at: unix_now(),
        });
        if let Some(copy) = &replicator.config.local_copy {
            replicator.restore_local_copy(&copy.file);
            tokio::spawn(replicator.clone().run_local_copies(copy.clone()));
        }
        tokio::spawn(replicator.clone().run_applier());
        tokio::spawn(replicator.clone().run_lease());
        Ok(replicator)
    }

    /// Sends a request through the stream and waits for this replica to apply it.
    ///
    /// # Errors
    /// The store's verdict on the entry, or [`PushError::Unavailable`] when Redis cannot
    /// be reached or the entry was not applied in time.
    pub async fn submit(&self, request: &ChangeRequest) -> Verdict {
        let payload = entry::encode(request);
        let nonce = self.next_nonce.fetch_add(1, Ordering::Relaxed);
        let (sender, verdict) = oneshot::channel();
        self.waiters.lock().insert(nonce, sender);
        // Removes the waiter however this ends, also when the client goes away mid-request.
        let _waiter = WaiterGuard {
            waiters: &self.waiters,
            nonce,
        };
        let origin = format!("{}/{nonce}", self.replica_id);
        let appended = tokio::time::timeout(self.config.timeout, self.append(&origin, &payload));
        let failure = match appended.await {
            Ok(Ok(_seq)) => None,
            Ok(Err(e)) if e.is_io_error() || e.is_timeout() => Some(format!(
                "{e} (if the change reached Redis before that, it will still be applied)"
            )),
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some(format!(
                "no answer within {:?} (if the change reached Redis, it will still be applied)",
                self.config.timeout
            )),
        };
        if let Some(reason) = failure {
            self.metrics.redis_errors.inc();
            tracing::warn!(err = %reason, "cannot append a change to Redis");
            return Err(PushError::Replication(format!(
                "Redis is unreachable: {reason}"
            )));
        }
        match tokio::time::timeout(self.config.timeout, verdict).await {
            Ok(Ok(verdict)) => verdict,
            _ => Err(PushError::Replication(format!(
                "the change is in Redis, but this replica did not apply it within {:?}; \
                 it will be applied",
                self.config.timeout
            ))),
        }
    }

    /// True once this replica has caught up with the stream after starting.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// Whether this replica serves pushed metrics on the telemetry path.
    pub fn exposes_pushed_metrics(&self) -> bool {
        self.config.expose == ExposeMode::All || self.leader.load(Ordering::Relaxed)
    }

    /// The replication metrics.
    pub fn families(&self) -> Vec<crate::model::MetricFamily> {
        self.metrics.families()
    }

    async fn append(&self, origin: &str, payload: &[u8]) -> redis::RedisResult<u64> {
        let mut connection = self.commands.clone();
        self.append
            .key(&self.keys.stream)
            .key(&self.keys.seq)
            .arg(origin)
            .arg(payload)
            .invoke_async(&mut connection)
            .await
    }

    /// The applied position, its entry's origin and every group, taken together while no
    /// entry is being applied: what a snapshot or the local copy records.
    fn applied_state(&self) -> AppliedState {
        let applied = self.applied.lock();
        AppliedState {
            position: *applied,
            origin: self.last_origin.lock().clone(),
            groups: self.store.groups(),
        }
    }

    /// A connection of its own with a long answer timeout, for the blocking stream reads
    /// and the snapshot transfers.
    async fn long_connection(&self) -> redis::RedisResult<MultiplexedConnection> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.config.timeout))
            .set_response_timeout(Some(SNAPSHOT_TIMEOUT));
        self.client
            .get_multiplexed_async_connection_with_config(&config)
            .await
    }

    fn redis_failed(&self, what: &str, error: &redis::RedisError) {
        self.metrics.redis_errors.inc();
        tracing::warn!(err = %error, "{what}");
    }
}

/// What [`Replicator::applied_state`] returns.
struct AppliedState {
    position: u64,
    origin: Option<String>,
    groups: Vec<crate::store::GroupView>,
}

/// Takes a request's waiter out of the map when the request ends, however it ends.
struct WaiterGuard<'a> {
    waiters: &'a Mutex<HashMap<u64, oneshot::Sender<Verdict>>>,
    nonce: u64,
}

impl Drop for WaiterGuard<'_> {
    fn drop(&mut self) {
        self.waiters.lock().remove(&self.nonce);
    }
}

/// Doubling pauses between reconnection attempts, reset after a success.
#[derive(Default)]
struct Backoff {
    next: Option<Duration>,
}

impl Backoff {
    async fn wait(&mut self) {
        let pause = self.next.unwrap_or(Duration::from_millis(100));
        tokio::time::sleep(pause).await;
        self.next = Some((pause * 2).min(MAX_BACKOFF));
    }

    fn reset(&mut self) {
        self.next = None;
    }
}

/// The host name for the replica id (the pod name on Kubernetes).
fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .unwrap_or_else(|| "replica".into())
}
