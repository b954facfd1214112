use std::sync::{Arc, Mutex};

use crate::model::{
    Bucket, BucketSpan, Extras, GroupingKey, Histogram, Label, Metric, MetricFamily, MetricType,
    NativeHistogram, Quantile, Summary, Timestamp, Value,
};
use crate::store::{Change, Journal, PushError, PushMode, Rejection, Store, StoreConfig};

fn key(job: &str) -> GroupingKey {
    GroupingKey::new(vec![Label::new("job", job)])
}

fn family(name: &str, metric_type: MetricType, values: Vec<(Vec<Label>, Value)>) -> MetricFamily {
    MetricFamily {
        name: name.into(),
        help: None,
        metric_type,
        metrics: values
            .into_iter()
            .map(|(labels, value)| Metric::new(labels, value))
            .collect(),
    }
}

fn counter(name: &str, value: f64) -> MetricFamily {
    family(
        name,
        MetricType::Counter,
        vec![(Vec::new(), Value::Counter(value))],
    )
}

fn histogram(bounds: &[f64], counts: &[f64], sum: f64) -> Histogram {
    Histogram {
        count: counts.last().copied().unwrap_or(0.0),
        float_counts: false,
        sum,
        buckets: bounds
            .iter()
            .zip(counts)
            .map(|(&upper_bound, &count)| Bucket { upper_bound, count })
            .collect(),
    }
}

fn hist_family(h: Histogram) -> MetricFamily {
    family(
        "latency_seconds",
        MetricType::Histogram,
        vec![(Vec::new(), Value::Histogram(Box::new(h)))],
    )
}

/// The only value of family `name` in group `job`.
fn value(store: &Store, job: &str, name: &str) -> Value {
    store
        .groups()
        .into_iter()
        .find(|g| *g.key == key(job))
        .and_then(|g| g.families.into_iter().find(|f| &*f.name == name))
        .and_then(|f| Some(f.series().next()?.value().to_value()))
        .expect("stored")
}

fn add(store: &Store, job: &str, families: Vec<MetricFamily>) -> Result<Option<u64>, PushError> {
    store.push(key(job), families, PushMode::Aggregate, 1.0)
}

#[test]
fn counters_add_and_keep_the_earliest_created_time() {
    let store = Store::new(StoreConfig::default());
    let created = |seconds| {
        let mut f = counter("done_total", 2.0);
        f.metrics[0].extras = Some(Box::new(Extras {
            created: Some(Timestamp { seconds, nanos: 0 }),
            ..Extras::default()
        }));
        f
    };
    add(&store, "j", vec![created(200)]).expect("first");
    add(&store, "j", vec![created(100)]).expect("second");
    add(&store, "j", vec![created(300)]).expect("third");
    add(&store, "j", vec![counter("done_total", 0.5)]).expect("fourth");
    assert_eq!(value(&store, "j", "done_total"), Value::Counter(6.5));
    let groups = store.groups();
    let metric = groups[0].families[0].series().next().expect("series");
    let created = metric.extras().and_then(|e| e.created);
    assert_eq!(created.map(|t| t.seconds), Some(100));
    assert_eq!(store.stats().series, 1);
}

#[test]
fn gauges_keep_the_last_value_and_unnamed_families_stay() {
    let store = Store::new(StoreConfig::default());
    let gauge = |v| {
        family(
            "temp",
            MetricType::Gauge,
            vec![(Vec::new(), Value::Gauge(v))],
        )
    };
    add(&store, "j", vec![gauge(1.0), counter("c_total", 1.0)]).expect("first");
    add(&store, "j", vec![gauge(5.0)]).expect("second");
    assert_eq!(value(&store, "j", "temp"), Value::Gauge(5.0));
    // c_total was not named by the second push and is kept.
    assert_eq!(value(&store, "j", "c_total"), Value::Counter(1.0));
}

#[test]
fn new_series_join_the_family_and_others_are_found_again() {
    let store = Store::new(StoreConfig::default());
    let by_code = |code: &str, v| {
        family(
            "requests_total",
            MetricType::Counter,
            vec![(vec![Label::new("code", code)], Value::Counter(v))],
        )
    };
    for (code, v) in [
        ("200", 1.0),
        ("500", 2.0),
        ("200", 3.0),
        ("404", 4.0),
        ("500", 5.0),
    ] {
        add(&store, "j", vec![by_code(code, v)]).expect("push");
    }
    let groups = store.groups();
    // Kept in the exposition's order, however they arrived.
    let found: Vec<(String, Value)> = groups[0].families[0]
        .series()
        .map(|s| s.to_own_metric())
        .map(|m| (m.labels[0].value.to_string(), m.value))
        .collect();
    assert_eq!(
        found,
        [
            ("200".into(), Value::Counter(4.0)),
            ("404".into(), Value::Counter(4.0)),
            ("500".into(), Value::Counter(7.0)),
        ]
    );
    assert_eq!(store.stats().series, 3);
    // An ordinary PUT resets the aggregate, and the next aggregating push starts over.
    store
        .push(key("j"), vec![by_code("200", 10.0)], PushMode::Replace, 2.0)
        .expect("put");
    add(&store, "j", vec![by_code("200", 1.0)]).expect("again");
    assert_eq!(value(&store, "j", "requests_total"), Value::Counter(11.0));
    assert_eq!(store.stats().series, 1);
}

