//! Unit tests of the renderer: a family changed in place is encoded again, and cached
//! runs render as a full sort of the store would.

use super::*;
use crate::expose::{Encoding, Escaping};
use crate::model::{GroupingKey, Label};
use crate::store::{Consistency, PushError, PushMode, StoreConfig};
use crate::test_rng::Rng;

/// A family `m` of up to 30 series whose label names sort before the grouping
/// labels (`a`, so groups interleave), after them (`z`, so they do not), or both.
fn random_family(rng: &mut Rng) -> MetricFamily {
    let mut seen = HashSet::new();
    // Half the families have only labels after the grouping ones: their runs are
    // disjoint from each other.
    let names: &[&str] = if rng.below(2) == 0 {
        &["z"]
    } else {
        &["a", "b", "z"]
    };
    let metrics = (0..rng.below(30))
        .filter_map(|_| {
            let mut labels = Vec::new();
            for &name in names {
                if names.len() == 1 || rng.below(3) > 0 {
                    labels.push(Label::new(name, rng.below(8).to_string()));
                }
            }
            let key: Vec<String> = labels.iter().map(|l| format!("{l:?}")).collect();
            seen.insert(key)
                .then(|| Metric::new(labels, Value::Gauge(rng.below(100) as f64)))
        })
        .collect();
    MetricFamily {
        name: "m".into(),
        help: Some("help".into()),
        metric_type: MetricType::Gauge,
        metrics,
    }
}

/// `m`'s encoding from all its series sorted at once.
fn fully_sorted(store: &Store, format: ScrapeFormat) -> Vec<u8> {
    let snapshot = store.snapshot(|_, _| false, |_| false);
    let Some(entry) = snapshot.names.iter().find(|n| &*n.name == "m") else {
        return Vec::new();
    };
    let mut series: Vec<Series> = entry.families.iter().flat_map(|f| f.series()).collect();
    sort_metrics(&mut series);
    encode_family(format, "m", Some("help"), MetricType::Gauge, &series)
}

#[test]
fn a_family_changed_in_place_is_encoded_again() {
    // Aggregating pushes change a family in place when nothing else holds it; the
    // renderer's weak handle must not let an in-place change pass for the same family.
    let store = Store::new(StoreConfig::default());
    let renderer = Renderer::new();
    let key = || GroupingKey::new(vec![Label::new("job", "j")]);
    let counter = |value: f64| MetricFamily {
        name: "c_total".into(),
        help: None,
        metric_type: MetricType::Counter,
        metrics: vec![Metric::new(
            vec![Label::new("a", "1")],
            Value::Counter(value),
        )],
    };
    let body = |renderer: &Renderer| {
        String::from_utf8(renderer.render(&store, &[], ScrapeFormat::TEXT).body).unwrap_or_default()
    };
    for (pushed, total) in [(1.0, "1"), (2.0, "3"), (4.0, "7")] {
        let result = store.push(key(), vec![counter(pushed)], PushMode::Aggregate, 1.0);
        assert!(result.is_ok(), "{result:?}");
        let line = format!("c_total{{a=\"1\",instance=\"\",job=\"j\"}} {total}\n");
        assert!(body(&renderer).contains(&line), "{}", body(&renderer));
    }
    // A removed group's name leaves the cache with it.
    assert!(store.delete(&key()).is_ok());
    assert!(!body(&renderer).contains("c_total"));
    assert!(renderer.names.lock().values().all(HashMap::is_empty));
}

#[test]
fn cached_runs_render_as_a_full_sort_would() {
    let formats = [
        ScrapeFormat::TEXT,
        ScrapeFormat {
            encoding: Encoding::Protobuf,
            escaping: Escaping::Underscores,
        },
        ScrapeFormat {
            encoding: Encoding::OpenMetrics,
            escaping: Escaping::Underscores,
        },
    ];
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    for round in 0..20 {
        let store = Store::new(StoreConfig::default());
        let renderer = Renderer::new();
        for step in 0..15 {
            // Group labels `g` (between `b` and `z`) and `job`.
            let group = rng.below(6);
            let key = GroupingKey::new(vec![
                Label::new("job", "j"),
                Label::new("g", group.to_string()),
            ]);
            if rng.below(5) == 0 {
                assert!(store.delete(&key).is_ok());
            } else {
                let pushed = store.push(key, vec![random_family(&mut rng)], PushMode::Replace, 1.0);
                assert!(pushed.is_ok(), "{pushed:?}");
            }
            for format in formats {
                let body = renderer.render(&store, &[], format).body;
                let expected = fully_sorted(&store, format);
                assert!(
                    body.starts_with(&expected),
                    "round {round} step {step} {format:?}:\n{}\nexpected\n{}",
                    String::from_utf8_lossy(&body),
                    String::from_utf8_lossy(&expected)
                );
                if format == ScrapeFormat::TEXT {
                    let rest = &body[expected.len()..];
                    assert!(rest.is_empty() || rest.starts_with(b"# HELP push_failure"));
                }
                let gzip = renderer.gzip(&renderer.render_chunks(&store, &[], format));
                let mut unzipped = Vec::new();
                let all = gzip.concat();
                let read = std::io::Read::read_to_end(
                    &mut flate2::read::MultiGzDecoder::new(&all[..]),
                    &mut unzipped,
                );
                assert!(read.is_ok());
                assert_eq!(unzipped, body);
            }
        }
    }
}

