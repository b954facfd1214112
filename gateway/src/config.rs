//! Every command-line flag, with upstream's names and defaults, and its validation. The
//! result is a [`Config`] of small sub-configs handed by value to the parts that need them.
//! Flags whose feature has not landed yet are accepted by the parser and refused by
//! [`Config::from_args`] with a clear message, never silently ignored.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::config_file::{self, ConfigFile, ConfigFileError};
use crate::duration::{format_flag_duration, parse_go_duration};
use crate::expiry::ExpiryPolicy;
use crate::model::NameValidation;
use crate::parse::ParseLimits;
use crate::persist::{FsyncMode, PersistConfig};
use crate::store::{Consistency, Limits};

pub use crate::replicate::{ExposeMode, LocalCopy, RedisConfig};
pub use crate::telemetry::{LogFormat, LogLevel};
pub use crate::web::WebConfig;

/// The command line, exactly as upstream spells it.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "pushgateway",
    args_override_self = true,
    version,
    about = "The Pushgateway: accepts pushed metrics from batch jobs and exposes them for scraping."
)]
pub struct Flags {
    /// Addresses on which to expose metrics and web interface.
    #[arg(long = "web.listen-address", default_value = ":9091")]
    pub listen_address: String,
    /// Write the address really bound (one `host:port` line) to this file once listening,
    /// so that a gateway started on port 0 can be found. Not an upstream flag.
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
    /// How long a push waits for Redis and for its change to be applied before it gets 503.
    #[arg(long = "storage.redis.timeout", default_value = "5s", value_parser = parse_go_duration)]
    pub redis_timeout: Duration,
    /// Which replicas serve pushed metrics on the telemetry path: every replica (all), or
    /// only the one holding the leader lease (leader), so that Prometheus scraping every
    /// pod sees each series once.
    #[arg(long = "storage.redis.expose", value_enum, default_value = "all")]
    pub redis_expose: ExposeMode,
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

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The command line did not parse.
    #[error("{0}")]
    Usage(#[from] clap::Error),
    /// The listen address is not `host:port`.
    #[error("invalid --web.listen-address {0:?}: expected host:port or :port")]
    ListenAddress(String),
    /// The external URL is not absolute.
    #[error("invalid --web.external-url {0:?}: expected an absolute http(s) URL")]
    ExternalUrl(String),
    /// The configuration file is invalid.
    #[error(transparent)]
    File(#[from] ConfigFileError),
    /// Flags that cannot be used together or a value that cannot be used.
    #[error("{0}")]
    Invalid(String),
}

/// The whole configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// HTTP settings.
    pub web: WebConfig,
    /// Log settings.
    pub log_level: LogLevel,
    /// Log format.
    pub log_format: LogFormat,
    /// Flag values as given, for `/api/v1/status` and the status page.
    pub flags: Vec<(String, String)>,
    /// Persistence, when `--persistence.file` is set.
    pub persistence: Option<PersistConfig>,
    /// Push and store limits.
    pub limits: Limits,
    /// Expiry rules from the configuration file.
    pub expiry: ExpiryPolicy,
    /// The configuration file, for reloads.
    pub config_file: Option<PathBuf>,
    /// Replicated state, when `--storage=redis`.
    pub redis: Option<RedisConfig>,
}

impl Config {
    /// Parses and validates a command line (the first item is the program name).
    ///
    /// # Errors
    /// [`ConfigError`] for anything that cannot be used.
    pub fn from_args<I, T>(args: I) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
        let Some(path) = config_file_arg(&args) else {
            return Config::from_flags(Flags::try_parse_from(args)?, ExpiryPolicy::default());
        };
        let file = load_config_file(&path)?;
        // The file's flags go first, so that the command line overrides them.
        let mut combined = args[..1.min(args.len())].to_vec();
        for (name, value) in &file.args {
            combined.push(if value.is_empty() {
                format!("--{name}").into()
            } else {
                format!("--{name}={value}").into()
            });
        }
        combined.extend(args.iter().skip(1).cloned());
        Config::from_flags(Flags::try_parse_from(combined)?, file.expiry)
    }

