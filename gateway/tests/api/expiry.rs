//! Group expiry and the configuration file, end to end: rules from `--config.file`, reload
//! through `/-/reload` and SIGHUP, invalid files refused with the line. TTLs are tiny (the
//! sweep runs every second), so no test waits for a real TTL of any length.

use std::time::Duration;

use crate::helpers::{eventually, pushed_samples, spawn_gateway, Gateway};

fn config_file(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("pgw-expiry-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("pushgateway.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn groups(gw: &Gateway) -> Vec<String> {
    let mut jobs: Vec<String> = pushed_samples(&gw.scrape())
        .keys()
        .filter(|s| s.starts_with("m{"))
        .cloned()
        .collect();
    jobs.sort();
    jobs
}

#[test]
fn rules_expire_matching_groups_only() {
    let file = config_file(
        "rules",
        "[expiry]\n[[expiry.rules]]\nlabels = { job = \"short\" }\nttl = \"1ms\"\n",
    );
    let arg = format!("--config.file={}", file.display());
    let gw = spawn_gateway(&[&arg]);
    assert_eq!(gw.put("/metrics/job/short", "m 1\n").status, 200);
    assert_eq!(gw.put("/metrics/job/long", "m 2\n").status, 200);
    assert!(
        eventually(|| !gw.scrape().contains("job=\"short\"")),
        "{}",
        gw.scrape()
    );
    let text = gw.scrape();
    assert!(text.contains("m{instance=\"\",job=\"long\"} 2"), "{text}");
    assert!(
        text.contains("pushgateway_expired_groups_total 1"),
        "{text}"
    );
}

#[test]
fn reload_applies_new_rules_and_keeps_the_old_ones_on_error() {
    let file = config_file("reload", "[expiry]\n");
    let arg = format!("--config.file={}", file.display());
    let gw = spawn_gateway(&[&arg, "--web.enable-lifecycle"]);
    assert_eq!(gw.put("/metrics/job/a", "m 1\n").status, 200);
    // An invalid file: 500 with the line and the reason; the old (empty) rules stay.
    std::fs::write(&file, "[expiry]\ndefault_ttl = \"soon\"\n").unwrap();
    let r = gw.request("PUT", "/-/reload", &[], b"");
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(r.text().contains("line 2"), "{}", r.text());
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(groups(&gw).len(), 1, "{}", gw.scrape());
    // A valid file: applied at once.
    std::fs::write(&file, "[expiry]\ndefault_ttl = \"1ms\"\n").unwrap();
    assert_eq!(gw.request("PUT", "/-/reload", &[], b"").status, 200);
    assert!(eventually(|| groups(&gw).is_empty()), "{}", gw.scrape());
}

#[test]
fn reload_is_a_lifecycle_endpoint() {
    let gw = spawn_gateway(&[]);
    let r = gw.request("PUT", "/-/reload", &[], b"");
    assert_eq!(r.status, 403, "{}", r.text());
}

#[test]
fn sighup_reloads_the_file() {
    let file = config_file("sighup", "[expiry]\n");
    let arg = format!("--config.file={}", file.display());
    let gw = spawn_gateway(&[&arg]);
    assert_eq!(gw.put("/metrics/job/a", "m 1\n").status, 200);
    std::fs::write(&file, "[expiry]\ndefault_ttl = \"1ms\"\n").unwrap();
    let status = std::process::Command::new("kill")
        .args(["-HUP", &gw.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(eventually(|| groups(&gw).is_empty()), "{}", gw.scrape());
}

#[test]
fn api_shows_the_expiry_time() {
    let file = config_file("api", "[expiry]\ndefault_ttl = \"24h\"\n");
    let arg = format!("--config.file={}", file.display());
    let gw = spawn_gateway(&[&arg]);
    assert_eq!(gw.put("/metrics/job/a", "m 1\n").status, 200);
    let json = gw.get("/api/v1/metrics").json();
    let expires = json["data"][0]["expires_at"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(expires.ends_with('Z') && expires.len() >= 20, "{json}");
}

#[test]
fn invalid_config_files_stop_the_start_with_the_line() {
    let file = config_file("invalid", "[flags]\n\"no.such-flag\" = 1\n");
    let output = std::process::Command::new(crate::helpers::binary())
        .arg(format!("--config.file={}", file.display()))
        .arg("--web.listen-address=127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("line 2") && stderr.contains("no.such-flag"),
        "{stderr}"
    );
}

fn hangup(gw: &Gateway) {
    let status = std::process::Command::new("kill")
        .args(["-HUP", &gw.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn a_failed_sighup_reload_leaves_later_ones_working() {
    let file = config_file("sighup-error", "[expiry]\n");
    let arg = format!("--config.file={}", file.display());
    let gw = spawn_gateway(&[&arg]);
    assert_eq!(gw.put("/metrics/job/a", "m 1\n").status, 200);
    let reload_ok =
        |gw: &Gateway| sample_value(&gw.scrape(), "pushgateway_config_last_reload_successful");
    assert_eq!(reload_ok(&gw).as_deref(), Some("1"));
    // A TTL past Go's limit: refused (it used to panic and end the SIGHUP task).
    std::fs::write(&file, "[expiry]\ndefault_ttl = \"9999999999999999999s\"\n").unwrap();
    hangup(&gw);
    assert!(
        eventually(|| reload_ok(&gw).as_deref() == Some("0")),
        "{}",
        gw.scrape()
    );
    assert_eq!(gw.get("/api/v1/metrics").status, 200);
    assert_eq!(groups(&gw).len(), 1, "{}", gw.scrape());
    std::fs::write(&file, "[expiry]\ndefault_ttl = \"1ms\"\n").unwrap();
    hangup(&gw);
    assert!(eventually(|| groups(&gw).is_empty()), "{}", gw.scrape());
    assert_eq!(reload_ok(&gw).as_deref(), Some("1"));
}

/// The value of an unlabelled sample in a text scrape.
fn sample_value(text: &str, name: &str) -> Option<String> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .map(str::to_string)
}

#[test]
fn the_longest_ttl_shows_in_the_api() {
    let file = config_file("longest", "[expiry]\ndefault_ttl = \"2562047h\"\n");
    let arg = format!("--config.file={}", file.display());
    let gw = spawn_gateway(&[&arg]);
    assert_eq!(gw.put("/metrics/job/a", "m 1\n").status, 200);
    let r = gw.get("/api/v1/metrics");
    assert_eq!(r.status, 200, "{}", r.text());
    let expires = r.json()["data"][0]["expires_at"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(expires.starts_with("2"), "{expires}");
}
