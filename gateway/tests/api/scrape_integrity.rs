//! Nothing a client pushes can change the structure of a scrape or of the JSON API: every
//! scrape here is re-parsed whole by the strict parser and its series set asserted, and
//! pushes that would break it are refused with 400 and leave the store as it was.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;

use gateway::proto;
use prost::Message;
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::helpers::{is_own, spawn_gateway, Gateway};
use crate::strict::{self, SeriesKey, Syntax};

const PROTOBUF: &str =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";
const TEXT_UTF8: &str = "text/plain;version=0.0.4;escaping=allow-utf-8";
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0";
const OPENMETRICS_UTF8: &str = "application/openmetrics-text; version=1.0.0; escaping=allow-utf-8";

/// Every way to scrape: Accept header, syntax, whether names may be quoted.
const SCRAPES: [(&str, Syntax, bool); 4] = [
    ("", Syntax::Text, false),
    (TEXT_UTF8, Syntax::Text, true),
    (OPENMETRICS, Syntax::OpenMetrics, false),
    (OPENMETRICS_UTF8, Syntax::OpenMetrics, true),
];

/// The pushed series of one strict scrape (the gateway's own left out).
fn scrape_strictly(gw: &Gateway, accept: &str, syntax: Syntax, utf8: bool) -> BTreeSet<SeriesKey> {
    let headers: &[(&str, &str)] = if accept.is_empty() {
        &[]
    } else {
        &[("Accept", accept)]
    };
    let response = gw.request("GET", "/metrics", headers, b"");
    assert_eq!(response.status, 200, "{}", response.text());
    let body = response.text();
    let series = strict::parse(&body, syntax, utf8)
        .unwrap_or_else(|e| panic!("the scrape ({accept:?}) is not well-formed: {e}\n{body}"));
    series.into_iter().filter(|(n, _)| !is_own(n)).collect()
}

/// Scrapes in every format and asserts each has exactly `expected` (names as given are
/// classic, so every format shows them alike, counters aside).
fn assert_every_scrape(gw: &Gateway, expected: &BTreeSet<SeriesKey>) {
    for (accept, syntax, utf8) in SCRAPES {
        assert_eq!(
            &scrape_strictly(gw, accept, syntax, utf8),
            expected,
            "scrape with Accept {accept:?}"
        );
    }
}

fn key(name: &str, labels: &[(&str, &str)]) -> SeriesKey {
    let mut labels: Vec<(String, String)> = labels
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    labels.sort();
    (name.to_string(), labels)
}

/// The series of a group `{job="j"}` with one gauge `g` and its timestamps.
fn group_j() -> BTreeSet<SeriesKey> {
    let j = [("instance", ""), ("job", "j")];
    [
        key("g", &j),
        key("push_time_seconds", &j),
        key("push_failure_time_seconds", &j),
    ]
    .into_iter()
    .collect()
}

fn label(name: &str, value: &str) -> proto::LabelPair {
    proto::LabelPair {
        name: Some(name.into()),
        value: Some(value.into()),
    }
}

/// A delimited protobuf body with one counter `c_total` that has an exemplar.
fn counter_with_exemplar(exemplar_labels: &[(&str, &str)]) -> Vec<u8> {
    let family = proto::MetricFamily {
        name: Some("c_total".into()),
        help: None,
        r#type: Some(proto::MetricType::Counter as i32),
        metric: vec![proto::Metric {
            counter: Some(proto::Counter {
                value: Some(1.0),
                exemplar: Some(proto::Exemplar {
                    label: exemplar_labels.iter().map(|(n, v)| label(n, v)).collect(),
                    value: Some(0.5),
                    timestamp: None,
                }),
                created_timestamp: None,
            }),
            ..proto::Metric::default()
        }],
        unit: None,
    };
    family.encode_length_delimited_to_vec()
}

fn push_proto(gw: &Gateway, path: &str, body: &[u8]) -> crate::helpers::Response {
    gw.request("PUT", path, &[("Content-Type", PROTOBUF)], body)
}