    /// Reads the expiry rules from the configuration file again (SIGHUP, `/-/reload`).
    ///
    /// # Errors
    /// [`ConfigError::File`] with the line and reason; the caller keeps the old rules.
    pub fn reload_expiry(path: &Path) -> Result<ExpiryPolicy, ConfigError> {
        Ok(load_config_file(path)?.expiry)
    }

    /// Validates parsed flags.
    ///
    /// # Errors
    /// [`ConfigError`] for anything that cannot be used.
    pub fn from_flags(flags: Flags, expiry: ExpiryPolicy) -> Result<Config, ConfigError> {
        let redis = redis_config(&flags)?;
        let listen = parse_listen_address(&flags.listen_address)?;
        let external_path = external_url_path(&flags.external_url)?;
        let route_prefix = compute_route_prefix(&flags.route_prefix, &external_path);
        let external_prefix = compute_route_prefix("", &external_path);
        let flag_values = flag_values(&flags);
        Ok(Config {
            web: WebConfig {
                listen,
                listen_address_file: (!flags.listen_address_file.is_empty())
                    .then(|| PathBuf::from(&flags.listen_address_file)),
                route_prefix,
                external_prefix,
                telemetry_path: flags.telemetry_path.clone(),
                enable_lifecycle: flags.enable_lifecycle,
                enable_admin_api: flags.enable_admin_api,
                enable_openmetrics: flags.enable_openmetrics,
                max_body_bytes: flags.max_body_bytes,
                web_config_file: (!flags.web_config_file.is_empty())
                    .then(|| PathBuf::from(&flags.web_config_file)),
                unauthenticated_probes: flags.unauthenticated_probes,
                max_connections: flags.max_connections,
                header_read_timeout: flags.header_read_timeout,
                write_timeout: (!flags.write_timeout.is_zero()).then_some(flags.write_timeout),
                parse_limits: ParseLimits {
                    max_labels_per_series: flags.max_labels_per_series,
                    max_line_bytes: flags.max_line_bytes,
                },
                consistency: if flags.disable_consistency_check {
                    Consistency::Unchecked
                } else {
                    Consistency::Checked
                },
                validation: if flags.enable_utf8_names {
                    NameValidation::Utf8
                } else {
                    NameValidation::Legacy
                },
            },
            log_level: flags.log_level,
            log_format: flags.log_format,
            flags: flag_values,
            expiry,
            config_file: (!flags.config_file.is_empty()).then(|| PathBuf::from(&flags.config_file)),
            redis,
            limits: Limits {
                max_series_per_push: flags.max_series_per_push,
                max_label_length: flags.max_label_length,
                max_grouping_labels: flags.max_grouping_labels,
                max_labels_per_series: flags.max_labels_per_series,
                max_series: flags.max_series,
                max_groups: flags.max_groups,
            },
            persistence: (!flags.persistence_file.is_empty()
                && flags.storage == StorageMode::Memory)
                .then(|| PersistConfig {
                    file: PathBuf::from(&flags.persistence_file),
                    interval: flags.persistence_interval.max(Duration::from_secs(1)),
                    fsync: flags.persistence_fsync,
                    start_empty_on_corruption: flags.start_empty_on_corruption,
                    max_log_bytes: 64 * 1024 * 1024,
                }),
        })
    }
}

