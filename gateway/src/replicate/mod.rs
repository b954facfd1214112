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
//!
//! The primary is found at a fixed address or through Sentinels (module `connect`), and a push
//! is answered only once `--storage.redis.min-replicas-acks` Redis replicas confirmed its
//! entry (`WAIT`), so that a failover cannot lose it. Every entry carries the history's
//! epoch, so a replica never mixes two histories, and the replicas' check-affecting
//! settings are compared through Redis (module `settings`).

mod applier;
mod config;
mod connect;
pub mod entry;
mod lease;
mod local_copy;
pub mod metrics;
pub mod redis_side;
mod settings;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use redis::aio::MultiplexedConnection;
use redis::{IntoConnectionInfo, Script};
use tokio::sync::oneshot;

use crate::clock::unix_now;
use crate::expiry::Expirer;
use crate::store::{PushError, Store};
pub use config::{ExposeMode, LocalCopy, RedisConfig, SentinelConfig};
use connect::{Connector, Target};
pub use entry::ChangeRequest;
use metrics::ReplicationMetrics;
use redis_side::Keys;

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
/// How long an append waits before trying again while the keys' slot is migrating.
const SLOT_MIGRATION_PAUSE: Duration = Duration::from_millis(50);
/// The longest pause between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What applying an entry gave.
type Verdict = Result<(), PushError>;

/// Why replication cannot start.
#[derive(Debug, thiserror::Error)]
#[error("invalid Redis address: {0}")]
pub struct ReplicationError(String);

