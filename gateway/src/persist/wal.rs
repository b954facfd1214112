//! The write-ahead log: numbered segment files beside the persistence file
//! (`<file>.wal-0000000001`, ...), each a header followed by records
//! `[u32 length][u32 crc32 of payload][u32 crc32 of the first 8 bytes][payload]`
//! (little-endian). The header's own checksum tells a damaged length from a record cut
//! short by a crash: only the latter, at the very end of the last segment, is a torn tail.
//! Appends happen under the store's lock; a background thread fsyncs, so that all appends
//! waiting at that moment share one fsync (group commit), and publishes how far the log is
//! durable. A segment file is created with its first record, so that starting (and
//! snapshotting) needs no free disk space.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use super::codec::{decode_change, encode_change};
use super::{parallel, FsyncMode};
use crate::store::{Change, Journal};

/// First bytes of every segment: name and format version 1.
pub const SEGMENT_MAGIC: &[u8; 8] = b"PGWWAL\x00\x01";
const RECORD_HEADER: usize = 12;
/// Largest record payload, for both sides: the writer refuses a larger change (so that no
/// push is acknowledged that the next start could not read back) and the reader treats a
/// larger length as corruption. Far above any push within the default limits.
pub const MAX_RECORD: usize = 1 << 30;

/// How far the log is on disk, shared with the pushes that wait for it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SyncStatus {
    /// Every record up to this sequence number is durable.
    pub synced: u64,
    /// The last fsync failure: records up to this number could not be made durable.
    pub failed: Option<(u64, String)>,
}

/// The segment path for number `n`.
pub fn segment_path(base: &Path, n: u64) -> PathBuf {
    let mut name = base.as_os_str().to_owned();
    name.push(format!(".wal-{n:010}"));
    PathBuf::from(name)
}

/// Segment numbers present beside `base`, ascending.
///
/// # Errors
/// When the directory cannot be listed.
pub fn list_segments(base: &Path) -> io::Result<Vec<u64>> {
    let dir = base
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let prefix = format!(
        "{}.wal-",
        base.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    );
    let mut numbers = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if let Some(n) = name
            .strip_prefix(&prefix)
            .and_then(|n| n.parse::<u64>().ok())
        {
            numbers.push(n);
        }
    }
    numbers.sort_unstable();
    Ok(numbers)
}

/// What reading a segment found.
#[derive(Debug)]
pub struct SegmentContents<T = Change<'static>> {
    /// The decoded changes (or what the reader made of them), in order.
    pub changes: Vec<T>,
    /// Length of the valid prefix of the file.
    pub valid_len: u64,
    /// True when an incomplete or damaged record ended the file (a crash mid-write).
    pub torn_tail: bool,
}

/// Reads a segment. In the last segment, a record cut short at the end of the file is a
/// torn tail (reported; everything before it kept). Any other damage is corruption.
///
/// # Errors
/// I/O errors, a bad header, or corruption, with the offset.
pub fn read_segment(path: &Path, is_last: bool) -> io::Result<SegmentContents> {
    read_segment_with(path, is_last, |change| change)
}

