//! The OTLP/HTTP metrics receiver (`POST /api/v1/otlp/v1/metrics`): protobuf and JSON
//! exports stored as POSTs to one group per resource, delta families added (with an
//! `Idempotency-Key`), partial success for refused points, gzip, 400/413/415, basic auth, the route prefix and `--otlp.disable`.

use std::io::Write;

use gateway::otlp::proto::{
    self, exponential_histogram_data_point::Buckets, metric::Data, AggregationTemporality,
    ExportMetricsServiceRequest, ExportMetricsServiceResponse, InstrumentationScope, KeyValue,
    NumberDataPoint, Resource, ResourceMetrics, ScopeMetrics,
};
use prost::Message;

use crate::helpers::{eventually, scratch_dir, series, spawn_gateway, Gateway, Response};

const PATH: &str = "/api/v1/otlp/v1/metrics";
const PROTOBUF: &str = "application/x-protobuf";
const CUMULATIVE: i32 = AggregationTemporality::Cumulative as i32;

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue::string(key, value)
}

fn number(attributes: Vec<KeyValue>, value: f64) -> NumberDataPoint {
    NumberDataPoint::double(attributes, value, 1_700_000_000_000_000_000)
}

fn metric(name: &str, unit: &str, data: Data) -> proto::Metric {
    proto::Metric {
        name: name.into(),
        description: String::new(),
        unit: unit.into(),
        data: Some(data),
    }
}

fn sum(points: Vec<NumberDataPoint>, monotonic: bool, temporality: i32) -> Data {
    Data::Sum(proto::Sum {
        data_points: points,
        aggregation_temporality: temporality,
        is_monotonic: monotonic,
    })
}

fn resource(service: &str, instance: &str, metrics: Vec<proto::Metric>) -> ResourceMetrics {
    ResourceMetrics {
        resource: Some(Resource {
            attributes: vec![
                kv("service.name", service),
                kv("service.instance.id", instance),
                kv("host.name", "h1"),
            ],
        }),
        scope_metrics: vec![ScopeMetrics {
            scope: Some(InstrumentationScope {
                name: "meter".into(),
                version: "1.0".into(),
            }),
            metrics,
        }],
    }
}

/// Every kind an SDK exports: a counter, an up-down counter, a gauge, an explicit and an
/// exponential histogram.
fn every_kind() -> Vec<proto::Metric> {
    vec![
        metric(
            "jobs.done",
            "{job}",
            sum(
                vec![number(vec![kv("result", "ok")], 3.0)],
                true,
                CUMULATIVE,
            ),
        ),
        metric(
            "queue.size",
            "",
            sum(vec![number(vec![], -2.0)], false, CUMULATIVE),
        ),
        metric(
            "temperature",
            "Cel",
            Data::Gauge(proto::Gauge {
                data_points: vec![number(vec![], 21.5)],
            }),
        ),
        metric(
            "request.duration",
            "s",
            Data::Histogram(proto::Histogram {
                data_points: vec![proto::HistogramDataPoint {
                    count: 4,
                    sum: Some(3.5),
                    bucket_counts: vec![1, 2, 1],
                    explicit_bounds: vec![0.5, 1.0],
                    ..Default::default()
                }],
                aggregation_temporality: CUMULATIVE,
            }),
        ),
        metric(
            "payload",
            "By",
            Data::ExponentialHistogram(proto::ExponentialHistogram {
                data_points: vec![proto::ExponentialHistogramDataPoint {
                    count: 3,
                    sum: Some(7.0),
                    scale: 2,
                    zero_count: 0,
                    positive: Some(Buckets {
                        offset: 3,
                        bucket_counts: vec![2, 1],
                    }),
                    ..Default::default()
                }],
                aggregation_temporality: CUMULATIVE,
            }),
        ),
    ]
}

fn post(gateway: &Gateway, content_type: &str, extra: &[(&str, &str)], body: &[u8]) -> Response {
    let mut headers = vec![("Content-Type", content_type)];
    headers.extend_from_slice(extra);
    gateway.request("POST", PATH, &headers, body)
}