/// The handle the web layer and the tasks share.
pub struct Replicator {
    config: RedisConfig,
    store: Store,
    expirer: Arc<Expirer>,
    keys: Keys,
    /// The connection of the pushes (whose `WAIT` holds it up while replicas confirm).
    connector: Connector,
    /// The lease's own connection, so that slow confirmations never delay the renewal.
    lease_connector: Connector,
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
    /// The epoch of the history this replica applied (unknown before its first entry, or
    /// after loading an older version's local copy): entries of another epoch make it
    /// start over.
    epoch: Mutex<Option<String>>,
    /// Held while the local copy is written (by the timer or at the stop).
    copy_writer: Mutex<()>,
    ready: AtomicBool,
    /// How this replica's check-affecting settings compare with those stored in Redis.
    settings: Mutex<SettingsState>,
    /// Set once the keys of an older version were looked for (and moved); no change is
    /// appended before, or it would start a second history next to the moved one.
    keys_checked: AtomicBool,
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
        let invalid = |e: redis::RedisError| ReplicationError(e.to_string());
        let target = match &config.sentinel {
            Some(sentinel) => Target::Sentinel {
                sentinels: sentinel
                    .sentinels
                    .iter()
                    .map(|(host, port)| {
                        connect::node_info(host, *port, sentinel.password.as_deref())
                    })
                    .collect::<Result<_, _>>()
                    .map_err(invalid)?,
                master: sentinel.master.clone(),
                password: config.password.clone(),
            },
            None => {
                let mut info = config
                    .url
                    .as_str()
                    .into_connection_info()
                    .map_err(invalid)?;
                if let Some(password) = &config.password {
                    let settings = info.redis_settings().clone().set_password(password);
                    info = info.set_redis_settings(settings);
                }
                Target::Direct(info)
            }
        };
        let keys = Keys::new(&config.key_prefix);
        let lease_connector = Connector::new(target.clone(), config.timeout, keys.seq.clone());
        let connector = Connector::new(target, config.timeout, keys.seq.clone());
        let replica_id = format!(
            "{}-{}-{:x}",
            hostname(),
            std::process::id(),
            (unix_now() * 1e6) as u64
        );
        let replicator = Arc::new(Replicator {
            keys,
            config,
            store,
            expirer,
            connector,
            lease_connector,
            replica_id,
            next_nonce: AtomicU64::new(1),
            waiters: Mutex::new(HashMap::new()),
            applied: Mutex::new(0),
            last_origin: Mutex::new(None),
            epoch: Mutex::new(None),
            copy_writer: Mutex::new(()),
            ready: AtomicBool::new(false),
            settings: Mutex::new(SettingsState::Unchecked),
            keys_checked: AtomicBool::new(false),
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
        if !self.keys_checked.load(Ordering::Acquire) {
            return Err(PushError::Replication(
                "not connected to Redis yet; retry shortly".into(),
            ));
        }
        match &*self.settings.lock() {
            SettingsState::Agreed => {}
            SettingsState::Unchecked => {
                return Err(PushError::Replication(
                    "this replica has not compared its settings with Redis's yet; retry shortly"
                        .into(),
                ))
            }
            SettingsState::Differ(why) => return Err(PushError::Replication(why.clone())),
        }
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
        let appended = tokio::time::timeout(
            self.config.timeout,
            self.append_confirmed(&origin, &payload),
        );
        let failure = match appended.await {
            Ok(Ok(())) => None,
            Ok(Err(AppendError::Unconfirmed(reason))) => Some(reason),
            Ok(Err(AppendError::Redis(e))) if e.is_io_error() || e.is_timeout() => Some(format!(
                "{e} (if the change reached Redis before that, it will still be applied)"
            )),
            Ok(Err(AppendError::Redis(e))) => Some(e.to_string()),
            Err(_) => Some(format!(
                "no answer within {:?} (if the change reached Redis, it will still be applied)",
                self.config.timeout
            )),
        };
        if let Some(reason) = failure {
            self.metrics.redis_errors.inc();
            tracing::warn!(err = %reason, "cannot append a change to Redis");
            return Err(PushError::Replication(format!(
                "Redis did not take the change: {reason}"
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

    /// True once this replica has caught up with the stream after starting, with the
    /// same check-affecting settings as stored in Redis.
    pub fn is_ready(&self) -> bool {
        self.not_ready_reason().is_none()
    }

    /// Why this replica is not ready, if it is not.
    pub fn not_ready_reason(&self) -> Option<String> {
        match &*self.settings.lock() {
            SettingsState::Differ(why) => return Some(why.clone()),
            SettingsState::Unchecked => {
                return Some("comparing the settings with those stored in Redis".into())
            }
            SettingsState::Agreed => {}
        }
        (!self.ready.load(Ordering::Relaxed))
            .then(|| "catching up with the change stream in Redis".into())
    }

    /// Whether this replica serves pushed metrics on the telemetry path.
    pub fn exposes_pushed_metrics(&self) -> bool {
        self.config.expose == ExposeMode::All || self.leader.load(Ordering::Relaxed)
    }

    /// The replication metrics.
    pub fn families(&self) -> Vec<crate::model::MetricFamily> {
        self.metrics.families()
    }

    /// Appends one entry. On a Redis Cluster, a `MOVED` (the slot moved; nothing was run) is
    /// followed to the new owner at once, and an `ASK` or `TRYAGAIN` (the slot is moving: the
    /// script's keys are split between two nodes, where no node runs it) is waited out until
    /// the migration ends with a `MOVED`; the callers bound the whole by their timeout.
    async fn append(&self, origin: &str, payload: &[u8]) -> redis::RedisResult<u64> {
        let mut followed = false;
        loop {
            let mut connection = self.connector.commands().await?;
            let appended = self
                .append
                .key(&self.keys.stream)
                .key(&self.keys.seq)
                .key(&self.keys.epoch)
                .arg(origin)
                .arg(payload)
                .invoke_async(&mut connection)
                .await;
            let Err(e) = appended else {
                return appended;
            };
            self.connector.failed(&e).await;
            // A second MOVED in a row (the nodes disagree for a moment) waits like an ASK.
            if connect::is_moved(&e) && !followed {
                tracing::info!(err = %e, "the keys' slot moved; following it");
                followed = true;
            } else if e.is_cluster_error() {
                tokio::time::sleep(SLOT_MIGRATION_PAUSE).await;
            } else {
                return Err(e);
            }
        }
    }

    /// Appends, then waits until `--storage.redis.min-replicas-acks` Redis replicas have
    /// the change: only then can no failover lose it.
    async fn append_confirmed(&self, origin: &str, payload: &[u8]) -> Result<(), AppendError> {
        self.append(origin, payload).await?;
        let wanted = self.config.min_replicas_acks;
        if wanted == 0 {
            return Ok(());
        }
        // WAIT covers every write sent on this connection before it, ours included.
        let mut connection = self.connector.commands().await?;
        let wait_ms = (self.config.timeout.as_millis() as u64 / 2).max(1);
        let confirmed: u32 = redis::cmd("WAIT")
            .arg(wanted)
            .arg(wait_ms)
            .query_async(&mut connection)
            .await?;
        if confirmed < wanted {
            self.metrics.unconfirmed.inc();
            return Err(AppendError::Unconfirmed(format!(
                "only {confirmed} of the {wanted} Redis replicas required by \
                 --storage.redis.min-replicas-acks confirmed the change within {wait_ms}ms, so \
                 a failover could lose it (it will be applied if no failover does)"
            )));
        }
        Ok(())
    }

    /// The applied position, its entry's origin and every group, taken together while no
    /// entry is being applied: what a snapshot or the local copy records.
    fn applied_state(&self) -> AppliedState {
        let applied = self.applied.lock();
        AppliedState {
            position: *applied,
            origin: self.last_origin.lock().clone(),
            epoch: self.epoch.lock().clone(),
            groups: self.store.groups(),
        }
    }

    /// A connection of its own to the primary with a long answer timeout, for the
    /// blocking stream reads and the snapshot transfers.
    async fn long_connection(&self) -> redis::RedisResult<MultiplexedConnection> {
        self.connector.connect(SNAPSHOT_TIMEOUT).await
    }

    fn redis_failed(&self, what: &str, error: &redis::RedisError) {
        self.metrics.redis_errors.inc();
        tracing::warn!(err = %error, "{what}");
    }
}

/// How this replica's settings compare with those stored in Redis.
enum SettingsState {
    /// Not compared yet.
    Unchecked,
    /// The same.
    Agreed,
    /// Different: why.
    Differ(String),
}

/// Why an append was not acknowledged.
enum AppendError {
    /// Redis failed.
    Redis(redis::RedisError),
    /// Too few Redis replicas confirmed it: the reason.
    Unconfirmed(String),
}

impl From<redis::RedisError> for AppendError {
    fn from(error: redis::RedisError) -> Self {
        AppendError::Redis(error)
    }
}

/// What [`Replicator::applied_state`] returns.
struct AppliedState {
    position: u64,
    origin: Option<String>,
    epoch: Option<String>,
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
