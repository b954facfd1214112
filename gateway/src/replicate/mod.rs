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

pub mod entry;
pub mod metrics;
pub mod redis_side;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::streams::StreamReadReply;
use redis::{AsyncConnectionConfig, Client, IntoConnectionInfo, Script};
use tokio::sync::oneshot;

use crate::config::{ExposeMode, LocalCopy, RedisConfig};
use crate::expiry::Expirer;
use crate::persist::snapshot;
use crate::store::{PushError, Store};
use crate::web::unix_now;
pub use entry::ChangeRequest;
use metrics::ReplicationMetrics;
use redis_side::{seq_of, Keys};

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
    ready: AtomicBool,
    leader: AtomicBool,
    /// The position of the newest snapshot known to be in Redis.
    published: AtomicU64,
    snapshot_running: AtomicBool,
    metrics: ReplicationMetrics,
    append: Script,
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
            ready: AtomicBool::new(false),
            leader: AtomicBool::new(false),
            published: AtomicU64::new(0),
            snapshot_running: AtomicBool::new(false),
            metrics: ReplicationMetrics::new(),
            append: redis_side::append_script(),
        });
        if let Some(copy) = &replicator.config.local_copy {
            replicator.restore_local_copy(&copy.file);
            tokio::spawn(replicator.clone().run_local_copies(copy.clone()));
        }
        tokio::spawn(replicator.clone().run_applier());
        tokio::spawn(replicator.clone().run_lease());
        Ok(replicator)
    }

    /// Starts from the local copy, when there is a readable one; Redis has the last word.
    fn restore_local_copy(&self, file: &std::path::Path) {
        match snapshot::read(file) {
            Ok(Some(copy)) => {
                let mut applied = self.applied.lock();
                let groups = copy.groups.len();
                for group in copy.groups {
                    self.store.restore_group(group);
                }
                *applied = copy.position;
                self.metrics.applied.set(copy.position as i64);
                tracing::info!(file = %file.display(), position = copy.position, groups, "restored the local copy; catching up from Redis");
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(file = %file.display(), err = %e, "ignoring the unreadable local copy; starting from Redis");
            }
        }
    }

    /// Rewrites the local copy every interval when something was applied since.
    async fn run_local_copies(self: Arc<Self>, copy: LocalCopy) {
        let mut ticker = tokio::time::interval(copy.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut written = *self.applied.lock();
        loop {
            ticker.tick().await;
            let (position, groups) = {
                let applied = self.applied.lock();
                (*applied, self.store.groups())
            };
            if position == written {
                continue;
            }
            let file = copy.file.clone();
            let write = move || snapshot::write(&file, position, &groups);
            match tokio::task::spawn_blocking(write).await {
                Ok(Ok(())) => written = position,
                Ok(Err(e)) => {
                    tracing::error!(file = %copy.file.display(), err = %e, "cannot write the local copy")
                }
                Err(e) => tracing::error!(err = %e, "local copy task failed"),
            }
        }
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
        let origin = format!("{}/{nonce}", self.replica_id);
        let appended = tokio::time::timeout(self.config.timeout, self.append(&origin, &payload));
        let failure = match appended.await {
            Ok(Ok(_seq)) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some(format!("no answer within {:?}", self.config.timeout)),
        };
        if let Some(reason) = failure {
            self.waiters.lock().remove(&nonce);
            self.metrics.redis_errors.inc();
            tracing::warn!(err = %reason, "cannot append a change to Redis");
            return Err(PushError::Unavailable(format!(
                "Redis is unreachable: {reason}"
            )));
        }
        match tokio::time::timeout(self.config.timeout, verdict).await {
            Ok(Ok(verdict)) => verdict,
            _ => {
                self.waiters.lock().remove(&nonce);
                Err(PushError::Unavailable(format!(
                    "the change is in Redis but this replica did not apply it within {:?}; \
                     it will be applied",
                    self.config.timeout
                )))
            }
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

    // === the applier ===

    /// Loads the snapshot, then applies the stream forever, reconnecting as needed.
    async fn run_applier(self: Arc<Self>) {
        let mut backoff = Backoff::default();
        let mut connection: Option<MultiplexedConnection> = None;
        let mut needs_snapshot = true;
        // The first entry found after a gap, until the snapshot has been tried.
        let mut gap_at: Option<u64> = None;
        loop {
            let conn = match &mut connection {
                Some(conn) => conn,
                None => match self.reader_connection().await {
                    Ok(conn) => connection.insert(conn),
                    Err(e) => {
                        self.redis_failed("cannot connect to Redis", &e);
                        backoff.wait().await;
                        continue;
                    }
                },
            };
            if needs_snapshot {
                match self.load_snapshot(conn).await {
                    Ok(()) => {
                        needs_snapshot = false;
                        if let Some(found) = gap_at.take() {
                            self.skip_lost_entries(found);
                        }
                    }
                    Err(e) => {
                        self.redis_failed("cannot load the snapshot from Redis", &e);
                        connection = None;
                        backoff.wait().await;
                        continue;
                    }
                }
            }
            match self.read_and_apply(conn).await {
                Ok(Progress::Applied) => backoff.reset(),
                Ok(Progress::Behind { head }) => {
                    self.start_over(head);
                    needs_snapshot = true;
                }
                Ok(Progress::Gap { found }) => {
                    needs_snapshot = true;
                    gap_at = Some(found);
                }
                Err(e) => {
                    self.redis_failed("cannot read the change stream", &e);
                    connection = None;
                    backoff.wait().await;
                }
            }
        }
    }

    async fn reader_connection(&self) -> redis::RedisResult<MultiplexedConnection> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.config.timeout))
            .set_response_timeout(Some(SNAPSHOT_TIMEOUT));
        self.client
            .get_multiplexed_async_connection_with_config(&config)
            .await
    }

    /// Replaces the local state with the snapshot in Redis when it is ahead of it.
    async fn load_snapshot(&self, conn: &mut MultiplexedConnection) -> redis::RedisResult<()> {
        let (seq, data): (Option<u64>, Option<Vec<u8>>) = redis::cmd("HMGET")
            .arg(&self.keys.snapshot)
            .arg("seq")
            .arg("data")
            .query_async(conn)
            .await?;
        let (Some(seq), Some(data)) = (seq, data) else {
            return Ok(());
        };
        if seq <= *self.applied.lock() {
            return Ok(());
        }
        let decoded = tokio::task::spawn_blocking(move || snapshot::decode(&data)).await;
        let snapshot = match decoded {
            Ok(Ok(snapshot)) => snapshot,
            Ok(Err(e)) => {
                // A snapshot this version cannot read: carry on from the stream alone.
                self.metrics.apply_errors.inc();
                tracing::error!(err = %e, "cannot decode the snapshot in Redis; ignoring it");
                return Ok(());
            }
            Err(e) => {
                tracing::error!(err = %e, "snapshot decoding failed");
                return Ok(());
            }
        };
        let mut applied = self.applied.lock();
        if self.store.wipe().is_err() {
            tracing::error!("cannot clear the store before loading the snapshot");
        }
        let groups = snapshot.groups.len();
        for group in snapshot.groups {
            self.store.restore_group(group);
        }
        *applied = snapshot.position;
        self.metrics.applied.set(snapshot.position as i64);
        tracing::info!(
            position = snapshot.position,
            groups,
            "loaded the snapshot from Redis"
        );
        Ok(())
    }

    /// Redis is the source of truth: when it lost entries this replica applied (it ran
    /// without its append-only file, or was flushed), the local state goes too.
    fn start_over(&self, head: u64) {
        let mut applied = self.applied.lock();
        tracing::error!(
            applied = *applied,
            redis_head = head,
            "Redis holds fewer changes than this replica applied (was it reset or run without \
             its append-only file?); dropping the local state and starting over from Redis"
        );
        self.metrics.apply_errors.inc();
        if self.store.wipe().is_err() {
            tracing::error!("cannot clear the store");
        }
        *applied = 0;
        self.metrics.applied.set(0);
    }

    /// After a gap the snapshot did not cover (Redis lost both), goes on from the first
    /// entry still there rather than stalling for good; the loss is logged and counted.
    fn skip_lost_entries(&self, found: u64) {
        let mut applied = self.applied.lock();
        if *applied + 1 < found {
            tracing::error!(
                from = *applied + 1,
                to = found - 1,
                "these stream entries are gone from Redis and no snapshot covers them; \
                 replicas may differ until the groups are pushed again"
            );
            self.metrics.apply_errors.inc();
            *applied = found - 1;
        }
    }

    /// Reads one batch of entries after the applied position and applies them.
    async fn read_and_apply(
        &self,
        conn: &mut MultiplexedConnection,
    ) -> redis::RedisResult<Progress> {
        let after = *self.applied.lock();
        let reply: Option<StreamReadReply> = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(READ_BATCH)
            .arg("BLOCK")
            .arg(READ_BLOCK.as_millis() as u64)
            .arg("STREAMS")
            .arg(&self.keys.stream)
            .arg(format!("{after}-0"))
            .query_async(conn)
            .await?;
        let entries = reply
            .and_then(|r| r.keys.into_iter().next())
            .map(|k| k.ids)
            .unwrap_or_default();
        let batch = entries.len();
        if batch == 0 {
            let head: Option<u64> = redis::cmd("GET")
                .arg(&self.keys.seq)
                .query_async(conn)
                .await?;
            let head = head.unwrap_or(0);
            if head < after {
                return Ok(Progress::Behind { head });
            }
        }
        for item in entries {
            let Some(seq) = seq_of(&item.id) else {
                self.metrics.apply_errors.inc();
                tracing::error!(id = %item.id, "skipping a stream entry with a foreign ID");
                continue;
            };
            let expected = *self.applied.lock() + 1;
            if seq != expected {
                self.metrics.apply_errors.inc();
                tracing::warn!(
                    expected,
                    found = seq,
                    "entries were trimmed before this replica read them; reloading the snapshot"
                );
                return Ok(Progress::Gap { found: seq });
            }
            let origin: Option<String> = item.get("o");
            let payload: Option<Vec<u8>> = item.get("c");
            self.apply(
                seq,
                origin.as_deref(),
                payload.as_deref().unwrap_or_default(),
            );
        }
        if batch < READ_BATCH && !self.ready.swap(true, Ordering::Relaxed) {
            tracing::info!(
                position = *self.applied.lock(),
                "caught up with the change stream; ready"
            );
        }
        Ok(Progress::Applied)
    }

    /// Applies one entry and hands the verdict to the waiting request, if it is ours.
    fn apply(&self, seq: u64, origin: Option<&str>, payload: &[u8]) {
        let mut applied = self.applied.lock();
        let verdict = match entry::decode(payload) {
            Ok(ChangeRequest::Push {
                key,
                families,
                mode,
                time,
            }) => self.store.push(key, families, mode, time).map(drop),
            Ok(ChangeRequest::Delete { key }) => self.store.delete(&key).map(drop),
            Ok(ChangeRequest::Wipe) => self.store.wipe().map(drop),
            Ok(ChangeRequest::Expire { time }) => self.expirer.sweep(&self.store, time).map(drop),
            Err(e) => {
                self.metrics.apply_errors.inc();
                tracing::error!(seq, err = %e, "skipping a change-stream entry this version cannot read");
                Err(PushError::Unavailable(format!(
                    "unreadable stream entry: {e}"
                )))
            }
        };
        *applied = seq;
        drop(applied);
        self.metrics.applied.set(seq as i64);
        let nonce = origin
            .and_then(|o| o.strip_prefix(self.replica_id.as_str()))
            .and_then(|rest| rest.strip_prefix('/'))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(sender) = nonce.and_then(|n| self.waiters.lock().remove(&n)) {
            let _ = sender.send(verdict);
        }
    }

    // === the lease ===

    /// Renews or takes the lease every second; as leader, sends expiry sweeps and writes
    /// snapshots.
    async fn run_lease(self: Arc<Self>) {
        let lease = redis_side::lease_script();
        let mut ticker = tokio::time::interval(LEASE_TICK);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_snapshot = Instant::now();
        loop {
            ticker.tick().await;
            let started = Instant::now();
            let mut conn = self.commands.clone();
            let answer: redis::RedisResult<LeaseAnswer> = lease
                .key(&self.keys.leader)
                .key(&self.keys.seq)
                .key(&self.keys.snapshot)
                .arg(&self.replica_id)
                .arg(LEASE_TTL.as_millis() as u64)
                .invoke_async(&mut conn)
                .await;
            let (is_leader, head, snapshot_seq, snapshot_time) = match answer {
                Ok(answer) => answer,
                Err(e) => {
                    // Keep the current role: nobody else can take the lease while Redis is
                    // unreachable, and the leader should keep serving what it has.
                    self.redis_failed("cannot renew the lease", &e);
                    continue;
                }
            };
            self.metrics
                .roundtrip
                .observe(started.elapsed().as_secs_f64());
            let is_leader = is_leader == 1;
            if self.leader.swap(is_leader, Ordering::Relaxed) != is_leader {
                tracing::info!(leader = is_leader, "leader lease changed hands");
            }
            self.metrics.leader.set(i64::from(is_leader));
            let applied = *self.applied.lock();
            self.metrics
                .lag
                .set(head.unwrap_or(0).saturating_sub(applied) as i64);
            self.metrics
                .snapshot_position
                .set(snapshot_seq.unwrap_or(0) as i64);
            self.metrics
                .snapshot_age
                .set(snapshot_time.map_or(0.0, |t| (unix_now() - t).max(0.0)));
            self.published
                .fetch_max(snapshot_seq.unwrap_or(0), Ordering::Relaxed);
            if !is_leader || !self.is_ready() {
                continue;
            }
            if self.expirer.policy().is_enabled() {
                self.send_expiry_sweep().await;
            }
            let due = last_snapshot.elapsed() >= self.config.snapshot_interval
                && applied > self.published.load(Ordering::Relaxed);
            // Written in its own task: a large upload must not hold up the lease renewal.
            if due && !self.snapshot_running.swap(true, Ordering::Relaxed) {
                last_snapshot = Instant::now();
                let replicator = self.clone();
                tokio::spawn(async move {
                    match replicator.write_snapshot().await {
                        Ok(Some(position)) => {
                            replicator.published.fetch_max(position, Ordering::Relaxed);
                        }
                        Ok(None) => {}
                        Err(e) => replicator.redis_failed("cannot write the snapshot to Redis", &e),
                    }
                    replicator.snapshot_running.store(false, Ordering::Relaxed);
                });
            }
        }
    }

    async fn send_expiry_sweep(&self) {
        let payload = entry::encode(&ChangeRequest::Expire { time: unix_now() });
        let sweep = tokio::time::timeout(self.config.timeout, self.append("", &payload));
        match sweep.await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => self.redis_failed("cannot send the expiry sweep", &e),
            Err(_) => {
                self.metrics.redis_errors.inc();
                tracing::warn!("the expiry sweep got no answer from Redis in time");
            }
        }
    }

    /// Writes the applied state to Redis; returns its position when it was stored.
    async fn write_snapshot(&self) -> redis::RedisResult<Option<u64>> {
        let (position, groups) = {
            let applied = self.applied.lock();
            (*applied, self.store.groups())
        };
        let data = tokio::task::spawn_blocking(move || snapshot::encode(position, &groups))
            .await
            .map_err(|e| redis::RedisError::from(std::io::Error::other(e.to_string())))?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.config.timeout))
            .set_response_timeout(Some(SNAPSHOT_TIMEOUT));
        let mut conn = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        let stored: i64 = redis_side::publish_snapshot_script()
            .key(&self.keys.snapshot)
            .key(&self.keys.stream)
            .arg(position)
            .arg(data.as_slice())
            .arg(unix_now())
            .invoke_async(&mut conn)
            .await?;
        if stored == 1 {
            tracing::info!(position, bytes = data.len(), "wrote the snapshot to Redis");
            Ok(Some(position))
        } else {
            Ok(None)
        }
    }

    fn redis_failed(&self, what: &str, error: &redis::RedisError) {
        self.metrics.redis_errors.inc();
        tracing::warn!(err = %error, "{what}");
    }
}

/// The lease script's answer: leader (1) or not, stream head, snapshot position and time.
type LeaseAnswer = (i64, Option<u64>, Option<u64>, Option<f64>);

/// What one read of the stream achieved.
enum Progress {
    /// Entries (or none) were applied.
    Applied,
    /// Redis has fewer entries than were applied here: it lost its data or was reset.
    Behind {
        /// The last entry Redis has.
        head: u64,
    },
    /// The next entry is gone (`found` came instead): the snapshot must be loaded.
    Gap {
        /// The first entry still in the stream.
        found: u64,
    },
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
