//! The flag values shown by `/api/v1/status` and the status page, as upstream shows them,
//! with secrets redacted.

use super::flags::Flags;
use crate::duration::format_flag_duration;

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

/// Every flag's value as given, sorted by name.
pub(super) fn flag_values(flags: &Flags) -> Vec<(String, String)> {
    let duration = format_flag_duration;
    let mut values = vec![
        ("web.listen-address", flags.listen_address.join(",")),
        ("web.systemd-socket", flags.systemd_socket.to_string()),
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
        (
            "aggregate.idempotency-window",
            duration(flags.idempotency_window),
        ),
        (
            "aggregate.idempotency-max-keys",
            flags.idempotency_max_keys.to_string(),
        ),
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
        ("expiry.max-ttl", duration(flags.expiry_max_ttl)),
        ("expiry.allow-no-ttl", flags.expiry_allow_no_ttl.to_string()),
        ("otlp.disable", flags.otlp_disable.to_string()),
        (
            "otlp.promote-resource-attributes",
            flags.otlp_promote_resource_attributes.join(","),
        ),
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
        (
            "storage.redis.snapshot-chunk-bytes",
            flags.redis_snapshot_chunk_bytes.to_string(),
        ),
        ("storage.redis.timeout", duration(flags.redis_timeout)),
        (
            "storage.redis.expose",
            format!("{:?}", flags.redis_expose).to_ascii_lowercase(),
        ),
        (
            "storage.redis.adopt-settings",
            flags.redis_adopt_settings.to_string(),
        ),
        ("storage.redis.sentinels", flags.redis_sentinels.clone()),
        (
            "storage.redis.sentinel-master",
            flags.redis_sentinel_master.clone(),
        ),
        (
            "storage.redis.sentinel-password-file",
            flags.redis_sentinel_password_file.clone(),
        ),
        (
            "storage.redis.min-replicas-acks",
            flags
                .redis_min_replicas_acks
                .map_or_else(String::new, |n| n.to_string()),
        ),
        ("config.file", flags.config_file.clone()),
    ];
    values.sort();
    values
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}
