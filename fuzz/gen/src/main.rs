//! Writes the seed corpus of every fuzz target into the directory given as the only
//! argument (one subdirectory per target). Text bodies are written by hand; everything
//! binary comes from the gateway's own encoders, so that the seeds are realistic.

use std::borrow::Cow;
use std::fs;
use std::path::{Path, PathBuf};

use gateway::expose::{Encoding, Escaping, Renderer, ScrapeFormat};
use gateway::model::{GroupingKey, Label, MetricFamily, NameValidation};
use gateway::persist::codec::decode_change;
use gateway::persist::codec::{encode_change, encode_group};
use gateway::persist::snapshot;
use gateway::persist::wal::{segment_path, Wal, SEGMENT_MAGIC};
use gateway::persist::FsyncMode;
use gateway::selector::Selector;
use gateway::store::{Change, GroupTtl, Journal, PushMode, Store, StoreConfig};

/// Text bodies: (file name, body, parse with UTF-8 rules).
const TEXT_BODIES: &[(&str, &str, bool)] = &[
    (
        "counter_gauge",
        "# HELP requests_total Requests served.\n# TYPE requests_total counter\nrequests_total{code=\"200\",method=\"get\"} 1027\nrequests_total{code=\"500\",method=\"post\"} 3\n# TYPE temperature gauge\ntemperature -12.5\n",
        false,
    ),
    (
        "escapes",
        "# HELP escaped Help with a \\\\ backslash and a \\n newline.\n# TYPE escaped untyped\nescaped{path=\"C:\\\\dir\\\\file\",quote=\"say \\\"hi\\\"\",nl=\"a\\nb\",utf=\"\u{e9}t\u{e9} \u{1F600}\"} 1\n",
        false,
    ),
    (
        "histogram",
        "# HELP latency_seconds Request latency.\n# TYPE latency_seconds histogram\nlatency_seconds_bucket{le=\"0.05\"} 24054\nlatency_seconds_bucket{le=\"0.1\"} 33444\nlatency_seconds_bucket{le=\"0.5\"} 129389\nlatency_seconds_bucket{le=\"1\"} 133988\nlatency_seconds_bucket{le=\"+Inf\"} 144320\nlatency_seconds_sum 53423\nlatency_seconds_count 144320\n",
        false,
    ),
    (
        "summary",
        "# HELP rpc_duration_seconds RPC durations.\n# TYPE rpc_duration_seconds summary\nrpc_duration_seconds{service=\"a\",quantile=\"0.01\"} 3102\nrpc_duration_seconds{service=\"a\",quantile=\"0.5\"} 4773\nrpc_duration_seconds{service=\"a\",quantile=\"0.99\"} 76656\nrpc_duration_seconds_sum{service=\"a\"} 1.7560473e+07\nrpc_duration_seconds_count{service=\"a\"} 2693\n",
        false,
    ),
    (
        "special_values",
        "# TYPE odd gauge\nodd{v=\"nan\"} NaN\nodd{v=\"inf\"} +Inf\nodd{v=\"ninf\"} -Inf\nodd{v=\"exp\"} 1e-300\nodd{v=\"big\"} 1.5E+10\nodd{v=\"neg0\"} -0\n",
        false,
    ),
    (
        "untyped_comments",
        "# a free comment\n\nno_type_metric 42\n   \n# TYPE other untyped\nother{a=\"1\",} 2\n# HELP other Trailing comma above.\n",
        false,
    ),
    (
        "timestamps",
        "# TYPE ts_metric counter\nts_metric{a=\"x\"} 5 1700000000000\nts_metric{a=\"y\"} 6 -1\n",
        false,
    ),
    (
        "utf8_names",
        "# HELP \"my.dotted.metric\" A UTF-8 name.\n# TYPE \"my.dotted.metric\" gauge\n{\"my.dotted.metric\",\"label.with.dots\"=\"v\",plain=\"w\"} 1\n{\"my.dotted.metric\",\"label.with.dots\"=\"v2\"} 2\n",
        true,
    ),
    (
        "empty",
        "",
        false,
    ),
];

/// Grouping paths: (file name, flags, path). Flags: bit 0 job in base64, bit 1 UTF-8 names.
const GROUPING_PATHS: &[(&str, u8, &str)] = &[
    ("job_only", 0, "batch"),
    ("job_slash", 0, "batch/"),
    ("labels", 0, "batch/instance/host1/zone/eu"),
    ("base64_label", 0, "batch/instance@base64/aG9zdC8x"),
    ("base64_empty", 0, "batch/path@base64/="),
    ("base64_job", 1, "YmF0Y2gvam9i/instance/x"),
    ("odd", 0, "batch/instance"),
    ("reserved", 0, "batch/__name__/x"),
    ("utf8_escaped", 2, "batch/U__my_2e_label/value"),
    ("utf8_plain", 2, "batch/l\u{e9}/\u{1F600}"),
];

