//! Everything the replicas keep in Redis, and the scripts that change it atomically.
//!
//! - `<prefix>:changes`: the change stream. Entry IDs are `<seq>-0` with `seq` from
//!   `<prefix>:seq`, incremented in the same script as the XADD, so that IDs are gapless
//!   and a replica notices a gap (entries trimmed away before it read them) exactly.
//! - `<prefix>:snapshot`: a hash with `seq` (the last entry the snapshot covers), `time`
//!   (Unix seconds when it was written) and `data` (the snapshot encoding of
//!   [`crate::persist::snapshot`]).
//! - `<prefix>:leader`: the lease of the replica that writes snapshots, sends expiry
//!   sweeps and, with `--storage.redis.expose=leader`, serves pushed metrics.

use redis::Script;

/// The names of the keys of one gateway.
#[derive(Debug, Clone)]
pub struct Keys {
    /// The change stream.
    pub stream: String,
    /// The entry counter.
    pub seq: String,
    /// The snapshot hash.
    pub snapshot: String,
    /// The leader lease.
    pub leader: String,
}

impl Keys {
    /// The keys under `prefix`.
    pub fn new(prefix: &str) -> Keys {
        Keys {
            stream: format!("{prefix}:changes"),
            seq: format!("{prefix}:seq"),
            snapshot: format!("{prefix}:snapshot"),
            leader: format!("{prefix}:leader"),
        }
    }
}

/// The sequence number in a stream entry ID `<seq>-0`.
pub fn seq_of(entry_id: &str) -> Option<u64> {
    entry_id.split_once('-')?.0.parse().ok()
}

/// Appends one entry (KEYS: stream, seq; ARGV: origin, payload); returns its sequence
/// number.
pub fn append_script() -> Script {
    Script::new(
        r"
local seq = redis.call('INCR', KEYS[2])
redis.call('XADD', KEYS[1], seq .. '-0', 'o', ARGV[1], 'c', ARGV[2])
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

/// Stores a snapshot unless a newer one is there, then trims the stream below the
/// previous snapshot's position, so that a replica a little behind never finds a gap
/// (KEYS: snapshot, stream; ARGV: seq, data, time). Returns 1 when stored.
pub fn publish_snapshot_script() -> Script {
    Script::new(
        r"
local previous = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
if tonumber(ARGV[1]) <= previous then
  return 0
end
redis.call('HSET', KEYS[1], 'seq', ARGV[1], 'time', ARGV[3], 'data', ARGV[2])
if previous > 0 then
  redis.call('XTRIM', KEYS[2], 'MINID', previous .. '-0')
end
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
}
