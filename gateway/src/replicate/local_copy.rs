//! The local copy (`--persistence.file` in redis mode): the applied state and its stream
//! position in a file, so that a restarted replica serves its last state at once.
//!
//! Layout: magic `PGWCOPY` + version byte 2; `u32` length and the origin field of the last
//! applied entry (empty when unknown), which lets the replica check that Redis still has
//! the same history; `u32` length and the history's epoch (empty when unknown; version 1
//! has no epoch); then the snapshot encoding of [`crate::persist::snapshot`] with the
//! stream position. The magic keeps a memory-mode persistence file from being taken for a
//! local copy (its position counts log segments, not stream entries).

use std::io;
use std::path::Path;
use std::sync::Arc;

use super::config::LocalCopy;
use super::{AppliedState, Replicator};
use crate::persist::snapshot;
use crate::store::GroupView;

/// First bytes of a local copy: name and format version 2 (with the epoch).
const COPY_MAGIC: &[u8; 8] = b"PGWCOPY\x02";
/// The same of version 1 (no epoch), still read.
const COPY_MAGIC_V1: &[u8; 8] = b"PGWCOPY\x01";

/// What a local copy holds.
struct Copy {
    origin: String,
    epoch: String,
    state: snapshot::Snapshot,
}

impl Replicator {
    /// Starts from the local copy, when there is a readable one; Redis has the last word.
    pub(super) fn restore_local_copy(&self, file: &Path) {
        match read(file) {
            Ok(Some(Copy {
                origin,
                epoch,
                state,
            })) => {
                let mut applied = self.applied.lock();
                let groups = state.groups.len();
                let position = state.position;
                self.store.replace_all(state.groups);
                *applied = position;
                *self.last_origin.lock() = (!origin.is_empty()).then_some(origin);
                *self.epoch.lock() = (!epoch.is_empty()).then_some(epoch);
                self.metrics.applied.set(position as i64);
                tracing::info!(file = %file.display(), position, groups, "restored the local copy; catching up from Redis");
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(file = %file.display(), err = %e, "ignoring the unreadable local copy; starting from Redis");
            }
        }
    }

    /// Rewrites the local copy every interval when something was applied since.
    pub(super) async fn run_local_copies(self: Arc<Self>, copy: LocalCopy) {
        let mut ticker = tokio::time::interval(copy.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut written = *self.applied.lock();
        loop {
            ticker.tick().await;
            if *self.applied.lock() != written {
                if let Some(position) = self.clone().write_local_copy(&copy).await {
                    written = position;
                }
            }
        }
    }

    /// Writes the local copy once more at a clean stop, so that a restart starts from the
    /// latest state rather than from the last tick's.
    pub async fn shutdown(self: Arc<Self>) {
        if let Some(copy) = self.config.local_copy.clone() {
            self.write_local_copy(&copy).await;
        }
    }

    /// Writes the applied state and its position; returns the position when written.
    async fn write_local_copy(self: Arc<Self>, copy: &LocalCopy) -> Option<u64> {
        let AppliedState {
            position,
            origin,
            epoch,
            groups,
        } = self.applied_state();
        let origin = origin.unwrap_or_default();
        let epoch = epoch.unwrap_or_default();
        let file = copy.file.clone();
        let replicator = self.clone();
        let write = move || {
            // One writer at a time: the timer's and the stop's share the temporary file.
            let _writing = replicator.copy_writer.lock();
            write(&file, &origin, &epoch, position, &groups)
        };
        match tokio::task::spawn_blocking(write).await {
            Ok(Ok(())) => Some(position),
            Ok(Err(e)) => {
                tracing::error!(file = %copy.file.display(), err = %e, "cannot write the local copy");
                None
            }
            Err(e) => {
                tracing::error!(err = %e, "local copy task failed");
                None
            }
        }
    }
}

fn write(
    file: &Path,
    origin: &str,
    epoch: &str,
    position: u64,
    groups: &[GroupView],
) -> io::Result<()> {
    let mut data = Vec::with_capacity(COPY_MAGIC.len() + 8 + origin.len() + epoch.len());
    data.extend_from_slice(COPY_MAGIC);
    for text in [origin, epoch] {
        let len = u32::try_from(text.len()).map_err(io::Error::other)?;
        data.extend_from_slice(&len.to_le_bytes());
        data.extend_from_slice(text.as_bytes());
    }
    data.extend_from_slice(&snapshot::encode(position, groups)?);
    snapshot::write_atomically(file, &data)
}

/// The local copy; `None` when there is no file.
fn read(file: &Path) -> io::Result<Option<Copy>> {
    let data = match std::fs::read(file) {
        Ok(data) => data,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let not_a_copy = || invalid("not a local copy of redis mode (a memory-mode persistence file?)");
    let (with_epoch, rest) = match data.split_first_chunk::<8>() {
        Some((magic, rest)) if magic == COPY_MAGIC => (true, rest),
        Some((magic, rest)) if magic == COPY_MAGIC_V1 => (false, rest),
        _ => return Err(not_a_copy()),
    };
    let (origin, rest) = text_field(rest, "origin")?;
    let (epoch, rest) = if with_epoch {
        text_field(rest, "epoch")?
    } else {
        (String::new(), rest)
    };
    Ok(Some(Copy {
        origin,
        epoch,
        state: snapshot::decode(rest)?,
    }))
}

/// A `u32` length and that many bytes of UTF-8, and what follows.
fn text_field<'a>(data: &'a [u8], what: &str) -> io::Result<(String, &'a [u8])> {
    let (len, rest) = data
        .split_first_chunk::<4>()
        .ok_or_else(|| invalid("truncated"))?;
    let len = u32::from_le_bytes(*len) as usize;
    if rest.len() < len {
        return Err(invalid("truncated"));
    }
    let (text, rest) = rest.split_at(len);
    let text =
        String::from_utf8(text.to_vec()).map_err(|_| invalid(&format!("{what} is not UTF-8")))?;
    Ok((text, rest))
}

fn invalid(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_copy_reads_back_and_a_persistence_file_is_refused() {
        let dir = std::env::temp_dir().join(format!("pgw-copy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("copy");
        write(&file, "replica-1/7", "replica-0", 42, &[]).expect("write");
        let copy = read(&file).expect("read").expect("present");
        assert_eq!(
            (
                copy.origin.as_str(),
                copy.epoch.as_str(),
                copy.state.position
            ),
            ("replica-1/7", "replica-0", 42)
        );
        // Version 1, without the epoch.
        let mut v1 = COPY_MAGIC_V1.to_vec();
        v1.extend_from_slice(&3u32.to_le_bytes());
        v1.extend_from_slice(b"r/1");
        v1.extend_from_slice(&snapshot::encode(5, &[]).unwrap());
        std::fs::write(&file, &v1).expect("write v1");
        let copy = read(&file).expect("read v1").expect("present");
        assert_eq!((copy.origin.as_str(), copy.epoch.as_str()), ("r/1", ""));
        snapshot::write(&file, 3, &[]).expect("memory-mode file");
        assert!(
            read(&file).is_err(),
            "a memory-mode snapshot is no local copy"
        );
        std::fs::write(&file, b"PGWCOPY\x02\xff\xff\xff\xff").expect("write");
        assert!(read(&file).is_err(), "a length past the end is refused");
        assert!(read(&dir.join("absent")).expect("no error").is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
