use super::*;

fn parse(args: &[&str]) -> Result<Config, ConfigError> {
    Config::from_args(std::iter::once("pushgateway").chain(args.iter().copied()))
}

#[test]
fn otlp_receiver_flags() {
    let on = parse(&[]).unwrap().web.otlp.unwrap();
    assert_eq!(on.escaping, otlp::Escaping::Underscores);
    assert!(on.promote.is_empty());
    assert!(parse(&["--otlp.disable"]).unwrap().web.otlp.is_none());
    let promoted = parse(&[
        "--otlp.promote-resource-attributes=a.b, c",
        "--otlp.promote-resource-attributes=c,d",
        "--push.enable-utf8-names",
    ])
    .unwrap()
    .web
    .otlp
    .unwrap();
    assert_eq!(promoted.promote, ["a.b", "c", "d"]);
    assert_eq!(promoted.escaping, otlp::Escaping::None);
    for bad in ["job", "instance", "__x__", "___"] {
        let flag = format!("--otlp.promote-resource-attributes={bad}");
        let error = parse(&[&flag]).unwrap_err().to_string();
        assert!(
            error.contains("--otlp.promote-resource-attributes"),
            "{bad}: {error}"
        );
    }
}

#[test]
fn defaults_match_upstream() {
    let config = parse(&[]).expect("defaults parse");
    assert_eq!(config.web.listen, [ListenAddress::Wildcard(9091)]);
    assert!(!config.web.systemd_socket);
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
fn idempotency_flags() {
    let config = parse(&[]).expect("defaults");
    assert_eq!(config.idempotency.window, 600.0);
    assert_eq!(config.idempotency.max_keys, 100_000);
    let config = parse(&[
        "--aggregate.idempotency-window=90s",
        "--aggregate.idempotency-max-keys=5",
    ])
    .expect("parses");
    assert_eq!(
        (config.idempotency.window, config.idempotency.max_keys),
        (90.0, 5)
    );
    assert!(matches!(
        parse(&["--aggregate.idempotency-window=0s"]),
        Err(ConfigError::Invalid(_))
    ));
}

#[test]
fn redis_flags_that_cannot_work_are_refused() {
    for args in [
        &["--storage=redis"][..],
        &["--storage.redis.url=redis://localhost:6379"],
        &["--storage=redis", "--storage.redis.url=localhost:6379"],
        &["--storage.redis.sentinels=s:26379"],
        &[
            "--storage=redis",
            "--storage.redis.url=redis://r",
            "--storage.redis.sentinels=s:26379",
        ],
        &["--storage=redis", "--storage.redis.sentinels=s"],
        &["--storage=redis", "--storage.redis.sentinels=s:0"],
        &["--storage=redis", "--storage.redis.sentinels=:26379"],
        &[
            "--storage=redis",
            "--storage.redis.sentinels=s:26379",
            "--storage.redis.sentinel-master=",
        ],
        &[
            "--storage=redis",
            "--storage.redis.url=redis://r",
            "--storage.redis.sentinel-password-file=/x",
        ],
        &[
            "--storage=redis",
            "--storage.redis.url=redis://r",
            "--storage.redis.snapshot-chunk-bytes=4095",
        ],
        &[
            "--storage=redis",
            "--storage.redis.url=redis://r",
            "--storage.redis.snapshot-chunk-bytes=536870913",
        ],
    ] {
        assert!(
            matches!(parse(args), Err(ConfigError::Invalid(_))),
            "{args:?}"
        );
    }
    let sentinel = parse(&[
        "--storage=redis",
        "--storage.redis.sentinels=a:26379, [::1]:26380",
    ])
    .expect("sentinels")
    .redis
    .expect("redis mode");
    assert_eq!(
        sentinel.min_replicas_acks, 1,
        "WAIT 1 by default with Sentinels"
    );
    let sentinel = sentinel.sentinel.expect("sentinel config");
    assert_eq!(
        sentinel.sentinels,
        vec![("a".to_string(), 26379), ("::1".to_string(), 26380)]
    );
    assert_eq!(sentinel.master, "mymaster");
    let config = parse(&["--storage=redis", "--storage.redis.url=rediss://r:6380/2"])
        .expect("valid redis flags");
    let redis = config.redis.expect("redis mode");
    assert_eq!(redis.key_prefix, "pushgateway");
    assert_eq!(redis.expose, ExposeMode::All);
    assert_eq!(
        redis.min_replicas_acks, 0,
        "no WAIT by default without Sentinels"
    );
    assert!(redis.local_copy.is_none());
    assert_eq!(redis.snapshot_chunk_bytes, 4 * 1024 * 1024);
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
        "[flags]\n\"web.telemetry-path\" = \"/from-file\"\n\"web.route-prefix\" = \"/pg\"\n\"web.enable-admin-api\" = true\n\"web.listen-address\" = \":1\"\n",
    )
    .expect("write");
    let file_arg = format!("--config.file={}", path.display());
    let config = parse(&[&file_arg, "--web.telemetry-path=/from-cli"]).expect("parses");
    assert_eq!(config.web.telemetry_path, "/from-cli");
    assert_eq!(config.web.listen, [ListenAddress::Wildcard(1)]);
    let config = parse(&[&file_arg, "--web.listen-address", ":2"]).expect("parses");
    assert_eq!(config.web.listen, [ListenAddress::Wildcard(2)]);
    assert_eq!(config.web.route_prefix, "/pg");
    assert!(config.web.enable_admin_api);
    assert!(matches!(
        parse(&["--config.file=/nonexistent/pgw.toml"]),
        Err(ConfigError::File(_))
    ));
    let _ = std::fs::remove_file(&path);
}

#[test]
fn listen_addresses() {
    let socket = |s: &str| ListenAddress::Socket(s.parse().expect("socket address"));
    for (args, expected) in [
        (&[][..], vec![ListenAddress::Wildcard(9091)]),
        (
            &["--web.listen-address=:0"][..],
            vec![ListenAddress::Wildcard(0)],
        ),
        (
            &["--web.listen-address=0.0.0.0:80"][..],
            vec![ListenAddress::Wildcard(80)],
        ),
        (
            &["--web.listen-address=[::]:80"][..],
            vec![ListenAddress::Wildcard(80)],
        ),
        (
            &["--web.listen-address=[::1]:80"][..],
            vec![socket("[::1]:80")],
        ),
        (
            &[
                "--web.listen-address=127.0.0.1:1",
                "--web.listen-address=:2",
            ][..],
            vec![socket("127.0.0.1:1"), ListenAddress::Wildcard(2)],
        ),
    ] {
        assert_eq!(parse(args).expect("valid").web.listen, expected, "{args:?}");
    }
    for bad in [":", ":x", ":65536", "1.2.3.4", "[::1]", "host:"] {
        assert!(
            matches!(
                parse(&[&format!("--web.listen-address={bad}")]),
                Err(ConfigError::ListenAddress(_))
            ),
            "{bad}"
        );
    }
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
