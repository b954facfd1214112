//! The snapshot: the whole store at one cut of the log, written atomically (temporary
//! file in the same directory, fsync, rename over the target, fsync of the directory).
//! Replication stores the same encoding in Redis.
//!
//! Layout (little-endian): magic `PGWSNAP` + version byte 1; `u64` position (the number
//! of the first log segment the snapshot does not cover, or the last stream entry it
//! does); `u64` group count; per group a `u32` length and a group block (see
//! [`super::codec`]); last, a `u32` CRC-32 of everything before it.
//!
//! Replication writes large stores as chunks instead ([`Chunks`], [`decode_chunk`]), each a
//! whole number of group blocks: magic `PGWCHNK` + version byte 1; `u64` generation; `u32`
//! index; `u64` group count; the groups as above; a `u32` CRC-32.

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
        append_group(&mut data, &mut block, group);
    }
    let crc = crc32fast::hash(&data);
    data.extend_from_slice(&crc.to_le_bytes());
    data
}

/// Appends one group as its `u32` length and block (`block` is scratch space).
fn append_group(data: &mut Vec<u8>, block: &mut Vec<u8>, group: &GroupView) {
    block.clear();
    encode_group(block, group);
    data.extend_from_slice(&(block.len() as u32).to_le_bytes());
    data.extend_from_slice(block);
}

/// First bytes of a snapshot chunk: name and format version 1.
pub const CHUNK_MAGIC: &[u8; 8] = b"PGWCHNK\x01";
/// Bytes of a chunk before its groups: magic, generation, index, group count.
const CHUNK_HEADER: usize = 8 + 8 + 4 + 8;

/// The groups encoded as chunks of about `target` bytes each (whole groups: a group larger
/// than `target` makes a chunk of its own), one at a time, so that a snapshot is never
/// encoded whole.
pub struct Chunks {
    groups: std::vec::IntoIter<GroupView>,
    generation: u64,
    target: usize,
    index: u32,
    block: Vec<u8>,
}

impl Chunks {
    /// The chunks of `groups` for the snapshot generation `generation`.
    pub fn new(groups: Vec<GroupView>, generation: u64, target: usize) -> Chunks {
        Chunks {
            groups: groups.into_iter(),
            generation,
            target: target.max(1),
            index: 0,
            block: Vec::new(),
        }
    }
}

impl Iterator for Chunks {
    type Item = Vec<u8>;

    /// The next chunk; at least one, also for no groups.
    fn next(&mut self) -> Option<Vec<u8>> {
        let mut group = self.groups.next();
        if group.is_none() && self.index > 0 {
            return None;
        }
        let mut data = Vec::with_capacity(self.target.min(1 << 24) + CHUNK_HEADER + 4);
        data.extend_from_slice(CHUNK_MAGIC);
        data.extend_from_slice(&self.generation.to_le_bytes());
        data.extend_from_slice(&self.index.to_le_bytes());
        data.extend_from_slice(&0u64.to_le_bytes());
        let mut count = 0u64;
        while let Some(view) = group.take() {
            append_group(&mut data, &mut self.block, &view);
            count += 1;
            if data.len() < self.target {
                group = self.groups.next();
            }
        }
        data[20..CHUNK_HEADER].copy_from_slice(&count.to_le_bytes());
        let crc = crc32fast::hash(&data);
        data.extend_from_slice(&crc.to_le_bytes());
        self.index += 1;
        Some(data)
    }
}

/// Decodes chunk `index` of the snapshot generation `generation`.
///
/// # Errors
/// Data that is not that chunk, damaged or of another format, with the reason.
pub fn decode_chunk(data: &[u8], generation: u64, index: u32) -> io::Result<Vec<GroupView>> {
    if data.len() < CHUNK_HEADER + 4 || &data[..CHUNK_MAGIC.len()] != CHUNK_MAGIC {
        return Err(invalid(
            "not a snapshot chunk of this gateway's format (version 1)",
        ));
    }
    let body = checked_body(data)?;
    if read_u64(body, 8) != generation || read_u32(body, 16) != index {
        return Err(invalid(
            "a chunk of another snapshot generation or position",
        ));
    }
    decode_groups(body, CHUNK_HEADER, read_u64(body, 20))
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
    if data.len() < SNAPSHOT_MAGIC.len() + 20 || &data[..SNAPSHOT_MAGIC.len()] != SNAPSHOT_MAGIC {
        return Err(invalid(
            "not a snapshot of this gateway's format (version 1)",
        ));
    }
    let body = checked_body(data)?;
    let position = read_u64(body, 8);
    let groups = decode_groups(body, 24, read_u64(body, 16))?;
    Ok(Snapshot { position, groups })
}