#[test]
fn classic_histograms_add_when_their_bounds_agree() {
    let store = Store::new(StoreConfig::default());
    add(
        &store,
        "j",
        vec![hist_family(histogram(
            &[0.1, 1.0, f64::INFINITY],
            &[1.0, 2.0, 3.0],
            1.5,
        ))],
    )
    .expect("first");
    // The same bounds without the +Inf bucket, which every histogram has.
    add(
        &store,
        "j",
        vec![hist_family(histogram(&[0.1, 1.0], &[4.0, 4.0], 0.5))],
    )
    .expect("second");
    let Value::Histogram(h) = value(&store, "j", "latency_seconds") else {
        panic!("not a histogram");
    };
    let counts: Vec<f64> = h.buckets.iter().map(|b| b.count).collect();
    assert_eq!(counts, [5.0, 6.0, 7.0]);
    assert_eq!((h.count, h.sum), (7.0, 2.0));

    let before = store.groups();
    let refused = add(
        &store,
        "j",
        vec![hist_family(histogram(
            &[0.5, f64::INFINITY],
            &[1.0, 1.0],
            1.0,
        ))],
    );
    match refused {
        Err(PushError::Rejected(Rejection::NotAggregable { reason, .. })) => {
            assert!(reason.contains("bucket bounds"), "{reason}")
        }
        other => panic!("expected NotAggregable, got {other:?}"),
    }
    // Nothing changed but the failure time.
    let after = store.groups();
    assert_eq!(after[0].families, before[0].families);
    assert!(after[0].failure_time > 0.0);
}

