//! `push_failure_time_seconds`: set by rejected pushes, kept by later successful ones.

use crate::helpers::{failure_time, push_time, series, spawn_gateway, tick};

const J: &[(&str, &str)] = &[("instance", ""), ("job", "j")];
const CONFLICT: &str = "# TYPE m gauge\nm 1\n";

fn gateway_with_conflict_source() -> crate::helpers::Gateway {
    let gw = spawn_gateway(&[]);
    assert_eq!(
        gw.put("/metrics/job/k", "# TYPE m counter\nm 1\n").status,
        200
    );
    gw
}

#[test]
fn successful_push_has_failure_time_zero() {
    let gw = spawn_gateway(&[]);
    assert_eq!(gw.put("/metrics/job/j", "a 1\n").status, 200);
    let state = gw.state();
    assert_eq!(failure_time(&state, J), Some(0.0), "{state:?}");
    assert!(push_time(&state, J).unwrap() > 1.5e9, "{state:?}");
}

#[test]
fn rejected_push_to_an_existing_group_sets_failure_time_and_keeps_push_time() {
    let gw = gateway_with_conflict_source();
    assert_eq!(gw.put("/metrics/job/j", "a 1\n").status, 200);
    let before = gw.state();
    let pushed = push_time(&before, J).unwrap();
    tick();
    assert_eq!(gw.put("/metrics/job/j", CONFLICT).status, 400);
    let after = gw.state();
    let failed = failure_time(&after, J).unwrap();
    assert!(
        failed > pushed,
        "failure time {failed} not after push time {pushed}"
    );
    assert_eq!(push_time(&after, J), Some(pushed), "push time changed");
    assert_eq!(
        after.get(&series("a", J)).map(String::as_str),
        Some("1"),
        "stored metrics changed"
    );
}

#[test]
fn rejected_push_to_a_new_group_creates_it_with_push_time_zero() {
    let gw = gateway_with_conflict_source();
    assert_eq!(gw.put("/metrics/job/j", CONFLICT).status, 400);
    let state = gw.state();
    assert_eq!(push_time(&state, J), Some(0.0), "{state:?}");
    assert!(failure_time(&state, J).unwrap() > 1.5e9, "{state:?}");
    let others: Vec<&String> = state
        .keys()
        .filter(|k| k.contains("job=\"j\"") && !k.starts_with("push_"))
        .collect();
    assert!(others.is_empty(), "rejected metrics stored: {others:?}");
}

#[test]
fn later_successful_push_keeps_the_failure_time() {
    let gw = gateway_with_conflict_source();
    assert_eq!(gw.put("/metrics/job/j", "a 1\n").status, 200);
    assert_eq!(gw.post("/metrics/job/j", CONFLICT).status, 400);
    let failed = failure_time(&gw.state(), J).unwrap();
    assert!(failed > 0.0);
    tick();
    assert_eq!(gw.put("/metrics/job/j", "a 2\n").status, 200);
    let state = gw.state();
    assert_eq!(
        failure_time(&state, J),
        Some(failed),
        "failure time changed"
    );
    assert!(
        push_time(&state, J).unwrap() > failed,
        "push time not updated"
    );
    assert_eq!(state.get(&series("a", J)).map(String::as_str), Some("2"));
}

#[test]
fn failure_and_success_are_reported_by_the_json_api() {
    let gw = gateway_with_conflict_source();
    assert_eq!(gw.put("/metrics/job/j", CONFLICT).status, 400);
    let find = |gw: &crate::helpers::Gateway| {
        let json = gw.get("/api/v1/metrics").json();
        json["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["labels"]["job"] == "j")
            .cloned()
            .expect("group j in /api/v1/metrics")
    };
    assert_eq!(find(&gw)["last_push_successful"], false);
    assert_eq!(gw.put("/metrics/job/j", "a 1\n").status, 200);
    assert_eq!(find(&gw)["last_push_successful"], true);
}

#[test]
fn syntax_errors_touch_no_group() {
    // Upstream parses before it submits anything to the store: a body that does not parse
    // neither creates a group nor sets a failure time.
    let gw = spawn_gateway(&[]);
    assert_eq!(gw.put("/metrics/job/j", "a 1\n").status, 200);
    let before = gw.state();
    for body in ["a 1", "a{ 1\n", "a 1\r\n", "# TYPE a nonsense\na 1\n"] {
        assert_eq!(gw.put("/metrics/job/j", body).status, 400, "{body:?}");
        assert_eq!(gw.post("/metrics/job/new", body).status, 400, "{body:?}");
    }
    assert_eq!(before, gw.state());
    assert_eq!(failure_time(&gw.state(), J), Some(0.0));
}

#[test]
fn corrupt_gzip_touches_no_group() {
    let gw = spawn_gateway(&[]);
    let r = gw.request(
        "PUT",
        "/metrics/job/new",
        &[("Content-Encoding", "gzip")],
        b"\x1f\x8b\x08\x00garbage",
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(gw.state().is_empty(), "{:?}", gw.state());
}

#[test]
fn timestamp_rejection_sets_the_failure_time() {
    // Upstream checks timestamps in the store's write check, so they count as a failure.
    let gw = spawn_gateway(&[]);
    assert_eq!(gw.put("/metrics/job/j", "a 1\n").status, 200);
    let pushed = push_time(&gw.state(), J).unwrap();
    tick();
    assert_eq!(gw.put("/metrics/job/j", "a 2 1700000000000\n").status, 400);
    let state = gw.state();
    assert!(failure_time(&state, J).unwrap() > pushed, "{state:?}");
    assert_eq!(push_time(&state, J), Some(pushed));
    assert_eq!(state.get(&series("a", J)).map(String::as_str), Some("1"));
}

#[test]
fn rejected_pushes_create_no_group_past_max_groups() {
    let gw = spawn_gateway(&["--storage.max-groups=2"]);
    assert_eq!(
        gw.put("/metrics/job/k", "# TYPE m counter\nm 1\n").status,
        200
    );
    // A rejected push may still create a group while there is room, as upstream.
    assert_eq!(gw.put("/metrics/job/j", CONFLICT).status, 400);
    for i in 0..50 {
        let r = gw.put(&format!("/metrics/job/r{i}"), CONFLICT);
        assert_eq!(r.status, 400, "{}", r.text());
    }
    let state = gw.state();
    let groups: std::collections::BTreeSet<&String> = state
        .keys()
        .filter(|k| k.starts_with("push_time_seconds{"))
        .collect();
    assert_eq!(groups.len(), 2, "{groups:?}");
    assert!(failure_time(&state, J).unwrap() > 1.5e9, "{state:?}");
    let metrics = gw.get("/metrics").text();
    assert!(metrics.contains("pushgateway_stored_groups 2"), "{metrics}");
}
