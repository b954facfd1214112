//! The replication's settings (`--storage=redis` and its flags), owned here and filled in by
//! `crate::config`.

use std::path::PathBuf;
use std::time::Duration;

use clap::ValueEnum;

/// How a replica reaches Redis and shares the state.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// redis:// or rediss:// URL.
    pub url: String,
    /// Password from the file or the environment, if any.
    pub password: Option<String>,
    /// Prefix of every key.
    pub key_prefix: String,
    /// How often the leader snapshots.
    pub snapshot_interval: Duration,
    /// Size of the chunks a snapshot is written to Redis in.
    pub snapshot_chunk_bytes: usize,
    /// How long a push waits.
    pub timeout: Duration,
    /// Which replicas serve pushed metrics.
    pub expose: ExposeMode,
    /// The flags every replica must share (`--push.*`, `--storage.max-*`), name and value.
    pub check_settings: Vec<(String, String)>,
    /// Whether this replica's settings replace the stored ones at start.
    pub adopt_settings: bool,
    /// Redis replicas that must confirm a change before it is acknowledged (0: none).
    pub min_replicas_acks: u32,
    /// The Sentinels that name the primary, instead of the URL.
    pub sentinel: Option<SentinelConfig>,
    /// A local copy of the applied state (`--persistence.file`), if any.
    pub local_copy: Option<LocalCopy>,
}

/// Redis Sentinels that name the primary.
#[derive(Debug, Clone)]
pub struct SentinelConfig {
    /// Their addresses.
    pub sentinels: Vec<(String, u16)>,
    /// The master name they monitor.
    pub master: String,
    /// Their password, if any.
    pub password: Option<String>,
}

/// Which replicas serve pushed metrics in redis mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExposeMode {
    /// Every replica.
    All,
    /// Only the lease holder; the others serve their own metrics only.
    Leader,
}

/// With Redis, `--persistence.file` keeps a copy of the replica's applied state and stream
/// position, so that a restarted replica serves its last state at once (even while Redis
/// is unreachable) and catches up from there instead of from the snapshot in Redis.
#[derive(Debug, Clone)]
pub struct LocalCopy {
    /// The file.
    pub file: PathBuf,
    /// How often it is rewritten (when something changed).
    pub interval: Duration,
}