fn post_protobuf(
    gateway: &Gateway,
    request: &ExportMetricsServiceRequest,
) -> ExportMetricsServiceResponse {
    let response = post(gateway, PROTOBUF, &[], &request.encode_to_vec());
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header("content-type"), Some(PROTOBUF));
    ExportMetricsServiceResponse::decode(&response.body[..]).unwrap()
}

const GROUP: &[(&str, &str)] = &[("instance", "i1"), ("job", "svc")];

fn scoped(labels: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut all = vec![
        ("instance", "i1"),
        ("job", "svc"),
        ("otel_scope_name", "meter"),
        ("otel_scope_version", "1.0"),
    ];
    all.extend_from_slice(labels);
    all
}

#[test]
fn protobuf_export_is_stored_as_the_resources_group() {
    let gateway = spawn_gateway(&[]);
    let request = ExportMetricsServiceRequest {
        resource_metrics: vec![resource("svc", "i1", every_kind())],
    };
    let answer = post_protobuf(&gateway, &request);
    assert_eq!(answer.partial_success, None);
    let state = gateway.state();
    for (name, labels, value) in [
        ("jobs_done_total", scoped(&[("result", "ok")]), "3"),
        ("queue_size", scoped(&[]), "-2"),
        ("temperature_celsius", scoped(&[]), "21.5"),
        ("request_duration_seconds_sum", scoped(&[]), "3.5"),
        ("request_duration_seconds_count", scoped(&[]), "4"),
        ("payload_bytes_count", scoped(&[]), "3"),
        ("payload_bytes_sum", scoped(&[]), "7"),
        (
            "target_info",
            GROUP
                .to_vec()
                .into_iter()
                .chain([("host_name", "h1")])
                .collect(),
            "1",
        ),
    ] {
        let key = series(name, &labels);
        assert_eq!(
            state.get(&key).map(String::as_str),
            Some(value),
            "{key} in {state:#?}"
        );
    }
    // `le` comes last, as client_golang writes it.
    let scope = series("request_duration_seconds_bucket", &scoped(&[]));
    for (le, count) in [("0.5", "1"), ("1", "3"), ("+Inf", "4")] {
        let key = format!("{},le=\"{le}\"}}", scope.trim_end_matches('}'));
        assert_eq!(
            state.get(&key).map(String::as_str),
            Some(count),
            "{key} in {state:#?}"
        );
    }
    let text = gateway.scrape();
    assert!(text.contains("# TYPE jobs_done_total counter"), "{text}");
    assert!(text.contains("# TYPE queue_size gauge"), "{text}");
    assert!(text.contains("# TYPE payload_bytes histogram"), "{text}");
}

#[test]
fn json_export_is_stored_and_answered_in_json() {
    let gateway = spawn_gateway(&[]);
    let body = br#"{"resourceMetrics":[{"resource":{"attributes":[
        {"key":"service.name","value":{"stringValue":"svc"}},
        {"key":"service.instance.id","value":{"stringValue":"i1"}}]},
      "scopeMetrics":[{"scope":{"name":"meter","version":"1.0"},"metrics":[
        {"name":"jobs.done","unit":"{job}","sum":{"aggregationTemporality":2,"isMonotonic":true,
          "dataPoints":[{"asInt":"3","startTimeUnixNano":"1700000000000000000",
            "attributes":[{"key":"result","value":{"stringValue":"ok"}}]}]}},
        {"name":"temperature","unit":"Cel","gauge":{"dataPoints":[{"asDouble":21.5}]}}]}]}]}"#;
    let response = post(&gateway, "application/json; charset=utf-8", &[], body);
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert_eq!(response.json(), serde_json::json!({}));
    let state = gateway.state();
    assert_eq!(
        state
            .get(&series("jobs_done_total", &scoped(&[("result", "ok")])))
            .map(String::as_str),
        Some("3"),
        "{state:#?}"
    );
    assert_eq!(
        state
            .get(&series("temperature_celsius", &scoped(&[])))
            .map(String::as_str),
        Some("21.5")
    );
}

