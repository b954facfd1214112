//! Unit tests of the packed series: round trips, the value column's kinds, the label arena.

use super::*;
use crate::model::{Histogram, Timestamp};

fn labels(pairs: &[(&str, &str)]) -> Vec<Label> {
    pairs.iter().map(|(n, v)| Label::new(*n, *v)).collect()
}

fn pack(sets: &[Vec<Label>]) -> PackedSeries {
    PackedSeries::from_metrics(
        sets.iter()
            .enumerate()
            .map(|(i, l)| Metric::new(l.clone(), Value::Gauge(i as f64))),
    )
}

#[test]
fn label_sets_round_trip_with_any_bytes() {
    let long = "v".repeat(300);
    let many: Vec<Label> = (0..200)
        .map(|i| Label::new(format!("l{i:03}"), format!("{i}")))
        .collect();
    let sets = vec![
        labels(&[("a", "with \"quotes\", \\ and \n newline"), ("b", "")]),
        labels(&[]),
        labels(&[("a", "ünïcødé ✓"), ("z", &long)]),
        labels(&[("b", "\u{0}\u{7f}\u{80}")]),
        many,
    ];
    let packed = pack(&sets);
    assert_eq!(packed.len(), sets.len());
    for (i, set) in sets.iter().enumerate() {
        let back: Vec<Label> = packed.labels(i).map(Label::from).collect();
        assert_eq!(&back, set, "series {i}");
        assert_eq!(packed.value(i), Some(ValueRef::Gauge(i as f64)));
    }
    assert_eq!(packed.labels(sets.len()).count(), 0, "past the end");
    assert_eq!(packed.value(sets.len()), None);
}

#[test]
fn names_are_stored_once_per_family() {
    let sets: Vec<Vec<Label>> = (0..100)
        .map(|i| labels(&[("a", &i.to_string()), ("b", "x")]))
        .collect();
    let packed = pack(&sets);
    assert_eq!(packed.names.len(), 2);
}

#[test]
fn values_switch_column_on_a_different_kind() {
    let mut builder = PackedBuilder::with_capacity(3);
    builder.push([], Value::Counter(1.0), None);
    builder.push([], Value::Gauge(2.0), None);
    let histogram = Value::Histogram(Box::new(Histogram {
        count: 3.0,
        ..Histogram::default()
    }));
    builder.push([], histogram.clone(), None);
    let packed = builder.finish();
    assert_eq!(packed.value(0), Some(ValueRef::Counter(1.0)));
    assert_eq!(packed.value(1), Some(ValueRef::Gauge(2.0)));
    assert_eq!(packed.value(2), Some(ValueRef::from(&histogram)));
}

#[test]
fn extras_are_sparse_and_settable() {
    let extras = |seconds| {
        Some(Box::new(Extras {
            created: Some(Timestamp { seconds, nanos: 0 }),
            ..Extras::default()
        }))
    };
    let mut builder = PackedBuilder::with_capacity(3);
    builder.push([], Value::Counter(1.0), None);
    builder.push([], Value::Counter(2.0), extras(5));
    builder.push([], Value::Counter(3.0), None);
    let mut packed = builder.finish();
    assert_eq!(packed.extras(0), None);
    assert_eq!(packed.extras(1), extras(5).as_deref());
    packed.set(0, Value::Counter(4.0), extras(7));
    packed.set(1, Value::Counter(5.0), None);
    assert_eq!(packed.extras(0), extras(7).as_deref());
    assert_eq!(packed.extras(1), None);
    assert_eq!(packed.value(0), Some(ValueRef::Counter(4.0)));
    assert_eq!(packed.value(2), Some(ValueRef::Counter(3.0)));
    // A value of another kind moves the column to general values.
    packed.set(2, Value::Untyped(6.0), None);
    assert_eq!(packed.value(2), Some(ValueRef::Untyped(6.0)));
    assert_eq!(packed.value(1), Some(ValueRef::Counter(5.0)));
}

#[test]
fn appending_and_sorting_keep_each_series_whole() {
    let packed = pack(&[labels(&[("a", "2")]), labels(&[("a", "1"), ("b", "")])]);
    let mut builder = packed.into_builder();
    builder.push(
        [LabelRef {
            name: "c",
            value: "0",
        }],
        Value::Gauge(9.0),
        None,
    );
    let mut packed = builder.finish();
    assert_eq!(packed.len(), 3);
    let first_value = |p: &PackedSeries, i| p.labels(i).next().map(|l| l.value.to_string());
    packed.sort_by(|p, a, b| first_value(p, a).cmp(&first_value(p, b)));
    let order: Vec<_> = (0..3).map(|i| first_value(&packed, i)).collect();
    assert_eq!(
        order,
        [Some("0".into()), Some("1".into()), Some("2".into())]
    );
    assert_eq!(packed.value(0), Some(ValueRef::Gauge(9.0)));
    assert_eq!(packed.labels(1).count(), 2);
}

