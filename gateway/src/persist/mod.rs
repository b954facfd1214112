//! Durable persistence behind `--persistence.file`: a push is acknowledged only once its
//! record is in the write-ahead log on disk; a snapshot of the whole store is written in
//! the background every `--persistence.interval` (or when the log has grown large), after
//! which the log segments it covers are deleted. Start-up restores snapshot plus log.
//!
//! Files (all beside the persistence file `F`):
//! - `F`: the latest snapshot ([`snapshot`]).
//! - `F.wal-NNNNNNNNNN`: log segments ([`wal`]), replayed in order after the snapshot.
//! - `F.upstream`: upstream Pushgateway's gob file ([`upstream`]), when `F` was one at start.
//!   It is imported, kept under this name until the first snapshot of ours is written (at
//!   once, after the import), and then removed; a restart before that imports it again.
//!
//! A damaged snapshot or log never makes the gateway overwrite it: start-up fails and names
//! the file, unless `--persistence.start-empty-on-corruption` moves the damaged files aside.
//! This module only reads the store at restore and cut time; it never changes it otherwise.

pub mod codec;
pub mod gob;
mod parallel;
pub mod snapshot;
pub mod upstream;
pub mod wal;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use tokio::sync::watch;

use crate::store::{PreparedChange, RestoredGroup, Store};
use wal::{list_segments, read_segment_with, segment_path, SyncStatus, Wal};

/// When a push counts as durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FsyncMode {
    /// After its record was fsynced (group commit): nothing acknowledged is ever lost.
    Always,
    /// Once written; fsync runs every second. Faster, may lose the last second on a crash
    /// of the machine (not of the process).
    Interval,
}

/// Persistence settings.
#[derive(Debug, Clone)]
pub struct PersistConfig {
    /// The snapshot file; log segments live beside it.
    pub file: PathBuf,
    /// How often a snapshot is written.
    pub interval: Duration,
    /// When pushes are acknowledged.
    pub fsync: FsyncMode,
    /// Start empty (moving damaged files aside) instead of refusing to start.
    pub start_empty_on_corruption: bool,
    /// Log size after which a snapshot is written before the interval is up.
    pub max_log_bytes: u64,
}

/// Why persistence could not start.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    /// A file is damaged or of another format.
    #[error("persistence file {path} cannot be used: {reason}; start with --persistence.start-empty-on-corruption to move it aside and start empty")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A file or directory cannot be read or written.
    #[error("persistence file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

/// What restore found, for the log and the status page.
#[derive(Debug, Clone, Default)]
pub struct RestoreReport {
    /// Groups loaded from the snapshot.
    pub snapshot_groups: usize,
    /// Log records replayed.
    pub replayed: usize,
    /// Segments whose last record was torn (a crash mid-write) and cut off.
    pub torn_tails: Vec<PathBuf>,
    /// Damaged files moved aside (only with `start_empty_on_corruption`).
    pub moved_aside: Vec<PathBuf>,
    /// Families imported from upstream's persistence file, when it was one.
    pub upstream_families: Option<usize>,
}

/// The running persistence: waits for durability, writes snapshots.
pub struct Persister {
    config: PersistConfig,
    store: Store,
    status: watch::Receiver<SyncStatus>,
    snapshot_lock: Mutex<()>,
    last_snapshot: Mutex<Option<SystemTime>>,
    report: RestoreReport,
}