const DELTA: i32 = AggregationTemporality::Delta as i32;

/// What a delta exporter sends each interval: a counter's, an explicit and an exponential
/// histogram's increments (the histogram's `bounds`), beside a cumulative gauge and an
/// up-down counter in delta (which cannot be added), one point without a recorded value.
fn delta_export(bounds: Vec<f64>) -> ExportMetricsServiceRequest {
    let mut unrecorded = number(vec![kv("x", "y")], 9.0);
    unrecorded.flags = proto::NO_RECORDED_VALUE;
    let buckets = vec![1; bounds.len() + 1];
    let metrics = vec![
        metric(
            "increments",
            "",
            sum(
                vec![
                    number(vec![], 1.0),
                    number(vec![kv("a", "b")], 2.0),
                    unrecorded,
                ],
                true,
                DELTA,
            ),
        ),
        metric(
            "queue.change",
            "",
            sum(vec![number(vec![], -1.0)], false, DELTA),
        ),
        metric(
            "level",
            "",
            Data::Gauge(proto::Gauge {
                data_points: vec![number(vec![], 5.0)],
            }),
        ),
        metric(
            "latency",
            "s",
            Data::Histogram(proto::Histogram {
                data_points: vec![proto::HistogramDataPoint {
                    count: buckets.len() as u64,
                    sum: Some(2.5),
                    bucket_counts: buckets,
                    explicit_bounds: bounds,
                    ..Default::default()
                }],
                aggregation_temporality: DELTA,
            }),
        ),
        metric(
            "payload",
            "By",
            Data::ExponentialHistogram(proto::ExponentialHistogram {
                data_points: vec![proto::ExponentialHistogramDataPoint {
                    count: 3,
                    sum: Some(7.0),
                    scale: 2,
                    positive: Some(Buckets {
                        offset: 3,
                        bucket_counts: vec![2, 1],
                    }),
                    ..Default::default()
                }],
                aggregation_temporality: DELTA,
            }),
        ),
    ];
    ExportMetricsServiceRequest {
        resource_metrics: vec![resource("svc", "i1", metrics)],
    }
}

fn assert_values(state: &std::collections::BTreeMap<String, String>, expected: &[(&str, &str)]) {
    for (name, value) in expected {
        let key = series(name, &scoped(&[]));
        assert_eq!(
            state.get(&key).map(String::as_str),
            Some(*value),
            "{key} in {state:#?}"
        );
    }
}

