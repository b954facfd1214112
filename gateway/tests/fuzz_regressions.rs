//! Regression tests for inputs found by the fuzz targets in `fuzz/` (see `ci/suites/70-fuzz.sh`).
//! Each test feeds the minimized input to the same library function as its fuzz target and
//! checks the expected outcome. Tests of bugs not fixed yet are `#[ignore]`d with the reason;
//! run them with `cargo test -p gateway --test fuzz_regressions -- --include-ignored`.

use gateway::expose::{Renderer, ScrapeFormat};
use gateway::model::{GroupingKey, Label, MetricFamily, NameValidation};
use gateway::parse::{protobuf, text};
use gateway::proto;
use gateway::store::{Consistency, PushMode, Store, StoreConfig};
use prost::Message;

/// What `fuzz_targets/render_roundtrip.rs` checks: when the store accepts the push, the
/// default text exposition (escaped names) parses with the text parser.
fn assert_exposition_reparses(families: Vec<MetricFamily>) {
    assert_exposition_reparses_with(families, Consistency::Checked);
}

fn assert_exposition_reparses_with(families: Vec<MetricFamily>, consistency: Consistency) {
    let store = Store::new(StoreConfig {
        consistency,
        reserved: gateway::telemetry::own_metric_types(),
        ..StoreConfig::default()
    });
    let key = GroupingKey::new(vec![Label::new("job", "fuzz"), Label::new("instance", "a")]);
    if store.push(key, families, PushMode::Replace, 1.0).is_err() {
        return;
    }
    let rendered = Renderer::new().render(&store, &[], ScrapeFormat::TEXT);
    if let Err(e) = text::parse(&rendered.body, NameValidation::Legacy) {
        panic!(
            "our text exposition does not parse: {e}\n{}",
            String::from_utf8_lossy(&rendered.body)
        );
    }
}

