//! Quotas (`[[quota]]` in `--config.file`), end to end: a push past a quota is 429 with the
//! quota and its usage and changes nothing, usage and limits are exported, deletes, wipes
//! and expiry give room back, usage is counted again after a restart from the persistence
//! file and after a reload, and an invalid reload keeps the quotas in force.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::helpers::{samples, scratch_dir, spawn_gateway, Gateway};

const TEAM_A: &str = "[[quota]]\nname = \"team-a\"\nlabels_regex = { job = \"team-a-.*\" }\nmax_series = 5\nmax_groups = 2\n";

fn config(dir: &std::path::Path, text: &str) -> PathBuf {
    let path = dir.join("pushgateway.toml");
    let tmp = dir.join("pushgateway.toml.tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    path
}

/// `m{i="0"} 1` ... for `n` series.
fn body(n: usize) -> String {
    (0..n).map(|i| format!("m{{i=\"{i}\"}} 1\n")).collect()
}

/// The quota's exported usage and limits: (series, groups, max series, max groups).
fn usage(gw: &Gateway, quota: &str) -> (String, String, String, String) {
    let all = samples(&gw.scrape());
    let value = |name: &str| {
        all.get(&format!("{name}{{quota=\"{quota}\"}}"))
            .cloned()
            .unwrap_or_default()
    };
    (
        value("pushgateway_quota_series"),
        value("pushgateway_quota_groups"),
        value("pushgateway_quota_max_series"),
        value("pushgateway_quota_max_groups"),
    )
}

fn quota_usage(series: &str, groups: &str) -> (String, String, String, String) {
    (series.into(), groups.into(), "5".into(), "2".into())
}

#[test]
fn a_push_past_a_quota_is_429_and_changes_nothing() {
    let dir = scratch_dir("quota");
    let file = config(&dir, TEAM_A);
    let gw = spawn_gateway(&[
        &format!("--config.file={}", file.display()),
        "--web.enable-admin-api",
    ]);
    assert_eq!(gw.put("/metrics/job/team-a-1", &body(3)).status, 200);
    assert_eq!(
        gw.put("/metrics/job/other", &body(50)).status,
        200,
        "not counted"
    );
    assert_eq!(usage(&gw, "team-a"), quota_usage("3", "1"));
    let before = gw.state();

    let refused = gw.put("/metrics/job/team-a-2", &body(3));
    assert_eq!(refused.status, 429, "{}", refused.text());
    let why = refused.text();
    assert!(
        why.contains("\"team-a\"") && why.contains("5 series") && why.contains("3 are stored"),
        "{why}"
    );
    assert_eq!(gw.state(), before, "no series, no failure time, no group");

    // POST adds to the group: refused too when it grows past the limit.
    assert_eq!(
        gw.post("/metrics/job/team-a-1", "n 1\nn2 1\nn3 1\n").status,
        429
    );
    assert_eq!(gw.post("/metrics/job/team-a-1", "n 1\nn2 1\n").status, 200);
    assert_eq!(usage(&gw, "team-a"), quota_usage("5", "1"));
    // Replacing a group by one as large always fits.
    assert_eq!(gw.put("/metrics/job/team-a-1", &body(5)).status, 200);

    // Groups: the second fits (one series), the third not.
    assert_eq!(gw.put("/metrics/job/team-a-1", &body(1)).status, 200);
    assert_eq!(gw.put("/metrics/job/team-a-2", &body(1)).status, 200);
    let third = gw.put("/metrics/job/team-a-3", &body(1));
    assert_eq!(third.status, 429);
    assert!(third.text().contains("2 groups"), "{}", third.text());
    assert_eq!(usage(&gw, "team-a"), quota_usage("2", "2"));

    // A delete gives room back; so does the wipe.
    assert_eq!(gw.delete("/metrics/job/team-a-2").status, 202);
    assert_eq!(gw.put("/metrics/job/team-a-3", &body(1)).status, 200);
    assert_eq!(
        gw.request("PUT", "/api/v1/admin/wipe", &[], b"").status,
        202
    );
    assert_eq!(usage(&gw, "team-a"), quota_usage("0", "0"));
}

#[test]
fn usage_is_counted_again_after_a_restart_and_a_reload() {
    let dir = scratch_dir("quota-restart");
    let file = config(&dir, TEAM_A);
    let args = [
        format!("--config.file={}", file.display()),
        format!("--persistence.file={}", dir.join("pg.db").display()),
        "--web.enable-lifecycle".to_string(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let gw = spawn_gateway(&args);
    assert_eq!(gw.put("/metrics/job/team-a-1", &body(2)).status, 200);
    assert_eq!(gw.put("/metrics/job/team-a-2", &body(2)).status, 200);
    drop(gw); // SIGKILL: acknowledged pushes are durable

    let gw = spawn_gateway(&args);
    assert_eq!(usage(&gw, "team-a"), quota_usage("4", "2"));
    assert_eq!(gw.put("/metrics/job/team-a-3", &body(1)).status, 429);
    assert_eq!(gw.put("/metrics/job/team-a-1", &body(4)).status, 429);

    // A reload counts what is stored under the new rules.
    config(
        &dir,
        "[[quota]]\nname = \"team-a-1\"\nlabels = { job = \"team-a-1\" }\nmax_groups = 1\n",
    );
    assert_eq!(gw.post("/-/reload", "").status, 200);
    let all = samples(&gw.scrape());
    assert_eq!(
        all.get("pushgateway_quota_series{quota=\"team-a-1\"}")
            .map(String::as_str),
        Some("2")
    );
    assert!(
        !all.keys().any(|k| k.contains("quota=\"team-a\"")),
        "old quota gone"
    );
    assert_eq!(gw.put("/metrics/job/team-a-3", &body(1)).status, 200);

    // An invalid file keeps the quotas in force.
    config(&dir, "[[quota]]\nlabels = { job = \"x\" }\n");
    let refused = gw.post("/-/reload", "");
    assert_eq!(refused.status, 500);
    assert!(
        refused.text().contains("max_series or max_groups"),
        "{}",
        refused.text()
    );
    assert_eq!(
        gw.put("/metrics/job/team-a-1/instance/second", &body(1))
            .status,
        429
    );
}

#[test]
fn expiry_gives_room_back() {
    let dir = scratch_dir("quota-expiry");
    let file = config(
        &dir,
        &format!("{TEAM_A}\n[expiry]\n[[expiry.rules]]\nlabels = {{ job = \"team-a-1\" }}\nttl = \"1ms\"\n"),
    );
    let gw = spawn_gateway(&[&format!("--config.file={}", file.display())]);
    assert_eq!(gw.put("/metrics/job/team-a-1", &body(5)).status, 200);
    let deadline = Instant::now() + Duration::from_secs(30);
    while usage(&gw, "team-a").0 != "0" {
        assert!(
            Instant::now() < deadline,
            "never expired: {:?}",
            usage(&gw, "team-a")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(gw.put("/metrics/job/team-a-2", &body(5)).status, 200);
}