#[test]
fn delta_exports_add_up_beside_cumulative_families() {
    let gateway = spawn_gateway(&[]);
    for _ in 0..2 {
        let answer = post_protobuf(&gateway, &delta_export(vec![1.0]));
        // Only the up-down counter in delta is refused: its changes would add to a gauge.
        let partial = answer.partial_success.expect("partial success");
        assert_eq!(partial.rejected_data_points, 1, "{}", partial.error_message);
        assert!(
            partial.error_message.contains("up-down counter"),
            "{}",
            partial.error_message
        );
    }
    let state = gateway.state();
    assert_values(
        &state,
        &[
            ("increments_total", "2"),
            ("level", "5"),
            ("latency_seconds_count", "4"),
            ("latency_seconds_sum", "5"),
            ("payload_bytes_count", "6"),
            ("payload_bytes_sum", "14"),
        ],
    );
    assert_eq!(
        state
            .get(&series("increments_total", &scoped(&[("a", "b")])))
            .map(String::as_str),
        Some("4")
    );
    let scope = series("latency_seconds_bucket", &scoped(&[]));
    for (le, count) in [("1", "2"), ("+Inf", "4")] {
        let key = format!("{},le=\"{le}\"}}", scope.trim_end_matches('}'));
        assert_eq!(state.get(&key).map(String::as_str), Some(count), "{key}");
    }
    assert!(!state.keys().any(|k| k.starts_with("queue")), "{state:#?}");
    // The point without a recorded value is skipped, not refused and not stored.
    assert!(!state.keys().any(|k| k.contains("x=\"y\"")), "{state:#?}");
    let text = gateway.scrape();
    assert!(text.contains("# TYPE increments_total counter"), "{text}");

    // Other bounds cannot be added: the increments are refused, the sums stay, and the
    // cumulative gauge of the same resource is still stored.
    let answer = post_protobuf(&gateway, &delta_export(vec![2.0]));
    let partial = answer.partial_success.expect("partial success");
    assert!(
        partial.error_message.contains("bounds"),
        "{}",
        partial.error_message
    );
    // The resource's four increments (the counter's two, two histograms) and the up-down counter.
    assert_eq!(partial.rejected_data_points, 5, "{}", partial.error_message);
    let samples = |state: std::collections::BTreeMap<String, String>| {
        state
            .into_iter()
            .filter(|(k, _)| !k.starts_with("push_"))
            .collect::<Vec<_>>()
    };
    let after = gateway.state();
    assert_ne!(
        after.get(&series("push_failure_time_seconds", GROUP)),
        Some(&"0".to_string())
    );
    assert_eq!(samples(after), samples(state));

    // JSON deltas add too, answered in JSON.
    let body = br#"{"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"svc"}},{"key":"service.instance.id","value":{"stringValue":"i1"}}]},
      "scopeMetrics":[{"scope":{"name":"meter","version":"1.0"},"metrics":[{"name":"increments","sum":{"aggregationTemporality":1,"isMonotonic":true,
        "dataPoints":[{"asInt":"5"}]}}]}]}]}"#;
    let response = post(&gateway, "application/json", &[], body);
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json()["partialSuccess"], serde_json::Value::Null);
    assert_values(&gateway.state(), &[("increments_total", "7")]);
}

#[test]
fn an_idempotency_key_makes_a_retried_delta_export_count_once() {
    let gateway = spawn_gateway(&[]);
    let body = delta_export(vec![1.0]).encode_to_vec();
    for key in ["export-1", "export-1", "export-2"] {
        let response = post(&gateway, PROTOBUF, &[("Idempotency-Key", key)], &body);
        assert_eq!(response.status, 200, "{}", response.text());
    }
    assert_values(
        &gateway.state(),
        &[("increments_total", "2"), ("latency_seconds_count", "4")],
    );
    // A malformed key is refused whole, as for a push.
    let response = post(&gateway, PROTOBUF, &[("Idempotency-Key", "")], &body);
    assert_eq!(response.status, 400, "{}", response.text());
    assert_values(&gateway.state(), &[("increments_total", "2")]);
}

#[test]
fn an_export_replaces_only_the_families_it_carries() {
    let gateway = spawn_gateway(&[]);
    let first = ExportMetricsServiceRequest {
        resource_metrics: vec![resource("svc", "i1", every_kind())],
    };
    post_protobuf(&gateway, &first);
    let second = ExportMetricsServiceRequest {
        resource_metrics: vec![resource(
            "svc",
            "i1",
            vec![metric(
                "temperature",
                "Cel",
                Data::Gauge(proto::Gauge {
                    data_points: vec![number(vec![], 30.0)],
                }),
            )],
        )],
    };
    post_protobuf(&gateway, &second);
    let state = gateway.state();
    assert_eq!(
        state
            .get(&series("temperature_celsius", &scoped(&[])))
            .map(String::as_str),
        Some("30")
    );
    assert_eq!(
        state
            .get(&series("jobs_done_total", &scoped(&[("result", "ok")])))
            .map(String::as_str),
        Some("3"),
        "families the export does not carry stay: {state:#?}"
    );
    assert!(
        state.contains_key(&series("push_time_seconds", GROUP)),
        "{state:#?}"
    );
}