/// The Redis settings of `--storage=redis`, `None` for memory mode.
fn redis_config(flags: &Flags) -> Result<Option<RedisConfig>, ConfigError> {
    let invalid = |reason: String| Err(ConfigError::Invalid(reason));
    if flags.storage == StorageMode::Memory {
        if !flags.redis_url.is_empty() {
            return invalid("--storage.redis.url needs --storage=redis".into());
        }
        return Ok(None);
    }
    if flags.redis_url.is_empty() {
        return invalid("--storage=redis needs --storage.redis.url".into());
    }
    if !(flags.redis_url.starts_with("redis://") || flags.redis_url.starts_with("rediss://")) {
        return invalid(format!(
            "invalid --storage.redis.url {:?}: expected redis:// or rediss://",
            redact_url(&flags.redis_url)
        ));
    }
    let password = if !flags.redis_password_file.is_empty() {
        let text = std::fs::read_to_string(&flags.redis_password_file).map_err(|e| {
            ConfigError::Invalid(format!(
                "cannot read --storage.redis.password-file {}: {e}",
                flags.redis_password_file
            ))
        })?;
        Some(text.trim_end_matches(['\r', '\n']).to_string())
    } else {
        std::env::var(REDIS_PASSWORD_ENV)
            .ok()
            .filter(|p| !p.is_empty())
    };
    if flags.redis_key_prefix.is_empty() {
        return invalid("--storage.redis.key-prefix must not be empty".into());
    }
    Ok(Some(RedisConfig {
        url: flags.redis_url.clone(),
        password,
        key_prefix: flags.redis_key_prefix.clone(),
        snapshot_interval: flags.redis_snapshot_interval.max(Duration::from_secs(1)),
        timeout: flags.redis_timeout.max(Duration::from_millis(100)),
        expose: flags.redis_expose,
        local_copy: (!flags.persistence_file.is_empty()).then(|| LocalCopy {
            file: PathBuf::from(&flags.persistence_file),
            interval: flags.persistence_interval.max(Duration::from_secs(1)),
        }),
    }))
}

/// The environment variable that may hold the Redis password.
pub const REDIS_PASSWORD_ENV: &str = "PUSHGATEWAY_REDIS_PASSWORD";

/// A URL with any password replaced by `***`, for logs and the status page.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or("", |(user, _)| user);
            let user = if userinfo.contains(':') {
                format!("{user}:***")
            } else {
                "***".into()
            };
            format!("{scheme}://{user}@{host}{}", &rest[authority_end..])
        }
        None => url.to_string(),
    }
}

/// The value of `--config.file` on a command line, if any.
fn config_file_arg(args: &[std::ffi::OsString]) -> Option<PathBuf> {
    let mut found = None;
    let mut iter = args
        .iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned());
    while let Some(arg) = iter.next() {
        if let Some(value) = arg.strip_prefix("--config.file=") {
            found = Some(value.to_string());
        } else if arg == "--config.file" {
            found = iter.next();
        }
    }
    found.filter(|p| !p.is_empty()).map(PathBuf::from)
}

fn load_config_file(path: &Path) -> Result<ConfigFile, ConfigError> {
    use clap::CommandFactory;
    let command = Flags::command();
    let known = |name: &str| {
        command
            .get_arguments()
            .find(|a| a.get_long() == Some(name))
            .map(|a| a.get_action().takes_values())
    };
    Ok(config_file::load(path, known)?)
}

/// `:9091` listens on every address, like Go's listener.
fn parse_listen_address(address: &str) -> Result<SocketAddr, ConfigError> {
    let full = if address.starts_with(':') {
        format!("0.0.0.0{address}")
    } else {
        address.to_string()
    };
    full.parse()
        .or_else(|_| {
            // Host names such as localhost:9091.
            use std::net::ToSocketAddrs;
            full.to_socket_addrs()
                .ok()
                .and_then(|mut addrs| addrs.next())
                .ok_or(())
        })
        .map_err(|_| ConfigError::ListenAddress(address.to_string()))
}

fn external_url_path(url: &str) -> Result<String, ConfigError> {
    if url.is_empty() {
        return Ok(String::new());
    }
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| ConfigError::ExternalUrl(url.to_string()))?;
    Ok(rest
        .find('/')
        .map(|i| rest[i..].to_string())
        .unwrap_or_default())
}

/// Upstream's rule: the prefix defaults to the external URL's path; `/` means none; the
/// result has a leading slash and no trailing one.
pub fn compute_route_prefix(prefix: &str, external_path: &str) -> String {
    let prefix = if prefix.is_empty() {
        external_path
    } else {
        prefix
    };
    let trimmed = prefix.trim_matches('/');
    if trimmed.is_empty() {
        String::new()
    } else {
        format!("/{trimmed}")
    }
}