impl Persister {
    /// Restores the store from the files and attaches the log to it.
    ///
    /// # Errors
    /// [`PersistError`] naming the file and the problem.
    pub fn start(config: PersistConfig, store: &Store) -> Result<Arc<Persister>, PersistError> {
        let started = Instant::now();
        let file = config.file.clone();
        let io_error = |path: &Path, source: io::Error| PersistError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
        }
        check_writable(&file).map_err(|e| io_error(&file, e))?;
        let mut report = RestoreReport::default();
        let segments = list_segments(&file).map_err(|e| io_error(&file, e))?;
        let last = segments.last().copied().unwrap_or(0);
        let restored = restore(&file, &segments, store, &mut report);
        let last = match restored {
            Ok(next_segment) => last.max(next_segment.saturating_sub(1)),
            Err(RestoreFailure::Io(path, e)) => return Err(io_error(&path, e)),
            Err(RestoreFailure::Corrupt(path, reason)) => {
                if !config.start_empty_on_corruption {
                    return Err(PersistError::Corrupt { path, reason });
                }
                // Everything goes aside, not only the damaged file: the rest builds on it,
                // and a crash before the next snapshot must not bring part of it back.
                tracing::warn!(file = %path.display(), reason = %reason, "damaged persistence file");
                for path in [file.clone(), upstream_path(&file)]
                    .into_iter()
                    .chain(segments.iter().map(|&n| segment_path(&file, n)))
                    .filter(|p| p.exists())
                {
                    report
                        .moved_aside
                        .push(move_aside(&path, "corrupt").map_err(|e| io_error(&path, e))?);
                }
                store.replay(crate::store::Change::Wipe);
                report.snapshot_groups = 0;
                report.replayed = 0;
                tracing::warn!(files = ?report.moved_aside, "moved the persistence files aside and started empty");
                last
            }
        };
        let wal = Wal::open(&file, last + 1, config.fsync).map_err(|e| io_error(&file, e))?;
        let status = wal.status();
        store.set_journal(Box::new(wal));
        tracing::info!(
            file = %file.display(),
            groups = report.snapshot_groups,
            replayed = report.replayed,
            seconds = started.elapsed().as_secs_f64(),
            "restored persisted metrics"
        );
        let imported = report.upstream_families.is_some();
        let persister = Arc::new(Persister {
            config,
            store: store.clone(),
            status,
            snapshot_lock: Mutex::new(()),
            last_snapshot: Mutex::new(None),
            report,
        });
        if imported {
            // Converts at once; until this succeeds, the upstream file is what a restart reads.
            if let Err(e) = persister.snapshot_now() {
                tracing::error!(file = %file.display(), err = %e, "cannot write the converted persistence file yet; the upstream file is kept and the conversion retried with the next snapshot");
            }
        }
        Ok(persister)
    }

    /// What the restore found.
    pub fn report(&self) -> &RestoreReport {
        &self.report
    }

    /// The persistence file.
    pub fn file(&self) -> &Path {
        &self.config.file
    }

    /// When the last snapshot was written by this process.
    pub fn last_snapshot(&self) -> Option<SystemTime> {
        *self.last_snapshot.lock()
    }

    /// Waits until the change with sequence number `seq` is durable.
    ///
    /// # Errors
    /// The fsync error when it cannot be made durable.
    pub async fn durable(&self, seq: u64) -> Result<(), String> {
        if self.config.fsync == FsyncMode::Interval {
            return Ok(());
        }
        let mut status = self.status.clone();
        loop {
            {
                let current = status.borrow_and_update();
                if current.synced >= seq {
                    return Ok(());
                }
                if let Some((upto, message)) = &current.failed {
                    if *upto >= seq {
                        return Err(message.clone());
                    }
                }
            }
            if status.changed().await.is_err() {
                return Err("the write-ahead log is closed".into());
            }
        }
    }

    /// Writes a snapshot now and deletes the log segments it covers. Blocking.
    ///
    /// # Errors
    /// Any I/O error; the previous snapshot and the log stay valid.
    pub fn snapshot_now(&self) -> io::Result<()> {
        let _one_at_a_time = self.snapshot_lock.lock();
        let (next_segment, groups) = self.store.cut(|journal| match journal {
            Some(journal) => match journal.as_any().downcast_mut::<Wal>() {
                Some(wal) => wal.rotate(),
                None => Err(io::Error::other("the journal is not a write-ahead log")),
            },
            None => Err(io::Error::other("no write-ahead log attached")),
        })?;
        snapshot::write(&self.config.file, next_segment, &groups)?;
        remove_upstream_file(&self.config.file)?;
        for number in list_segments(&self.config.file)? {
            if number < next_segment {
                fs::remove_file(segment_path(&self.config.file, number))?;
            }
        }
        *self.last_snapshot.lock() = Some(SystemTime::now());
        Ok(())
    }

    /// Runs snapshots every interval, or sooner when the log outgrows its limit, until the
    /// task is dropped.
    pub async fn run_snapshots(self: Arc<Self>) {
        let check_every = Duration::from_secs(1).min(self.config.interval);
        let mut due = deadline_after(self.config.interval);
        loop {
            tokio::time::sleep(check_every).await;
            let log_bytes = self.log_bytes();
            if Instant::now() < due && log_bytes < self.config.max_log_bytes {
                continue;
            }
            if log_bytes == 0 && !upstream_path(&self.config.file).exists() {
                due = deadline_after(self.config.interval);
                continue;
            }
            let persister = self.clone();
            let started = Instant::now();
            match tokio::task::spawn_blocking(move || persister.snapshot_now()).await {
                Ok(Ok(())) => {
                    tracing::info!(file = %self.config.file.display(), seconds = started.elapsed().as_secs_f64(), "metrics persisted")
                }
                Ok(Err(e)) => {
                    tracing::error!(file = %self.config.file.display(), err = %e, "error persisting metrics")
                }
                Err(e) => tracing::error!(err = %e, "snapshot task failed"),
            }
            due = deadline_after(self.config.interval);
        }
    }

    fn log_bytes(&self) -> u64 {
        let mut bytes = 0;
        self.store.cut_journal_only(|journal| {
            if let Some(wal) = journal.and_then(|j| j.as_any().downcast_mut::<Wal>()) {
                bytes = wal.bytes_since_cut();
            }
        });
        bytes
    }

    /// A final snapshot at shutdown, so that the next start reads one file; none when the
    /// snapshot on disk holds the state already (nothing was logged since it was written
    /// or restored), which spares a restart without changes rewriting the whole store.
    pub fn shutdown(&self) {
        if self.snapshot_is_current() {
            tracing::info!(file = %self.config.file.display(), "nothing changed since the last snapshot; not persisting again");
            self.close_log();
            return;
        }
        match self.snapshot_now() {
            Ok(()) => tracing::info!(file = %self.config.file.display(), "metrics persisted"),
            Err(e) => {
                tracing::error!(file = %self.config.file.display(), err = %e, "final snapshot failed; the log still holds every acknowledged change")
            }
        }
        self.close_log();
    }

    fn close_log(&self) {
        self.store.cut_journal_only(|journal| {
            if let Some(wal) = journal.and_then(|j| j.as_any().downcast_mut::<Wal>()) {
                wal.close();
            }
        });
    }

    /// Whether the snapshot file is ours and the whole state: nothing logged since the
    /// last cut, and no log segment left for the next start to replay.
    fn snapshot_is_current(&self) -> bool {
        let file = &self.config.file;
        self.log_bytes() == 0
            && file.exists()
            && !upstream_path(file).exists()
            && list_segments(file).is_ok_and(|segments| segments.is_empty())
    }
}

