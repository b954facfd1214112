//! `--storage=redis` and its flags, checked and turned into the replication's settings;
//! the passwords come from files or the environment; Sentinels replace the URL.

use std::path::PathBuf;
use std::time::Duration;

use super::flags::{Flags, StorageMode};
use super::status::{flag_values, redact_url};
use super::ConfigError;
use crate::replicate::{LocalCopy, RedisConfig, SentinelConfig};

/// The Redis settings of `--storage=redis`, `None` for memory mode.
pub(super) fn redis_config(flags: &Flags) -> Result<Option<RedisConfig>, ConfigError> {
    let invalid = |reason: String| Err(ConfigError::Invalid(reason));
    if flags.storage == StorageMode::Memory {
        if !flags.redis_url.is_empty() || !flags.redis_sentinels.is_empty() {
            return invalid(
                "--storage.redis.url and --storage.redis.sentinels need --storage=redis".into(),
            );
        }
        return Ok(None);
    }
    let sentinels = sentinel_addresses(&flags.redis_sentinels)?;
    match (flags.redis_url.is_empty(), sentinels.is_empty()) {
        (true, true) => {
            return invalid(
                "--storage=redis needs --storage.redis.url or --storage.redis.sentinels".into(),
            )
        }
        (false, false) => {
            return invalid(
                "--storage.redis.url and --storage.redis.sentinels exclude each other".into(),
            )
        }
        _ => {}
    }
    if !sentinels.is_empty() && flags.redis_sentinel_master.is_empty() {
        return invalid("--storage.redis.sentinel-master must not be empty".into());
    }
    if sentinels.is_empty() && !flags.redis_sentinel_password_file.is_empty() {
        return invalid(
            "--storage.redis.sentinel-password-file needs --storage.redis.sentinels".into(),
        );
    }
    if !sentinels.is_empty() {
        // The URL checks below do not apply.
    } else if !(flags.redis_url.starts_with("redis://") || flags.redis_url.starts_with("rediss://"))
    {
        return invalid(format!(
            "invalid --storage.redis.url {:?}: expected redis:// or rediss://",
            redact_url(&flags.redis_url)
        ));
    }
    let password = secret(
        "storage.redis.password-file",
        &flags.redis_password_file,
        REDIS_PASSWORD_ENV,
    )?;
    let sentinel_password = secret(
        "storage.redis.sentinel-password-file",
        &flags.redis_sentinel_password_file,
        REDIS_SENTINEL_PASSWORD_ENV,
    )?;
    if !SNAPSHOT_CHUNK_BYTES.contains(&flags.redis_snapshot_chunk_bytes) {
        return invalid(format!(
            "--storage.redis.snapshot-chunk-bytes must be from {} to {} (Redis's largest value)",
            SNAPSHOT_CHUNK_BYTES.start(),
            SNAPSHOT_CHUNK_BYTES.end()
        ));
    }
    if flags.redis_key_prefix.is_empty() {
        return invalid("--storage.redis.key-prefix must not be empty".into());
    }
    Ok(Some(RedisConfig {
        url: flags.redis_url.clone(),
        password,
        key_prefix: flags.redis_key_prefix.clone(),
        snapshot_interval: flags.redis_snapshot_interval.max(Duration::from_secs(1)),
        snapshot_chunk_bytes: flags.redis_snapshot_chunk_bytes as usize,
        timeout: flags.redis_timeout.max(Duration::from_millis(100)),
        expose: flags.redis_expose,
        check_settings: flag_values(flags)
            .into_iter()
            .filter(|(name, _)| {
                ["push.", "storage.max-", "aggregate."]
                    .iter()
                    .any(|prefix| name.starts_with(prefix))
            })
            .collect(),
        adopt_settings: flags.redis_adopt_settings,
        min_replicas_acks: flags
            .redis_min_replicas_acks
            .unwrap_or(u32::from(!sentinels.is_empty())),
        sentinel: (!sentinels.is_empty()).then(|| SentinelConfig {
            sentinels,
            master: flags.redis_sentinel_master.clone(),
            password: sentinel_password,
        }),
        local_copy: (!flags.persistence_file.is_empty()).then(|| LocalCopy {
            file: PathBuf::from(&flags.persistence_file),
            interval: flags.persistence_interval.max(Duration::from_secs(1)),
        }),
    }))
}

/// The sizes a snapshot chunk may have: small ones make many keys, and Redis takes no value
/// above 512 MiB.
const SNAPSHOT_CHUNK_BYTES: std::ops::RangeInclusive<u64> = 4096..=512 * 1024 * 1024;

/// The environment variable that may hold the Redis password.
pub const REDIS_PASSWORD_ENV: &str = "PUSHGATEWAY_REDIS_PASSWORD";
/// The environment variable that may hold the Sentinels' password.
pub const REDIS_SENTINEL_PASSWORD_ENV: &str = "PUSHGATEWAY_REDIS_SENTINEL_PASSWORD";

/// A password from the file named by `--<flag>` (trailing newline ignored), else from the
/// environment variable `env`; never from the command line.
fn secret(flag: &str, file: &str, env: &str) -> Result<Option<String>, ConfigError> {
    if file.is_empty() {
        return Ok(std::env::var(env).ok().filter(|p| !p.is_empty()));
    }
    let text = std::fs::read_to_string(file)
        .map_err(|e| ConfigError::Invalid(format!("cannot read --{flag} {file}: {e}")))?;
    Ok(Some(text.trim_end_matches(['\r', '\n']).to_string()))
}

/// The `host:port` items of `--storage.redis.sentinels`.
fn sentinel_addresses(list: &str) -> Result<Vec<(String, u16)>, ConfigError> {
    list.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            let parsed = item.rsplit_once(':').and_then(|(host, port)| {
                let host = host.trim_start_matches('[').trim_end_matches(']');
                Some((host.to_string(), port.parse::<u16>().ok()?))
                    .filter(|(host, port)| !host.is_empty() && *port != 0)
            });
            parsed.ok_or_else(|| {
                ConfigError::Invalid(format!(
                    "invalid --storage.redis.sentinels item {item:?}: expected host:port"
                ))
            })
        })
        .collect()
}