#[test]
fn a_resource_the_store_refuses_is_reported_and_others_stored() {
    let gateway = spawn_gateway(&[]);
    // `temperature_celsius` is a counter in another group; as a gauge it is refused.
    let pushed = gateway.put(
        "/metrics/job/other",
        "# TYPE temperature_celsius counter\ntemperature_celsius 1\n",
    );
    assert_eq!(pushed.status, 200, "{}", pushed.text());
    let request = ExportMetricsServiceRequest {
        resource_metrics: vec![
            resource("svc", "i1", every_kind()),
            resource(
                "svc2",
                "i2",
                vec![metric(
                    "fine",
                    "",
                    Data::Gauge(proto::Gauge {
                        data_points: vec![number(vec![], 1.0)],
                    }),
                )],
            ),
        ],
    };
    let answer = post_protobuf(&gateway, &request);
    let partial = answer.partial_success.expect("partial success");
    assert_eq!(partial.rejected_data_points, 5, "{}", partial.error_message);
    assert!(
        partial.error_message.contains("temperature_celsius"),
        "{}",
        partial.error_message
    );
    let state = gateway.state();
    assert!(state.keys().any(|k| k.starts_with("fine{")), "{state:#?}");
    assert!(
        !state.keys().any(|k| k.starts_with("jobs_done_total")),
        "{state:#?}"
    );
    assert_eq!(
        state
            .get(&series(
                "temperature_celsius",
                &[("instance", ""), ("job", "other")]
            ))
            .map(String::as_str),
        Some("1")
    );
}

#[test]
fn gzip_exports_are_accepted() {
    let gateway = spawn_gateway(&[]);
    let request = ExportMetricsServiceRequest {
        resource_metrics: vec![resource("svc", "i1", every_kind())],
    };
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(&request.encode_to_vec()).unwrap();
    let body = encoder.finish().unwrap();
    let response = post(&gateway, PROTOBUF, &[("Content-Encoding", "gzip")], &body);
    assert_eq!(response.status, 200, "{}", response.text());
    assert!(gateway
        .state()
        .contains_key(&series("temperature_celsius", &scoped(&[]))));
}

#[test]
fn malformed_bodies_are_400_with_a_status_in_their_encoding() {
    let gateway = spawn_gateway(&[]);
    let response = post(&gateway, PROTOBUF, &[], b"\x0a\x05\x01");
    assert_eq!(response.status, 400, "{}", response.text());
    let status = proto::Status::decode(&response.body[..]).unwrap();
    assert_eq!(status.code, 3);
    assert!(
        status.message.contains("invalid OTLP protobuf body"),
        "{}",
        status.message
    );

    let response = post(
        &gateway,
        "application/json",
        &[],
        br#"{"resourceMetrics": 5}"#,
    );
    assert_eq!(response.status, 400, "{}", response.text());
    let json = response.json();
    assert_eq!(json["code"], 3);
    assert!(
        json["message"]
            .as_str()
            .unwrap()
            .contains("invalid OTLP JSON body"),
        "{json}"
    );

    let response = post(
        &gateway,
        PROTOBUF,
        &[("Content-Encoding", "gzip")],
        b"not gzip",
    );
    assert_eq!(response.status, 400, "{}", response.text());
    assert!(gateway.state().is_empty());
}

#[test]
fn other_content_types_are_415_and_other_methods_405() {
    let gateway = spawn_gateway(&[]);
    for content_type in ["text/plain", "application/vnd.google.protobuf", ""] {
        let response = post(&gateway, content_type, &[], b"{}");
        assert_eq!(
            response.status,
            415,
            "{content_type:?}: {}",
            response.text()
        );
        assert!(
            response.text().contains("application/x-protobuf"),
            "{}",
            response.text()
        );
    }
    assert_eq!(gateway.get(PATH).status, 405);
    let options = gateway.request("OPTIONS", PATH, &[], b"");
    assert_eq!(options.status, 200);
    assert_eq!(options.header("allow"), Some("OPTIONS, POST"));
}

#[test]
fn a_body_of_tiny_messages_is_413() {
    let gateway = spawn_gateway(&[]);
    // Two-byte empty resources: about 25 times their size once decoded.
    let body = [0x0au8, 0x00].repeat(2 << 20);
    let response = post(&gateway, PROTOBUF, &[], &body);
    assert_eq!(response.status, 413, "{}", response.text());
    let status = proto::Status::decode(&response.body[..]).unwrap();
    assert!(
        status.message.contains("too many small messages"),
        "{}",
        status.message
    );
}

