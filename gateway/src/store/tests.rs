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
