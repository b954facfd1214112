//! Nothing a client pushes can change the structure of a scrape. The first byte picks the
//! body format and the settings (bit 0: protobuf body instead of text, bit 1: UTF-8 name
//! validation, bit 2: merge instead of replace, bit 3: the body's first line is a grouping
//! path such as `/a/1/U__b_2e_c/2`); the rest is the body. When the push is accepted, the
//! store is rendered in every format (text, OpenMetrics, protobuf; with and without UTF-8
//! names) and each rendering is re-parsed strictly: the text formats by the strict parser
//! the black-box tests use, protobuf by the decoder. Each must hold exactly the series the
//! accepted push implies, and no others.
#![no_main]

use std::collections::{BTreeMap, BTreeSet, HashSet};

use gateway::expose::{Encoding, Escaping, Renderer, ScrapeFormat};
use gateway::grouping::parse_grouping_path;
use gateway::model::{
    legacy_escaped, GroupingKey, Label, MetricFamily, MetricType, NameValidation, SeriesLabels,
    Value,
};
use gateway::parse::{parse, protobuf, Format, ParseLimits};
use gateway::store::{PushMode, Store, StoreConfig, PUSH_FAILURE_TIME_METRIC, PUSH_TIME_METRIC};
use libfuzzer_sys::fuzz_target;

#[path = "../../gateway/tests/api/strict.rs"]
mod strict;

use strict::{SeriesKey, Syntax};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, mut body)) = data.split_first() else {
        return;
    };
    let validation = if flags & 2 != 0 {
        NameValidation::Utf8
    } else {
        NameValidation::Legacy
    };
    let mut key = GroupingKey::new(vec![Label::new("job", "fuzz"), Label::new("instance", "a")]);
    if flags & 8 != 0 {
        let end = body.iter().position(|&b| b == b'\n').unwrap_or(body.len());
        let Ok(path) = std::str::from_utf8(&body[..end]) else {
            return;
        };
        let Ok(parsed) = parse_grouping_path("fuzz", false, path, validation) else {
            return;
        };
        key = parsed;
        body = body.get(end + 1..).unwrap_or_default();
    }
    let format = if flags & 1 != 0 {
        Format::Protobuf
    } else {
        Format::Text
    };
    // As a push is parsed: repeated quantiles and bucket bounds are dropped here.
    let families = parse(body, format, validation, ParseLimits::NONE);
    let Ok(families) = families else {
        return;
    };
    let store = Store::new(StoreConfig {
        reserved: gateway::telemetry::own_metric_types(),
        ..StoreConfig::default()
    });
    let mode = if flags & 4 != 0 {
        PushMode::Merge
    } else {
        PushMode::Replace
    };
    if store.push(key, families, mode, 1.0).is_err() {
        return;
    }
    let renderer = Renderer::new();
    for utf8_names in [false, true] {
        for encoding in [Encoding::Text, Encoding::OpenMetrics, Encoding::Protobuf] {
            let escaping = if utf8_names {
                Escaping::AllowUtf8
            } else {
                Escaping::Underscores
            };
            let format = ScrapeFormat { encoding, escaping };
            let expected = expected_series(&store, format);
            let body = renderer.render(&store, &[], format).body;
            let got = match encoding {
                Encoding::Protobuf => {
                    let families = protobuf::parse(&body).unwrap_or_else(|e| {
                        panic!("{format:?}: our protobuf does not decode: {e}")
                    });
                    decoded_series(&families)
                }
                _ => {
                    let text = std::str::from_utf8(&body)
                        .unwrap_or_else(|e| panic!("{format:?}: not UTF-8: {e}"));
                    let syntax = if encoding == Encoding::Text {
                        Syntax::Text
                    } else {
                        Syntax::OpenMetrics
                    };
                    strict::parse(text, syntax, utf8_names)
                        .unwrap_or_else(|e| panic!("{format:?}: {e}\n--- scrape ---\n{text}"))
                }
            };
            let got = normalized(got);
            if got != expected {
                let missing: Vec<_> = expected.difference(&got).collect();
                let extra: Vec<_> = got.difference(&expected).collect();
                panic!(
                    "{format:?}: the scrape's series differ from the push's\nmissing: {missing:?}\nextra: {extra:?}\n--- scrape ---\n{}",
                    String::from_utf8_lossy(&body)
                );
            }
        }
    }
});