#[test]
fn exemplar_label_names_cannot_inject_lines() {
    let gw = spawn_gateway(&["--push.enable-utf8-names", "--web.enable-openmetrics"]);
    // A valid UTF-8 name: accepted, and written quoted and escaped, never raw.
    let name = "t\"} 1\ninjected_metric{x=\"y\"} 666\n# HELP z";
    let r = push_proto(
        &gw,
        "/metrics/job/j",
        &counter_with_exemplar(&[(name, "v")]),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let j = [("instance", ""), ("job", "j")];
    let expected: BTreeSet<SeriesKey> = [
        key("c_total", &j),
        key("push_time_seconds", &j),
        key("push_failure_time_seconds", &j),
    ]
    .into_iter()
    .collect();
    assert_every_scrape(&gw, &expected);
    let om = gw
        .request("GET", "/metrics", &[("Accept", OPENMETRICS_UTF8)], b"")
        .text();
    assert!(
        om.contains(r#"# {"t\"} 1\ninjected_metric{x=\"y\"} 666\n# HELP z"="v"} 0.5"#),
        "{om}"
    );
}

#[test]
fn invalid_exemplar_labels_get_400_and_change_nothing() {
    let long = "x".repeat(128);
    let cases: [(&str, &[(&str, &str)]); 7] = [
        ("empty name", &[("", "v")]),
        ("reserved name", &[("__name__", "v")]),
        ("repeated name", &[("a", "1"), ("a", "2")]),
        ("names escaped alike", &[("a.b", "1"), ("a_b", "2")]),
        ("129 runes", &[(long.as_str(), "y")]),
        ("invalid among valid", &[("trace_id", "abc"), ("", "v")]),
        ("reserved once escaped", &[("..name..", "v")]),
    ];
    for utf8 in [false, true] {
        let gw = spawn_gateway(if utf8 {
            &["--push.enable-utf8-names", "--web.enable-openmetrics"]
        } else {
            &["--web.enable-openmetrics"]
        });
        assert_eq!(gw.put("/metrics/job/j", "g 1\n").status, 200);
        let before = group_j();
        assert_every_scrape(&gw, &before);
        for (what, labels) in cases {
            let r = push_proto(&gw, "/metrics/job/j", &counter_with_exemplar(labels));
            assert_eq!(r.status, 400, "{what}: {}", r.text());
            assert!(r.text().contains("exemplar"), "{what}: {}", r.text());
            // Another group, so that a recorded failure would show as a new group.
            let r = push_proto(&gw, "/metrics/job/k", &counter_with_exemplar(labels));
            assert_eq!(r.status, 400, "{what}: {}", r.text());
            assert_every_scrape(&gw, &before);
        }
        // 128 runes exactly are fine.
        let fits = "x".repeat(127);
        let r = push_proto(
            &gw,
            "/metrics/job/k",
            &counter_with_exemplar(&[(&fits, "y")]),
        );
        assert_eq!(r.status, 200, "{}", r.text());
    }
}

#[test]
fn decoded_grouping_label_names_are_checked() {
    let gw = spawn_gateway(&["--push.enable-utf8-names", "--web.enable-openmetrics"]);
    assert_eq!(gw.put("/metrics/job/j", "g 1\n").status, 200);
    let before = group_j();
    for path in [
        // `__name__`, escaped.
        "/metrics/job/x/U______name____/evil",
        "/metrics/job/x/U______reserved/v",
        // `..name..`, which a scrape without UTF-8 names shows as `__name__`.
        "/metrics/job/x/U___2e__2e_name_2e__2e_/v",
        // `a.b` and `a_b`: one label twice on a scrape without UTF-8 names.
        "/metrics/job/x/U__a_2e_b/1/a_b/2",
        "/metrics/job/x/a_b/2/U__a_2e_b/1",
    ] {
        for method in ["PUT", "POST"] {
            let r = gw.request(method, path, &[], b"m 1\n");
            assert_eq!(r.status, 400, "{method} {path}: {}", r.text());
            assert_every_scrape(&gw, &before);
        }
    }
    // The decoded name alone is fine, and escaped to `a_b` where UTF-8 is not allowed.
    assert_eq!(gw.put("/metrics/job/x/U__a_2e_b/1", "m 1\n").status, 200);
    let legacy = scrape_strictly(&gw, "", Syntax::Text, false);
    let x = [("a_b", "1"), ("instance", ""), ("job", "x")];
    assert!(legacy.contains(&key("m", &x)), "{legacy:?}");
    let utf8 = scrape_strictly(&gw, TEXT_UTF8, Syntax::Text, true);
    let x = [("a.b", "1"), ("instance", ""), ("job", "x")];
    assert!(utf8.contains(&key("m", &x)), "{utf8:?}");
}

/// A JSON value that refuses an object with a key twice (serde_json keeps the last).
struct NoDuplicateKeys;

impl<'de> Deserialize<'de> for NoDuplicateKeys {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NoDuplicateKeysVisitor)
    }
}

