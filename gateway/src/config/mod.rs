//! The command line and the configuration file, validated and translated into the settings
//! types each subsystem owns (`WebConfig` in `web`, `RedisConfig` in `replicate`, log
//! settings in `telemetry`, ...). The result is a [`Config`] of those, handed by value to
//! the parts that need them; only `main` and `lib` import this module. The flags themselves
//! are [`Flags`] (`flags.rs`), their values for the status page come from `status.rs`.
//! Flags whose feature has not landed yet are accepted by the parser and refused by
//! [`Config::from_args`] with a clear message, never silently ignored.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;

use crate::config_file::{self, ConfigFile, ConfigFileError};
use crate::expiry::{ExpiryPolicy, TtlBounds};
use crate::model::{is_reserved_label_name, NameValidation, INSTANCE_LABEL, JOB_LABEL};
use crate::otlp;
use crate::parse::ParseLimits;
use crate::persist::PersistConfig;
use crate::store::{Consistency, IdempotencyConfig, Limits, Quota};

mod flags;
mod redis;
mod status;

pub use crate::duration::{parse_go_duration, MAX_GO_DURATION};
pub use crate::replicate::{ExposeMode, LocalCopy, RedisConfig, SentinelConfig};
pub use crate::telemetry::{LogFormat, LogLevel};
pub use crate::web::{AccessRules, AggregateRules, FileRules, ListenAddress, WebConfig};
pub use flags::{Flags, StorageMode};
pub use redis::{REDIS_PASSWORD_ENV, REDIS_SENTINEL_PASSWORD_ENV};
pub use status::redact_url;