#[test]
fn disabled_receiver_is_not_found_and_shown_in_the_status() {
    let gateway = spawn_gateway(&["--otlp.disable"]);
    let request = ExportMetricsServiceRequest {
        resource_metrics: vec![resource("svc", "i1", every_kind())],
    };
    let response = post(&gateway, PROTOBUF, &[], &request.encode_to_vec());
    assert_eq!(response.status, 404);
    assert!(gateway.state().is_empty());
    let status = gateway.get("/api/v1/status").json();
    assert_eq!(status["data"]["flags"]["otlp.disable"], "true");
}

#[test]
fn promoted_attributes_and_the_route_prefix() {
    let gateway = spawn_gateway(&[
        "--web.route-prefix=/pgw",
        "--otlp.promote-resource-attributes=host.name,deployment.environment",
    ]);
    let request = ExportMetricsServiceRequest {
        resource_metrics: vec![resource("svc", "i1", every_kind())],
    };
    post_protobuf(&gateway, &request);
    let state = gateway.state();
    let key = series(
        "temperature_celsius",
        &[
            ("host_name", "h1"),
            ("instance", "i1"),
            ("job", "svc"),
            ("otel_scope_name", "meter"),
            ("otel_scope_version", "1.0"),
        ],
    );
    assert_eq!(
        state.get(&key).map(String::as_str),
        Some("21.5"),
        "{state:#?}"
    );
    // host.name is a grouping label now: no attribute is left for target_info.
    assert!(
        !state.keys().any(|k| k.starts_with("target_info")),
        "{state:#?}"
    );
    let status = gateway.get("/api/v1/status").json();
    assert_eq!(
        status["data"]["flags"]["otlp.promote-resource-attributes"],
        "host.name,deployment.environment"
    );
}

#[test]
fn exports_need_the_same_basic_auth_as_pushes() {
    let dir = scratch_dir("otlp-auth");
    let hash = bcrypt::hash("secret", 4).unwrap();
    let config = dir.join("web.yml");
    std::fs::write(&config, format!("basic_auth_users:\n  alice: {hash}\n")).unwrap();
    let flag = format!("--web.config.file={}", config.display());
    let gateway = spawn_gateway(&[&flag, "--web.unauthenticated-probes"]);
    let request = ExportMetricsServiceRequest {
        resource_metrics: vec![resource("svc", "i1", every_kind())],
    };
    let body = request.encode_to_vec();
    assert_eq!(post(&gateway, PROTOBUF, &[], &body).status, 401);
    let wrong = format!("Basic {}", base64_of("alice:wrong"));
    assert_eq!(
        post(&gateway, PROTOBUF, &[("Authorization", &wrong)], &body).status,
        401
    );
    let right = format!("Basic {}", base64_of("alice:secret"));
    let response = post(&gateway, PROTOBUF, &[("Authorization", &right)], &body);
    assert_eq!(response.status, 200, "{}", response.text());
    let scrape = gateway.request("GET", "/metrics", &[("Authorization", &right)], b"");
    assert!(
        scrape.text().contains("temperature_celsius{"),
        "{}",
        scrape.text()
    );
}