fn invalid(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.to_string())
}

/// `data` without its trailing CRC-32, once that matches (`data` holds at least 4 bytes).
fn checked_body(data: &[u8]) -> io::Result<&[u8]> {
    let (body, trailer) = data.split_at(data.len() - 4);
    if crc32fast::hash(body) != read_u32(trailer, 0) {
        return Err(invalid("checksum mismatch: the file is damaged"));
    }
    Ok(body)
}

/// The little-endian numbers at `at` (the caller checked the length).
fn read_u64(data: &[u8], at: usize) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&data[at..at + 8]);
    u64::from_le_bytes(bytes)
}

fn read_u32(data: &[u8], at: usize) -> u32 {
    let mut bytes = [0u8; 4];
    bytes.copy_from_slice(&data[at..at + 4]);
    u32::from_le_bytes(bytes)
}

/// The `count` groups from `pos` to the end of `body`.
fn decode_groups(body: &[u8], mut pos: usize, count: u64) -> io::Result<Vec<GroupView>> {
    let mut groups = Vec::with_capacity(count.min(1 << 20) as usize);
    for i in 0..count {
        if pos + 4 > body.len() {
            return Err(invalid("truncated"));
        }
        let len = read_u32(body, pos) as usize;
        pos += 4;
        let block = body
            .get(pos..pos.saturating_add(len))
            .ok_or_else(|| invalid("truncated"))?;
        let group = decode_group(block).map_err(|e| invalid(&format!("group {i}: {e}")))?;
        groups.push(group);
        pos += len;
    }
    if pos != body.len() {
        return Err(invalid("trailing bytes"));
    }
    Ok(groups)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{GroupingKey, Label};

    fn groups(count: usize) -> Vec<GroupView> {
        (0..count)
            .map(|i| GroupView {
                key: std::sync::Arc::new(GroupingKey::new(vec![Label::new(
                    "job",
                    format!("job{i}"),
                )])),
                families: Vec::new(),
                push_time: i as f64,
                failure_time: 0.0,
                created: 1.0,
                ttl: None,
                keys: Vec::new(),
            })
            .collect()
    }

    fn jobs(views: &[GroupView]) -> Vec<String> {
        views.iter().map(|v| format!("{:?}", v.key)).collect()
    }

    #[test]
    fn chunks_hold_whole_groups_in_order_and_decode_back() {
        let all = groups(50);
        let chunks: Vec<Vec<u8>> = Chunks::new(all.clone(), 7, 100).collect();
        assert!(chunks.len() > 5, "{} chunks", chunks.len());
        let mut decoded = Vec::new();
        for (index, chunk) in chunks.iter().enumerate() {
            decoded.extend(decode_chunk(chunk, 7, index as u32).unwrap());
        }
        assert_eq!(jobs(&decoded), jobs(&all));
        // One chunk when they fit; one (empty) chunk for no groups.
        assert_eq!(Chunks::new(all.clone(), 7, 1 << 20).count(), 1);
        let empty: Vec<Vec<u8>> = Chunks::new(Vec::new(), 7, 100).collect();
        assert_eq!(empty.len(), 1);
        assert!(decode_chunk(&empty[0], 7, 0).unwrap().is_empty());
    }

    #[test]
    fn a_chunk_of_another_generation_position_or_damaged_is_refused() {
        let chunk = Chunks::new(groups(3), 7, 1 << 20).next().unwrap();
        assert!(decode_chunk(&chunk, 8, 0).is_err());
        assert!(decode_chunk(&chunk, 7, 1).is_err());
        let mut damaged = chunk.clone();
        damaged[CHUNK_HEADER + 2] ^= 1;
        assert!(decode_chunk(&damaged, 7, 0).is_err());
        assert!(decode_chunk(&chunk[..10], 7, 0).is_err());
        assert!(decode_chunk(&encode(1, &groups(1)), 7, 0).is_err());
    }
}