/// Extra seeds of `scrape_roundtrip`: (file name, flags, body). Bit 3: the first line is
/// a grouping path; bit 1: UTF-8 names; bit 2: merge.
const SCRAPE_SEEDS: &[(&str, u8, &str)] = &[
    (
        "grouping_labels",
        8,
        "/zone/eu/instance/\n# TYPE m counter\nm_total{a=\"1\"} 1\nm{a=\"2\"} 2\n",
    ),
    (
        "grouping_utf8",
        8 | 2 | 4,
        "/U__zone_2e_name/eu\n{\"x.y\",\"a.b\"=\"1\",a_c=\"2\"} 1\n{\"x_y\"} 2\n",
    ),
    (
        "gauge_histogram_and_le",
        2,
        "# TYPE gh gaugehistogram\ngh_bucket{le=\"1\"} 1\ngh_bucket{le=\"+Inf\"} 2\ngh_sum 3\ngh_count 2\n# TYPE g gauge\ng{le=\"1\",quantile=\"x\"} 1\n",
    ),
];

/// A protobuf counter and histogram with exemplars, UTF-8 label names among them.
fn exemplars_body() -> Vec<u8> {
    use gateway::proto;
    use prost::Message;
    let label = |name: &str, value: &str| proto::LabelPair {
        name: Some(name.into()),
        value: Some(value.into()),
    };
    let exemplar = |labels: Vec<proto::LabelPair>| proto::Exemplar {
        label: labels,
        value: Some(0.25),
        timestamp: Some(proto::Timestamp {
            seconds: 1_700_000_000,
            nanos: 5,
        }),
    };
    let counter = proto::MetricFamily {
        name: Some("requests_total".into()),
        help: Some("Requests.".into()),
        r#type: Some(proto::MetricType::Counter as i32),
        metric: vec![proto::Metric {
            label: vec![label("code", "200")],
            counter: Some(proto::Counter {
                value: Some(3.0),
                exemplar: Some(exemplar(vec![
                    label("trace_id", "abc"),
                    label("span.id", "d\"e"),
                ])),
                created_timestamp: None,
            }),
            ..proto::Metric::default()
        }],
        unit: None,
    };
    let bucket = |bound: f64, count: u64, labels: Vec<proto::LabelPair>| proto::Bucket {
        cumulative_count: Some(count),
        upper_bound: Some(bound),
        exemplar: (!labels.is_empty()).then(|| exemplar(labels)),
        ..proto::Bucket::default()
    };
    let histogram = proto::MetricFamily {
        name: Some("latency.seconds".into()),
        help: None,
        r#type: Some(proto::MetricType::Histogram as i32),
        metric: vec![proto::Metric {
            histogram: Some(proto::Histogram {
                sample_count: Some(4),
                sample_sum: Some(1.5),
                bucket: vec![
                    bucket(0.5, 1, vec![label("trace_id", "x")]),
                    bucket(1.0, 4, Vec::new()),
                ],
                ..proto::Histogram::default()
            }),
            ..proto::Metric::default()
        }],
        unit: None,
    };
    let mut body = counter.encode_length_delimited_to_vec();
    body.extend(histogram.encode_length_delimited_to_vec());
    body
}

