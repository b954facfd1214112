//! The snapshot: the whole store at one cut of the log, written atomically (temporary
//! file in the same directory, fsync, rename over the target, fsync of the directory).
//! Replication stores the same encoding in Redis.
//!
//! Layout (little-endian): magic `PGWSNAP` + version byte 1; `u64` position (the number
//! of the first log segment the snapshot does not cover, or the last stream entry it
//! does); `u64` group count; per group a `u32` length and a group block (see
//! [`super::codec`]); last, a `u32` CRC-32 of everything before it. The lengths let a
//! reader find every block before decoding any, so that a large snapshot is decoded (and
//! encoded) on all cores.
//!
//! Replication writes large stores as chunks instead ([`Chunks`], [`decode_chunk`]), each a
//! whole number of group blocks: magic `PGWCHNK` + version byte 1; `u64` generation; `u32`
//! index; `u64` group count; the groups as above; a `u32` CRC-32.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use super::codec::{decode_group, encode_group};
use super::parallel;
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
    write_atomically(path, &encode(next_segment, groups)?)
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

/// Encodes the groups at `position` in the snapshot layout, on every core for a large
/// store (each thread encodes a run of groups; the runs are joined in order).
///
/// # Errors
/// A group too large for a block (see [`append_group`]).
pub fn encode(position: u64, groups: &[GroupView]) -> io::Result<Vec<u8>> {
    let runs = parallel::in_runs(groups, series_weight, |_, run| {
        let mut data = Vec::new();
        let mut block = Vec::new();
        for group in run {
            append_group(&mut data, &mut block, group)?;
        }
        Ok::<_, io::Error>(data)
    });
    let runs = runs.into_iter().collect::<io::Result<Vec<_>>>()?;
    let body: usize = runs.iter().map(Vec::len).sum();
    let mut data = Vec::with_capacity(SNAPSHOT_MAGIC.len() + 16 + body + 4);
    data.extend_from_slice(SNAPSHOT_MAGIC);
    data.extend_from_slice(&position.to_le_bytes());
    data.extend_from_slice(&(groups.len() as u64).to_le_bytes());
    for run in runs {
        data.extend_from_slice(&run);
    }
    let crc = crc32fast::hash(&data);
    data.extend_from_slice(&crc.to_le_bytes());
    Ok(data)
}

/// About how much work a group is to encode: its series (and one for the group itself).
fn series_weight(group: &GroupView) -> usize {
    1 + group
        .families
        .iter()
        .map(|f| f.series().size_hint().0)
        .sum::<usize>()
}

/// Appends one group as its `u32` length and block (`block` is scratch space).
///
/// # Errors
/// A group whose block would not fit that length (4 GiB): the snapshot is not written,
/// rather than written with a length that wrapped (the log keeps what it would hold).
fn append_group(data: &mut Vec<u8>, block: &mut Vec<u8>, group: &GroupView) -> io::Result<()> {
    block.clear();
    encode_group(block, group);
    let len = block_length(block.len(), group)?;
    data.extend_from_slice(&len.to_le_bytes());
    data.extend_from_slice(block);
    Ok(())
}

/// A block's length as the `u32` a snapshot stores.
fn block_length(len: usize, group: &GroupView) -> io::Result<u32> {
    u32::try_from(len).map_err(|_| {
        io::Error::other(format!(
            "group {} encodes to {len} bytes, more than a snapshot block holds (4 GiB)",
            group.key
        ))
    })
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
    type Item = io::Result<Vec<u8>>;

    /// The next chunk; at least one, also for no groups. A group too large for a block
    /// (see [`append_group`]) is an error, after which there are no more chunks.
    fn next(&mut self) -> Option<io::Result<Vec<u8>>> {
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
            if let Err(e) = append_group(&mut data, &mut self.block, &view) {
                self.groups = Vec::new().into_iter();
                self.index = self.index.max(1);
                return Some(Err(e));
            }
            count += 1;
            if data.len() < self.target {
                group = self.groups.next();
            }
        }
        data[20..CHUNK_HEADER].copy_from_slice(&count.to_le_bytes());
        let crc = crc32fast::hash(&data);
        data.extend_from_slice(&crc.to_le_bytes());
        self.index += 1;
        Some(Ok(data))
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
    let blocks = group_blocks(body, CHUNK_HEADER, read_u64(body, 20))?;
    decode_blocks(&blocks, |view| view)
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
    let (position, blocks) = split(data)?;
    let groups = decode_blocks(&blocks, |view| view)?;
    Ok(Snapshot { position, groups })
}

