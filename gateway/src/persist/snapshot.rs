//! The snapshot: the whole store at one cut of the log, written atomically (temporary
//! file in the same directory, fsync, rename over the target, fsync of the directory).
//! Replication stores the same encoding in Redis.
//!
//! Layout (little-endian): magic `PGWSNAP` + version byte 1; `u64` position (the number
//! of the first log segment the snapshot does not cover, or the last stream entry it
//! does); `u64` group count; per group a `u32` length and a group block (see
//! [`super::codec`]); last, a `u32` CRC-32 of everything before it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use super::codec::{decode_group, encode_group};
use super::wal::sync_dir;
use crate::store::GroupView;

/// First bytes of a snapshot: name and format version 1.
pub const SNAPSHOT_MAGIC: &[u8; 8] = b"PGWSNAP\x01";

/// A decoded snapshot.
#[derive(Debug)]
pub struct Snapshot {
    /// Where to continue: the first log segment to replay after it, or the last stream
    /// entry it covers.
    pub position: u64,
    /// The groups.
    pub groups: Vec<GroupView>,
}

/// Writes a snapshot atomically.
///
/// # Errors
/// Any I/O error; the previous snapshot is then untouched.
pub fn write(path: &Path, next_segment: u64, groups: &[GroupView]) -> io::Result<()> {
    write_atomically(path, &encode(next_segment, groups))
}

/// Replaces `path` with `data` atomically: a temporary file in the same directory,
/// fsync, rename over the target, fsync of the directory.
///
/// # Errors
/// Any I/O error; the previous file is then untouched.
pub fn write_atomically(path: &Path, data: &[u8]) -> io::Result<()> {
    let temporary = temporary_path(path);
    let result = (|| {
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&temporary)?;
        file.write_all(data)?;
        file.sync_all()?;
        fs::rename(&temporary, path)?;
        sync_dir(path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    result
}

/// Encodes the groups at `position` in the snapshot layout.
pub fn encode(position: u64, groups: &[GroupView]) -> Vec<u8> {
    let mut data = Vec::with_capacity(1 << 16);
    data.extend_from_slice(SNAPSHOT_MAGIC);
    data.extend_from_slice(&position.to_le_bytes());
    data.extend_from_slice(&(groups.len() as u64).to_le_bytes());
    let mut block = Vec::new();
    for group in groups {
        block.clear();
        encode_group(&mut block, group);
        data.extend_from_slice(&(block.len() as u32).to_le_bytes());
        data.extend_from_slice(&block);
    }
    let crc = crc32fast::hash(&data);
    data.extend_from_slice(&crc.to_le_bytes());
    data
}

fn temporary_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".tmp");
    PathBuf::from(name)
}

/// Reads a snapshot; `None` when there is none.
///
/// # Errors
/// An unreadable file, or a file that is not a valid snapshot of this version, with the
/// reason.
pub fn read(path: &Path) -> io::Result<Option<Snapshot>> {
    let mut data = Vec::new();
    match File::open(path) {
        Ok(mut file) => file.read_to_end(&mut data)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    decode(&data).map(Some)
}

/// Decodes a snapshot.
///
/// # Errors
/// Data that is not a valid snapshot of this version, with the reason.
pub fn decode(data: &[u8]) -> io::Result<Snapshot> {
    let invalid = |why: &str| io::Error::new(io::ErrorKind::InvalidData, why.to_string());
    if data.len() < SNAPSHOT_MAGIC.len() + 20 || &data[..SNAPSHOT_MAGIC.len()] != SNAPSHOT_MAGIC {
        return Err(invalid(
            "not a snapshot of this gateway's format (version 1)",
        ));
    }
    let (body, trailer) = data.split_at(data.len() - 4);
    let crc = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
    if crc32fast::hash(body) != crc {
        return Err(invalid("checksum mismatch: the file is damaged"));
    }
    let read_u64 = |at: usize| -> u64 {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&body[at..at + 8]);
        u64::from_le_bytes(bytes)
    };
    let position = read_u64(8);
    let count = read_u64(16);
    let mut pos = 24;
    let mut groups = Vec::with_capacity(count.min(1 << 20) as usize);
    for i in 0..count {
        if pos + 4 > body.len() {
            return Err(invalid("truncated"));
        }
        let len =
            u32::from_le_bytes([body[pos], body[pos + 1], body[pos + 2], body[pos + 3]]) as usize;
        pos += 4;
        let block = body
            .get(pos..pos + len)
            .ok_or_else(|| invalid("truncated"))?;
        let group = decode_group(block).map_err(|e| invalid(&format!("group {i}: {e}")))?;
        groups.push(group);
        pos += len;
    }
    if pos != body.len() {
        return Err(invalid("trailing bytes"));
    }
    Ok(Snapshot { position, groups })
}