/// OTLP JSON seed: one resource with every kind of metric, as the JS SDK writes them.
const OTLP_JSON: &str = r#"{"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"seed"}},{"key":"service.instance.id","value":{"stringValue":"i1"}},{"key":"host.name","value":{"stringValue":"h"}},{"key":"list","value":{"arrayValue":{"values":[{"intValue":"1"},{"doubleValue":0.5}]}}}]},"scopeMetrics":[{"scope":{"name":"meter","version":"1"},"metrics":[{"name":"requests","unit":"{request}","sum":{"aggregationTemporality":2,"isMonotonic":true,"dataPoints":[{"asInt":"3","startTimeUnixNano":"1700000000000000000","attributes":[{"key":"method","value":{"stringValue":"GET"}}],"exemplars":[{"asDouble":1,"timeUnixNano":"1700000000000000000","traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174"}]}]}},{"name":"queue","sum":{"aggregationTemporality":2,"dataPoints":[{"asDouble":-2}]}},{"name":"temp","unit":"Cel","gauge":{"dataPoints":[{"asDouble":21.5,"flags":0}]}},{"name":"latency","unit":"s","histogram":{"aggregationTemporality":2,"dataPoints":[{"count":"4","sum":6.25,"bucketCounts":["1","2","1","0"],"explicitBounds":[0.1,1,10]}]}},{"name":"payload","unit":"By","exponentialHistogram":{"aggregationTemporality":2,"dataPoints":[{"count":"3","sum":7,"scale":20,"zeroCount":"0","positive":{"offset":-1,"bucketCounts":["1","0","1"]}}]}},{"name":"rpc","summary":{"dataPoints":[{"count":"2","sum":3,"quantileValues":[{"quantile":0.5,"value":1},{"quantile":1,"value":2}]}]}},{"name":"delta","sum":{"aggregationTemporality":1,"isMonotonic":true,"dataPoints":[{"asInt":"1"}]}}]}]}]}"#;

/// The OTLP seeds: the JSON one, and the same export in protobuf (decoded with the gateway's
/// own JSON decoder and encoded with prost).
fn otlp_seeds(out: &Path) {
    use prost::Message;
    write(out, "otlp_decode", "export.json", &flagged(1, OTLP_JSON.as_bytes()));
    write(out, "otlp_decode", "export_utf8.json", &flagged(3, OTLP_JSON.as_bytes()));
    let request = gateway::otlp::decode(OTLP_JSON.as_bytes(), gateway::otlp::Encoding::Json)
        .expect("the JSON seed decodes");
    write(out, "otlp_decode", "export.pb", &flagged(0, &request.encode_to_vec()));
}

fn write(dir: &Path, target: &str, name: &str, bytes: &[u8]) {
    let dir = dir.join(target);
    fs::create_dir_all(&dir).expect("create the corpus directory");
    fs::write(dir.join(name), bytes).expect("write a seed");
}

fn flagged(flags: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![flags];
    out.extend_from_slice(body);
    out
}