struct NoDuplicateKeysVisitor;

impl<'de> Visitor<'de> for NoDuplicateKeysVisitor {
    type Value = NoDuplicateKeys;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<NoDuplicateKeys, E> {
        Ok(NoDuplicateKeys)
    }

    fn visit_i64<E>(self, _: i64) -> Result<NoDuplicateKeys, E> {
        Ok(NoDuplicateKeys)
    }

    fn visit_u64<E>(self, _: u64) -> Result<NoDuplicateKeys, E> {
        Ok(NoDuplicateKeys)
    }

    fn visit_f64<E>(self, _: f64) -> Result<NoDuplicateKeys, E> {
        Ok(NoDuplicateKeys)
    }

    fn visit_str<E>(self, _: &str) -> Result<NoDuplicateKeys, E> {
        Ok(NoDuplicateKeys)
    }

    fn visit_unit<E>(self) -> Result<NoDuplicateKeys, E> {
        Ok(NoDuplicateKeys)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<NoDuplicateKeys, A::Error> {
        while seq.next_element::<NoDuplicateKeys>()?.is_some() {}
        Ok(NoDuplicateKeys)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NoDuplicateKeys, A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(serde::de::Error::custom(format!("duplicate key {key:?}")));
            }
            map.next_value::<NoDuplicateKeys>()?;
        }
        Ok(NoDuplicateKeys)
    }
}

#[test]
fn json_api_never_repeats_a_key() {
    let gw = spawn_gateway(&["--web.enable-openmetrics"]);
    let body = "# TYPE labels gauge\nlabels{a=\"1\"} 1\n\
                # TYPE last_push_successful gauge\nlast_push_successful 0\n\
                # TYPE expires_at gauge\nexpires_at 2\nother 3\n";
    assert_eq!(gw.put("/metrics/job/j/x/y", body).status, 200);
    let r = gw.get("/api/v1/metrics");
    assert_eq!(r.status, 200);
    let text = r.text();
    serde_json::from_str::<NoDuplicateKeys>(&text)
        .unwrap_or_else(|e| panic!("/api/v1/metrics repeats a key ({e}): {text}"));
    // The group's own keys win: the group stays identifiable.
    let json = r.json();
    let group = &json["data"][0];
    let labels: BTreeMap<String, String> =
        serde_json::from_value(group["labels"].clone()).expect("labels are an object");
    let expected: BTreeMap<String, String> = [("job", "j"), ("x", "y")]
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    assert_eq!(labels, expected, "{text}");
    assert_eq!(group["last_push_successful"], serde_json::json!(true));
    // Without a TTL, `expires_at` is no key of the group's and the family shows.
    assert_eq!(group["expires_at"]["type"], "GAUGE", "{text}");
    assert_eq!(group["other"]["type"], "UNTYPED", "{text}");
    // The scrape still has every family.
    let scraped = scrape_strictly(&gw, "", Syntax::Text, false);
    for name in ["labels", "last_push_successful", "expires_at", "other"] {
        assert!(
            scraped.iter().any(|(n, _)| n == name),
            "{name}: {scraped:?}"
        );
    }
}

#[test]
fn unknown_http_methods_share_one_label_value() {
    let gw = spawn_gateway(&["--web.enable-openmetrics"]);
    for method in ["FOO", "BAR", "Get", &"X".repeat(300)] {
        let r = gw.request(method, "/-/healthy", &[], b"");
        assert_eq!(r.status, 405, "{method}");
    }
    assert_eq!(gw.request("GET", "/-/healthy", &[], b"").status, 200);
    let scrape = gw.scrape();
    let methods: BTreeSet<String> = strict::parse(&scrape, Syntax::Text, false)
        .expect("well-formed scrape")
        .into_iter()
        .filter(|(n, _)| n == "pushgateway_http_requests_total")
        .filter_map(|(_, labels)| {
            labels
                .into_iter()
                .find(|(n, _)| n == "method")
                .map(|(_, v)| v)
        })
        .collect();
    let expected: BTreeSet<String> = ["get", "unknown"].iter().map(|s| s.to_string()).collect();
    assert_eq!(methods, expected, "{scrape}");
}