/// A random push: one to three families among a few names (a UTF-8 one among them) and
/// types, up to 30 series each or, now and then, 1,500 (a run past a gzip segment).
fn random_push(rng: &mut Rng) -> Vec<MetricFamily> {
    let names = ["c_total", "g", "h", "u.tf8", "g_two"];
    let mut families: Vec<MetricFamily> = Vec::new();
    for _ in 0..1 + rng.below(3) {
        let name = names[rng.below(names.len())];
        if families.iter().any(|f| &*f.name == name) {
            continue;
        }
        let metric_type = match name {
            "c_total" => MetricType::Counter,
            "h" => MetricType::Histogram,
            _ if rng.below(8) == 0 => MetricType::Untyped,
            _ => MetricType::Gauge,
        };
        let size = if rng.below(12) == 0 {
            1_500
        } else {
            rng.below(30)
        };
        let label_names: &[&str] = if rng.below(2) == 0 {
            &["z"]
        } else {
            &["a", "b.c", "z"]
        };
        let mut seen = HashSet::new();
        let metrics = (0..size)
            .filter_map(|i| {
                let labels: Vec<Label> = label_names
                    .iter()
                    .map(|n| {
                        let value = match rng.below(4) {
                            0 => format!("v\"{}\\\n", rng.below(50)),
                            1 => format!("ü{i}"),
                            _ => rng.below(60).to_string(),
                        };
                        Label::new(*n, value)
                    })
                    .collect();
                let value = rng.below(1000) as f64;
                let value = match metric_type {
                    MetricType::Counter => Value::Counter(value),
                    MetricType::Untyped => Value::Untyped(value),
                    MetricType::Histogram => Value::Histogram(Box::new(crate::model::Histogram {
                        count: value,
                        float_counts: false,
                        sum: value * 2.0,
                        buckets: vec![crate::model::Bucket {
                            upper_bound: 1.0,
                            count: value,
                        }],
                    })),
                    _ => Value::Gauge(value),
                };
                seen.insert(format!("{labels:?}"))
                    .then(|| Metric::new(labels, value))
            })
            .collect();
        let help = ["", "help one", "help \"two\"\\\n"][rng.below(3)];
        families.push(MetricFamily {
            name: name.into(),
            help: (!help.is_empty()).then(|| help.into()),
            metric_type,
            metrics,
        });
    }
    families
}

/// Decodes one gzip member, which must be the whole of `bytes`.
fn gunzip_exactly(bytes: &[u8]) -> Vec<u8> {
    let mut decoder = flate2::read::GzDecoder::new(bytes);
    let mut out = Vec::new();
    let read = std::io::Read::read_to_end(&mut decoder, &mut out);
    assert!(read.is_ok(), "{read:?}");
    assert!(
        decoder.into_inner().is_empty(),
        "bytes after the gzip member"
    );
    out
}

#[test]
fn cached_scrapes_equal_uncached_ones_and_gzip_decodes_to_them() {
    let formats = [
        ScrapeFormat::TEXT,
        ScrapeFormat {
            encoding: Encoding::Text,
            escaping: Escaping::AllowUtf8,
        },
        ScrapeFormat {
            encoding: Encoding::Text,
            escaping: Escaping::Values,
        },
        ScrapeFormat {
            encoding: Encoding::Protobuf,
            escaping: Escaping::Dots,
        },
        ScrapeFormat {
            encoding: Encoding::OpenMetrics,
            escaping: Escaping::AllowUtf8,
        },
    ];
    let mut rng = Rng(0x0dd_ba11_cafe_f00d);
    // Unchecked, names of two types and repeated series are stored and rendered whole.
    for consistency in [Consistency::Checked, Consistency::Unchecked] {
        let store = Store::new(StoreConfig {
            consistency,
            ..StoreConfig::default()
        });
        let renderer = Renderer::new();
        let (mut stored, mut refused, mut most_chunks) = (0, 0, 0);
        for step in 0..60 {
            let key = GroupingKey::new(vec![
                Label::new("job", "j"),
                Label::new("g", rng.below(7).to_string()),
            ]);
            match rng.below(10) {
                0 => assert!(store.delete(&key).is_ok()),
                n => {
                    let mode = match n {
                        1..=3 => PushMode::Replace,
                        4..=6 => PushMode::Merge,
                        _ => PushMode::Aggregate,
                    };
                    // Refusals (a type or help an aggregate cannot take) must change nothing
                    // the scrapes disagree on either.
                    match store.push(key, random_push(&mut rng), mode, step as f64) {
                        Ok(_) => stored += 1,
                        Err(PushError::Rejected(_)) => refused += 1,
                        Err(other) => panic!("{consistency:?} step {step}: {other:?}"),
                    }
                }
            }
            // Some formats each step, so that caches of formats go stale at different times.
            for format in formats.iter().filter(|_| rng.below(2) == 0) {
                let cached = renderer.render(&store, &[], *format);
                let fresh = Renderer::new().render(&store, &[], *format);
                assert!(
                    cached.body == fresh.body,
                    "{consistency:?} step {step} {format:?}: cached\n{}\nfresh\n{}",
                    String::from_utf8_lossy(&cached.body),
                    String::from_utf8_lossy(&fresh.body)
                );
                assert_eq!(cached.dropped_series, fresh.dropped_series);
                let gzip = renderer.gzip(&renderer.render_chunks(&store, &[], *format));
                most_chunks = most_chunks.max(gzip.len());
                let unzipped = gunzip_exactly(&gzip.concat());
                assert!(
                    unzipped == fresh.body,
                    "{consistency:?} step {step} {format:?}: gzip differs"
                );
            }
        }
        assert!(
            stored > 30,
            "{consistency:?}: {stored} stored, {refused} refused"
        );
        assert!(consistency == Consistency::Unchecked || refused > 0);
        // Header, trailer and segments: some scrapes had several, with dictionaries.
        assert!(most_chunks > 4, "at most {most_chunks} gzip chunks");
    }
}