fn main() {
    let out = PathBuf::from(std::env::args().nth(1).expect("usage: gen <corpus dir>"));
    let key = GroupingKey::new(vec![
        Label::new("job", "seed"),
        Label::new("instance", "host:9100"),
    ]);
    let protobuf_format = ScrapeFormat {
        encoding: Encoding::Protobuf,
        escaping: Escaping::AllowUtf8,
    };
    let everything = Store::new(StoreConfig::default());
    let mut all_families: Vec<MetricFamily> = Vec::new();
    let mut changes = Vec::new();
    let mut framed_segment = vec![3u8, 0u8];

    for &(name, body, utf8) in TEXT_BODIES {
        write(&out, "text_parse", name, body.as_bytes());
        let validation = if utf8 {
            NameValidation::Utf8
        } else {
            NameValidation::Legacy
        };
        let flags = if utf8 { 2 } else { 0 };
        for target in ["render_roundtrip", "scrape_roundtrip"] {
            write(&out, target, name, &flagged(flags, body.as_bytes()));
        }
        let families = gateway::parse::text::parse(body.as_bytes(), validation)
            .unwrap_or_else(|e| panic!("seed {name} does not parse: {e}"));
        if families.is_empty() {
            continue;
        }
        // One store per body, so that its protobuf rendering is one realistic body.
        let store = Store::new(StoreConfig::default());
        if store
            .push(key.clone(), families.clone(), PushMode::Replace, 1.0)
            .is_err()
        {
            continue;
        }
        let proto = Renderer::new().render(&store, &[], protobuf_format).body;
        write(&out, "protobuf_parse", &format!("{name}.pb"), &proto);
        for target in ["render_roundtrip", "scrape_roundtrip"] {
            write(&out, target, &format!("{name}.pb"), &flagged(1, &proto));
        }

        let group_key = GroupingKey::new(vec![Label::new("job", "seed"), Label::new("body", name)]);
        let _ = everything.push(group_key, families.clone(), PushMode::Replace, 2.0);
        let mut record = Vec::new();
        encode_change(
            &mut record,
            &Change::Push {
                key: Cow::Borrowed(&key),
                families: Cow::Borrowed(&families),
                mode: PushMode::Merge,
                time: 1_700_000_000.5,
                inconsistent: false,
                ttl: Some(GroupTtl::After(std::time::Duration::from_secs(90))),
                idempotency_key: None,
            },
        );
        changes.push((format!("push_{name}"), record));
        all_families.extend(families);
    }
    let mut record = Vec::new();
    encode_change(
        &mut record,
        &Change::Failure {
            key: Cow::Borrowed(&key),
            time: 1_700_000_001.0,
        },
    );
    changes.push(("failure".into(), record));
    let mut record = Vec::new();
    encode_change(
        &mut record,
        &Change::Delete {
            key: Cow::Borrowed(&key),
        },
    );
    changes.push(("delete".into(), record));
    let mut record = Vec::new();
    encode_change(&mut record, &Change::Wipe);
    changes.push(("wipe".into(), record));
    let mut record = Vec::new();
    let selectors = [
        Selector::parse(r#"{job=~"w.*",instance!="x"}"#).expect("a valid selector"),
        Selector::parse(r#"{"a.b"!~"c|d"}"#).expect("a valid selector"),
    ];
    encode_change(
        &mut record,
        &Change::DeleteMatching {
            selectors: Cow::Borrowed(&selectors),
        },
    );
    changes.push(("delete_matching".into(), record));

    // A real segment, written by the log itself.
    let scratch_dir = std::env::temp_dir().join(format!("gateway-fuzz-gen-{}", std::process::id()));
    fs::create_dir_all(&scratch_dir).expect("create a scratch directory");
    let base = scratch_dir.join("state");
    let mut wal = Wal::open(&base, 1, FsyncMode::Always).expect("open a log");
    for (name, record) in &changes {
        write(&out, "codec_change", name, record);
        let change = decode_change(record).expect("our own record decodes");
        wal.append(&change).expect("append a record");
        if let Ok(len) = u16::try_from(record.len()) {
            framed_segment.extend_from_slice(&len.to_le_bytes());
            framed_segment.extend_from_slice(record);
        }
    }
    wal.close();
    let segment = fs::read(segment_path(&base, 1)).expect("read the segment back");
    // Bit 1: read as the last segment (where a torn tail is allowed).
    write(&out, "wal_segment", "segment", &flagged(2, &segment));
    write(
        &out,
        "wal_segment",
        "segment_not_last",
        &flagged(0, &segment),
    );
    write(&out, "wal_segment", "segment_framed", &framed_segment);
    let mut torn = flagged(2, &segment);
    torn.truncate(torn.len() - 3);
    write(&out, "wal_segment", "segment_torn", &torn);
    write(
        &out,
        "wal_segment",
        "header_only",
        &flagged(0, SEGMENT_MAGIC),
    );

    let groups = everything.groups();
    let mut framed_snapshot = vec![1u8];
    framed_snapshot.extend_from_slice(&7u64.to_le_bytes());
    for (i, group) in groups.iter().enumerate() {
        let mut block = Vec::new();
        encode_group(&mut block, group);
        write(&out, "codec_group", &format!("group_{i}"), &block);
        if let Ok(len) = u16::try_from(block.len()) {
            framed_snapshot.extend_from_slice(&len.to_le_bytes());
            framed_snapshot.extend_from_slice(&block);
        }
    }
    write(&out, "snapshot_read", "snapshot_framed", &framed_snapshot);
    let scratch = scratch_dir.join("snapshot");
    snapshot::write(&scratch, 7, &groups).expect("write a snapshot");
    let file = fs::read(&scratch).expect("read the snapshot back");
    let _ = fs::remove_file(&scratch);
    write(&out, "snapshot_read", "snapshot", &flagged(0, &file));
    snapshot::write(&scratch, 1, &[]).expect("write an empty snapshot");
    let file = fs::read(&scratch).expect("read the snapshot back");
    let _ = fs::remove_file(&scratch);
    write(&out, "snapshot_read", "snapshot_empty", &flagged(0, &file));

    let _ = fs::remove_dir_all(&scratch_dir);
    for &(name, flags, path) in GROUPING_PATHS {
        write(
            &out,
            "grouping_path",
            name,
            &flagged(flags, path.as_bytes()),
        );
    }
    for &(name, flags, body) in SCRAPE_SEEDS {
        write(
            &out,
            "scrape_roundtrip",
            name,
            &flagged(flags, body.as_bytes()),
        );
    }
    write(
        &out,
        "scrape_roundtrip",
        "exemplars.pb",
        &flagged(3, &exemplars_body()),
    );
    otlp_seeds(&out);
    eprintln!(
        "wrote the corpus for {} families, {} groups, {} records",
        all_families.len(),
        groups.len(),
        changes.len()
    );
}
