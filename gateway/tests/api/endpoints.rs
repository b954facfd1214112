//! Health, lifecycle, admin, route prefix and the JSON API.

use std::time::Duration;

use crate::helpers::{series, spawn_gateway};

#[test]
fn healthy_and_ready_answer_200() {
    let gw = spawn_gateway(&[]);
    assert_eq!(gw.get("/-/healthy").status, 200);
    assert_eq!(gw.get("/-/ready").status, 200);
}

#[test]
fn quit_is_forbidden_without_the_lifecycle_flag() {
    let mut gw = spawn_gateway(&[]);
    assert_eq!(gw.request("PUT", "/-/quit", &[], b"").status, 403);
    assert_eq!(gw.request("POST", "/-/quit", &[], b"").status, 403);
    assert!(gw.wait_exit(Duration::from_millis(300)).is_none(), "exited");
    assert_eq!(gw.get("/-/healthy").status, 200);
}

#[test]
fn quit_with_get_is_405() {
    let gw = spawn_gateway(&[]);
    assert_eq!(gw.get("/-/quit").status, 405);
    let gw = spawn_gateway(&["--web.enable-lifecycle"]);
    assert_eq!(gw.get("/-/quit").status, 405);
    assert_eq!(gw.get("/-/healthy").status, 200);
}

