//! `/api/v1/groups`: listing by PromQL selector with pages, and the matcher delete behind
//! `--web.enable-admin-api` (dry run, refusals, one change that survives a restart).

use std::collections::BTreeSet;

use crate::helpers::{scratch_dir, spawn_gateway, Gateway};
use crate::persist_helpers::PersistGateway;

/// A query parameter value percent-encoded (everything but unreserved characters).
pub fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// `?match[]=a&match[]=b` plus `extra`.
pub fn query(selectors: &[&str], extra: &str) -> String {
    let mut parts: Vec<String> = selectors
        .iter()
        .map(|s| format!("match%5B%5D={}", encode(s)))
        .collect();
    if !extra.is_empty() {
        parts.push(extra.to_string());
    }
    format!("?{}", parts.join("&"))
}

/// The `job/instance` of each group of a listing, in order.
pub fn names(data: &serde_json::Value) -> Vec<String> {
    data.as_array()
        .unwrap_or_else(|| panic!("not an array: {data}"))
        .iter()
        .map(|g| {
            format!(
                "{}/{}",
                g["labels"]["job"].as_str().unwrap_or(""),
                g["labels"]["instance"].as_str().unwrap_or("")
            )
        })
        .collect()
}

fn push_fleet(gw: &Gateway) {
    for (job, instance) in [
        ("batch", "w1"),
        ("batch", "w2"),
        ("batch", "x1"),
        ("backup", "w1"),
        ("other", "db"),
    ] {
        let path = format!("/metrics/job/{job}/instance/{instance}");
        assert_eq!(
            gw.put(&path, "a 1\nb{k=\"1\"} 2\nb{k=\"2\"} 3\n").status,
            200
        );
    }
}

fn list(gw: &Gateway, selectors: &[&str], extra: &str) -> serde_json::Value {
    let r = gw.get(&format!("/api/v1/groups{}", query(selectors, extra)));
    assert_eq!(r.status, 200, "{}", r.text());
    let json = r.json();
    assert_eq!(json["status"], "success", "{json}");
    json
}

