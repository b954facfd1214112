//! `Pushgateway-TTL`: a push sets its own group's TTL over the `[expiry]` rules, a later
//! push without the header falls back to them, bad values are 400, and the TTL survives a
//! restart. Deadlines are read from `expires_at` in `/api/v1/metrics` (no waiting for a
//! TTL), and the only TTLs waited for are a few milliseconds long.

use crate::helpers::{eventually, scratch_dir, spawn_gateway, Gateway};
use crate::persist_helpers::PersistGateway;

const TTL: &str = "Pushgateway-TTL";

fn config_file(name: &str, text: &str) -> std::path::PathBuf {
    let dir = scratch_dir(&format!("ttl-{name}"));
    let path = dir.join("pushgateway.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn push_with_ttl(gw: &Gateway, method: &str, job: &str, ttl: Option<&str>) -> (u16, String) {
    let headers: Vec<(&str, &str)> = ttl.map(|t| (TTL, t)).into_iter().collect();
    let r = gw.request(method, &format!("/metrics/job/{job}"), &headers, b"m 1\n");
    (r.status, r.text())
}

/// `expires_at` of a group in `/api/v1/metrics`, if it has one.
fn expires_at(metrics: &serde_json::Value, job: &str) -> Option<String> {
    let group = metrics["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["labels"]["job"] == job)
        .unwrap_or_else(|| panic!("no group {job}: {metrics}"));
    group["expires_at"].as_str().map(str::to_string)
}

/// Seconds from the group's last push to its `expires_at`.
fn ttl_of(gw: &Gateway, job: &str) -> Option<f64> {
    let metrics = gw.get("/api/v1/metrics").json();
    let group = metrics["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["labels"]["job"] == job)
        .cloned()
        .unwrap_or_else(|| panic!("no group {job}: {metrics}"));
    let pushed: f64 = group["push_time_seconds"]["metrics"][0]["value"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let deadline = unix_of_rfc3339(group["expires_at"].as_str()?);
    Some((deadline - pushed).round())
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction]Z` to Unix seconds (whole seconds are enough here).
fn unix_of_rfc3339(text: &str) -> f64 {
    let n = |range: std::ops::Range<usize>| -> i64 { text[range].parse().unwrap() };
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let frac: f64 = text[19..text.len() - 1]
        .strip_prefix('.')
        .map_or(0.0, |f| format!("0.{f}").parse().unwrap());
    (days * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19)) as f64 + frac
}

#[test]
fn the_header_overrides_the_rules_until_a_push_without_it() {
    let file = config_file(
        "override",
        "[expiry]\ndefault_ttl = \"1h\"\n[[expiry.rules]]\nlabels = { job = \"short\" }\nttl = \"1ms\"\n",
    );
    let gw = spawn_gateway(&[&format!("--config.file={}", file.display())]);
    assert_eq!(push_with_ttl(&gw, "PUT", "other", Some("90m")).0, 200);
    assert_eq!(ttl_of(&gw, "other"), Some(5400.0));
    assert_eq!(push_with_ttl(&gw, "POST", "other", None).0, 200);
    assert_eq!(
        ttl_of(&gw, "other"),
        Some(3600.0),
        "back to the default rule"
    );
    // A rule of 1 ms is outlived with a header, then applies again after a push without.
    assert_eq!(push_with_ttl(&gw, "POST", "short", Some("10h")).0, 200);
    assert_eq!(ttl_of(&gw, "short"), Some(36_000.0));
    assert_eq!(push_with_ttl(&gw, "PUT", "short", None).0, 200);
    assert!(
        eventually(|| !gw.scrape().contains("job=\"short\"")),
        "{}",
        gw.scrape()
    );
    assert!(gw.scrape().contains("job=\"other\""));
}

#[test]
fn a_short_header_ttl_expires_without_any_rule() {
    let gw = spawn_gateway(&[]);
    assert_eq!(push_with_ttl(&gw, "PUT", "brief", Some("1ms")).0, 200);
    assert_eq!(push_with_ttl(&gw, "PUT", "stays", None).0, 200);
    assert!(
        eventually(|| !gw.scrape().contains("job=\"brief\"")),
        "{}",
        gw.scrape()
    );
    assert!(gw.scrape().contains("job=\"stays\""));
    assert_eq!(ttl_of(&gw, "stays"), None);
}

#[test]
fn bad_values_are_400_and_change_nothing() {
    let gw = spawn_gateway(&["--expiry.max-ttl=1h"]);
    assert_eq!(push_with_ttl(&gw, "PUT", "g", Some("30m")).0, 200);
    for (value, reason) in [
        ("soon", "invalid Pushgateway-TTL"),
        ("-5s", "invalid Pushgateway-TTL"),
        ("10", "missing unit"),
        ("0", "--expiry.allow-no-ttl"),
        ("1h1s", "--expiry.max-ttl"),
    ] {
        for method in ["PUT", "POST"] {
            let (status, text) = push_with_ttl(&gw, method, "g", Some(value));
            assert_eq!(status, 400, "{value}: {text}");
            assert!(text.contains(reason), "{value}: {text}");
        }
    }
    assert_eq!(
        ttl_of(&gw, "g"),
        Some(1800.0),
        "the stored TTL is unchanged"
    );
    let status = gw.get("/api/v1/status").json();
    assert_eq!(
        status["data"]["flags"]["expiry.max-ttl"], "1h0m0s",
        "{status}"
    );
    assert_eq!(
        status["data"]["flags"]["expiry.allow-no-ttl"], "false",
        "{status}"
    );
}

#[test]
fn zero_means_never_only_when_allowed() {
    let file = config_file("never", "[expiry]\ndefault_ttl = \"1ms\"\n");
    let gw = spawn_gateway(&[
        &format!("--config.file={}", file.display()),
        "--expiry.allow-no-ttl",
    ]);
    assert_eq!(push_with_ttl(&gw, "PUT", "forever", Some("0")).0, 200);
    assert_eq!(push_with_ttl(&gw, "PUT", "brief", None).0, 200);
    assert!(
        eventually(|| !gw.scrape().contains("job=\"brief\"")),
        "{}",
        gw.scrape()
    );
    assert!(gw.scrape().contains("job=\"forever\""));
    assert_eq!(ttl_of(&gw, "forever"), None);
}

#[test]
fn the_ttl_survives_a_restart() {
    let dir = scratch_dir("ttl-restart");
    let file = dir.join("pg.db");
    let mut gateway = PersistGateway::new(&file, &dir, &[]);
    let mut first = gateway.start();
    let put = |instance: &crate::persist_helpers::Instance, job: &str, ttl: &str| {
        let r = instance.request_with(
            "PUT",
            &format!("/metrics/job/{job}"),
            &[(TTL, ttl)],
            b"m 1\n",
        );
        assert_eq!(r.status, 200, "{}", r.text());
    };
    put(&first, "logged", "7h");
    let before = first.request("GET", "/api/v1/metrics", b"").json();
    // SIGKILL: restored from the log.
    first.kill();
    let mut second = gateway.start();
    let after = second.request("GET", "/api/v1/metrics", b"").json();
    assert_eq!(expires_at(&after, "logged"), expires_at(&before, "logged"));
    assert!(expires_at(&after, "logged").is_some(), "{after}");
    put(&second, "snapshotted", "9h");
    let before = second.request("GET", "/api/v1/metrics", b"").json();
    // SIGTERM: the final snapshot holds both.
    assert!(second.terminate().success());
    let third = gateway.start();
    let after = third.request("GET", "/api/v1/metrics", b"").json();
    for job in ["logged", "snapshotted"] {
        assert_eq!(expires_at(&after, job), expires_at(&before, job), "{job}");
        assert!(expires_at(&after, job).is_some(), "{after}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