/// Creating (and removing) an empty file beside the persistence file shows that the log
/// can be written, without needing any free space.
fn check_writable(file: &Path) -> io::Result<()> {
    let mut probe = file.as_os_str().to_owned();
    probe.push(".probe");
    let probe = PathBuf::from(probe);
    fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&probe)?;
    fs::remove_file(&probe)
}

enum RestoreFailure {
    Io(PathBuf, io::Error),
    Corrupt(PathBuf, String),
}

/// Loads the snapshot and replays the segments after it; returns the first segment number
/// the snapshot does not cover.
fn restore(
    file: &Path,
    segments: &[u64],
    store: &Store,
    report: &mut RestoreReport,
) -> Result<u64, RestoreFailure> {
    let classify = |path: &Path, e: io::Error| {
        if e.kind() == io::ErrorKind::InvalidData {
            RestoreFailure::Corrupt(path.to_path_buf(), e.to_string())
        } else {
            RestoreFailure::Io(path.to_path_buf(), e)
        }
    };
    let next_segment = read_base(file, segments, store, report)?.unwrap_or(1);
    let last = segments.last().copied();
    for &number in segments {
        let path = segment_path(file, number);
        if number < next_segment {
            // Covered by the snapshot; left over from a crash during clean-up.
            let _ = fs::remove_file(&path);
            continue;
        }
        let contents = read_segment_with(&path, Some(number) == last, PreparedChange::new)
            .map_err(|e| classify(&path, e))?;
        if contents.torn_tail {
            tracing::warn!(file = %path.display(), valid_bytes = contents.valid_len, "discarding a torn record at the end of the log (a crash during a write); everything before it is kept");
            truncate(&path, contents.valid_len).map_err(|e| RestoreFailure::Io(path.clone(), e))?;
            report.torn_tails.push(path.clone());
        }
        report.replayed += contents.changes.len();
        for change in contents.changes {
            store.replay_prepared(change);
        }
    }
    Ok(next_segment)
}

