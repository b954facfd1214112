//! `/api/v1/metrics` and `/api/v1/status` in upstream's JSON shapes.

use crate::helpers::{spawn_gateway, Gateway};

fn group(gw: &Gateway, job: &str) -> serde_json::Value {
    let r = gw.get("/api/v1/metrics");
    assert_eq!(r.status, 200);
    let json = r.json();
    json["data"]
        .as_array()
        .expect("data array")
        .iter()
        .find(|g| g["labels"]["job"] == job)
        .cloned()
        .unwrap_or_else(|| panic!("no group {job}: {json}"))
}

#[test]
fn histogram_and_summary_shapes() {
    let gw = spawn_gateway(&[]);
    let body = "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"5\"} 3\n\
                h_bucket{le=\"+Inf\"} 4\nh_sum 7.5\nh_count 4\n\
                # HELP s Sum help.\n# TYPE s summary\ns{quantile=\"0.5\"} 2\ns{quantile=\"0.99\"} 9\ns_sum 10\ns_count 4\n";
    assert_eq!(gw.put("/metrics/job/j", body).status, 200);
    let g = group(&gw, "j");
    let h = &g["h"];
    assert_eq!(h["type"], "HISTOGRAM", "{g}");
    let hm = &h["metrics"][0];
    assert_eq!(
        hm["buckets"],
        serde_json::json!({"1": "2", "5": "3", "+Inf": "4"}),
        "{g}"
    );
    assert_eq!(hm["count"], "4", "{g}");
    assert_eq!(hm["sum"], "7.5", "{g}");
    assert_eq!(
        hm["labels"],
        serde_json::json!({"instance": "", "job": "j"}),
        "{g}"
    );
    let s = &g["s"];
    assert_eq!(s["type"], "SUMMARY", "{g}");
    assert_eq!(s["help"], "Sum help.", "{g}");
    let sm = &s["metrics"][0];
    assert_eq!(
        sm["quantiles"],
        serde_json::json!({"0.5": "2", "0.99": "9"}),
        "{g}"
    );
    assert_eq!(sm["count"], "4", "{g}");
    assert_eq!(sm["sum"], "10", "{g}");
    assert!(
        h["time_stamp"].as_str().is_some_and(|t| t.contains('T')),
        "{g}"
    );
}

#[test]
fn values_use_go_formatting_and_untyped_counter_gauge_types() {
    let gw = spawn_gateway(&[]);
    let body = "u 1000000\n# TYPE c counter\nc 0.00000015\n# TYPE g gauge\ng NaN\n";
    assert_eq!(gw.put("/metrics/job/j", body).status, 200);
    let g = group(&gw, "j");
    assert_eq!(g["u"]["type"], "UNTYPED", "{g}");
    assert_eq!(g["u"]["metrics"][0]["value"], "1e+06", "{g}");
    assert_eq!(g["c"]["type"], "COUNTER", "{g}");
    assert_eq!(g["c"]["metrics"][0]["value"], "1.5e-07", "{g}");
    assert_eq!(g["g"]["type"], "GAUGE", "{g}");
    assert_eq!(g["g"]["metrics"][0]["value"], "NaN", "{g}");
    // Families without HELP carry no help key.
    assert!(g["u"].get("help").is_none(), "{g}");
}

#[test]
fn deleted_groups_disappear_and_labels_are_the_grouping_key() {
    let gw = spawn_gateway(&[]);
    assert_eq!(
        gw.put("/metrics/job/a/instance/i/x@base64/YS9i", "m 1\n")
            .status,
        200
    );
    assert_eq!(
        gw.put("/metrics/job/b", "m{instance=\"body\"} 1\n").status,
        200
    );
    let a = group(&gw, "a");
    assert_eq!(
        a["labels"],
        serde_json::json!({"job": "a", "instance": "i", "x": "a/b"}),
        "{a}"
    );
    // The body's instance is not part of b's grouping key.
    let b = group(&gw, "b");
    assert_eq!(b["labels"], serde_json::json!({"job": "b"}), "{b}");
    assert_eq!(
        gw.delete("/metrics/job/a/instance/i/x@base64/YS9i").status,
        202
    );
    let json = gw.get("/api/v1/metrics").json();
    let groups = json["data"].as_array().unwrap();
    assert_eq!(groups.len(), 1, "{json}");
    assert_eq!(groups[0]["labels"]["job"], "b");
}

#[test]
fn empty_store_is_an_empty_array() {
    let gw = spawn_gateway(&[]);
    let json = gw.get("/api/v1/metrics").json();
    assert_eq!(json, serde_json::json!({"status": "success", "data": []}));
}

#[test]
fn api_sets_cors_headers_and_answers_options() {
    let gw = spawn_gateway(&[]);
    let r = gw.get("/api/v1/status");
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("*"),
        "{:?}",
        r.headers
    );
    assert_eq!(
        r.header("content-type"),
        Some("application/json"),
        "{:?}",
        r.headers
    );
    let o = gw.request("OPTIONS", "/api/v1/metrics", &[], b"");
    assert_eq!(o.status, 200, "{:?}", o.headers);
    assert_eq!(
        o.header("access-control-allow-origin"),
        Some("*"),
        "{:?}",
        o.headers
    );
}

#[test]
fn status_reports_every_flag_with_its_value() {
    let gw = spawn_gateway(&["--push.disable-consistency-check", "--web.route-prefix=/pg"]);
    let json = gw.get("/api/v1/status").json();
    let flags = &json["data"]["flags"];
    assert_eq!(flags["push.disable-consistency-check"], "true", "{json}");
    assert_eq!(flags["web.route-prefix"], "/pg", "{json}");
    assert_eq!(flags["web.telemetry-path"], "/metrics", "{json}");
    assert_eq!(flags["persistence.interval"], "5m0s", "{json}");
    assert!(json["data"]["build_information"].is_object(), "{json}");
}
