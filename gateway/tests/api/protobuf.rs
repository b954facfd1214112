//! Pushes in the delimited protobuf format (what Go's client_golang pushes by default),
//! with a hand-written encoder of the few `io.prometheus.client` messages needed.

use crate::helpers::{series, spawn_gateway};

pub(crate) const CONTENT_TYPE: &str =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn bytes_field(field: u32, data: &[u8], out: &mut Vec<u8>) {
    varint(u64::from(field << 3 | 2), out);
    varint(data.len() as u64, out);
    out.extend_from_slice(data);
}

fn double_field(field: u32, v: f64, out: &mut Vec<u8>) {
    varint(u64::from(field << 3 | 1), out);
    out.extend_from_slice(&v.to_le_bytes());
}

fn varint_field(field: u32, v: u64, out: &mut Vec<u8>) {
    varint(u64::from(field << 3), out);
    varint(v, out);
}

/// Metric types as in `metrics.proto`.
#[derive(Clone, Copy)]
pub(crate) enum Kind {
    Counter = 0,
    Gauge = 1,
    Untyped = 3,
    Histogram = 4,
}

/// One metric: labels, and either a value or histogram buckets `(upper bound, count)`
/// with sum and count.
pub(crate) struct Metric<'a> {
    labels: &'a [(&'a str, &'a str)],
    value: f64,
    buckets: &'a [(f64, u64)],
    timestamp_ms: Option<i64>,
}

pub(crate) fn metric(
    labels: &'static [(&'static str, &'static str)],
    value: f64,
) -> Metric<'static> {
    Metric {
        labels,
        value,
        buckets: &[],
        timestamp_ms: None,
    }
}

/// One length-delimited MetricFamily.
pub(crate) fn family(
    name: &str,
    help: Option<&str>,
    kind: Kind,
    metrics: &[Metric<'_>],
) -> Vec<u8> {
    let mut mf = Vec::new();
    bytes_field(1, name.as_bytes(), &mut mf);
    if let Some(help) = help {
        bytes_field(2, help.as_bytes(), &mut mf);
    }
    varint_field(3, kind as u64, &mut mf);
    for m in metrics {
        let mut msg = Vec::new();
        for (n, v) in m.labels {
            let mut lp = Vec::new();
            bytes_field(1, n.as_bytes(), &mut lp);
            bytes_field(2, v.as_bytes(), &mut lp);
            bytes_field(1, &lp, &mut msg);
        }
        let mut inner = Vec::new();
        match kind {
            Kind::Histogram => {
                let count = m.buckets.last().map(|b| b.1).unwrap_or(0);
                varint_field(1, count, &mut inner);
                double_field(2, m.value, &mut inner);
                for (upper, c) in m.buckets {
                    let mut b = Vec::new();
                    varint_field(1, *c, &mut b);
                    double_field(2, *upper, &mut b);
                    bytes_field(3, &b, &mut inner);
                }
                bytes_field(7, &inner, &mut msg);
            }
            _ => {
                double_field(1, m.value, &mut inner);
                let field = match kind {
                    Kind::Gauge => 2,
                    Kind::Counter => 3,
                    _ => 5,
                };
                bytes_field(field, &inner, &mut msg);
            }
        }
        if let Some(ts) = m.timestamp_ms {
            varint_field(6, ts as u64, &mut msg);
        }
        bytes_field(4, &msg, &mut mf);
    }
    let mut out = Vec::new();
    varint(mf.len() as u64, &mut out);
    out.extend_from_slice(&mf);
    out
}

fn push(
    gw: &crate::helpers::Gateway,
    method: &str,
    path: &str,
    body: &[u8],
) -> crate::helpers::Response {
    gw.request(method, path, &[("Content-Type", CONTENT_TYPE)], body)
}

#[test]
fn protobuf_push_is_stored_and_exposed() {
    let gw = spawn_gateway(&[]);
    let mut body = family(
        "pb_gauge",
        Some("A gauge."),
        Kind::Gauge,
        &[metric(&[("x", "1"), ("job", "ignored")], 1.5)],
    );
    body.extend(family(
        "pb_counter",
        None,
        Kind::Counter,
        &[metric(&[], 7.0)],
    ));
    body.extend(family(
        "pb_untyped",
        None,
        Kind::Untyped,
        &[metric(&[], 1e6)],
    ));
    let r = push(&gw, "PUT", "/metrics/job/j", &body);
    assert_eq!(r.status, 200, "{}", r.text());
    let text = gw.scrape();
    for line in [
        "# HELP pb_gauge A gauge.",
        "# TYPE pb_gauge gauge",
        "pb_gauge{instance=\"\",job=\"j\",x=\"1\"} 1.5",
        "# TYPE pb_counter counter",
        "pb_counter{instance=\"\",job=\"j\"} 7",
        "# TYPE pb_untyped untyped",
        "pb_untyped{instance=\"\",job=\"j\"} 1e+06",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line}:\n{text}");
    }
}

#[test]
fn protobuf_histogram_gets_its_inf_bucket() {
    let gw = spawn_gateway(&[]);
    let h = Metric {
        labels: &[],
        value: 2.5,
        buckets: &[(1.0, 1), (5.0, 3)],
        timestamp_ms: None,
    };
    let r = push(
        &gw,
        "PUT",
        "/metrics/job/j",
        &family("pb_h", None, Kind::Histogram, &[h]),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let text = gw.scrape();
    for line in [
        "# TYPE pb_h histogram",
        "pb_h_bucket{instance=\"\",job=\"j\",le=\"1\"} 1",
        "pb_h_bucket{instance=\"\",job=\"j\",le=\"5\"} 3",
        "pb_h_bucket{instance=\"\",job=\"j\",le=\"+Inf\"} 3",
        "pb_h_sum{instance=\"\",job=\"j\"} 2.5",
        "pb_h_count{instance=\"\",job=\"j\"} 3",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line}:\n{text}");
    }
}

