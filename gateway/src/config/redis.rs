//! `--storage=redis` and its flags, checked and turned into the replication's settings;
//! the password comes from a file or the environment.

use std::path::PathBuf;
use std::time::Duration;

use super::flags::{Flags, StorageMode};
use super::status::redact_url;
use super::ConfigError;
use crate::replicate::{LocalCopy, RedisConfig};

/// The Redis settings of `--storage=redis`, `None` for memory mode.
pub(super) fn redis_config(flags: &Flags) -> Result<Option<RedisConfig>, ConfigError> {
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
