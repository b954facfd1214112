//! The lease: renewed every second by every replica, held by one. The holder sends the
//! expiry sweeps and writes the snapshots; every replica reports lag and snapshot age.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;

use super::entry::{self, ChangeRequest};
use super::redis_side;
use super::settings;
use super::{AppliedState, Replicator, SettingsState, LEASE_TICK, LEASE_TTL};
use crate::clock::unix_now;
use crate::persist::snapshot;

/// Chunks encoded ahead of the upload: the encoder never holds the whole snapshot.
const CHUNKS_AHEAD: usize = 2;
/// How long written chunks live until the manifest names them.
const CHUNK_WRITE_TTL: Duration = Duration::from_secs(15 * 60);
/// How long the previous generation's chunks stay after a new manifest, for replicas
/// still reading them.
const OLD_CHUNKS_GRACE: Duration = Duration::from_secs(5 * 60);

/// Where the settings check stands between ticks.
struct SettingsCheck {
    /// Store this replica's settings at the next check (`--storage.redis.adopt-settings`).
    adopt: bool,
    /// The description compared last, to notice a reload that changed the rules.
    last_described: Option<String>,
}

/// The lease script's answer: leader (1) or not, stream head, snapshot position and time.
type LeaseAnswer = (i64, Option<u64>, Option<u64>, Option<f64>);