fn base64_of(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[test]
fn a_full_store_is_429_with_retry_after() {
    let gateway = spawn_gateway(&["--storage.max-groups=1"]);
    assert_eq!(gateway.put("/metrics/job/first", "m 1\n").status, 200);
    let request = ExportMetricsServiceRequest {
        resource_metrics: vec![resource("svc", "i1", every_kind())],
    };
    let response = post(&gateway, PROTOBUF, &[], &request.encode_to_vec());
    assert_eq!(response.status, 429, "{}", response.text());
    assert_eq!(response.header("retry-after"), Some("5"));
    let status = proto::Status::decode(&response.body[..]).unwrap();
    assert_eq!(status.code, 8);
    assert!(!gateway.state().keys().any(|k| k.contains("svc")));
}

#[test]
fn exemplars_and_start_times_reach_an_openmetrics_scrape() {
    let gateway = spawn_gateway(&["--web.enable-openmetrics"]);
    let mut point = number(vec![], 3.0);
    point.exemplars = vec![proto::Exemplar {
        filtered_attributes: vec![kv("ignored", "x")],
        time_unix_nano: 1_700_000_005_500_000_000,
        value: Some(proto::exemplar::Value::AsDouble(1.5)),
        span_id: vec![0xee; 8],
        trace_id: vec![0x5b; 16],
    }];
    let request = ExportMetricsServiceRequest {
        resource_metrics: vec![resource(
            "svc",
            "i1",
            vec![metric("jobs", "", sum(vec![point], true, CUMULATIVE))],
        )],
    };
    post_protobuf(&gateway, &request);
    let scrape = gateway.request(
        "GET",
        "/metrics",
        &[("Accept", "application/openmetrics-text; version=1.0.0")],
        b"",
    );
    let text = scrape.text();
    let labels = r#"{instance="i1",job="svc",otel_scope_name="meter",otel_scope_version="1.0"}"#;
    let exemplar = format!(
        r#"jobs_total{labels} 3.0 # {{trace_id="{}",span_id="{}"}} 1.5 1.7000000055e+09"#,
        "5b".repeat(16),
        "ee".repeat(8)
    );
    assert!(text.contains(&exemplar), "{exemplar}\nnot in\n{text}");
    // The start time is the created timestamp (which the protobuf exposition carries); the
    // point's own time is not exposed.
    let scrape = gateway.request(
        "GET",
        "/metrics",
        &[(
            "Accept",
            "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited",
        )],
        b"",
    );
    let families = gateway::parse::protobuf::parse(&scrape.body).unwrap();
    let jobs = families.iter().find(|f| &*f.name == "jobs_total").unwrap();
    let extras = jobs.metrics[0].extras.as_ref().unwrap();
    assert_eq!(
        extras.created,
        Some(gateway::model::Timestamp {
            seconds: 1_700_000_000,
            nanos: 0
        })
    );
    assert_eq!(jobs.metrics[0].timestamp_ms(), None);
}

#[test]
fn a_scoped_user_exports_only_inside_its_push_scope() {
    let dir = scratch_dir("otlp-access");
    let hash = bcrypt::hash("secret", 4).unwrap();
    let web = dir.join("web.yml");
    std::fs::write(&web, format!("basic_auth_users:\n  team: {hash}\n")).unwrap();
    let rules = dir.join("pushgateway.toml");
    std::fs::write(
        &rules,
        "[[access]]\nuser = \"team\"\npush = { job = \"team-.*\" }\nscrape = true\n",
    )
    .unwrap();
    let gateway = spawn_gateway(&[
        &format!("--web.config.file={}", web.display()),
        &format!("--config.file={}", rules.display()),
        "--web.unauthenticated-probes",
    ]);
    let auth = format!("Basic {}", base64_of("team:secret"));
    let inside = ExportMetricsServiceRequest {
        resource_metrics: vec![resource("team-x", "i1", every_kind())],
    };
    let response = post(
        &gateway,
        PROTOBUF,
        &[("Authorization", &auth)],
        &inside.encode_to_vec(),
    );
    assert_eq!(response.status, 200, "{}", response.text());
    // One resource outside the scope refuses the whole export: nothing of it is stored.
    let mixed = ExportMetricsServiceRequest {
        resource_metrics: vec![
            resource("team-y", "i1", every_kind()),
            resource("other", "i1", every_kind()),
        ],
    };
    let response = post(
        &gateway,
        PROTOBUF,
        &[("Authorization", &auth)],
        &mixed.encode_to_vec(),
    );
    assert_eq!(response.status, 403, "{}", response.text());
    let scrape = gateway.request("GET", "/metrics", &[("Authorization", &auth)], b"");
    let text = scrape.text();
    assert!(text.contains("job=\"team-x\""), "{text}");
    assert!(!text.contains("job=\"team-y\""), "{text}");
    assert!(!text.contains("job=\"other\""), "{text}");
}

#[test]
fn a_user_who_may_push_nowhere_is_refused_before_the_body_is_read() {
    let dir = scratch_dir("otlp-no-push");
    let hash = bcrypt::hash("secret", 4).unwrap();
    let web = dir.join("web.yml");
    std::fs::write(&web, format!("basic_auth_users:\n  reader: {hash}\n")).unwrap();
    let rules = dir.join("pushgateway.toml");
    std::fs::write(&rules, "[[access]]\nuser = \"reader\"\nscrape = true\n").unwrap();
    let gateway = spawn_gateway(&[
        &format!("--web.config.file={}", web.display()),
        &format!("--config.file={}", rules.display()),
        "--web.unauthenticated-probes",
    ]);
    let auth = format!("Basic {}", base64_of("reader:secret"));
    // An export without data pushes nothing, but is no more allowed than one with data; and
    // a body that is not even OTLP is not decoded for a user who may not push.
    let empty = ExportMetricsServiceRequest {
        resource_metrics: Vec::new(),
    };
    for body in [empty.encode_to_vec(), b"\xff not protobuf".to_vec()] {
        let response = post(&gateway, PROTOBUF, &[("Authorization", &auth)], &body);
        assert_eq!(response.status, 403, "{}", response.text());
        let status = proto::Status::decode(&response.body[..]).expect("a google.rpc.Status");
        assert!(status.message.contains("\"reader\""), "{status:?}");
    }
}

#[test]
fn a_resource_over_a_quota_is_refused_in_partial_success() {
    let dir = scratch_dir("otlp-quota");
    let rules = dir.join("pushgateway.toml");
    std::fs::write(
        &rules,
        "[[quota]]\nname = \"small\"\nlabels = { job = \"big\" }\nmax_series = 2\n",
    )
    .unwrap();
    let gateway = spawn_gateway(&[&format!("--config.file={}", rules.display())]);
    let request = ExportMetricsServiceRequest {
        resource_metrics: vec![
            resource("big", "i1", every_kind()),
            resource("svc", "i1", every_kind()),
        ],
    };
    let answer = post_protobuf(&gateway, &request);
    let partial = answer.partial_success.expect("partial success");
    assert!(partial.rejected_data_points > 0, "{partial:?}");
    assert!(
        partial.error_message.contains("small"),
        "{}",
        partial.error_message
    );
    let state = gateway.state();
    assert!(
        state.keys().any(|k| k.contains("job=\"svc\"")),
        "{state:#?}"
    );
    assert!(
        !state.keys().any(|k| k.contains("job=\"big\"")),
        "{state:#?}"
    );
}

#[test]
fn an_export_takes_the_ttl_header_of_a_push() {
    let gateway = spawn_gateway(&["--expiry.max-ttl=1h"]);
    let request = ExportMetricsServiceRequest {
        resource_metrics: vec![resource("svc", "i1", every_kind())],
    };
    let body = request.encode_to_vec();
    // Above the cap: refused whole, with a Status naming the header, and nothing stored.
    let response = post(&gateway, PROTOBUF, &[("Pushgateway-TTL", "2h")], &body);
    assert_eq!(response.status, 400, "{}", response.text());
    let status = proto::Status::decode(&response.body[..]).unwrap();
    assert!(status.message.contains("Pushgateway-TTL"), "{status:?}");
    assert!(!gateway.state().keys().any(|k| k.contains("svc")));
    // Within it: stored, and the group expires once its TTL has passed.
    let response = post(&gateway, PROTOBUF, &[("Pushgateway-TTL", "1s")], &body);
    assert_eq!(response.status, 200, "{}", response.text());
    assert!(gateway.state().keys().any(|k| k.contains("svc")));
    assert!(
        eventually(|| !gateway.state().keys().any(|k| k.contains("svc"))),
        "the export's group never expired"
    );
}