#[test]
fn quit_with_the_lifecycle_flag_exits_with_code_0() {
    let mut gw = spawn_gateway(&["--web.enable-lifecycle"]);
    assert_eq!(gw.request("PUT", "/-/quit", &[], b"").status, 200);
    let status = gw
        .wait_exit(Duration::from_secs(30))
        .expect("the gateway did not exit within 30 s after /-/quit");
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[test]
fn quit_by_post_also_works() {
    let mut gw = spawn_gateway(&["--web.enable-lifecycle"]);
    assert_eq!(gw.request("POST", "/-/quit", &[], b"").status, 200);
    let status = gw.wait_exit(Duration::from_secs(30)).expect("no exit");
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[test]
fn wipe_is_404_without_the_admin_flag() {
    let gw = spawn_gateway(&[]);
    assert_eq!(gw.put("/metrics/job/j", "a 1\n").status, 200);
    assert_eq!(
        gw.request("PUT", "/api/v1/admin/wipe", &[], b"").status,
        404
    );
    assert!(gw
        .state()
        .contains_key(&series("a", &[("instance", ""), ("job", "j")])));
}

#[test]
fn wipe_with_the_admin_flag_empties_the_store() {
    let gw = spawn_gateway(&["--web.enable-admin-api"]);
    assert_eq!(gw.put("/metrics/job/j", "a 1\n").status, 200);
    assert_eq!(gw.put("/metrics/job/k/x/y", "b 1\n").status, 200);
    let r = gw.request("PUT", "/api/v1/admin/wipe", &[], b"");
    assert!((200..300).contains(&r.status), "{} {}", r.status, r.text());
    let state = gw.state();
    assert!(state.is_empty(), "left after wipe: {state:?}");
    // Pushing works again afterwards.
    assert_eq!(gw.put("/metrics/job/j", "a 2\n").status, 200);
}

#[test]
fn route_prefix_moves_everything() {
    let gw = spawn_gateway(&["--web.route-prefix=/pg"]);
    assert_eq!(
        gw.request_raw("PUT", "/pg/metrics/job/j", b"a 1\n").status,
        200
    );
    let scrape = gw.request_raw("GET", "/pg/metrics", b"");
    assert_eq!(scrape.status, 200);
    assert!(
        scrape
            .text()
            .lines()
            .any(|l| l == "a{instance=\"\",job=\"j\"} 1"),
        "{}",
        scrape.text()
    );
    assert_eq!(gw.request_raw("GET", "/pg/-/healthy", b"").status, 200);
    assert_eq!(gw.request_raw("GET", "/pg/-/ready", b"").status, 200);
    assert_eq!(gw.request_raw("GET", "/metrics", b"").status, 404);
    assert_eq!(
        gw.request_raw("PUT", "/metrics/job/k", b"b 1\n").status,
        404
    );
    assert_eq!(
        gw.request_raw("DELETE", "/pg/metrics/job/j", b"").status,
        202
    );
    let after = gw.request_raw("GET", "/pg/metrics", b"").text();
    assert!(!after.contains("job=\"j\""), "{after}");
}

#[test]
fn api_v1_metrics_lists_groups() {
    let gw = spawn_gateway(&[]);
    let body = "# HELP a Some help.\n# TYPE a gauge\na{x=\"1\"} 1.5\n";
    assert_eq!(gw.put("/metrics/job/j/i/2", body).status, 200);
    let r = gw.get("/api/v1/metrics");
    assert_eq!(r.status, 200);
    let json = r.json();
    assert_eq!(json["status"], "success", "{json}");
    let groups = json["data"].as_array().expect("data is an array");
    assert_eq!(groups.len(), 1, "{json}");
    let g = &groups[0];
    assert_eq!(
        g["labels"],
        serde_json::json!({"job": "j", "i": "2"}),
        "{g}"
    );
    assert_eq!(g["last_push_successful"], true, "{g}");
    let a = &g["a"];
    assert_eq!(a["type"], "GAUGE", "{g}");
    assert_eq!(a["help"], "Some help.", "{g}");
    let metrics = a["metrics"].as_array().expect("metrics array");
    assert_eq!(metrics.len(), 1);
    assert_eq!(metrics[0]["value"], "1.5", "{g}");
    assert_eq!(
        metrics[0]["labels"],
        serde_json::json!({"i": "2", "instance": "", "job": "j", "x": "1"}),
        "{g}"
    );
    assert!(
        g["push_time_seconds"]["metrics"][0]["value"].is_string(),
        "{g}"
    );
    assert_eq!(
        g["push_failure_time_seconds"]["metrics"][0]["value"], "0",
        "{g}"
    );
}

#[test]
fn api_v1_status_has_flags_and_start_time() {
    let gw = spawn_gateway(&["--web.enable-admin-api"]);
    let r = gw.get("/api/v1/status");
    assert_eq!(r.status, 200);
    let json = r.json();
    assert_eq!(json["status"], "success", "{json}");
    let flags = &json["data"]["flags"];
    assert!(flags.is_object(), "{json}");
    assert_eq!(flags["web.enable-admin-api"], "true", "{json}");
    assert_eq!(flags["web.enable-lifecycle"], "false", "{json}");
    // As given on the command line (the harness starts gateways on port 0), like upstream.
    assert_eq!(flags["web.listen-address"], "127.0.0.1:0", "{json}");
    let start = json["data"]["start_time"]
        .as_str()
        .expect("start_time string");
    assert!(start.len() >= 20 && start.as_bytes()[10] == b'T', "{start}");
}

#[test]
fn quit_under_a_route_prefix() {
    let mut gw = spawn_gateway(&["--web.enable-lifecycle", "--web.route-prefix=/pg"]);
    assert_eq!(gw.request_raw("PUT", "/-/quit", b"").status, 404);
    assert!(gw.wait_exit(Duration::from_millis(200)).is_none());
    assert_eq!(gw.request_raw("PUT", "/pg/-/quit", b"").status, 200);
    let status = gw.wait_exit(Duration::from_secs(30)).expect("no exit");
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[test]
fn malformed_push_paths_get_400_and_change_nothing() {
    let gw = spawn_gateway(&[]);
    assert_eq!(gw.put("/metrics/job/j", "a 1\n").status, 200);
    let before = gw.state();
    for (path, reason) in [
        ("/metrics/job/j/v/%zz", "invalid URL escape"),
        ("/metrics/job/j/v/%", "invalid URL escape"),
        ("/metrics/job/j%4/v/x", "invalid URL escape"),
        (
            "/metrics/job/j/a//b/c",
            "empty segment in the grouping path \"/a//b/c\"",
        ),
        ("/metrics/job/j/a%2F%2Fb/c", "empty segment"),
    ] {
        let r = gw.put(path, "a 2\n");
        assert_eq!(r.status, 400, "{path}: {}", r.text());
        assert!(r.text().contains(reason), "{path}: {}", r.text());
    }
    assert_eq!(gw.state(), before);
    // A trailing empty value is still an empty label value, as upstream.
    assert_eq!(gw.put("/metrics/job/j/a/", "a 3\n").status, 200);
}

#[test]
fn options_answers_200_with_allow_on_routed_paths() {
    let gw = spawn_gateway(&["--web.route-prefix=/pg"]);
    for (path, allow) in [
        ("/metrics/job/j", "DELETE, OPTIONS, POST, PUT"),
        ("/metrics/job@base64/YQ/a/b", "DELETE, OPTIONS, POST, PUT"),
        ("/metrics", "GET, OPTIONS"),
        ("/-/healthy", "GET, OPTIONS"),
        ("/-/quit", "GET, OPTIONS, POST, PUT"),
    ] {
        let r = gw.request("OPTIONS", path, &[], b"");
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert_eq!(r.header("allow"), Some(allow), "{path}");
        assert!(r.body.is_empty(), "{path}");
    }
    assert_eq!(gw.request("OPTIONS", "/nowhere", &[], b"").status, 404);
}

#[test]
fn api_v1_redirects_and_wipe_refuses_other_methods() {
    let gw = spawn_gateway(&["--web.enable-admin-api", "--web.route-prefix=/pg"]);
    let r = gw.get("/api/v1");
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("/pg/api/v1/"));
    for method in ["GET", "POST", "DELETE"] {
        let r = gw.request(method, "/api/v1/admin/wipe", &[], b"");
        assert_eq!(r.status, 405, "{method}");
    }
    // Without the admin API the endpoint does not exist.
    let plain = spawn_gateway(&[]);
    assert_eq!(plain.get("/api/v1/admin/wipe").status, 404);
}

#[test]
fn api_keeps_the_sign_of_negative_zero() {
    let gw = spawn_gateway(&[]);
    assert_eq!(gw.put("/metrics/job/j", "z -0\n").status, 200);
    let data = gw.get("/api/v1/metrics").json();
    let value = &data["data"][0]["z"]["metrics"][0]["value"];
    assert_eq!(value, "-0", "{data}");
    // The exposition writes 0, as upstream's.
    assert!(gw.scrape().contains("z{instance=\"\",job=\"j\"} 0\n"));
}