use redis::redis_config;
use status::flag_values;

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The command line did not parse.
    #[error("{0}")]
    Usage(#[from] clap::Error),
    /// The listen address is not `host:port`.
    #[error("invalid --web.listen-address {0:?}: expected host:port, :port or [ipv6]:port")]
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
    /// How idempotency keys are remembered.
    pub idempotency: IdempotencyConfig,
    /// Expiry rules from the configuration file.
    pub expiry: ExpiryPolicy,
    /// Access rules from the configuration file.
    pub access: AccessRules,
    /// Quotas from the configuration file.
    pub quotas: Vec<Quota>,
    /// The groups that aggregate on the ordinary push paths (`[[aggregate]]`).
    pub aggregate: AggregateRules,
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
            return Config::from_flags(Flags::try_parse_from(args)?, FileRules::default());
        };
        let file = load_config_file(&path)?;
        // The file's flags go first, so that the command line overrides them.
        let mut combined = args[..1.min(args.len())].to_vec();
        // A flag on the command line replaces the file's value rather than adding to it
        // (which repeatable flags such as --web.listen-address would otherwise do).
        let on_command_line = |name: &str| {
            let flag = format!("--{name}");
            args.iter().skip(1).any(|arg| {
                arg.to_str().is_some_and(|arg| {
                    arg == flag
                        || arg
                            .strip_prefix(flag.as_str())
                            .is_some_and(|r| r.starts_with('='))
                })
            })
        };
        for (name, value) in file.args.iter().filter(|(name, _)| !on_command_line(name)) {
            combined.push(if value.is_empty() {
                format!("--{name}").into()
            } else {
                format!("--{name}={value}").into()
            });
        }
        combined.extend(args.iter().skip(1).cloned());
        Config::from_flags(Flags::try_parse_from(combined)?, rules_of(file))
    }

    /// Reads the rules (expiry, access, quotas) from the configuration file again (SIGHUP,
    /// `/-/reload`).
    ///
    /// # Errors
    /// [`ConfigError::File`] with the line and reason; the caller keeps the old rules.
    pub fn reload_rules(path: &Path) -> Result<FileRules, ConfigError> {
        Ok(rules_of(load_config_file(path)?))
    }

    /// Validates parsed flags.
    ///
    /// # Errors
    /// [`ConfigError`] for anything that cannot be used.
    pub fn from_flags(flags: Flags, rules: FileRules) -> Result<Config, ConfigError> {
        let FileRules {
            expiry,
            access,
            quotas,
            aggregate,
        } = rules;
        if flags.idempotency_window.is_zero() {
            // A zero window would forget every key at once: retries would count twice.
            return Err(ConfigError::Invalid(
                "--aggregate.idempotency-window must be longer than 0".into(),
            ));
        }
        let redis = redis_config(&flags)?;
        let listen = flags
            .listen_address
            .iter()
            .map(|address| parse_listen_address(address))
            .collect::<Result<_, _>>()?;
        let external_path = external_url_path(&flags.external_url)?;
        let route_prefix = compute_route_prefix(&flags.route_prefix, &external_path);
        let external_prefix = compute_route_prefix("", &external_path);
        let flag_values = flag_values(&flags);
        Ok(Config {
            web: WebConfig {
                listen,
                systemd_socket: flags.systemd_socket,
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
                ttl_bounds: TtlBounds {
                    max: (!flags.expiry_max_ttl.is_zero()).then_some(flags.expiry_max_ttl),
                    allow_never: flags.expiry_allow_no_ttl,
                },
                otlp: otlp_settings(&flags)?,
            },
            log_level: flags.log_level,
            log_format: flags.log_format,
            flags: flag_values,
            expiry,
            access,
            quotas,
            aggregate,
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
            idempotency: IdempotencyConfig {
                window: flags.idempotency_window.as_secs_f64(),
                max_keys: flags.idempotency_max_keys,
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

/// The OTLP receiver's settings, `None` when it is off. A promoted attribute must make a
/// grouping label of its own: not `job` or `instance` (they come from `service.*`), nor a
/// reserved or empty name.
fn otlp_settings(flags: &Flags) -> Result<Option<otlp::Settings>, ConfigError> {
    if flags.otlp_disable {
        return Ok(None);
    }
    let escaping = if flags.enable_utf8_names {
        otlp::Escaping::None
    } else {
        otlp::Escaping::Underscores
    };
    let mut promote: Vec<String> = Vec::new();
    for attribute in &flags.otlp_promote_resource_attributes {
        let attribute = attribute.trim();
        if attribute.is_empty() || promote.iter().any(|a| a == attribute) {
            continue;
        }
        let invalid = |why: &str| {
            ConfigError::Invalid(format!(
                "invalid --otlp.promote-resource-attributes {attribute:?}: {why}"
            ))
        };
        let name = otlp::names::label_name(attribute, escaping)
            .ok_or_else(|| invalid("it makes no label name"))?;
        if name == JOB_LABEL || name == INSTANCE_LABEL {
            return Err(invalid(
                "job and instance come from service.name, service.namespace and service.instance.id",
            ));
        }
        if is_reserved_label_name(&name) {
            return Err(invalid("the label name it makes is reserved"));
        }
        promote.push(attribute.to_string());
    }
    Ok(Some(otlp::Settings {
        escaping,
        promote,
        max_labels_per_series: flags.max_labels_per_series,
        max_label_length: flags.max_label_length,
    }))
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

/// The reloadable part of a configuration file.
fn rules_of(file: ConfigFile) -> FileRules {
    FileRules {
        expiry: file.expiry,
        access: file.access,
        quotas: file.quotas,
        aggregate: file.aggregate,
    }
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

/// `:9091` listens on every address, like Go's listener; a host name on the first of its
/// IPv4 addresses (else the first address), as Go's `net.Listen` does.
fn parse_listen_address(address: &str) -> Result<ListenAddress, ConfigError> {
    let invalid = || ConfigError::ListenAddress(address.to_string());
    if let Some(port) = address.strip_prefix(':') {
        return port
            .parse()
            .map(ListenAddress::Wildcard)
            .map_err(|_| invalid());
    }
    let socket: SocketAddr = match address.parse() {
        Ok(socket) => socket,
        Err(_) => {
            use std::net::ToSocketAddrs;
            let resolved: Vec<SocketAddr> =
                address.to_socket_addrs().map_err(|_| invalid())?.collect();
            resolved
                .iter()
                .find(|a| a.is_ipv4())
                .or(resolved.first())
                .copied()
                .ok_or_else(invalid)?
        }
    };
    Ok(if socket.ip().is_unspecified() {
        ListenAddress::Wildcard(socket.port())
    } else {
        ListenAddress::Socket(socket)
    })
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

#[cfg(test)]
mod tests;