#[test]
fn listing_selects_with_ored_matchers_in_key_order() {
    let gw = spawn_gateway(&[]);
    push_fleet(&gw);
    let all = list(&gw, &[], "");
    // Grouping-key order: labels sorted by name, compared pair by pair (so `instance`
    // before `job`), as `/api/v1/metrics` sorts.
    assert_eq!(
        names(&all["data"]),
        ["other/db", "backup/w1", "batch/w1", "batch/w2", "batch/x1"]
    );
    let first = &all["data"][0];
    assert_eq!(first["series"], 3, "{first}");
    assert!(
        first["last_push"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{first}"
    );
    assert!(all.get("next").is_none(), "{all}");

    let selected = list(
        &gw,
        &[r#"{job="batch",instance=~"w.*"}"#, r#"{job='other'}"#],
        "",
    );
    assert_eq!(
        names(&selected["data"]),
        ["other/db", "batch/w1", "batch/w2"]
    );
    // Anchored: `w` alone matches no instance; an absent label matches as "".
    assert_eq!(
        names(&list(&gw, &[r#"{instance=~"w"}"#], "")["data"]).len(),
        0
    );
    assert_eq!(
        names(&list(&gw, &[r#"{zone="",job!~"b.*"}"#], "")["data"]),
        ["other/db"]
    );
}

#[test]
fn pages_cover_every_group_once() {
    let gw = spawn_gateway(&[]);
    for i in 0..23 {
        assert_eq!(
            gw.put(&format!("/metrics/job/j{i:02}"), "a 1\n").status,
            200
        );
    }
    let mut seen = Vec::new();
    let mut extra = "limit=5".to_string();
    let mut pages = 0;
    loop {
        let page = list(&gw, &[r#"{job=~"j.*"}"#], &extra);
        pages += 1;
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= 5, "{page}");
        seen.extend(
            data.iter()
                .map(|g| g["labels"]["job"].as_str().unwrap().to_string()),
        );
        match page.get("next").and_then(|n| n.as_str()) {
            Some(next) => extra = format!("limit=5&after={}", encode(next)),
            None => break,
        }
        assert!(pages < 10, "paging does not end");
    }
    let expected: Vec<String> = (0..23).map(|i| format!("j{i:02}")).collect();
    assert_eq!(seen, expected);
    assert_eq!(pages, 5);
    let r = gw.get("/api/v1/groups?after=nonsense");
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("after"), "{}", r.text());
}

#[test]
fn delete_needs_the_admin_api() {
    let gw = spawn_gateway(&[]);
    push_fleet(&gw);
    let r = gw.delete(&format!(
        "/api/v1/groups{}",
        query(&[r#"{job="batch"}"#], "")
    ));
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("--web.enable-admin-api"), "{}", r.text());
    assert_eq!(names(&list(&gw, &[], "")["data"]).len(), 5);
}

#[test]
fn delete_removes_exactly_the_matching_groups_after_a_dry_run() {
    let gw = spawn_gateway(&["--web.enable-admin-api"]);
    push_fleet(&gw);
    let selectors = [r#"{job="batch",instance=~"w.*"}"#, r#"{job="backup"}"#];
    let dry = gw.delete(&format!(
        "/api/v1/groups{}",
        query(&selectors, "dry_run=true")
    ));
    assert_eq!(dry.status, 200, "{}", dry.text());
    let dry = dry.json();
    assert_eq!(dry["data"]["dry_run"], true, "{dry}");
    assert_eq!(dry["data"]["deleted"], 0, "{dry}");
    assert_eq!(dry["data"]["matched"], 3, "{dry}");
    assert_eq!(
        names(&dry["data"]["groups"]),
        ["backup/w1", "batch/w1", "batch/w2"]
    );
    assert_eq!(
        names(&list(&gw, &[], "")["data"]).len(),
        5,
        "a dry run deletes nothing"
    );

    let done = gw.delete(&format!("/api/v1/groups{}", query(&selectors, "")));
    assert_eq!(done.status, 200, "{}", done.text());
    let done = done.json();
    assert_eq!(done["data"]["deleted"], 3, "{done}");
    assert_eq!(done["data"]["groups"], dry["data"]["groups"], "{done}");
    assert_eq!(names(&list(&gw, &[], "")["data"]), ["other/db", "batch/x1"]);
    let scrape = gw.scrape();
    assert!(!scrape.contains("instance=\"w1\""), "{scrape}");
    assert!(
        scrape.contains("b{instance=\"x1\",job=\"batch\",k=\"2\"} 3"),
        "{scrape}"
    );

    let again = gw
        .delete(&format!("/api/v1/groups{}", query(&selectors, "")))
        .json();
    assert_eq!(again["data"]["deleted"], 0, "{again}");
}

#[test]
fn delete_refuses_what_would_match_everything_or_cannot_parse() {
    let gw = spawn_gateway(&["--web.enable-admin-api"]);
    push_fleet(&gw);
    let cases: &[(&[&str], &str, &str)] = &[
        (&[], "", "at least one match[]"),
        (&["{}"], "", "wipe"),
        (&[r#"{job=~".*"}"#], "", "wipe"),
        // Every group has a non-empty job: these select all of them too.
        (&[r#"{job!=""}"#], "", "wipe"),
        (&[r#"{job=~".+"}"#], "", "wipe"),
        (&[r#"{job="batch"}"#, r#"{a=""}"#], "", "wipe"),
        (&[r#"{job=~"("}"#], "", "invalid regex"),
        (&["job=\"batch\""], "", "metric name"),
        (&[r#"{job="batch"}"#], "limit=1", "listing only"),
        (&[r#"{job="batch"}"#], "dry_run=maybe", "dry_run"),
    ];
    for (selectors, extra, reason) in cases {
        let r = gw.delete(&format!("/api/v1/groups{}", query(selectors, extra)));
        assert_eq!(r.status, 400, "{selectors:?} {extra}: {}", r.text());
        assert!(r.text().contains(reason), "{selectors:?}: {}", r.text());
    }
    assert_eq!(
        names(&list(&gw, &[], "")["data"]).len(),
        5,
        "nothing was deleted"
    );
    let r = gw.request("POST", "/api/v1/groups", &[], b"");
    assert_eq!(r.status, 405);
}

#[test]
fn a_matcher_delete_survives_a_restart() {
    let dir = scratch_dir("groups-restart");
    let file = dir.join("pg.db");
    let mut gateway = PersistGateway::new(&file, &dir, &["--web.enable-admin-api"]);
    let mut first = gateway.start();
    for i in 0..40 {
        assert_eq!(
            first.put(&format!("/metrics/job/j{i}"), "a 1\n").status,
            200
        );
    }
    let r = first.request(
        "DELETE",
        &format!("/api/v1/groups{}", query(&[r#"{job=~"j1.*|j2"}"#], "")),
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"]["deleted"], 12, "{}", r.text());
    let before = first.request("GET", "/api/v1/groups", b"").json();
    // SIGKILL: the restart replays the log, where the delete is one record.
    first.kill();
    let second = gateway.start();
    let after = second.request("GET", "/api/v1/groups", b"").json();
    let jobs =
        |v: &serde_json::Value| -> BTreeSet<String> { names(&v["data"]).into_iter().collect() };
    assert_eq!(jobs(&after), jobs(&before));
    assert_eq!(jobs(&after).len(), 28);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_page_limit_is_bounded_as_on_the_metrics_pages() {
    let gw = spawn_gateway(&["--web.enable-admin-api"]);
    push_fleet(&gw);
    for (extra, reason) in [
        ("limit=0", "1 to 10000"),
        ("limit=10001", "1 to 10000"),
        ("limit=18446744073709551615", "1 to 10000"),
        ("limit=99999999999999999999999", "whole number"),
        ("limit=-1", "whole number"),
        ("limit=", "whole number"),
        ("limit=five", "whole number"),
    ] {
        let r = gw.get(&format!("/api/v1/groups?{extra}"));
        assert_eq!(r.status, 400, "{extra}: {}", r.text());
        assert!(r.text().contains(reason), "{extra}: {}", r.text());
        // A delete takes no limit at all, in range or not.
        let r = gw.delete(&format!(
            "/api/v1/groups{}",
            query(&[r#"{job="batch"}"#], extra)
        ));
        assert_eq!(r.status, 400, "delete {extra}: {}", r.text());
    }
    assert_eq!(names(&list(&gw, &[], "limit=10000")["data"]).len(), 5);
    assert_eq!(names(&list(&gw, &[], "limit=1")["data"]).len(), 1);
    assert_eq!(
        names(&list(&gw, &[], "")["data"]).len(),
        5,
        "nothing deleted"
    );
}

#[test]
fn groups_pushed_or_deleted_between_pages_neither_repeat_nor_skip_the_others() {
    let gw = spawn_gateway(&[]);
    for job in ["a", "c", "e", "g", "i"] {
        assert_eq!(gw.put(&format!("/metrics/job/{job}"), "x 1\n").status, 200);
    }
    let jobs = |page: &serde_json::Value| -> Vec<String> {
        page["data"]
            .as_array()
            .unwrap_or_else(|| panic!("{page}"))
            .iter()
            .map(|g| g["labels"]["job"].as_str().unwrap_or("").to_string())
            .collect()
    };
    let first = list(&gw, &[], "limit=2");
    assert_eq!(jobs(&first), ["a", "c"]);
    let next = first["next"].as_str().expect("next").to_string();
    // The page's last group goes, one before the cursor and one after it come.
    assert_eq!(gw.delete("/metrics/job/c").status, 202);
    for job in ["b", "d"] {
        assert_eq!(gw.put(&format!("/metrics/job/{job}"), "x 1\n").status, 200);
    }
    let second = list(&gw, &[], &format!("limit=2&after={}", encode(&next)));
    assert_eq!(jobs(&second), ["d", "e"]);
    let next = second["next"].as_str().expect("next").to_string();
    let third = list(&gw, &[], &format!("limit=2&after={}", encode(&next)));
    assert_eq!(jobs(&third), ["g", "i"]);
    assert!(third.get("next").is_none(), "{third}");
}