/// Decodes a snapshot and hands its groups to `link` in file order, a run of groups at a
/// time, while later runs are still being decoded on the other cores. Each group first goes
/// through `prepare` on the thread that decoded it (restore's indexing work, in parallel
/// too); `link` also gets the run's share of the file, for an estimate of what is to come.
/// Returns the snapshot's position.
///
/// # Errors
/// Data that is not a valid snapshot of this version, with the reason; a damaged group is
/// named by its index. The runs before it have been handed to `link` already.
pub fn decode_into<T: Send>(
    data: &[u8],
    prepare: impl Fn(GroupView) -> T + Sync,
    mut link: impl FnMut(Vec<T>, f64),
) -> io::Result<u64> {
    let (position, blocks) = split(data)?;
    let total = blocks.iter().map(|b| b.len()).sum::<usize>().max(1) as f64;
    let mut failed = None;
    parallel::in_runs_to(
        &blocks,
        |block| block.len(),
        |first, run| decode_run(first, run, &prepare),
        |decoded, bytes| match decoded {
            Ok(groups) if failed.is_none() => link(groups, bytes as f64 / total),
            Ok(_) => {}
            Err(e) => {
                failed.get_or_insert(e);
            }
        },
    );
    failed.map_or(Ok(position), Err)
}

/// A snapshot's position and its group blocks, once its header and checksum are right.
fn split(data: &[u8]) -> io::Result<(u64, Vec<&[u8]>)> {
    if data.len() < SNAPSHOT_MAGIC.len() + 20 || &data[..SNAPSHOT_MAGIC.len()] != SNAPSHOT_MAGIC {
        return Err(invalid(
            "not a snapshot of this gateway's format (version 1)",
        ));
    }
    let body = checked_body(data)?;
    let position = read_u64(body, 8);
    Ok((position, group_blocks(body, 24, read_u64(body, 16))?))
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

/// The `count` group blocks from `pos` to the end of `body`, found by their lengths alone
/// (nothing decoded yet), so that they can be decoded apart.
fn group_blocks(body: &[u8], mut pos: usize, count: u64) -> io::Result<Vec<&[u8]>> {
    // Every block takes its 4-byte length at least: a count beyond that is damage, not a
    // reason to allocate.
    let mut blocks = Vec::with_capacity(count.min((body.len() / 4) as u64) as usize);
    for i in 0..count {
        let truncated = || invalid(&format!("group {i} of {count}: truncated"));
        if pos + 4 > body.len() {
            return Err(truncated());
        }
        let len = read_u32(body, pos) as usize;
        pos += 4;
        let block = pos
            .checked_add(len)
            .and_then(|end| body.get(pos..end))
            .ok_or_else(truncated)?;
        blocks.push(block);
        pos += len;
    }
    if pos != body.len() {
        return Err(invalid("trailing bytes"));
    }
    Ok(blocks)
}

/// Decodes `blocks` on every core (runs of about equal size), in order; the first damaged
/// block in file order is the error.
fn decode_blocks<T: Send>(
    blocks: &[&[u8]],
    prepare: impl Fn(GroupView) -> T + Sync,
) -> io::Result<Vec<T>> {
    let runs = parallel::in_runs(
        blocks,
        |block| block.len(),
        |first, run| decode_run(first, run, &prepare),
    );
    let mut groups = Vec::with_capacity(blocks.len());
    for run in runs {
        groups.extend(run?);
    }
    Ok(groups)
}

/// Decodes the blocks of groups `first..` in order, stopping at the first damaged one.
fn decode_run<T>(
    first: usize,
    run: &[&[u8]],
    prepare: impl Fn(GroupView) -> T,
) -> io::Result<Vec<T>> {
    let mut groups = Vec::with_capacity(run.len());
    for (i, block) in run.iter().enumerate() {
        let group =
            decode_group(block).map_err(|e| invalid(&format!("group {}: {e}", first + i)))?;
        groups.push(prepare(group));
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
        let chunks: Vec<Vec<u8>> = Chunks::new(all.clone(), 7, 100)
            .map(Result::unwrap)
            .collect();
        assert!(chunks.len() > 5, "{} chunks", chunks.len());
        let mut decoded = Vec::new();
        for (index, chunk) in chunks.iter().enumerate() {
            decoded.extend(decode_chunk(chunk, 7, index as u32).unwrap());
        }
        assert_eq!(jobs(&decoded), jobs(&all));
        // One chunk when they fit; one (empty) chunk for no groups.
        assert_eq!(Chunks::new(all.clone(), 7, 1 << 20).count(), 1);
        let empty: Vec<Vec<u8>> = Chunks::new(Vec::new(), 7, 100)
            .map(Result::unwrap)
            .collect();
        assert_eq!(empty.len(), 1);
        assert!(decode_chunk(&empty[0], 7, 0).unwrap().is_empty());
    }

    #[test]
    fn a_chunk_of_another_generation_position_or_damaged_is_refused() {
        let chunk = Chunks::new(groups(3), 7, 1 << 20).next().unwrap().unwrap();
        assert!(decode_chunk(&chunk, 8, 0).is_err());
        assert!(decode_chunk(&chunk, 7, 1).is_err());
        let mut damaged = chunk.clone();
        damaged[CHUNK_HEADER + 2] ^= 1;
        assert!(decode_chunk(&damaged, 7, 0).is_err());
        assert!(decode_chunk(&chunk[..10], 7, 0).is_err());
        assert!(decode_chunk(&encode(1, &groups(1)).unwrap(), 7, 0).is_err());
    }

    /// `count` groups of `series` gauges each: large enough, from a few groups on, for the
    /// decoder to split the file between threads.
    fn filled(count: usize, series: usize) -> Vec<GroupView> {
        use crate::model::{Metric, MetricFamily, MetricType, Value};
        use crate::store::StoredFamily;
        let mut views = groups(count);
        for view in &mut views {
            let family = MetricFamily {
                name: "bench_load".into(),
                help: None,
                metric_type: MetricType::Gauge,
                metrics: (0..series)
                    .map(|j| {
                        let labels = vec![Label::new("series", j.to_string())];
                        Metric::new(labels, Value::Gauge(j as f64))
                    })
                    .collect(),
            };
            let stored = StoredFamily::new(family, 2.0, view.key.clone());
            view.families.push(std::sync::Arc::new(stored));
        }
        views
    }

    /// The body's checksum made right again, so that damage reaches the group decoder.
    fn resealed(mut data: Vec<u8>) -> Vec<u8> {
        data.truncate(data.len() - 4);
        let crc = crc32fast::hash(&data);
        data.extend_from_slice(&crc.to_le_bytes());
        data
    }

    /// Where group `index`'s length field is.
    fn length_at(data: &[u8], index: usize) -> usize {
        let mut pos = SNAPSHOT_MAGIC.len() + 16;
        for _ in 0..index {
            pos += 4 + read_u32(data, pos) as usize;
        }
        pos
    }

    #[test]
    fn a_large_snapshot_decodes_in_order() {
        let all = filled(40, 2000);
        let data = encode(9, &all).unwrap();
        assert!(data.len() > 4 * parallel::MIN_WEIGHT_PER_THREAD);
        let snapshot = decode(&data).unwrap();
        assert_eq!(snapshot.position, 9);
        assert_eq!(jobs(&snapshot.groups), jobs(&all));
        for (decoded, original) in snapshot.groups.iter().zip(&all) {
            assert_eq!(decoded.families, original.families);
        }
        // Encoding on several threads gives the bytes a single pass gives.
        let mut single = SNAPSHOT_MAGIC.to_vec();
        single.extend_from_slice(&9u64.to_le_bytes());
        single.extend_from_slice(&(all.len() as u64).to_le_bytes());
        let mut block = Vec::new();
        for group in &all {
            append_group(&mut single, &mut block, group).unwrap();
        }
        assert_eq!(data, resealed([single, vec![0; 4]].concat()));
    }

    #[test]
    fn damage_anywhere_in_a_large_snapshot_is_a_clear_error() {
        let data = encode(1, &filled(40, 2000)).unwrap();
        let last_group = length_at(&data, 39);
        let refused = |damaged: Vec<u8>, expected: &str| {
            let error = decode(&damaged).expect_err(expected).to_string();
            assert!(
                error.contains(expected),
                "{error:?} should say {expected:?}"
            );
        };
        // A flipped bit, found by the checksum.
        let mut flipped = data.clone();
        flipped[last_group + 10] ^= 0x40;
        refused(flipped.clone(), "checksum mismatch");
        // The same past the checksum: the block of that group fails to decode, named.
        let mut garbled = data.clone();
        garbled[last_group + 4..last_group + 12].fill(0xff);
        refused(resealed(garbled), "group 39:");
        // Lengths that do not add up, in the middle of the file.
        for (group, len) in [(20, u32::MAX), (20, 3), (0, 0)] {
            let mut bad = data.clone();
            let at = length_at(&data, group);
            bad[at..at + 4].copy_from_slice(&len.to_le_bytes());
            let error = decode(&resealed(bad)).expect_err("bad length").to_string();
            assert!(
                error.contains("truncated") || error.contains("group"),
                "length {len} of group {group}: {error:?}"
            );
        }
        // A count that is not the number of groups, either way.
        for count in [41u64, 39, u64::MAX] {
            let mut bad = data.clone();
            bad[16..24].copy_from_slice(&count.to_le_bytes());
            let expected = if count < 40 {
                "trailing bytes"
            } else {
                "truncated"
            };
            refused(resealed(bad), expected);
        }
        // Cut short at every kind of place.
        for cut in [last_group, last_group + 2, last_group + 100, data.len() - 1] {
            assert!(decode(&data[..cut]).is_err(), "cut at {cut}");
            assert!(
                decode(&resealed(data[..cut].to_vec())).is_err(),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn a_group_past_four_gib_is_an_error_not_a_wrapped_length() {
        let group = &groups(1)[0];
        assert_eq!(block_length(u32::MAX as usize, group).unwrap(), u32::MAX);
        let error = block_length(u32::MAX as usize + 1, group).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("more than a snapshot block holds"),
            "{error}"
        );
    }
}
