//! The applier: loads the snapshot, then applies the change stream in order, forever,
//! and hands each entry's verdict to the request that sent it from this replica.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use redis::aio::MultiplexedConnection;
use redis::streams::StreamReadReply;

use super::entry;
use super::redis_side::{self, seq_of, Keys};
use super::{Backoff, Replicator, READ_BATCH, READ_BLOCK};
use crate::persist::snapshot;
use crate::store::{GroupView, PushError};

impl Replicator {
    /// Loads the snapshot, then applies the stream forever, reconnecting as needed.
    pub(super) async fn run_applier(self: Arc<Self>) {
        let mut backoff = Backoff::default();
        let mut connection: Option<MultiplexedConnection> = None;
        let mut needs_snapshot = true;
        // The first entry found after a gap, until the snapshot has been tried.
        let mut gap_at: Option<u64> = None;
        loop {
            let conn = match &mut connection {
                Some(conn) => conn,
                None => match self.long_connection().await {
                    Ok(mut conn) => match self.check_keys_then_history(&mut conn).await {
                        Ok(true) => connection.insert(conn),
                        Ok(false) => {
                            needs_snapshot = true;
                            connection.insert(conn)
                        }
                        Err(e) => {
                            self.redis_failed("cannot check the change stream", &e);
                            backoff.wait().await;
                            continue;
                        }
                    },
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
                Ok(Progress::OtherHistory(why)) => {
                    self.start_over(&why);
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

    /// Moves the keys of an older version under the hash tag once, then checks the
    /// history (see [`Self::verify_history`]).
    async fn check_keys_then_history(
        &self,
        conn: &mut MultiplexedConnection,
    ) -> redis::RedisResult<bool> {
        if !self.keys_checked.load(Ordering::Acquire) {
            self.migrate_old_keys(conn).await?;
            self.keys_checked.store(true, Ordering::Release);
        }
        self.verify_history(conn).await
    }

    async fn migrate_old_keys(&self, conn: &mut MultiplexedConnection) -> redis::RedisResult<()> {
        let old = Keys::untagged(&self.config.key_prefix);
        // One key first: the script names keys of two slots, which a Redis Cluster refuses
        // (and a cluster never held the old keys, which needed a single node).
        let old_seq: redis::RedisResult<Option<String>> =
            redis::cmd("GET").arg(&old.seq).query_async(conn).await;
        let old_seq = match old_seq {
            Ok(value) => value,
            Err(e) if e.is_cluster_error() => None,
            Err(e) => return Err(e),
        };
        if old_seq.is_none_or(|seq| seq.parse::<u64>().is_err()) {
            return Ok(());
        }
        let moved: i64 = redis_side::migrate_script()
            .key(&old.seq)
            .key(&old.stream)
            .key(&old.snapshot)
            .key(&old.leader)
            .key(&self.keys.seq)
            .key(&self.keys.stream)
            .key(&self.keys.snapshot)
            .arg(redis_side::MOVED_MARK)
            .invoke_async(conn)
            .await?;
        match moved {
            1 => tracing::warn!(
                from = %old.stream,
                to = %self.keys.stream,
                "moved the keys of an older version under the hash tag; replicas of the \
                 older version now refuse pushes and stay unready until upgraded"
            ),
            -1 => tracing::error!(
                old = %old.seq,
                new = %self.keys.seq,
                "Redis holds the keys of an older version next to this version's; replicas \
                 of the older version are still writing there and their changes are not seen \
                 here: upgrade them"
            ),
            _ => {}
        }
        Ok(())
    }

    /// Replaces the local state with the snapshot in Redis when it is ahead of it.
    async fn load_snapshot(&self, conn: &mut MultiplexedConnection) -> redis::RedisResult<()> {
        // The manifest first: the chunks only when the snapshot is ahead.
        let (manifest, legacy, epoch): (Manifest, bool, Option<String>) = redis::pipe()
            .cmd("HMGET")
            .arg(&self.keys.snapshot)
            .arg("seq")
            .arg("epoch")
            .arg("generation")
            .arg("chunks")
            .cmd("HEXISTS")
            .arg(&self.keys.snapshot)
            .arg("data")
            .cmd("GET")
            .arg(&self.keys.epoch)
            .query_async(conn)
            .await?;
        let (seq, snapshot_epoch, generation, chunks) = manifest;
        // A snapshot of another history than the stream's is no starting point for it.
        let Some(seq) = seq.filter(|seq| *seq > *self.applied.lock()) else {
            return Ok(());
        };
        if snapshot_epoch != epoch {
            return Ok(());
        }
        // An older version's writer replaces the manifest but not the chunk fields, and a
        // writer of this version deletes `data`: when there, it is the newer snapshot.
        let loaded = match (legacy, generation, chunks) {
            (true, _, _) => self.read_whole_snapshot(conn).await?,
            (false, Some(generation), Some(chunks)) => {
                self.read_chunks(conn, generation, chunks).await?
            }
            _ => return Ok(()),
        };
        let groups = match loaded {
            Ok(groups) => groups,
            Err(e) => {
                // A snapshot this version cannot read: carry on from the stream alone.
                self.metrics.apply_errors.inc();
                tracing::error!(err = %e, "cannot decode the snapshot in Redis; ignoring it");
                return Ok(());
            }
        };
        let mut applied = self.applied.lock();
        let count = groups.len();
        self.store.replace_all(groups);
        *applied = seq;
        *self.last_origin.lock() = None;
        *self.epoch.lock() = snapshot_epoch;
        self.metrics.applied.set(seq as i64);
        tracing::info!(
            position = seq,
            groups = count,
            "loaded the snapshot from Redis"
        );
        Ok(())
    }

    /// The groups of the snapshot generation `generation`, read and decoded one chunk at a
    /// time; the inner error when a chunk cannot be decoded.
    ///
    /// # Errors
    /// Redis errors, and a chunk gone (a newer snapshot replaced this one long enough ago
    /// that its chunks expired): the caller tries again from the manifest.
    async fn read_chunks(
        &self,
        conn: &mut MultiplexedConnection,
        generation: u64,
        chunks: u32,
    ) -> redis::RedisResult<std::io::Result<Vec<GroupView>>> {
        let mut groups = Vec::new();
        for index in 0..chunks {
            let data: Option<Vec<u8>> = redis::cmd("GET")
                .arg(self.keys.snapshot_chunk(generation, index))
                .query_async(conn)
                .await?;
            let Some(data) = data else {
                return Err(snapshot_replaced());
            };
            let decoded = tokio::task::spawn_blocking(move || {
                snapshot::decode_chunk(&data, generation, index)
            })
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))
            .and_then(|decoded| decoded);
            match decoded {
                Ok(mut more) => groups.append(&mut more),
                Err(e) => return Ok(Err(e)),
            }
        }
        Ok(Ok(groups))
    }

    /// The groups of a snapshot written whole by an older version (the manifest's `data`).
    async fn read_whole_snapshot(
        &self,
        conn: &mut MultiplexedConnection,
    ) -> redis::RedisResult<std::io::Result<Vec<GroupView>>> {
        let data: Option<Vec<u8>> = redis::cmd("HGET")
            .arg(&self.keys.snapshot)
            .arg("data")
            .query_async(conn)
            .await?;
        let Some(data) = data else {
            return Err(snapshot_replaced());
        };
        Ok(tokio::task::spawn_blocking(move || snapshot::decode(&data))
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))
            .and_then(|decoded| decoded)
            .map(|snapshot| snapshot.groups))
    }

    /// Redis is the source of truth: when it lost entries this replica applied (it ran
    /// without its append-only file, or was flushed, or a replica that missed them was
    /// promoted), the local state goes too.
    fn start_over(&self, why: &str) {
        let mut applied = self.applied.lock();
        tracing::error!(
            applied = *applied,
            "{why}; dropping the local state and starting over from Redis"
        );
        self.metrics.apply_errors.inc();
        self.store.replace_all(Vec::new());
        *applied = 0;
        *self.last_origin.lock() = None;
        *self.epoch.lock() = None;
        self.metrics.applied.set(0);
        // The old history's snapshot position means nothing in the new one.
        self.published.store(0, Ordering::Relaxed);
        self.ready.store(false, Ordering::Relaxed);
    }

    /// After a reconnect: is the entry this replica applied last still the same in Redis?
    /// A Redis that restarted without the last second of its append-only file reuses those
    /// numbers for new entries; a replica that applied the lost ones must start over, or it
    /// would skip the new ones. Returns false after starting over.
    async fn verify_history(&self, conn: &mut MultiplexedConnection) -> redis::RedisResult<bool> {
        let applied = *self.applied.lock();
        let (head, epoch) = self.head_and_epoch(conn).await?;
        if let Some(why) = self.other_epoch(epoch.as_deref()) {
            self.start_over(&why);
            return Ok(false);
        }
        let Some(expected) = self.last_origin.lock().clone() else {
            return Ok(true);
        };
        let id = format!("{applied}-0");
        let found: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
            .arg(&self.keys.stream)
            .arg(&id)
            .arg(&id)
            .query_async(conn)
            .await?;
        let same = match found.ids.first() {
            Some(entry) => entry.get::<String>("o").as_deref() == Some(expected.as_str()),
            // Trimmed away (fine) unless Redis no longer even counts that far.
            None => head >= applied,
        };
        if !same {
            self.start_over(&format!(
                "Redis holds another entry {applied} than this replica applied, or fewer \
                 (head {head}): it restarted without the end of its append-only file, or a \
                 replica that missed entries was promoted"
            ));
        }
        Ok(same)
    }

    /// The stream head and the history's epoch in Redis.
    async fn head_and_epoch(
        &self,
        conn: &mut MultiplexedConnection,
    ) -> redis::RedisResult<(u64, Option<String>)> {
        let (head, epoch): (Option<u64>, Option<String>) = redis::pipe()
            .cmd("GET")
            .arg(&self.keys.seq)
            .cmd("GET")
            .arg(&self.keys.epoch)
            .query_async(conn)
            .await?;
        Ok((head.unwrap_or(0), epoch))
    }

    /// Why `found` (the epoch in Redis or on an entry) is another history than the one
    /// applied here; `None` when it is the same or either is unknown (entries of older
    /// versions carry none).
    fn other_epoch(&self, found: Option<&str>) -> Option<String> {
        let mine = self.epoch.lock();
        match (mine.as_deref(), found) {
            (Some(mine), Some(found)) if mine != found => Some(format!(
                "Redis holds another history (epoch {found}) than this replica applied \
                 (epoch {mine}): it was flushed or replaced"
            )),
            _ => None,
        }
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
            // A primary demoted by a failover still serves reads: leave it for the new one.
            self.connector.check_primary(conn).await?;
            let (head, epoch) = self.head_and_epoch(conn).await?;
            if head < after {
                return Ok(Progress::OtherHistory(format!(
                    "Redis holds fewer changes ({head}) than this replica applied ({after}): \
                     was it reset or run without its append-only file?"
                )));
            }
            if let Some(why) = self.other_epoch(epoch.as_deref()) {
                return Ok(Progress::OtherHistory(why));
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
                self.ready.store(false, Ordering::Relaxed);
                return Ok(Progress::Gap { found: seq });
            }
            let epoch: Option<String> = item.get("e");
            if let Some(why) = self.other_epoch(epoch.as_deref()) {
                return Ok(Progress::OtherHistory(why));
            }
            let origin: Option<String> = item.get("o");
            let payload: Option<Vec<u8>> = item.get("c");
            self.apply(
                seq,
                origin.as_deref(),
                epoch,
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
    fn apply(&self, seq: u64, origin: Option<&str>, epoch: Option<String>, payload: &[u8]) {
        let mut applied = self.applied.lock();
        let verdict = match entry::decode(payload) {
            Ok(request) => request.apply(&self.store, &self.expirer).map(drop),
            Err(e) => {
                self.metrics.apply_errors.inc();
                tracing::error!(seq, err = %e, "skipping a change-stream entry this version cannot read");
                Err(PushError::Replication(format!(
                    "this replica cannot read the stream entry: {e}"
                )))
            }
        };
        *applied = seq;
        *self.last_origin.lock() = Some(origin.unwrap_or_default().to_string());
        if epoch.is_some() {
            *self.epoch.lock() = epoch;
        }
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
}

/// The error of a snapshot that a newer one replaced while it was read (its chunks expired
/// meanwhile): the applier tries again from the manifest.
fn snapshot_replaced() -> redis::RedisError {
    redis::RedisError::from((
        redis::ErrorKind::Io,
        "the snapshot being read is gone (a newer one replaced it); reading the snapshot again",
    ))
}

/// The manifest's `seq`, `epoch`, `generation` and `chunks`.
type Manifest = (Option<u64>, Option<String>, Option<u64>, Option<u32>);

/// What one read of the stream achieved.
enum Progress {
    /// Entries (or none) were applied.
    Applied,
    /// Redis holds another history than was applied here (the reason): it lost its data,
    /// was reset or flushed.
    OtherHistory(String),
    /// The next entry is gone (`found` came instead): the snapshot must be loaded.
    Gap {
        /// The first entry still in the stream.
        found: u64,
    },
}