#[test]
fn offsets_past_four_gib_wrap() {
    let mut series = PackedSeries {
        starts: vec![0, u32::MAX, 5, 10],
        wraps: vec![2],
        ..PackedSeries::default()
    };
    series.values = Values::Numbers(NumberKind::Gauge, vec![0.0; 3]);
    assert_eq!(series.start(1), usize::try_from(u64::from(u32::MAX)).ok());
    assert_eq!(series.start(2), usize::try_from(WRAP + 5).ok());
    assert_eq!(series.start(3), usize::try_from(WRAP + 10).ok());
}

#[test]
fn numbers_round_trip_as_ascii() {
    for n in [
        0,
        1,
        63,
        64,
        127,
        128,
        300,
        4095,
        4096,
        u64::from(u32::MAX),
        u64::MAX,
    ] {
        let mut out = String::from("");
        put_number(&mut out, n);
        assert!(out.is_ascii(), "{n}");
        out.push_str("rest");
        let mut text = out.as_str();
        assert_eq!(take_number(&mut text), Some(n));
        assert_eq!(text, "rest");
    }
    assert_eq!(take_number(&mut "\x40\x40"), None, "unterminated");
}

#[test]
fn instance_is_found_without_reading_values() {
    let sets = [
        labels(&[("a", "instance"), ("b", "x")]),
        labels(&[("a", &"i".repeat(100)), ("instance", "i")]),
    ];
    let packed = pack(&sets);
    assert!(!packed.labels(0).has_instance());
    assert!(packed.labels(1).has_instance());
    assert!(!pack(&[labels(&[("a", "1")])]).labels(0).has_instance());
}

#[test]
fn many_distinct_names_switch_to_a_hashed_lookup() {
    let sets: Vec<Vec<Label>> = (0..40)
        .map(|i| labels(&[(&format!("n{i:02}"), "v"), ("z", &i.to_string())]))
        .collect();
    let packed = pack(&sets);
    assert_eq!(packed.names.len(), 41);
    for (i, set) in sets.iter().enumerate() {
        let back: Vec<Label> = packed.labels(i).map(Label::from).collect();
        assert_eq!(&back, set);
    }
}

/// Label values drawn from the bytes the arena's numbers are made of (and others), at
/// lengths around where a length takes one more byte, under more names than the linear
/// lookup takes: every series reads back exactly, after appending and sorting too.
#[test]
fn random_label_sets_read_back_whole() {
    let mut rng = crate::test_rng::Rng(0x7f4a_7c15_9e37_79b9);
    let alphabet: Vec<char> = (0u8..0x80)
        .map(char::from)
        .chain(['é', '✓', '\u{10ffff}'])
        .collect();
    let value = |rng: &mut crate::test_rng::Rng| -> String {
        let len = [0, 1, 63, 64, 65, 4095, 4096, 4097][rng.below(8)] + rng.below(2);
        (0..len)
            .map(|_| alphabet[rng.below(alphabet.len())])
            .collect()
    };
    let sets: Vec<Vec<Label>> = (0..300)
        .map(|_| {
            let mut names: Vec<String> = (0..rng.below(20))
                .map(|_| format!("n{}", rng.below(70)))
                .collect();
            names.sort();
            names.dedup();
            names
                .into_iter()
                .map(|name| Label::new(name, value(&mut rng)))
                .collect()
        })
        .collect();
    let (first, rest) = sets.split_at(150);
    let mut builder = pack(first).into_builder();
    for (i, set) in rest.iter().enumerate() {
        let value = Value::Gauge((first.len() + i) as f64);
        builder.push(set.iter().map(LabelRef::from), value, None);
    }
    let mut packed = builder.finish();
    let read = |packed: &PackedSeries, i: usize| -> Vec<Label> {
        packed.labels(i).map(Label::from).collect()
    };
    for (i, set) in sets.iter().enumerate() {
        assert_eq!(&read(&packed, i), set, "series {i}");
        assert_eq!(packed.value(i), Some(ValueRef::Gauge(i as f64)));
        let has_instance = packed.labels(i).has_instance();
        assert!(!has_instance, "series {i}");
    }
    // Sorted by value, each series keeps its own labels.
    packed.sort_by(|p, a, b| {
        let value = |i| p.value(i).map(|v| -(format!("{v:?}").len() as i64));
        value(a).cmp(&value(b))
    });
    for i in 0..packed.len() {
        let Some(ValueRef::Gauge(at)) = packed.value(i) else {
            panic!("series {i} lost its value");
        };
        assert_eq!(read(&packed, i), sets[at as usize], "sorted series {i}");
    }
}