/// Restores what the log builds on: our snapshot, or upstream's gob file (at `file`, or at
/// `file.upstream` when a restart comes before the first snapshot after the import).
/// Returns the first log segment it does not cover, `None` without either file.
fn read_base(
    file: &Path,
    segments: &[u64],
    store: &Store,
    report: &mut RestoreReport,
) -> Result<Option<u64>, RestoreFailure> {
    let upstream_file = upstream_path(file);
    let data = match read_optional(file)? {
        Some(data) if !upstream::looks_like_gob(&data) => {
            let position = restore_snapshot(&data, store, report)
                .map_err(|e| RestoreFailure::Corrupt(file.to_path_buf(), e.to_string()))?;
            // A crash came between our first snapshot and removing the upstream file.
            remove_upstream_file(file).map_err(|e| RestoreFailure::Io(upstream_file, e))?;
            return Ok(Some(position));
        }
        Some(data) => data,
        None => match read_optional(&upstream_file)? {
            Some(data) => data,
            None => return Ok(None),
        },
    };
    let source = if upstream_file.exists() && !file.exists() {
        upstream_file.clone()
    } else {
        file.to_path_buf()
    };
    let groups = upstream::decode(&data).map_err(|e| {
        RestoreFailure::Corrupt(
            source.clone(),
            format!("not a snapshot of this gateway's format, and not a readable upstream Pushgateway file: {e}"),
        )
    })?;
    let mut position = 1;
    if source == file {
        // A log beside a fresh upstream file is from an earlier run of ours, older than the
        // file upstream wrote since: replaying it would bring back changes upstream never saw.
        for &number in segments {
            let path = segment_path(file, number);
            let aside = move_aside(&path, "stale").map_err(|e| RestoreFailure::Io(path, e))?;
            tracing::warn!(file = %aside.display(), "moved aside a log segment older than upstream's persistence file");
            position = number + 1;
        }
        fs::rename(file, &upstream_file).map_err(|e| RestoreFailure::Io(file.to_path_buf(), e))?;
        wal::sync_dir(file).map_err(|e| RestoreFailure::Io(file.to_path_buf(), e))?;
    }
    let families: usize = groups.iter().map(|g| g.families.len()).sum();
    report.upstream_families = Some(families);
    tracing::info!(
        file = %source.display(),
        kept_as = %upstream_file.display(),
        groups = groups.len(),
        families,
        "imported upstream Pushgateway's persistence file; it is converted with the first snapshot"
    );
    report.snapshot_groups = groups.len();
    store.restore_groups(groups.into_iter().map(RestoredGroup::new).collect());
    Ok(Some(position))
}

/// Restores our snapshot `data` into `store`: groups are linked in as soon as they are
/// decoded, while the rest is still being decoded on the other cores. Returns its position.
fn restore_snapshot(data: &[u8], store: &Store, report: &mut RestoreReport) -> io::Result<u64> {
    let mut reserved = false;
    snapshot::decode_into(data, RestoredGroup::new, |groups, share| {
        if !reserved {
            // The series index sized once, from the first run, instead of growing by
            // doubling. Every series takes 11 bytes of the file at least, which bounds a
            // wild guess.
            reserved = true;
            let series: usize = groups.iter().map(RestoredGroup::series).sum();
            let estimate = (series as f64 / share.max(1e-9)) as usize;
            store.reserve_restore(estimate.min(data.len() / 11));
        }
        report.snapshot_groups += groups.len();
        store.restore_groups(groups);
    })
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, RestoreFailure> {
    match fs::read(path) {
        Ok(data) => Ok(Some(data)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(RestoreFailure::Io(path.to_path_buf(), e)),
    }
}

/// Where upstream's file is kept until it has been converted.
pub fn upstream_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".upstream");
    PathBuf::from(name)
}

/// Removes the kept upstream file once a snapshot of ours exists.
fn remove_upstream_file(file: &Path) -> io::Result<()> {
    let upstream_file = upstream_path(file);
    match fs::remove_file(&upstream_file) {
        Ok(()) => {
            tracing::info!(file = %upstream_file.display(), "converted upstream's persistence file; removed the original");
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn truncate(path: &Path, len: u64) -> io::Result<()> {
    let file = fs::OpenOptions::new().write(true).open(path)?;
    file.set_len(len)?;
    file.sync_all()
}

/// Renames a file to `<name>.<why>-<unix seconds>` and returns the new path.
fn move_aside(path: &Path, why: &str) -> io::Result<PathBuf> {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{why}-{seconds}"));
    let target = PathBuf::from(name);
    fs::rename(path, &target)?;
    Ok(target)
}

#[cfg(test)]
mod tests;

/// `interval` from now; an interval too long for the clock means "not in this process's
/// lifetime" instead of an overflow.
fn deadline_after(interval: Duration) -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 86_400);
    Instant::now() + interval.min(CENTURY)
}
