use super::sanitize::sanitize_labels;
use super::*;
use crate::model::{Label, Metric, Value};

fn labels(pairs: &[(&str, &str)]) -> Vec<Label> {
    pairs.iter().map(|(n, v)| Label::new(*n, *v)).collect()
}

fn gauge(name: &str, metrics: Vec<Vec<Label>>) -> MetricFamily {
    MetricFamily {
        name: name.into(),
        help: None,
        metric_type: MetricType::Gauge,
        metrics: metrics
            .into_iter()
            .map(|l| Metric::new(l, Value::Gauge(1.0)))
            .collect(),
    }
}

fn limited(limits: Limits) -> Store {
    Store::new(StoreConfig {
        limits,
        ..StoreConfig::default()
    })
}

#[test]
fn sanitized_labels_are_sorted_with_grouping_labels_winning() {
    let (instance, empty) = (Str::from(INSTANCE_LABEL), Str::from(""));
    let grouping = GroupingKey::new(labels(&[("job", "j"), ("b", "group"), ("x", "1")]));
    let mut pushed = labels(&[("z", "9"), ("b", "pushed"), ("a", "0")]);
    sanitize_labels(&mut pushed, grouping.labels(), &instance, &empty);
    assert_eq!(
        pushed,
        labels(&[
            ("a", "0"),
            ("b", "group"),
            ("instance", ""),
            ("job", "j"),
            ("x", "1"),
            ("z", "9"),
        ])
    );
    // A pushed instance stays; a grouping one wins over it.
    let mut pushed = labels(&[("instance", "i")]);
    sanitize_labels(&mut pushed, grouping.labels(), &instance, &empty);
    assert_eq!(pushed.iter().filter(|l| &*l.name == "instance").count(), 1);
    assert!(pushed.contains(&Label::new("instance", "i")));
    let with_instance = GroupingKey::new(labels(&[("job", "j"), ("instance", "g")]));
    let mut pushed = labels(&[("instance", "i")]);
    sanitize_labels(&mut pushed, with_instance.labels(), &instance, &empty);
    assert_eq!(pushed, labels(&[("instance", "g"), ("job", "j")]));
}

#[test]
fn too_many_grouping_labels_are_refused_before_anything_is_stored() {
    let store = limited(Limits {
        max_grouping_labels: 3,
        ..Limits::default()
    });
    let key = |n: usize| {
        let mut l: Vec<Label> = (0..n).map(|i| Label::new(format!("l{i}"), "v")).collect();
        l.push(Label::new("job", "j"));
        GroupingKey::new(l)
    };
    let family = || vec![gauge("m", vec![labels(&[])])];
    assert!(store.push(key(2), family(), PushMode::Replace, 1.0).is_ok());
    let refused = store.push(key(3), family(), PushMode::Replace, 2.0);
    match refused {
        Err(PushError::TooLarge(reason)) => {
            assert!(reason.contains("--push.max-grouping-labels"), "{reason}")
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    // No failure time, no group: the store is as it was.
    assert_eq!(store.stats().groups, 1);
}

#[test]
fn too_many_labels_on_one_series_are_refused_in_any_format() {
    let store = limited(Limits {
        max_labels_per_series: 2,
        ..Limits::default()
    });
    let key = || GroupingKey::new(labels(&[("job", "j")]));
    let ok = gauge("m", vec![labels(&[("a", "1"), ("b", "2")])]);
    assert!(store.push(key(), vec![ok], PushMode::Replace, 1.0).is_ok());
    let crowded = gauge("m", vec![labels(&[("a", "1"), ("b", "2"), ("c", "3")])]);
    match store.push(key(), vec![crowded], PushMode::Replace, 2.0) {
        Err(PushError::TooLarge(reason)) => {
            assert!(reason.contains("--push.max-labels-per-series"), "{reason}")
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert_eq!(store.stats().series, 1);
}

#[test]
fn a_hash_collision_in_the_index_refuses_nothing_but_a_real_duplicate_is_refused() {
    let store = Store::new(StoreConfig::default());
    let key = |job: &str, extra: &[(&str, &str)]| {
        let mut l = labels(extra);
        l.push(Label::new("job", job));
        GroupingKey::new(l)
    };
    let stored = gauge("m", vec![labels(&[("a", "1")]), labels(&[("a", "2")])]);
    assert!(store
        .push(key("j", &[]), vec![stored], PushMode::Replace, 1.0)
        .is_ok());
    // Simulate another series whose 64-bit hash equals that of {a="3"} in group b.
    let colliding = labels(&[("a", "3"), ("instance", ""), ("job", "b")]);
    store
        .shared
        .state
        .write()
        .series
        .add(series_id("m", &colliding));
    let pushed = gauge("m", vec![labels(&[("a", "3")])]);
    assert!(
        store
            .push(key("b", &[]), vec![pushed], PushMode::Replace, 2.0)
            .is_ok(),
        "the labels do not confirm the hit"
    );
    // The same full label set from a group whose key holds one of the labels clashes.
    let duplicate = gauge("m", vec![labels(&[])]);
    let refused = store.push(
        key("j", &[("a", "2")]),
        vec![duplicate.clone()],
        PushMode::Replace,
        3.0,
    );
    assert!(
        matches!(
            refused,
            Err(PushError::Rejected(Rejection::DuplicateSeries { .. }))
        ),
        "{refused:?}"
    );
    // Once the series it duplicated is gone, it is stored.
    let replacement = gauge("m", vec![labels(&[("a", "1")])]);
    assert!(store
        .push(key("j", &[]), vec![replacement], PushMode::Replace, 4.0)
        .is_ok());
    assert!(store
        .push(
            key("j", &[("a", "2")]),
            vec![duplicate],
            PushMode::Replace,
            5.0
        )
        .is_ok());
}

#[test]
fn stored_families_are_in_exposition_order_and_found_by_full_labels() {
    let store = Store::new(StoreConfig::default());
    let key = GroupingKey::new(labels(&[("job", "j")]));
    let pushed = gauge(
        "m",
        vec![
            labels(&[("a", "9"), ("b", "1")]),
            labels(&[("a", "10")]),
            labels(&[("a", "1")]),
            labels(&[("z", "1")]),
        ],
    );
    assert!(store
        .push(key, vec![pushed], PushMode::Replace, 1.0)
        .is_ok());
    let groups = store.groups();
    let family = &groups[0].families[0];
    let order: Vec<Vec<(String, String)>> = family
        .series()
        .map(|s| {
            s.labels()
                .map(|l| (l.name.to_string(), l.value.to_string()))
                .collect()
        })
        .collect();
    // Fewer labels first, then values in label-name order ("" of instance before "1").
    let expected: Vec<Vec<(String, String)>> = [
        &[("instance", ""), ("job", "j"), ("z", "1")][..],
        &[("a", "1"), ("instance", ""), ("job", "j")],
        &[("a", "10"), ("instance", ""), ("job", "j")],
        &[("a", "9"), ("b", "1"), ("instance", ""), ("job", "j")],
    ]
    .iter()
    .map(|set| {
        set.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    })
    .collect();
    assert_eq!(order, expected);
    for set in &expected {
        let full: Vec<Label> = set.iter().map(|(n, v)| Label::new(n, v)).collect();
        assert!(family.contains(&full), "{set:?}");
    }
    // The same values under another name are not the same series.
    let renamed = labels(&[("a", "1"), ("instance", ""), ("jab", "j")]);
    assert!(!family.contains(&renamed));
}