impl Replicator {
    /// Renews or takes the lease every second; as leader, sends expiry sweeps and writes
    /// snapshots.
    pub(super) async fn run_lease(self: Arc<Self>) {
        let lease = redis_side::lease_script();
        let mut ticker = tokio::time::interval(LEASE_TICK);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_snapshot = Instant::now();
        let mut settings = SettingsCheck {
            adopt: self.config.adopt_settings,
            last_described: None,
        };
        loop {
            ticker.tick().await;
            let started = Instant::now();
            let mut conn = match self.lease_connector.commands().await {
                Ok(conn) => conn,
                Err(e) => {
                    // Keep the current role, as when the lease renewal fails below.
                    self.redis_failed("cannot reach the Redis primary", &e);
                    continue;
                }
            };
            if self.keys_checked.load(Ordering::Acquire) {
                if let Err(e) = self.check_settings(&mut conn, &mut settings).await {
                    self.redis_failed("cannot compare the settings with Redis's", &e);
                }
            }
            // Only a replica that has caught up may lead (and, with expose=leader, serve).
            let may_lead = if self.is_ready() { "1" } else { "0" };
            let answer: redis::RedisResult<LeaseAnswer> = lease
                .key(&self.keys.leader)
                .key(&self.keys.seq)
                .key(&self.keys.snapshot)
                .arg(&self.replica_id)
                .arg(LEASE_TTL.as_millis() as u64)
                .arg(may_lead)
                .invoke_async(&mut conn)
                .await;
            let (is_leader, head, snapshot_seq, snapshot_time) = match answer {
                Ok(answer) => answer,
                Err(e) => {
                    self.lease_connector.failed(&e).await;
                    // Keep the current role: when Redis is down nobody can take the lease,
                    // and the leader should keep serving what it has rather than leave
                    // Prometheus without the pushed series. (Cut off from Redis alone, it
                    // serves a frozen copy next to the new leader's until Redis answers.)
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
            // Without any snapshot yet, its age counts from this replica's start, so that
            // a snapshot that never gets written still shows up as a stale one.
            let snapshot_time = snapshot_time.unwrap_or(self.started_at);
            self.metrics
                .snapshot_age
                .set((unix_now() - snapshot_time).max(0.0));
            self.published
                .fetch_max(snapshot_seq.unwrap_or(0), Ordering::Relaxed);
            if !is_leader || !self.is_ready() {
                continue;
            }
            // Only when this replica sees a group due: an idle stream stays idle.
            let now = unix_now();
            if self.expirer.any_due(&self.store, now) {
                self.send_expiry_sweep(now).await;
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

    /// Compares this replica's check-affecting settings with those stored in Redis (storing
    /// them when there are none, or when they are to be adopted) and records the outcome.
    async fn check_settings(
        &self,
        conn: &mut MultiplexedConnection,
        check: &mut SettingsCheck,
    ) -> redis::RedisResult<()> {
        let mine = settings::describe(
            &self.config.check_settings,
            &self.expirer.policy(),
            &self.store.quotas(),
        );
        // Rules changed by a reload: the operator asked for them.
        let reloaded = check
            .last_described
            .as_ref()
            .is_some_and(|last| *last != mine);
        let adopt = check.adopt || reloaded;
        let stored: String = settings::check_script()
            .key(&self.keys.settings)
            .arg(&mine)
            .arg(if adopt { "1" } else { "0" })
            .invoke_async(conn)
            .await?;
        if adopt {
            tracing::warn!(
                reloaded,
                "stored this replica's check-affecting settings in Redis; replicas with other \
                 settings turn unready"
            );
        }
        check.adopt = false;
        check.last_described = Some(mine.clone());
        let outcome = if stored == mine {
            SettingsState::Agreed
        } else {
            SettingsState::Differ(settings::differences(&mine, &stored))
        };
        let mut state = self.settings.lock();
        match (&*state, &outcome) {
            (SettingsState::Differ(_), SettingsState::Agreed) => {
                tracing::info!("the settings agree with those stored in Redis again");
            }
            (SettingsState::Differ(old), SettingsState::Differ(new)) if old == new => {}
            (_, SettingsState::Differ(why)) => tracing::error!("{why}; not ready"),
            _ => {}
        }
        self.metrics
            .settings_mismatch
            .set(i64::from(matches!(outcome, SettingsState::Differ(_))));
        *state = outcome;
        Ok(())
    }

    async fn send_expiry_sweep(&self, time: f64) {
        let payload = entry::encode(&ChangeRequest::Expire { time });
        // A unique origin that no request waits for.
        let nonce = self.next_nonce.fetch_add(1, Ordering::Relaxed);
        let origin = format!("{}/sweep-{nonce}", self.replica_id);
        let sweep = tokio::time::timeout(self.config.timeout, self.append(&origin, &payload));
        match sweep.await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => self.redis_failed("cannot send the expiry sweep", &e),
            Err(_) => {
                self.metrics.redis_errors.inc();
                tracing::warn!("the expiry sweep got no answer from Redis in time");
            }
        }
    }

    /// Writes the applied state to Redis as a new generation of chunks, encoded one at a
    /// time while the previous ones are uploaded, then publishes its manifest; returns its
    /// position when it was published.
    async fn write_snapshot(&self) -> redis::RedisResult<Option<u64>> {
        let AppliedState {
            position,
            epoch,
            groups,
            ..
        } = self.applied_state();
        // Not stamped yet (only entries of an older version applied): nothing to publish.
        let Some(epoch) = epoch else {
            return Ok(None);
        };
        let started = Instant::now();
        let mut conn = self.long_connection().await?;
        let generation: u64 = redis::cmd("INCR")
            .arg(&self.keys.snapshot_generation)
            .query_async(&mut conn)
            .await?;
        let (sender, mut chunks) = tokio::sync::mpsc::channel::<Vec<u8>>(CHUNKS_AHEAD);
        let target = self.config.snapshot_chunk_bytes;
        let encoder = tokio::task::spawn_blocking(move || {
            for chunk in snapshot::Chunks::new(groups, generation, target) {
                // The upload failed and dropped the receiver: stop.
                if sender.blocking_send(chunk?).is_err() {
                    break;
                }
            }
            Ok::<_, std::io::Error>(())
        });
        let mut keys = Vec::new();
        let mut bytes = 0;
        while let Some(chunk) = chunks.recv().await {
            let key = self.keys.snapshot_chunk(generation, keys.len() as u32);
            bytes += chunk.len();
            // Until the manifest names them: the chunks of a writer that died go away.
            redis::cmd("SET")
                .arg(&key)
                .arg(chunk)
                .arg("PX")
                .arg(CHUNK_WRITE_TTL.as_millis() as u64)
                .query_async::<()>(&mut conn)
                .await?;
            keys.push(key);
        }
        // A chunk that could not be encoded ends the upload before anything is published.
        encoder
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))
            .and_then(|encoded| encoded)
            .map_err(redis::RedisError::from)?;
        let script = redis_side::publish_snapshot_script();
        let mut publish = script.prepare_invoke();
        publish
            .key(&self.keys.snapshot)
            .key(&self.keys.stream)
            .key(&self.keys.epoch);
        for key in &keys {
            publish.key(key);
        }
        publish
            .arg(position)
            .arg(unix_now())
            .arg(&epoch)
            .arg(generation)
            .arg(self.keys.snapshot_chunk_base())
            .arg(OLD_CHUNKS_GRACE.as_millis() as u64);
        let published: i64 = publish.invoke_async(&mut conn).await?;
        match published {
            1 => {
                tracing::info!(
                    position,
                    generation,
                    chunks = keys.len(),
                    bytes,
                    seconds = started.elapsed().as_secs_f64(),
                    "wrote the snapshot to Redis"
                );
                Ok(Some(position))
            }
            -1 => {
                self.metrics.redis_errors.inc();
                tracing::warn!(
                    generation,
                    "a snapshot chunk expired before the manifest was written; not published"
                );
                Ok(None)
            }
            _ => Ok(None),
        }
    }
}