#[test]
fn protobuf_with_a_timestamp_is_rejected() {
    let gw = spawn_gateway(&[]);
    let m = Metric {
        labels: &[],
        value: 1.0,
        buckets: &[],
        timestamp_ms: Some(1_700_000_000_000),
    };
    let r = push(
        &gw,
        "PUT",
        "/metrics/job/j",
        &family("pb", None, Kind::Gauge, &[m]),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text()
            .contains("pushed metrics are invalid or inconsistent with existing metrics"),
        "{}",
        r.text()
    );
    assert!(!gw.state().keys().any(|k| k.starts_with("pb{")));
}

#[test]
fn protobuf_legacy_invalid_name_is_accepted_and_escaped_in_the_text_scrape() {
    // v1.11 validates names as UTF-8 (protobuf skips the text parser's legacy rules);
    // the default text scrape escapes them with underscores so it stays parseable.
    let gw = spawn_gateway(&[]);
    let body = family(
        "bad-name",
        None,
        Kind::Gauge,
        &[metric(&[("c-d", "1")], 1.0)],
    );
    let r = push(&gw, "PUT", "/metrics/job/j", &body);
    assert_eq!(r.status, 200, "{}", r.text());
    let text = gw.scrape();
    assert!(!text.contains("bad-name"), "{text}");
    assert!(
        text.lines()
            .any(|l| l == "bad_name{c_d=\"1\",instance=\"\",job=\"j\"} 1"),
        "{text}"
    );
}

#[test]
fn truncated_protobuf_is_rejected_and_changes_nothing() {
    let gw = spawn_gateway(&[]);
    assert_eq!(gw.put("/metrics/job/j", "m 1\n").status, 200);
    let before = gw.state();
    let body = family("pb", None, Kind::Gauge, &[metric(&[("x", "1")], 1.0)]);
    let r = push(&gw, "PUT", "/metrics/job/j", &body[..body.len() - 3]);
    assert_eq!(r.status, 400, "{}", r.text());
    let after = gw.state();
    let pt = series("push_time_seconds", &[("instance", ""), ("job", "j")]);
    assert_eq!(before.get(&pt), after.get(&pt));
    assert_eq!(
        after
            .get(&series("m", &[("instance", ""), ("job", "j")]))
            .map(String::as_str),
        Some("1")
    );
    assert!(!after.keys().any(|k| k.starts_with("pb{")));
}

#[test]
fn a_repeated_family_in_one_stream_replaces_the_earlier_one() {
    // Upstream collects the stream into a map by name: the last message wins.
    let gw = spawn_gateway(&[]);
    let mut body = family("pb", None, Kind::Gauge, &[metric(&[("x", "1")], 1.0)]);
    body.extend(family(
        "pb",
        None,
        Kind::Gauge,
        &[metric(&[("x", "2")], 2.0)],
    ));
    let r = push(&gw, "PUT", "/metrics/job/j", &body);
    assert_eq!(r.status, 200, "{}", r.text());
    let state = gw.state();
    let x1 = series("pb", &[("instance", ""), ("job", "j"), ("x", "1")]);
    let x2 = series("pb", &[("instance", ""), ("job", "j"), ("x", "2")]);
    assert_eq!(state.get(&x2).map(String::as_str), Some("2"), "{state:?}");
    assert!(!state.contains_key(&x1), "{state:?}");
}

#[test]
fn protobuf_body_without_the_exact_content_type_is_parsed_as_text() {
    let gw = spawn_gateway(&[]);
    let body = family("pb", None, Kind::Gauge, &[metric(&[], 1.0)]);
    // encoding=delimited missing: upstream falls back to the text parser, which fails.
    let r = gw.request(
        "PUT",
        "/metrics/job/j",
        &[(
            "Content-Type",
            "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily",
        )],
        &body,
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text().contains("text format parsing error"),
        "{}",
        r.text()
    );
}

#[test]
fn gzip_protobuf_push_is_accepted() {
    use std::io::Write;
    let gw = spawn_gateway(&[]);
    let body = family("pb", None, Kind::Gauge, &[metric(&[], 3.0)]);
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&body).unwrap();
    let gz = enc.finish().unwrap();
    let r = gw.request(
        "PUT",
        "/metrics/job/j",
        &[("Content-Type", CONTENT_TYPE), ("Content-Encoding", "gzip")],
        &gz,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let pb = series("pb", &[("instance", ""), ("job", "j")]);
    assert_eq!(gw.state().get(&pb).map(String::as_str), Some("3"));
}

#[test]
fn repeated_protobuf_bucket_bounds_are_exposed_once() {
    let gw = spawn_gateway(&[]);
    let h = Metric {
        labels: &[],
        value: 2.5,
        buckets: &[(1.0, 1), (1.0, 2), (5.0, 3), (5.0, 4)],
        timestamp_ms: None,
    };
    let r = push(
        &gw,
        "PUT",
        "/metrics/job/j",
        &family("pb_dup", None, Kind::Histogram, &[h]),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let text = gw.scrape();
    let buckets: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("pb_dup_bucket"))
        .collect();
    assert_eq!(
        buckets,
        [
            "pb_dup_bucket{instance=\"\",job=\"j\",le=\"1\"} 1",
            "pb_dup_bucket{instance=\"\",job=\"j\",le=\"5\"} 3",
            "pb_dup_bucket{instance=\"\",job=\"j\",le=\"+Inf\"} 4",
        ],
        "{text}"
    );
}
