//! Everything the replicas keep in Redis, and the scripts that change it atomically.
//!
//! Every key sits under the hash tag `{<prefix>}`, so that every key (and so every script)
//! is in one slot of a Redis Cluster.
//!
//! - `{<prefix>}:changes`: the change stream. Entry IDs are `<seq>-0` with `seq` from
//!   `{<prefix>}:seq`, incremented in the same script as the XADD, so that IDs are gapless
//!   and a replica notices a gap (entries trimmed away before it read them) exactly.
//! - `{<prefix>}:snapshot`: the snapshot's manifest, a hash with `seq` (the last entry the
//!   snapshot covers), `time` (Unix seconds when it was written), `epoch`, `generation` and
//!   `chunks`: the snapshot is in the keys `{<prefix>}:snapshot:<generation>:<0..chunks>`,
//!   each a chunk of the encoding of [`crate::persist::snapshot::Chunks`]. The chunks are
//!   written first (with a time to live, so that those of a writer that died go away), the
//!   manifest last, in a script that checks that every chunk is there: a reader never sees a
//!   half-written snapshot. The previous generation's chunks expire a while later, so that a
//!   replica still reading them can finish. Versions before the chunks kept the whole
//!   snapshot in the manifest's `data` field (still read when there).
//! - `{<prefix>}:snapshot-generation`: the counter that numbers snapshot generations.
//! - `{<prefix>}:epoch`: the history's epoch, set by the first append to an empty Redis
//!   (that entry's origin, unique across replicas and restarts). Every entry carries it in its `e` field and the
//!   snapshot in its `epoch` field, so that a replica never mixes two histories: after a
//!   `FLUSHALL` the numbers start again at 1 under a new epoch.
//! - `{<prefix>}:settings`: the check-affecting settings every replica must share (see
//!   the module `settings`).
//! - `{<prefix>}:leader`: the lease of the replica that writes snapshots, sends expiry
//!   sweeps and, with `--storage.redis.expose=leader`, serves pushed metrics.
//!
//! Versions before the hash tag used `<prefix>:changes` and so on: the first replica of
//! this version that finds them moves them under the tag (see [`migrate_script`]).

use redis::Script;

/// The names of the keys of one gateway.
#[derive(Debug, Clone)]
pub struct Keys {
    /// The change stream.
    pub stream: String,
    /// The entry counter.
    pub seq: String,
    /// The snapshot's manifest.
    pub snapshot: String,
    /// The counter of snapshot generations.
    pub snapshot_generation: String,
    /// The leader lease.
    pub leader: String,
    /// The history's epoch.
    pub epoch: String,
    /// The check-affecting settings every replica must share.
    pub settings: String,
}

impl Keys {
    /// The keys under the hash tag `{prefix}`.
    pub fn new(prefix: &str) -> Keys {
        Keys::named(&format!("{{{prefix}}}"))
    }

    /// The keys of the versions before the hash tag.
    pub fn untagged(prefix: &str) -> Keys {
        Keys::named(prefix)
    }

    fn named(base: &str) -> Keys {
        Keys {
            stream: format!("{base}:changes"),
            seq: format!("{base}:seq"),
            snapshot: format!("{base}:snapshot"),
            snapshot_generation: format!("{base}:snapshot-generation"),
            leader: format!("{base}:leader"),
            epoch: format!("{base}:epoch"),
            settings: format!("{base}:settings"),
        }
    }
}

impl Keys {
    /// The key of chunk `index` of snapshot generation `generation`.
    pub fn snapshot_chunk(&self, generation: u64, index: u32) -> String {
        format!("{}{generation}:{index}", self.snapshot_chunk_base())
    }

    /// What every chunk key starts with (the scripts add `<generation>:<index>`).
    pub fn snapshot_chunk_base(&self) -> String {
        format!("{}:", self.snapshot)
    }
}

/// The sequence number in a stream entry ID `<seq>-0`.
pub fn seq_of(entry_id: &str) -> Option<u64> {
    entry_id.split_once('-')?.0.parse().ok()
}

/// Appends one entry stamped with the epoch, which it starts (as the entry's origin) when
/// there is none (KEYS: stream, seq, epoch; ARGV: origin, payload); returns its sequence
/// number.
pub fn append_script() -> Script {
    Script::new(
        r"
local epoch = redis.call('GET', KEYS[3])
if not epoch then
  epoch = ARGV[1]
  redis.call('SET', KEYS[3], epoch)
end
local seq = redis.call('INCR', KEYS[2])
redis.call('XADD', KEYS[1], seq .. '-0', 'o', ARGV[1], 'c', ARGV[2], 'e', epoch)
return seq
",
    )
}

