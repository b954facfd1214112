//! The command line as clap parses it: every flag with upstream's name and default. Values
//! are checked and turned into settings in `config`.

use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::duration::parse_go_duration;
use crate::persist::FsyncMode;
use crate::replicate::ExposeMode;
use crate::telemetry::{LogFormat, LogLevel};

/// The command line, exactly as upstream spells it.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "pushgateway",
    args_override_self = true,
    version,
    about = "The Pushgateway: accepts pushed metrics from batch jobs and exposes them for scraping."
)]
pub struct Flags {
    /// Addresses on which to expose metrics and web interface. Repeatable to add multiple
    /// addresses.
    #[arg(long = "web.listen-address", default_value = ":9091", action = clap::ArgAction::Append)]
    pub listen_address: Vec<String>,
    /// Use systemd socket activation listeners instead of port listeners (Linux only).
    #[arg(long = "web.systemd-socket")]
    pub systemd_socket: bool,
    /// Write the addresses really bound (one `host:port` line each, in the order of the
    /// listen addresses) to this file once listening, so that a gateway started on port 0
    /// can be found. Not an upstream flag.
    #[arg(long = "web.listen-address-file", default_value = "")]
    pub listen_address_file: String,
    /// Path under which to expose metrics.
    #[arg(long = "web.telemetry-path", default_value = "/metrics")]
    pub telemetry_path: String,
    /// The URL under which the Pushgateway is externally reachable.
    #[arg(long = "web.external-url", default_value = "")]
    pub external_url: String,
    /// Prefix for the internal routes of web endpoints. Defaults to the path of --web.external-url.
    #[arg(long = "web.route-prefix", default_value = "")]
    pub route_prefix: String,
    /// Enable shutdown via HTTP request.
    #[arg(long = "web.enable-lifecycle")]
    pub enable_lifecycle: bool,
    /// Enable API endpoints for admin control actions.
    #[arg(long = "web.enable-admin-api")]
    pub enable_admin_api: bool,
    /// Serve OpenMetrics to scrapers that ask for it (exemplars, created timestamps). Off:
    /// text 0.0.4, as upstream, which keeps the series Prometheus stores unchanged.
    #[arg(long = "web.enable-openmetrics")]
    pub enable_openmetrics: bool,
    /// Path to a configuration file that can enable TLS or authentication.
    #[arg(long = "web.config.file", default_value = "")]
    pub web_config_file: String,
    /// Answer GET and HEAD of exactly <route-prefix>/-/healthy and <route-prefix>/-/ready
    /// without basic auth, so that kubelet probes work. Not an upstream flag.
    #[arg(long = "web.unauthenticated-probes")]
    pub unauthenticated_probes: bool,
    /// File to persist metrics. If empty, metrics are only kept in memory.
    #[arg(long = "persistence.file", default_value = "")]
    pub persistence_file: String,
    /// The minimum interval at which to write out the persistence file.
    #[arg(long = "persistence.interval", default_value = "5m", value_parser = parse_go_duration)]
    pub persistence_interval: Duration,
    /// When a push counts as durable: after fsync (always) or once written (interval).
    #[arg(long = "persistence.fsync", value_enum, default_value = "always")]
    pub persistence_fsync: FsyncMode,
    /// Start empty when the persistence files are damaged, moving them aside (instead of
    /// refusing to start).
    #[arg(long = "persistence.start-empty-on-corruption")]
    pub start_empty_on_corruption: bool,
    /// Do not check consistency of pushed metrics. DANGEROUS.
    #[arg(long = "push.disable-consistency-check")]
    pub disable_consistency_check: bool,
    /// Allow UTF-8 characters in metric and label names.
    #[arg(long = "push.enable-utf8-names")]
    pub enable_utf8_names: bool,
    /// Turn off the OTLP/HTTP metrics receiver (`POST <route-prefix>/api/v1/otlp/v1/metrics`).
    /// Not an upstream flag.
    #[arg(long = "otlp.disable")]
    pub otlp_disable: bool,
    /// Resource attributes that become grouping labels of OTLP pushes, besides `job` and
    /// `instance` (comma-separated, repeatable). Not an upstream flag.
    #[arg(long = "otlp.promote-resource-attributes", value_delimiter = ',', action = clap::ArgAction::Append)]
    pub otlp_promote_resource_attributes: Vec<String>,
    /// Largest accepted push body in bytes, after decompression.
    #[arg(long = "push.max-body-bytes", default_value_t = 64 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Most client connections served at once; more wait in the listen backlog.
    #[arg(long = "web.max-connections", default_value_t = 4096)]
    pub max_connections: usize,
    /// How long a client may take to send its request headers (slow clients are dropped).
    #[arg(long = "web.read-header-timeout", default_value = "30s", value_parser = parse_go_duration)]
    pub header_read_timeout: Duration,
    /// How long a response may wait for the client to take more of it before the
    /// connection is closed (0: forever).
    #[arg(long = "web.write-timeout", default_value = "1m", value_parser = parse_go_duration)]
    pub write_timeout: Duration,
    /// Most metrics (series; a histogram or summary counts once) in one push.
    #[arg(long = "push.max-series", default_value_t = 1_000_000)]
    pub max_series_per_push: usize,
    /// Longest label name or value, in bytes, in a push or grouping key.
    #[arg(long = "push.max-label-length", default_value_t = 65_536)]
    pub max_label_length: usize,
    /// Most labels in a push's grouping key, `job` included.
    #[arg(long = "push.max-grouping-labels", default_value_t = 32)]
    pub max_grouping_labels: usize,
    /// Most labels one pushed metric carries itself (grouping labels not counted).
    #[arg(long = "push.max-labels-per-series", default_value_t = 512)]
    pub max_labels_per_series: usize,
    /// Longest line of a text-format push, in bytes.
    #[arg(long = "push.max-line-bytes", default_value_t = 1024 * 1024)]
    pub max_line_bytes: usize,
    /// Most metrics stored in total; pushes beyond it get 429 (0: no limit).
    #[arg(long = "storage.max-series", default_value_t = 0)]
    pub max_series: usize,
    /// Most groups stored; pushes creating more get 429 (0: no limit).
    #[arg(long = "storage.max-groups", default_value_t = 0)]
    pub max_groups: usize,
    /// How long an `Idempotency-Key` is remembered after the push that carried it; a push
    /// repeating it within this window is answered as the first and changes nothing.
    #[arg(long = "aggregate.idempotency-window", default_value = "10m", value_parser = parse_go_duration)]
    pub idempotency_window: Duration,
    /// Most idempotency keys remembered at once; a push with a new key beyond it gets 429.
    #[arg(long = "aggregate.idempotency-max-keys", default_value_t = 100_000)]
    pub idempotency_max_keys: usize,
    /// Only log messages with the given severity or above.
    #[arg(long = "log.level", value_enum, default_value = "info")]
    pub log_level: LogLevel,
    /// Output format of log messages.
    #[arg(long = "log.format", value_enum, default_value = "logfmt")]
    pub log_format: LogFormat,
    /// Where the state lives: in this process (memory) or replicated through Redis.
    #[arg(long = "storage", value_enum, default_value = "memory")]
    pub storage: StorageMode,
    /// Redis URL for --storage=redis: redis://host:port/db or rediss:// for TLS. Put the
    /// password in --storage.redis.password-file or $PUSHGATEWAY_REDIS_PASSWORD, not here.
    #[arg(long = "storage.redis.url", default_value = "")]
    pub redis_url: String,
    /// File holding the Redis password (trailing newline ignored).
    #[arg(long = "storage.redis.password-file", default_value = "")]
    pub redis_password_file: String,
    /// Prefix of every Redis key the gateway uses; replicas of one gateway share it.
    #[arg(long = "storage.redis.key-prefix", default_value = "pushgateway")]
    pub redis_key_prefix: String,
    /// How often the leader writes a snapshot to Redis and trims the change stream.
    #[arg(long = "storage.redis.snapshot-interval", default_value = "1m", value_parser = parse_go_duration)]
    pub redis_snapshot_interval: Duration,
    /// Size of the chunks a snapshot is written to Redis in (each chunk one Redis value of
    /// whole groups; 4096 to 536870912).
    #[arg(long = "storage.redis.snapshot-chunk-bytes", default_value_t = 4 * 1024 * 1024)]
    pub redis_snapshot_chunk_bytes: u64,
    /// How long a push waits for Redis and for its change to be applied before it gets 503.
    #[arg(long = "storage.redis.timeout", default_value = "5s", value_parser = parse_go_duration)]
    pub redis_timeout: Duration,
    /// Which replicas serve pushed metrics on the telemetry path: every replica (all), or
    /// only the one holding the leader lease (leader), so that Prometheus scraping every
    /// pod sees each series once.
    #[arg(long = "storage.redis.expose", value_enum, default_value = "all")]
    pub redis_expose: ExposeMode,
    /// At start, make this replica's check-affecting settings (--push.*, --storage.max-*,
    /// expiry rules) the ones stored in Redis; replicas with others turn unready. For the
    /// rollout that changes them.
    #[arg(long = "storage.redis.adopt-settings")]
    pub redis_adopt_settings: bool,
    /// Redis Sentinels (host:port,...) that name the primary, instead of
    /// --storage.redis.url; a failover is followed.
    #[arg(long = "storage.redis.sentinels", default_value = "")]
    pub redis_sentinels: String,
    /// The master name the Sentinels monitor.
    #[arg(long = "storage.redis.sentinel-master", default_value = "mymaster")]
    pub redis_sentinel_master: String,
    /// File holding the Sentinels' password (trailing newline ignored); else
    /// $PUSHGATEWAY_REDIS_SENTINEL_PASSWORD.
    #[arg(long = "storage.redis.sentinel-password-file", default_value = "")]
    pub redis_sentinel_password_file: String,
    /// Redis replicas that must confirm a change (WAIT) before the push is answered;
    /// default 1 with Sentinels, else 0.
    #[arg(long = "storage.redis.min-replicas-acks")]
    pub redis_min_replicas_acks: Option<u32>,
    /// Longest TTL a push may set with the Pushgateway-TTL header; a longer one gets 400
    /// (0: no cap).
    #[arg(long = "expiry.max-ttl", default_value = "0s", value_parser = parse_go_duration)]
    pub expiry_max_ttl: Duration,
    /// Accept Pushgateway-TTL: 0, a group that never expires (otherwise 400).
    #[arg(long = "expiry.allow-no-ttl")]
    pub expiry_allow_no_ttl: bool,
    /// Optional TOML configuration file.
    #[arg(long = "config.file", default_value = "")]
    pub config_file: String,
}

/// Storage back end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StorageMode {
    /// In this process.
    Memory,
    /// Replicated through a Redis stream.
    Redis,
}