/// The series the store's content implies in `format`: every sample of every family (the
/// group's labels merged in), plus each group's timestamps. Without UTF-8 names, names are
/// escaped, and of two families that escape alike only the first (by name) is exposed.
fn expected_series(store: &Store, format: ScrapeFormat) -> BTreeSet<SeriesKey> {
    let escape = |name: &str, is_label: bool| -> String {
        if format.utf8_names() {
            name.to_string()
        } else {
            legacy_escaped(name, is_label).into_owned()
        }
    };
    // Sorted again: escaping can change the order of names.
    let label_pairs = |labels: SeriesLabels<'_>| -> Vec<(String, String)> {
        let mut pairs: Vec<(String, String)> = labels
            .map(|l| (escape(&l.name, true), l.value.to_string()))
            .collect();
        pairs.sort();
        pairs
    };
    let om = format.encoding == Encoding::OpenMetrics;
    let mut out = BTreeSet::new();
    // Stored families by name across groups, as the renderer merges them.
    let groups = store.groups();
    let mut by_name: BTreeMap<&str, Vec<(&gateway::store::StoredFamily, &GroupingKey)>> =
        BTreeMap::new();
    for group in &groups {
        for stored in &group.families {
            by_name
                .entry(&stored.name)
                .or_default()
                .push((stored, &group.key));
        }
        for name in [PUSH_TIME_METRIC, PUSH_FAILURE_TIME_METRIC] {
            out.insert((
                name.to_string(),
                label_pairs(SeriesLabels::new(&[], &group.key)),
            ));
        }
    }
    let mut taken: HashSet<String> = [PUSH_TIME_METRIC, PUSH_FAILURE_TIME_METRIC]
        .iter()
        .map(|n| n.to_string())
        .collect();
    for (name, families) in by_name {
        let exposed = escape(name, false);
        if !format.utf8_names() || om {
            // A family whose sample names another already uses is left out.
            let metric_type = families[0].0.metric_type;
            let names = sample_names(&exposed, metric_type, om);
            if names.iter().any(|n| taken.contains(n)) {
                continue;
            }
            taken.extend(names);
        }
        for (stored, _) in families {
            let family = stored;
            for series in stored.series() {
                expand(
                    &exposed,
                    family.metric_type,
                    om,
                    label_pairs(series.labels()),
                    &series.value().to_value(),
                    &mut out,
                );
            }
        }
    }
    normalized(out)
}

/// The series of decoded protobuf families (whose labels are complete already).
fn decoded_series(families: &[MetricFamily]) -> BTreeSet<SeriesKey> {
    let mut out = BTreeSet::new();
    for family in families {
        for metric in &family.metrics {
            let labels: Vec<(String, String)> = metric
                .labels
                .iter()
                .map(|l| (l.name.to_string(), l.value.to_string()))
                .collect();
            assert!(
                labels.iter().all(|(n, _)| !n.is_empty()),
                "protobuf: an empty label name in {}",
                family.name
            );
            let distinct: HashSet<&str> = labels.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(
                distinct.len(),
                labels.len(),
                "protobuf: a label twice in {}",
                family.name
            );
            expand(
                &family.name,
                family.metric_type,
                false,
                labels,
                &metric.value,
                &mut out,
            );
        }
    }
    out
}

/// The samples one metric is exposed as; `om`: OpenMetrics' `_gsum`/`_gcount` for gauge
/// histograms.
fn expand(
    name: &str,
    metric_type: MetricType,
    om: bool,
    labels: Vec<(String, String)>,
    value: &Value,
    out: &mut BTreeSet<SeriesKey>,
) {
    let with = |extra: Option<(&str, f64)>| -> Vec<(String, String)> {
        let mut labels = labels.clone();
        if let Some((n, v)) = extra {
            labels.push((n.to_string(), canonical_float(v)));
        }
        labels.sort();
        labels
    };
    let mut add = |suffix: &str, extra: Option<(&str, f64)>| {
        let added = out.insert((format!("{name}{suffix}"), with(extra)));
        assert!(added, "the push implies the series {name}{suffix} twice");
    };
    match value {
        Value::Counter(_) | Value::Gauge(_) | Value::Untyped(_) => add("", None),
        Value::Summary(summary) => {
            for q in &summary.quantiles {
                add("", Some(("quantile", q.quantile)));
            }
            add("_sum", None);
            add("_count", None);
        }
        Value::Histogram(histogram) => {
            for bucket in &histogram.buckets {
                add("_bucket", Some(("le", bucket.upper_bound)));
            }
            if !histogram
                .buckets
                .iter()
                .any(|b| b.upper_bound == f64::INFINITY)
            {
                add("_bucket", Some(("le", f64::INFINITY)));
            }
            if om && metric_type == MetricType::GaugeHistogram {
                add("_gsum", None);
                add("_gcount", None);
            } else {
                add("_sum", None);
                add("_count", None);
            }
        }
    }
}

/// The sample names of a family: its name, and the suffixed ones of summaries and
/// histograms.
fn sample_names(name: &str, metric_type: MetricType, om: bool) -> Vec<String> {
    let suffixes: &[&str] = match metric_type {
        MetricType::Summary => &["", "_sum", "_count"],
        MetricType::GaugeHistogram if om => &["", "_bucket", "_gsum", "_gcount"],
        MetricType::Histogram | MetricType::GaugeHistogram => &["", "_bucket", "_sum", "_count"],
        _ => &[""],
    };
    let mut names: Vec<String> = suffixes.iter().map(|s| format!("{name}{s}")).collect();
    // OpenMetrics declares a counter `x_total` as the family `x`.
    if om && metric_type == MetricType::Counter {
        if let Some(base) = name.strip_suffix("_total") {
            names.push(base.to_string());
        }
    }
    names
}

fn canonical_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else {
        format!("{v:?}")
    }
}

/// `le` and `quantile` values as numbers (`1`, `1.0` and `1e0` are one bound); the formats
/// write them differently.
fn normalized(series: BTreeSet<SeriesKey>) -> BTreeSet<SeriesKey> {
    series
        .into_iter()
        .map(|(name, labels)| {
            let labels = labels
                .into_iter()
                .map(|(n, v)| {
                    let number = match v.as_str() {
                        "+Inf" | "Inf" => Some(f64::INFINITY),
                        "-Inf" => Some(f64::NEG_INFINITY),
                        "NaN" => Some(f64::NAN),
                        other => other.parse::<f64>().ok(),
                    };
                    match number {
                        Some(f) if n == "le" || n == "quantile" => (n, canonical_float(f)),
                        _ => (n, v),
                    }
                })
                .collect();
            (name, labels)
        })
        .collect()
}