#[test]
fn summaries_add_sum_and_count_but_refuse_quantiles() {
    let store = Store::new(StoreConfig::default());
    let summary = |count, sum, quantiles: Vec<Quantile>| {
        family(
            "size_bytes",
            MetricType::Summary,
            vec![(
                Vec::new(),
                Value::Summary(Box::new(Summary {
                    count,
                    sum,
                    quantiles,
                })),
            )],
        )
    };
    add(&store, "j", vec![summary(2, 10.0, Vec::new())]).expect("first");
    add(&store, "j", vec![summary(3, 5.0, Vec::new())]).expect("second");
    let Value::Summary(s) = value(&store, "j", "size_bytes") else {
        panic!("not a summary");
    };
    assert_eq!((s.count, s.sum), (5, 15.0));
    let quantiled = summary(
        1,
        1.0,
        vec![Quantile {
            quantile: 0.5,
            value: 1.0,
        }],
    );
    match add(&store, "j", vec![quantiled]) {
        Err(PushError::Rejected(rejection)) => {
            let message = rejection.to_string();
            assert!(message.contains("push a histogram"), "{message}");
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[test]
fn type_and_help_conflicts_are_refused() {
    let store = Store::new(StoreConfig::default());
    let mut helped = counter("x_total", 1.0);
    helped.help = Some("Things.".into());
    add(&store, "j", vec![helped.clone()]).expect("first");
    let gauge = family(
        "x_total",
        MetricType::Gauge,
        vec![(Vec::new(), Value::Gauge(1.0))],
    );
    assert!(matches!(
        add(&store, "j", vec![gauge]),
        Err(PushError::Rejected(Rejection::TypeConflict { .. }))
    ));
    helped.help = Some("Other things.".into());
    assert!(matches!(
        add(&store, "j", vec![helped]),
        Err(PushError::Rejected(Rejection::NotAggregable { .. }))
    ));
    // Without a help, the stored one is kept.
    add(&store, "j", vec![counter("x_total", 1.0)]).expect("no help");
    assert_eq!(value(&store, "j", "x_total"), Value::Counter(2.0));
    // Series of another group are still duplicates of nothing here: each group adds alone.
    add(&store, "k", vec![counter("y_total", 1.0)]).expect("other group");
}

#[test]
fn native_histograms_add_through_the_store() {
    let store = Store::new(StoreConfig::default());
    let native = |schema, spans: Vec<BucketSpan>, deltas: Vec<i64>| {
        let mut f = hist_family(Histogram {
            count: deltas.iter().sum::<i64>() as f64,
            sum: 1.0,
            ..Histogram::default()
        });
        f.metrics[0].extras = Some(Box::new(Extras {
            native: Some(NativeHistogram {
                schema,
                zero_threshold: 1e-128,
                zero_count: Some(0),
                positive_spans: spans,
                positive_deltas: deltas,
                ..NativeHistogram::default()
            }),
            ..Extras::default()
        }));
        f
    };
    let span = |offset, length| BucketSpan { offset, length };
    add(&store, "j", vec![native(1, vec![span(1, 2)], vec![1, 1])]).expect("schema 1");
    add(&store, "j", vec![native(0, vec![span(1, 1)], vec![5])]).expect("schema 0");
    let groups = store.groups();
    let metric = groups[0].families[0].series().next().expect("series");
    let n = metric
        .extras()
        .and_then(|e| e.native.as_ref())
        .expect("native");
    assert_eq!(n.schema, 0);
    assert_eq!(n.positive_spans, vec![span(1, 1)]);
    assert_eq!(n.positive_deltas, vec![8]);
    // A classic histogram cannot be added to a native one.
    let classic = hist_family(histogram(&[1.0], &[1.0], 1.0));
    assert!(add(&store, "j", vec![classic]).is_err());
}

/// A journal keeping every change, to replay into another store.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Change<'static>>>>);

impl Journal for Recorder {
    fn append(&mut self, change: &Change<'_>) -> std::io::Result<u64> {
        let owned = change.to_static();
        let mut changes = self.0.lock().expect("lock");
        changes.push(owned);
        Ok(changes.len() as u64)
    }

    fn as_any(&mut self) -> &mut dyn std::any::Any {
        self
    }
}

#[test]
fn idempotency_keys_count_a_retry_once_and_replay_alike() {
    let store = Store::new(StoreConfig::default());
    let recorder = Recorder::default();
    store.set_journal(Box::new(recorder.clone()));
    let push = |job: &str, time: f64, retry: &str| {
        store.push_with(
            key(job),
            vec![counter("calls_total", 1.0)],
            PushMode::Aggregate,
            time,
            None,
            Some(retry.into()),
        )
    };
    let first = push("j", 100.0, "k1").expect("first");
    // The retry answers as the first (same sequence to wait for) and journals nothing.
    assert_eq!(push("j", 101.0, "k1").expect("retry"), first);
    push("j", 102.0, "k2").expect("second key");
    // Keys belong to their group.
    push("other", 103.0, "k1").expect("same key, other group");
    // Past the window (600 s) the key is new again.
    push("j", 100.0 + 600.0, "k1").expect("after the window");
    assert_eq!(value(&store, "j", "calls_total"), Value::Counter(3.0));
    assert_eq!(recorder.0.lock().expect("lock").len(), 4);

    // Replaying the journal gives the same sums and the same remembered keys.
    let replayed = Store::new(StoreConfig::default());
    for change in recorder.0.lock().expect("lock").iter().cloned() {
        replayed.replay(change);
    }
    assert_eq!(replayed.groups().len(), store.groups().len());
    for (a, b) in replayed.groups().iter().zip(store.groups()) {
        assert_eq!(a.families, b.families);
        assert_eq!(a.keys, b.keys);
    }
    assert_eq!(replayed.idempotency_keys(), store.idempotency_keys());

    // Deleting the group forgets its keys.
    store.delete(&key("j")).expect("delete");
    assert_eq!(store.idempotency_keys(), 1);
}

#[test]
fn a_full_key_table_refuses_new_keys_instead_of_forgetting() {
    let store = Store::new(StoreConfig {
        idempotency: crate::store::IdempotencyConfig {
            window: 10.0,
            max_keys: 2,
        },
        ..StoreConfig::default()
    });
    let push = |time: f64, retry: &str| {
        store.push_with(
            key("j"),
            vec![counter("calls_total", 1.0)],
            PushMode::Aggregate,
            time,
            None,
            Some(retry.into()),
        )
    };
    push(1.0, "a").expect("a");
    push(2.0, "b").expect("b");
    assert!(matches!(push(3.0, "c"), Err(PushError::Full(_))));
    // Known keys are still answered, and without a key pushes go on.
    push(3.0, "a").expect("retry of a");
    store
        .push(
            key("j"),
            vec![counter("calls_total", 1.0)],
            PushMode::Aggregate,
            3.0,
        )
        .expect("no key");
    // Once a key's window is over, its place is free.
    push(11.0, "c").expect("c after a expired");
    assert_eq!(value(&store, "j", "calls_total"), Value::Counter(4.0));
}