/// [`read_segment`], each change handed to `prepare` on the thread that decoded it (restore
/// prepares pushes for replay there, in parallel).
///
/// # Errors
/// As [`read_segment`].
pub fn read_segment_with<T: Send>(
    path: &Path,
    is_last: bool,
    prepare: impl Fn(Change<'static>) -> T + Sync,
) -> io::Result<SegmentContents<T>> {
    let mut data = Vec::new();
    File::open(path)?.read_to_end(&mut data)?;
    let corrupt = |pos: usize, what: &str| {
        invalid(format!(
            "{}: corrupt record at byte {pos}: {what}",
            path.display()
        ))
    };
    if data.len() < SEGMENT_MAGIC.len() {
        if is_last {
            // Created but the header never reached the disk.
            return Ok(torn(Vec::new(), 0));
        }
        return Err(corrupt(0, "segment shorter than its header"));
    }
    if &data[..SEGMENT_MAGIC.len()] != SEGMENT_MAGIC {
        return Err(invalid(format!(
            "{}: not a log segment of this version",
            path.display()
        )));
    }
    // First the records' places (headers and checksums, cheap), then their payloads decoded
    // on every core; what is found first in the file is the error.
    let mut payloads: Vec<(usize, &[u8])> = Vec::new();
    let ending = find_records(&data, is_last, &mut payloads);
    let changes = decode_records(&payloads, prepare).map_err(|(pos, e)| corrupt(pos, &e))?;
    match ending {
        Ending::Complete => Ok(SegmentContents {
            changes,
            valid_len: data.len() as u64,
            torn_tail: false,
        }),
        Ending::Torn(pos) => Ok(torn(changes, pos)),
        Ending::Corrupt(pos, what) => Err(corrupt(pos, what)),
    }
}

/// How the records of a segment end.
enum Ending {
    /// With the file.
    Complete,
    /// In a torn record at this offset (only in the last segment).
    Torn(usize),
    /// In damage at this offset.
    Corrupt(usize, &'static str),
}

/// Collects the offset and payload of every whole record whose header and checksum are
/// right, up to the end of the file or the first record that is not.
fn find_records<'a>(
    data: &'a [u8],
    is_last: bool,
    payloads: &mut Vec<(usize, &'a [u8])>,
) -> Ending {
    let mut pos = SEGMENT_MAGIC.len();
    while pos < data.len() {
        let rest = &data[pos..];
        // A crash can leave the end of the file zero-filled (extended, data not written).
        if is_last && rest.iter().all(|&b| b == 0) {
            return Ending::Torn(pos);
        }
        if rest.len() < RECORD_HEADER {
            if is_last {
                return Ending::Torn(pos);
            }
            return Ending::Corrupt(pos, "incomplete record header");
        }
        let word = |i: usize| u32::from_le_bytes([rest[i], rest[i + 1], rest[i + 2], rest[i + 3]]);
        if crc32fast::hash(&rest[..8]) != word(8) {
            return Ending::Corrupt(pos, "damaged record header");
        }
        let len = word(0) as usize;
        if len > MAX_RECORD {
            return Ending::Corrupt(pos, "record length out of range");
        }
        if RECORD_HEADER + len > rest.len() {
            if is_last {
                return Ending::Torn(pos);
            }
            return Ending::Corrupt(pos, "record cut short");
        }
        let payload = &rest[RECORD_HEADER..RECORD_HEADER + len];
        let at_end = pos + RECORD_HEADER + len == data.len();
        if crc32fast::hash(payload) != word(4) {
            // A crash can leave the last page of the file zero-filled.
            if is_last && at_end {
                return Ending::Torn(pos);
            }
            return Ending::Corrupt(pos, "checksum mismatch");
        }
        payloads.push((pos, payload));
        pos += RECORD_HEADER + len;
    }
    Ending::Complete
}

/// Decodes the records on every core, in order, each through `prepare`; the first that
/// fails, with its offset.
fn decode_records<T: Send>(
    payloads: &[(usize, &[u8])],
    prepare: impl Fn(Change<'static>) -> T + Sync,
) -> Result<Vec<T>, (usize, String)> {
    let runs = parallel::in_runs(
        payloads,
        |(_, payload)| payload.len(),
        |_, run| {
            run.iter()
                .map(|&(pos, payload)| {
                    decode_change(payload)
                        .map(&prepare)
                        .map_err(|e| (pos, e.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()
        },
    );
    let mut changes = Vec::with_capacity(payloads.len());
    for run in runs {
        changes.extend(run?);
    }
    Ok(changes)
}

fn torn<T>(changes: Vec<T>, pos: usize) -> SegmentContents<T> {
    SegmentContents {
        changes,
        valid_len: pos as u64,
        torn_tail: true,
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// Fsyncs a directory so that a created or renamed entry survives a crash.
pub fn sync_dir(path: &Path) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    File::open(dir)?.sync_all()
}

struct Segment {
    file: File,
    len: u64,
}

/// State shared by the appender and the sync thread.
struct Shared {
    pending: Mutex<Pending>,
    wake: Condvar,
    status: watch::Sender<SyncStatus>,
}

#[derive(Default)]
struct Pending {
    /// Highest sequence number appended.
    written: u64,
    /// File to fsync for records up to `written`.
    file: Option<Arc<File>>,
    stop: bool,
}

/// The log, as the store's [`Journal`].
pub struct Wal {
    base: PathBuf,
    /// The open segment; `None` until the first append after opening or rotating.
    segment: Option<Segment>,
    /// Number of the open segment, or of the one the next append creates.
    number: u64,
    seq: u64,
    shared: Arc<Shared>,
    bytes_since_cut: u64,
    fsync: FsyncMode,
    scratch: Vec<u8>,
    /// [`MAX_RECORD`], lowered by tests.
    max_record: usize,
}

impl Wal {
    /// Prepares the log to continue with segment `number` (created with its first record)
    /// and starts the sync thread.
    ///
    /// # Errors
    /// When the sync thread cannot be started.
    pub fn open(base: &Path, number: u64, fsync: FsyncMode) -> io::Result<Wal> {
        let (status, _) = watch::channel(SyncStatus::default());
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending::default()),
            wake: Condvar::new(),
            status,
        });
        let thread_shared = shared.clone();
        std::thread::Builder::new()
            .name("wal-sync".into())
            .spawn(move || sync_loop(&thread_shared, fsync))?;
        Ok(Wal {
            base: base.to_path_buf(),
            segment: None,
            number,
            seq: 0,
            shared,
            bytes_since_cut: 0,
            fsync,
            scratch: Vec::new(),
            max_record: MAX_RECORD,
        })
    }

    /// Lowers the record limit, so that tests need no gigabyte-sized changes.
    #[cfg(test)]
    pub fn set_max_record(&mut self, max_record: usize) {
        self.max_record = max_record;
    }

    /// A receiver of the durability status.
    pub fn status(&self) -> watch::Receiver<SyncStatus> {
        self.shared.status.subscribe()
    }

    /// Bytes appended since the last rotation.
    pub fn bytes_since_cut(&self) -> u64 {
        self.bytes_since_cut
    }

    /// Closes the current segment (fsynced) and continues in a new one; returns the new
    /// segment's number, the first one a snapshot taken now does not cover.
    ///
    /// # Errors
    /// When the old segment cannot be synced or the new one created.
    pub fn rotate(&mut self) -> io::Result<u64> {
        if let Some(segment) = self.segment.take() {
            segment.file.sync_data()?;
            self.number += 1;
        }
        self.bytes_since_cut = 0;
        // Everything written so far is durable now.
        let written = lock(&self.shared.pending).written;
        self.shared
            .status
            .send_modify(|s| s.synced = s.synced.max(written));
        Ok(self.number)
    }

    /// Stops the sync thread after a last fsync.
    pub fn close(&self) {
        let mut pending = lock(&self.shared.pending);
        pending.stop = true;
        self.shared.wake.notify_all();
    }
}

impl Journal for Wal {
    fn append(&mut self, change: &Change<'_>) -> io::Result<u64> {
        self.scratch.clear();
        self.scratch.extend_from_slice(&[0; RECORD_HEADER]);
        encode_change(&mut self.scratch, change);
        let payload_len = self.scratch.len() - RECORD_HEADER;
        if payload_len > self.max_record {
            // Do not keep a buffer of that size around for the next, normal record.
            self.scratch = Vec::new();
            return Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                format!(
                    "the change takes {payload_len} bytes in the log, more than its record limit of {} bytes",
                    self.max_record
                ),
            ));
        }
        let crc = crc32fast::hash(&self.scratch[RECORD_HEADER..]);
        self.scratch[..4].copy_from_slice(&(payload_len as u32).to_le_bytes());
        self.scratch[4..8].copy_from_slice(&crc.to_le_bytes());
        let header_crc = crc32fast::hash(&self.scratch[..8]);
        self.scratch[8..12].copy_from_slice(&header_crc.to_le_bytes());
        if self.segment.is_none() {
            let segment = create_segment(&self.base, self.number)?;
            lock(&self.shared.pending).file = Some(Arc::new(segment.file.try_clone()?));
            self.segment = Some(segment);
        }
        let Some(segment) = self.segment.as_mut() else {
            return Err(io::Error::other("no log segment"));
        };
        if let Err(e) = segment.file.write_all(&self.scratch) {
            // Cut a partial record off so that later records follow a valid one.
            let _ = segment.file.set_len(segment.len);
            let _ = segment.file.seek(SeekFrom::Start(segment.len));
            return Err(e);
        }
        segment.len += self.scratch.len() as u64;
        self.bytes_since_cut += self.scratch.len() as u64;
        self.seq += 1;
        let mut pending = lock(&self.shared.pending);
        pending.written = self.seq;
        drop(pending);
        if self.fsync == FsyncMode::Always {
            self.shared.wake.notify_one();
        }
        Ok(self.seq)
    }

    fn as_any(&mut self) -> &mut dyn std::any::Any {
        self
    }
}

fn lock(mutex: &Mutex<Pending>) -> std::sync::MutexGuard<'_, Pending> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn create_segment(base: &Path, number: u64) -> io::Result<Segment> {
    let path = segment_path(base, number);
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)?;
    if let Err(e) = file
        .write_all(SEGMENT_MAGIC)
        .and_then(|()| file.sync_data())
    {
        drop(file);
        let _ = fs::remove_file(&path);
        return Err(e);
    }
    sync_dir(&path)?;
    Ok(Segment {
        file,
        len: SEGMENT_MAGIC.len() as u64,
    })
}

/// Waits for appends and fsyncs them, all that arrived meanwhile with one call.
fn sync_loop(shared: &Shared, fsync: FsyncMode) {
    let interval = Duration::from_secs(1);
    loop {
        let (target, file, stop) = {
            let mut pending = lock(&shared.pending);
            let synced = shared.status.borrow().synced;
            while pending.written <= synced && !pending.stop {
                let (guard, _) = shared
                    .wake
                    .wait_timeout(pending, interval)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                pending = guard;
                if fsync == FsyncMode::Interval {
                    break;
                }
            }
            (pending.written, pending.file.clone(), pending.stop)
        };
        if let Some(file) = file {
            if target > shared.status.borrow().synced {
                match file.sync_data() {
                    Ok(()) => shared.status.send_modify(|s| {
                        s.synced = s.synced.max(target);
                        s.failed = None;
                    }),
                    Err(e) => {
                        tracing::error!(err = %e, "cannot fsync the write-ahead log");
                        shared
                            .status
                            .send_modify(|s| s.failed = Some((target, e.to_string())));
                        std::thread::sleep(Duration::from_millis(200));
                    }
                }
            }
        }
        if stop {
            return;
        }
    }
}