fn untyped_family(name: &str, value: f64) -> proto::MetricFamily {
    proto::MetricFamily {
        name: Some(name.to_string()),
        r#type: Some(proto::MetricType::Untyped as i32),
        metric: vec![proto::Metric {
            untyped: Some(proto::Untyped { value: Some(value) }),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// Found by `render_roundtrip` (input `02 7b 22 61 2e 62 22 7d 20 31 0a 61 5f 62 20 32 0a`,
/// minimized by hand from the fuzzer's 182-byte input): two UTF-8 metric names that differ
/// only in characters the default scrape escapes to `_` (`a.b` and `a_b`) are both stored,
/// and the text exposition then carries two `# TYPE a_b` blocks, which is not valid text
/// format (our own parser: "second TYPE line for metric name \"a_b\"").
#[test]

fn text_utf8_names_colliding_after_escaping_render_valid_text() {
    let body = b"{\"a.b\"} 1\na_b 2\n";
    let families = text::parse(body, NameValidation::Utf8).expect("the body parses");
    assert_eq!(families.len(), 2);
    assert_exposition_reparses(families);
}

/// The same collision through the default configuration (legacy name validation): the
/// protobuf format carries any UTF-8 name, so `a.b` and `a_b` in one protobuf push are both
/// accepted and the default text scrape is invalid.
#[test]

fn protobuf_names_colliding_after_escaping_render_valid_text() {
    let mut body = Vec::new();
    for family in [untyped_family("a.b", 1.0), untyped_family("a_b", 2.0)] {
        family
            .encode_length_delimited(&mut body)
            .expect("encode into a Vec");
    }
    let families = protobuf::parse(&body).expect("the body decodes");
    assert_eq!(families.len(), 2);
    assert_exposition_reparses(families);
}

/// Found by `render_roundtrip` (a protobuf push; minimized by hand): a family named
/// `push+time_seconds` passes the filter that drops pushed `push_time_seconds` families,
/// but escapes to `push_time_seconds`, so the text exposition carries the gateway's own
/// `push_time_seconds` block twice ("second HELP line for metric name
/// \"push_time_seconds\""). The same happens with `push.failure_time_seconds`.
#[test]

fn protobuf_name_escaping_to_push_time_seconds_renders_valid_text() {
    for name in ["push+time_seconds", "push.failure_time_seconds"] {
        let mut body = Vec::new();
        untyped_family(name, 1.0)
            .encode_length_delimited(&mut body)
            .expect("encode into a Vec");
        let families = protobuf::parse(&body).expect("the body decodes");
        assert_exposition_reparses(families);
    }
}

/// Found by `render_roundtrip` (first byte 0x75: protobuf, legacy names, consistency
/// check disabled; minimized by hand): with `--push.disable-consistency-check` a series
/// with an empty label name is stored (as expected) but also rendered, as `""="seed"`,
/// which no parser accepts ("invalid label name for metric"). The exposition should leave
/// it out, as it does with other series that do not fit. (With the check enabled the push
/// is refused, as it should be.)
#[test]

fn unchecked_protobuf_empty_label_name_is_not_rendered() {
    let mut family = untyped_family("requests_total", 3.0);
    family.metric[0].label.push(proto::LabelPair {
        name: Some(String::new()),
        value: Some("seed".into()),
    });
    let mut body = Vec::new();
    family
        .encode_length_delimited(&mut body)
        .expect("encode into a Vec");
    let families = protobuf::parse(&body).expect("the body decodes");
    assert_exposition_reparses_with(families.clone(), Consistency::Checked);
    assert_exposition_reparses_with(families, Consistency::Unchecked);
}

/// The gateway's own `push_time_seconds` keeps its name when a pushed name escapes to it.
#[test]
fn own_push_time_seconds_wins_over_a_pushed_name_escaping_to_it() {
    let mut body = Vec::new();
    untyped_family("push+time_seconds", 1.0)
        .encode_length_delimited(&mut body)
        .expect("encode into a Vec");
    let families = protobuf::parse(&body).expect("the body decodes");
    let store = Store::new(StoreConfig::default());
    let key = GroupingKey::new(vec![Label::new("job", "fuzz")]);
    store
        .push(key, families, PushMode::Replace, 1.0)
        .expect("accepted");
    let rendered = Renderer::new().render(&store, &[], ScrapeFormat::TEXT);
    let text = String::from_utf8(rendered.body).expect("utf-8");
    assert!(
        text.contains(
            "# TYPE push_time_seconds gauge\npush_time_seconds{instance=\"\",job=\"fuzz\"} 1\n"
        ),
        "{text}"
    );
    assert!(rendered.dropped_series > 0, "{text}");
}

/// Found by `scrape_roundtrip`: a label path that does not start with `/` and whose first
/// character is multi-byte made `parse_grouping_path` slice inside the character.
#[test]
fn grouping_path_not_starting_with_a_slash_is_refused_without_panic() {
    use gateway::grouping::{parse_grouping_path, GroupingError};
    for validation in [NameValidation::Legacy, NameValidation::Utf8] {
        let result = parse_grouping_path("fuzz", false, "\u{26a}__zo.eO4e_name/eu", validation);
        assert!(
            matches!(result, Err(GroupingError::OddComponents(_))),
            "{result:?}"
        );
    }
}

/// Found by `scrape_roundtrip`: two series of one family whose label names differ only in
/// what the default scrape escapes (`l.a` and `l_a`) were both stored, and that scrape
/// showed one series twice. The push is refused now.
#[test]
fn series_differing_only_in_escaped_label_names_are_refused() {
    let body = b"{\"m\",\"l.a\"=\"v\"} 1\nm{l_a=\"v\"} 2\n";
    let families = text::parse(body, NameValidation::Utf8).expect("a valid UTF-8 body");
    let store = Store::new(StoreConfig::default());
    let key = GroupingKey::new(vec![Label::new("job", "fuzz")]);
    let result = store.push(key, families, PushMode::Replace, 1.0);
    assert!(result.is_err(), "{result:?}");
    let rendered = Renderer::new().render(&store, &[], ScrapeFormat::TEXT);
    let text = String::from_utf8_lossy(&rendered.body);
    assert!(!text.contains("m{"), "{text}");
}

/// Found by `scrape_roundtrip`: a label name outside the reserved prefix that a scrape
/// without UTF-8 names escapes into it (`\0\0d` is shown as `__d`, `..name..` as
/// `__name__`) was accepted, for exemplars and samples alike. Both are refused now.
#[test]
fn label_names_escaping_into_the_reserved_prefix_are_refused() {
    let exemplar = proto::Exemplar {
        label: vec![proto::LabelPair {
            name: Some("\0\0d".into()),
            value: Some("v".into()),
        }],
        value: Some(1.0),
        timestamp: None,
    };
    let family = proto::MetricFamily {
        name: Some("c_total".into()),
        help: None,
        r#type: Some(proto::MetricType::Counter as i32),
        metric: vec![proto::Metric {
            counter: Some(proto::Counter {
                value: Some(1.0),
                exemplar: Some(exemplar),
                created_timestamp: None,
            }),
            ..proto::Metric::default()
        }],
        unit: None,
    };
    let result = protobuf::parse(&family.encode_length_delimited_to_vec());
    assert!(result.is_err(), "{result:?}");

    let body = b"{\"m\",\"..name..\"=\"evil\"} 1\n";
    let families = text::parse(body, NameValidation::Utf8).expect("a valid UTF-8 body");
    let store = Store::new(StoreConfig::default());
    let key = GroupingKey::new(vec![Label::new("job", "fuzz")]);
    let result = store.push(key, families, PushMode::Replace, 1.0);
    assert!(result.is_err(), "{result:?}");
}

#[path = "api/strict.rs"]
mod strict;

/// Found by `scrape_roundtrip`: with UTF-8 names, a gauge `a.bucket` is escaped to the name
/// of histogram `a`'s buckets on the default scrape, which then showed the `+Inf` bucket
/// series twice. The later family is left out of that scrape, as for names escaped alike.
#[test]
fn escaped_name_equal_to_a_histograms_bucket_series_is_left_out() {
    let body = b"# TYPE a histogram\na_bucket{le=\"+Inf\"} 1\na_sum 1\na_count 1\n{\"a.bucket\",le=\"+Inf\"} 5\n";
    let families = text::parse(body, NameValidation::Utf8).expect("a valid UTF-8 body");
    let store = Store::new(StoreConfig::default());
    let key = GroupingKey::new(vec![Label::new("job", "fuzz")]);
    store
        .push(key, families, PushMode::Replace, 1.0)
        .expect("the push is valid");
    let rendered = Renderer::new().render(&store, &[], ScrapeFormat::TEXT);
    let text = String::from_utf8_lossy(&rendered.body);
    let series =
        strict::parse(&text, strict::Syntax::Text, false).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(
        series.iter().filter(|(n, _)| n == "a_bucket").count(),
        1,
        "{text}"
    );
    assert_eq!(rendered.dropped_series, 1);
}

/// Found by `scrape_roundtrip`: OpenMetrics declares a counter `foo_total` as family `foo`,
/// so next to a pushed gauge `foo` the scrape declared `foo` twice. The family that comes
/// second by name is now left out of such a scrape (and counted as dropped), as for other
/// names that would be exposed twice.
#[test]
fn openmetrics_counter_next_to_its_base_name_is_declared_once() {
    let body = b"# TYPE foo_total counter\nfoo_total 1\n# TYPE foo gauge\nfoo 2\n";
    let families = text::parse(body, NameValidation::Legacy).expect("a valid body");
    let store = Store::new(StoreConfig::default());
    let key = GroupingKey::new(vec![Label::new("job", "fuzz")]);
    store
        .push(key, families, PushMode::Replace, 1.0)
        .expect("the push is valid");
    let format = ScrapeFormat {
        encoding: gateway::expose::Encoding::OpenMetrics,
        escaping: gateway::expose::Escaping::Underscores,
    };
    let rendered = Renderer::new().render(&store, &[], format);
    let text = String::from_utf8_lossy(&rendered.body);
    strict::parse(&text, strict::Syntax::OpenMetrics, false)
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
}