/// Takes or renews the lease, or gives it up when the replica may not hold it (not caught
/// up), and reports the stream head and the snapshot's position (KEYS: leader, seq,
/// snapshot; ARGV: replica id, lease in ms, 1 if it may hold the lease). Returns
/// `{is_leader, head_seq, snapshot_seq, snapshot_time}`, absent values as nil.
pub fn lease_script() -> Script {
    Script::new(
        r"
local leader = 0
local holder = redis.call('GET', KEYS[1])
if ARGV[3] ~= '1' then
  if holder == ARGV[1] then
    redis.call('DEL', KEYS[1])
  end
elseif holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  leader = 1
elseif redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  leader = 1
end
local snapshot = redis.call('HMGET', KEYS[3], 'seq', 'time')
return {leader, redis.call('GET', KEYS[2]), snapshot[1], snapshot[2]}
",
    )
}

/// Publishes a snapshot whose chunks were written, unless a newer one is there or it
/// belongs to another history than Redis holds now; then lets the previous generation's
/// chunks expire after a grace period and trims the stream below the previous snapshot's
/// position, so that a replica a little behind never finds a gap (KEYS: manifest, stream,
/// epoch, then every chunk in order; ARGV: seq, time, epoch, generation, chunk key base,
/// grace in ms). Returns 1 when published, 0 when not (its chunks deleted), -1 when a chunk
/// is missing (expired before publication).
///
/// The previous chunks' names come from the manifest, not from KEYS: they are under the
/// same hash tag, so in the same slot on the same node, which Redis Cluster allows.
pub fn publish_snapshot_script() -> Script {
    Script::new(
        r"
local chunks = {}
for i = 4, #KEYS do
  chunks[#chunks + 1] = KEYS[i]
end
local stale = redis.call('GET', KEYS[3]) ~= ARGV[3]
local previous = 0
if redis.call('HGET', KEYS[1], 'epoch') == ARGV[3] then
  previous = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
end
if stale or tonumber(ARGV[1]) <= previous then
  for _, chunk in ipairs(chunks) do
    redis.call('DEL', chunk)
  end
  return 0
end
for _, chunk in ipairs(chunks) do
  if redis.call('EXISTS', chunk) == 0 then
    return -1
  end
end
for _, chunk in ipairs(chunks) do
  redis.call('PERSIST', chunk)
end
local old = redis.call('HMGET', KEYS[1], 'generation', 'chunks')
if old[1] then
  for i = 0, tonumber(old[2] or '0') - 1 do
    redis.call('PEXPIRE', ARGV[5] .. old[1] .. ':' .. i, ARGV[6])
  end
end
redis.call('HDEL', KEYS[1], 'data')
redis.call('HSET', KEYS[1], 'seq', ARGV[1], 'time', ARGV[2], 'epoch', ARGV[3],
  'generation', ARGV[4], 'chunks', #chunks)
if previous > 0 then
  redis.call('XTRIM', KEYS[2], 'MINID', previous .. '-0')
end
return 1
",
    )
}

/// What the old `seq` key holds once its keys were moved: not a number, so that a replica
/// of an older version still running fails its appends (503) and stays unready rather
/// than acknowledge pushes into a stream nobody reads any more.
pub const MOVED_MARK: &str = "moved under the hash tag";

/// Moves the keys of an older version under the hash tag (KEYS: old seq, stream,
/// snapshot, leader, then the new seq, stream, snapshot). Returns 1 when moved, 0 when
/// there was nothing to move, -1 when both old and new keys are in use (left alone).
pub fn migrate_script() -> Script {
    Script::new(
        r"
local old = redis.call('GET', KEYS[1])
if not old or not tonumber(old) then
  return 0
end
if redis.call('EXISTS', KEYS[5]) == 1 then
  return -1
end
redis.call('SET', KEYS[5], old)
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('RENAME', KEYS[2], KEYS[6])
end
if redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('RENAME', KEYS[3], KEYS[7])
end
redis.call('DEL', KEYS[4])
redis.call('SET', KEYS[1], ARGV[1])
return 1
",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_ids_carry_the_sequence_number() {
        assert_eq!(seq_of("42-0"), Some(42));
        assert_eq!(seq_of("1700000000000-3"), Some(1_700_000_000_000));
        assert_eq!(seq_of("junk"), None);
    }

    #[test]
    fn every_key_shares_one_hash_tag() {
        let keys = Keys::new("pgw");
        for key in [
            &keys.stream,
            &keys.seq,
            &keys.snapshot,
            &keys.leader,
            &keys.epoch,
            &keys.settings,
            &keys.snapshot_generation,
            &keys.snapshot_chunk(3, 7),
        ] {
            assert!(key.starts_with("{pgw}:"), "{key}");
        }
        assert_eq!(Keys::untagged("pgw").seq, "pgw:seq");
    }
}
