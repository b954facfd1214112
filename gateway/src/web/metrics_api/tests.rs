//! Unit tests of `/api/v1/metrics`: the streamed body equals the one-buffer body byte for
//! byte, and pages end with a cursor only when groups follow.

use std::time::Duration;

use super::*;
use crate::model::{Label, Metric, MetricFamily, MetricType, Value};
use crate::store::{PushMode, StoreConfig};
use crate::web::paging::MAX_LIMIT;

/// A group's object as it was written before streaming: one map of every key.
fn group_object(group: &GroupView, expires_at: Option<f64>) -> BTreeMap<&str, GroupEntry<'_>> {
    let mut object = BTreeMap::new();
    for stored in &group.families {
        let family = &**stored;
        let metrics = stored.series().map(metric_json).collect();
        let json = FamilyJson {
            help: family.help.as_deref().filter(|h| !h.is_empty()),
            metrics,
            time_stamp: rfc3339(unix_time(stored.pushed_at)),
            metric_type: family.metric_type.as_upper_str(),
        };
        object.insert(&*family.name, GroupEntry::Family(json));
    }
    for (name, help, time, stamp) in [
        (
            PUSH_TIME_METRIC,
            PUSH_TIME_HELP,
            group.push_time,
            group.push_time_stamp(),
        ),
        (
            PUSH_FAILURE_TIME_METRIC,
            PUSH_FAILURE_TIME_HELP,
            group.failure_time,
            group.failure_time_stamp(),
        ),
    ] {
        // The group's own series: its labels, with `instance=""` if unset.
        let metric = MetricJson::Sample {
            labels: label_map(SeriesLabels::new(&[], &group.key)),
            value: format_float(time),
        };
        let json = FamilyJson {
            help: Some(help),
            metrics: vec![metric],
            time_stamp: rfc3339(unix_time(stamp)),
            metric_type: "GAUGE",
        };
        object.insert(name, GroupEntry::Family(json));
    }
    // Inserted last, so that they replace a family of the same name.
    if let Some(deadline) = expires_at {
        let text = rfc3339(unix_time(deadline));
        object.insert("expires_at", GroupEntry::Text(text));
    }
    let labels = label_map(group.key.labels());
    object.insert("labels", GroupEntry::Labels(labels));
    let successful = group.push_time >= group.failure_time;
    object.insert("last_push_successful", GroupEntry::Flag(successful));
    object
}

/// The body as it was written before streaming: one `serde_json::to_string` of it all.
fn one_buffer(store: &Store, policy: &ExpiryPolicy) -> String {
    #[derive(Serialize)]
    struct Whole<'a> {
        data: Vec<BTreeMap<&'a str, GroupEntry<'a>>>,
        status: &'static str,
    }
    let groups = store.groups();
    let data = groups
        .iter()
        .map(|g| {
            let last = if g.push_time > 0.0 {
                g.push_time
            } else {
                g.failure_time
            };
            group_object(g, policy.deadline(&g.key, g.ttl, last))
        })
        .collect();
    serde_json::to_string(&Whole {
        data,
        status: "success",
    })
    .expect("serializes")
}

/// The body in pieces, and the longest piece.
fn streamed(store: &Store, policy: ExpiryPolicy, limit: Option<usize>) -> (String, usize) {
    let mut pieces = Pieces::new(store.clone(), Arc::new(policy), None, limit);
    let mut body = Vec::new();
    let mut longest = 0;
    while let Some(piece) = pieces.next() {
        body.extend_from_slice(&piece);
        longest = longest.max(piece.len());
    }
    (String::from_utf8(body).expect("UTF-8"), longest)
}

#[test]
fn the_streamed_body_is_the_one_buffer_body_byte_for_byte() {
    let store = Store::new(StoreConfig::default());
    let policy = || ExpiryPolicy {
        default_ttl: Some(Duration::from_secs(60)),
        rules: Vec::new(),
    };
    assert_eq!(
        streamed(&store, policy(), None).0,
        one_buffer(&store, &policy())
    );
    let family = |name: &str, series: usize| MetricFamily {
        name: name.into(),
        help: series.is_multiple_of(2).then(|| "Help \"quoted\"\n".into()),
        metric_type: MetricType::Gauge,
        metrics: (0..series)
            .map(|i| Metric::new(vec![Label::new("i", i.to_string())], Value::Gauge(-0.5)))
            .collect(),
    };
    let key = |instance: String| {
        GroupingKey::new(vec![
            Label::new("job", "j"),
            Label::new("instance", instance),
        ])
    };
    for g in 0..300 {
        let series = if g % 50 == 0 { 3000 } else { g % 7 };
        let families = vec![family(&format!("m{}", g % 3), series)];
        let time = 1e9 + g as f64;
        store
            .push(key(format!("é{g}")), families, PushMode::Replace, time)
            .expect("push");
    }
    // A group larger than a piece, split between its families, with families named
    // like the group's own keys (left out) and around them.
    let names = ["a", "expires_at", "labels", "m", "push_time_seconds", "zz"];
    let families = names.iter().map(|n| family(n, 5000)).collect();
    store
        .push(key("big".into()), families, PushMode::Replace, 2e9)
        .expect("push");
    // A group with a failed push only (a type that contradicts the stored `m0`).
    let refused = MetricFamily {
        metric_type: MetricType::Counter,
        ..family("m0", 1)
    };
    let failed = store.push(key("failed".into()), vec![refused], PushMode::Replace, 3e9);
    assert!(failed.is_err());
    let (whole, longest) = streamed(&store, policy(), None);
    assert_eq!(whole, one_buffer(&store, &policy()));
    // No piece holds the big group whole.
    let parsed: serde_json::Value = serde_json::from_str(&whole).expect("JSON");
    let groups = parsed["data"].as_array().expect("data");
    let big = groups
        .iter()
        .find(|g| g["labels"]["instance"] == "big")
        .expect("the big group");
    assert!(big.get("labels").is_some_and(|l| l.is_object()), "{big}");
    assert!(longest < big.to_string().len(), "{longest}");
    let failed = groups
        .iter()
        .find(|g| g["labels"]["instance"] == "failed")
        .expect("the failed group");
    assert_eq!(failed["last_push_successful"], false);
    // A page as large as the store is the same body.
    assert_eq!(streamed(&store, policy(), Some(MAX_LIMIT)).0, whole);
}

#[test]
fn pages_end_with_a_cursor_only_when_groups_follow() {
    let store = Store::new(StoreConfig::default());
    for job in ["a", "b"] {
        let key = GroupingKey::new(vec![Label::new("job", job)]);
        store
            .push(key, vec![], PushMode::Replace, 1.0)
            .expect("push");
    }
    let policy = || ExpiryPolicy {
        default_ttl: None,
        rules: Vec::new(),
    };
    let (first, _) = streamed(&store, policy(), Some(1));
    let parsed: serde_json::Value = serde_json::from_str(&first).expect("JSON");
    let next = parsed["next"].as_str().expect("next");
    let after = decode_cursor(next).expect("cursor");
    assert_eq!(after.get("job").map(|v| v.to_string()), Some("a".into()));
    assert!(!streamed(&store, policy(), Some(2)).0.contains("next"));
}
