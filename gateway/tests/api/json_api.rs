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

/// A native histogram's sparse buckets in `/api/v1/metrics`, in upstream 1.8's shape
/// (`[boundaries, lower, upper, count]`, negative, zero, positive, empty ones left out).
#[test]
fn native_histogram_buckets_in_upstreams_shape() {
    use gateway::proto;
    use prost::Message;
    let span = |offset, length| proto::BucketSpan {
        offset: Some(offset),
        length: Some(length),
    };
    let family = proto::MetricFamily {
        name: Some("native_seconds".into()),
        help: Some("A native histogram.".into()),
        r#type: Some(proto::MetricType::Histogram as i32),
        metric: vec![proto::Metric {
            histogram: Some(proto::Histogram {
                sample_count: Some(6),
                sample_sum: Some(5.5),
                schema: Some(0),
                zero_threshold: Some(0.001),
                zero_count: Some(1),
                negative_span: vec![span(0, 1)],
                negative_delta: vec![1],
                // Buckets 0 (1), 1 (0: left out), 2 (3).
                positive_span: vec![span(0, 3)],
                positive_delta: vec![1, -1, 3],
                ..Default::default()
            }),
            ..Default::default()
        }],
        unit: None,
    };
    let mut body = Vec::new();
    family.encode_length_delimited(&mut body).unwrap();
    let gw = spawn_gateway(&[]);
    let content_type =
        "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";
    let push = gw.request(
        "PUT",
        "/metrics/job/native",
        &[("Content-Type", content_type)],
        &body,
    );
    assert_eq!(push.status, 200, "{}", push.text());
    let json = gw.get("/api/v1/metrics").json();
    let metric = &json["data"][0]["native_seconds"]["metrics"][0];
    assert_eq!(
        metric["buckets"],
        serde_json::json!([
            [1, "-1", "-0.5", "1"],
            [3, "-0.001", "0.001", "1"],
            [0, "0.5", "1", "1"],
            [0, "2", "4", "3"],
        ]),
        "{json}"
    );
    assert_eq!(metric["count"], "6");
    assert_eq!(metric["sum"], "5.5");
}