fn flag_values(flags: &Flags) -> Vec<(String, String)> {
    let duration = format_flag_duration;
    let mut values = vec![
        ("web.listen-address", flags.listen_address.clone()),
        ("web.telemetry-path", flags.telemetry_path.clone()),
        ("web.external-url", flags.external_url.clone()),
        ("web.route-prefix", flags.route_prefix.clone()),
        ("web.enable-lifecycle", flags.enable_lifecycle.to_string()),
        ("web.enable-admin-api", flags.enable_admin_api.to_string()),
        (
            "web.enable-openmetrics",
            flags.enable_openmetrics.to_string(),
        ),
        ("web.config.file", flags.web_config_file.clone()),
        (
            "web.unauthenticated-probes",
            flags.unauthenticated_probes.to_string(),
        ),
        ("web.max-connections", flags.max_connections.to_string()),
        (
            "web.read-header-timeout",
            duration(flags.header_read_timeout),
        ),
        ("push.max-series", flags.max_series_per_push.to_string()),
        ("push.max-label-length", flags.max_label_length.to_string()),
        (
            "push.max-grouping-labels",
            flags.max_grouping_labels.to_string(),
        ),
        (
            "push.max-labels-per-series",
            flags.max_labels_per_series.to_string(),
        ),
        ("push.max-line-bytes", flags.max_line_bytes.to_string()),
        ("web.write-timeout", duration(flags.write_timeout)),
        ("storage.max-series", flags.max_series.to_string()),
        ("storage.max-groups", flags.max_groups.to_string()),
        ("persistence.file", flags.persistence_file.clone()),
        ("persistence.interval", duration(flags.persistence_interval)),
        (
            "persistence.fsync",
            format!("{:?}", flags.persistence_fsync).to_ascii_lowercase(),
        ),
        (
            "persistence.start-empty-on-corruption",
            flags.start_empty_on_corruption.to_string(),
        ),
        (
            "push.disable-consistency-check",
            flags.disable_consistency_check.to_string(),
        ),
        (
            "push.enable-utf8-names",
            flags.enable_utf8_names.to_string(),
        ),
        ("push.max-body-bytes", flags.max_body_bytes.to_string()),
        (
            "log.level",
            format!("{:?}", flags.log_level).to_ascii_lowercase(),
        ),
        (
            "log.format",
            format!("{:?}", flags.log_format).to_ascii_lowercase(),
        ),
        (
            "storage",
            format!("{:?}", flags.storage).to_ascii_lowercase(),
        ),
        ("storage.redis.url", redact_url(&flags.redis_url)),
        (
            "storage.redis.password-file",
            flags.redis_password_file.clone(),
        ),
        ("storage.redis.key-prefix", flags.redis_key_prefix.clone()),
        (
            "storage.redis.snapshot-interval",
            duration(flags.redis_snapshot_interval),
        ),
        ("storage.redis.timeout", duration(flags.redis_timeout)),
        (
            "storage.redis.expose",
            format!("{:?}", flags.redis_expose).to_ascii_lowercase(),
        ),
        ("config.file", flags.config_file.clone()),
    ];
    values.sort();
    values
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, ConfigError> {
        Config::from_args(std::iter::once("pushgateway").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_match_upstream() {
        let config = parse(&[]).expect("defaults parse");
        assert_eq!(config.web.listen.port(), 9091);
        assert_eq!(config.web.telemetry_path, "/metrics");
        assert_eq!(config.web.route_prefix, "");
        assert!(config.persistence.is_none());
        assert_eq!(config.web.consistency, Consistency::Checked);
        assert!(!config.web.enable_lifecycle && !config.web.enable_admin_api);
    }

    #[test]
    fn cost_limits_have_generous_defaults_and_flags() {
        let config = parse(&[]).expect("defaults parse");
        assert_eq!(config.limits.max_grouping_labels, 32);
        assert_eq!(config.limits.max_labels_per_series, 512);
        assert_eq!(config.web.parse_limits.max_labels_per_series, 512);
        assert_eq!(config.web.parse_limits.max_line_bytes, 1 << 20);
        assert_eq!(config.web.write_timeout, Some(Duration::from_secs(60)));
        let config = parse(&[
            "--push.max-grouping-labels=8",
            "--push.max-labels-per-series=16",
            "--push.max-line-bytes=4096",
            "--web.write-timeout=0",
        ])
        .expect("parses");
        assert_eq!(config.limits.max_grouping_labels, 8);
        assert_eq!(config.limits.max_labels_per_series, 16);
        assert_eq!(config.web.parse_limits.max_labels_per_series, 16);
        assert_eq!(config.web.parse_limits.max_line_bytes, 4096);
        assert_eq!(
            config.web.write_timeout, None,
            "0 turns the write timeout off"
        );
        for flag in [
            "push.max-grouping-labels",
            "push.max-labels-per-series",
            "push.max-line-bytes",
            "web.write-timeout",
        ] {
            assert!(config.flags.iter().any(|(name, _)| name == flag), "{flag}");
        }
    }

    #[test]
    fn route_prefix_rules() {
        for (prefix, external, expected) in [
            ("", "", ""),
            ("/", "", ""),
            ("pg/", "", "/pg"),
            ("", "/gw/", "/gw"),
            ("/x", "/gw", "/x"),
        ] {
            assert_eq!(
                compute_route_prefix(prefix, external),
                expected,
                "{prefix:?} {external:?}"
            );
        }
        let config = parse(&["--web.external-url=http://example.org/pgw/"]).expect("parses");
        assert_eq!(config.web.route_prefix, "/pgw");
        assert_eq!(config.web.external_prefix, "/pgw");
    }

    #[test]
    fn redis_flags_that_cannot_work_are_refused() {
        for args in [
            &["--storage=redis"][..],
            &["--storage.redis.url=redis://localhost:6379"],
            &["--storage=redis", "--storage.redis.url=localhost:6379"],
        ] {
            assert!(
                matches!(parse(args), Err(ConfigError::Invalid(_))),
                "{args:?}"
            );
        }
        let config = parse(&["--storage=redis", "--storage.redis.url=rediss://r:6380/2"])
            .expect("valid redis flags");
        let redis = config.redis.expect("redis mode");
        assert_eq!(redis.key_prefix, "pushgateway");
        assert_eq!(redis.expose, ExposeMode::All);
        assert!(redis.local_copy.is_none());
        let config = parse(&[
            "--storage=redis",
            "--storage.redis.url=redis://r",
            "--persistence.file=/data/pgw",
        ])
        .expect("a local copy with redis");
        assert!(
            config.persistence.is_none(),
            "no write-ahead log in redis mode"
        );
        let copy = config.redis.and_then(|r| r.local_copy).expect("local copy");
        assert_eq!(copy.file, PathBuf::from("/data/pgw"));
    }

    #[test]
    fn redis_passwords_never_reach_the_status_page() {
        assert_eq!(
            redact_url("redis://:secret@host:6379/0"),
            "redis://:***@host:6379/0"
        );
        assert_eq!(
            redact_url("rediss://user:secret@host/0"),
            "rediss://user:***@host/0"
        );
        assert_eq!(redact_url("redis://host:6379"), "redis://host:6379");
        let config = parse(&["--storage=redis", "--storage.redis.url=redis://:pw@h:1/0"])
            .expect("valid redis flags");
        assert!(config.flags.iter().all(|(_, v)| !v.contains("pw@")));
    }

    #[test]
    fn the_command_line_wins_over_the_config_file() {
        let path = std::env::temp_dir().join(format!("pgw-flags-{}.toml", std::process::id()));
        std::fs::write(
            &path,
            "[flags]\n\"web.telemetry-path\" = \"/from-file\"\n\"web.route-prefix\" = \"/pg\"\n\"web.enable-admin-api\" = true\n",
        )
        .expect("write");
        let file_arg = format!("--config.file={}", path.display());
        let config = parse(&[&file_arg, "--web.telemetry-path=/from-cli"]).expect("parses");
        assert_eq!(config.web.telemetry_path, "/from-cli");
        assert_eq!(config.web.route_prefix, "/pg");
        assert!(config.web.enable_admin_api);
        assert!(matches!(
            parse(&["--config.file=/nonexistent/pgw.toml"]),
            Err(ConfigError::File(_))
        ));
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn usage_errors() {
        assert!(matches!(
            parse(&["--log.level=loud"]),
            Err(ConfigError::Usage(_))
        ));
        assert!(matches!(
            parse(&["--web.listen-address=nonsense"]),
            Err(ConfigError::ListenAddress(_))
        ));
        assert!(matches!(
            parse(&["--web.external-url=example.org"]),
            Err(ConfigError::ExternalUrl(_))
        ));
    }
}
