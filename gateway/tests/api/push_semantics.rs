//! PUT, POST and DELETE semantics on one group.

use crate::helpers::{push_time, series, spawn_gateway, tick};

const J: &[(&str, &str)] = &[("instance", ""), ("job", "j")];

#[test]
fn put_replaces_the_whole_group() {
    let gw = spawn_gateway(&[]);
    assert_eq!(gw.put("/metrics/job/j", "a 1\nb 2\n").status, 200);
    assert_eq!(gw.put("/metrics/job/j", "a 3\n").status, 200);
    let state = gw.state();
    assert_eq!(state.get(&series("a", J)).map(String::as_str), Some("3"));
    assert!(
        !state.contains_key(&series("b", J)),
        "b survived a PUT that did not name it: {state:?}"
    );
}

#[test]
fn post_replaces_only_the_families_it_names() {
    let gw = spawn_gateway(&[]);
    let first = "a{x=\"1\"} 1\na{x=\"2\"} 2\nb 5\n";
    assert_eq!(gw.put("/metrics/job/j", first).status, 200);
    assert_eq!(gw.post("/metrics/job/j", "a{x=\"3\"} 3\n").status, 200);
    let state = gw.state();
    let a1 = series("a", &[("instance", ""), ("job", "j"), ("x", "1")]);
    let a2 = series("a", &[("instance", ""), ("job", "j"), ("x", "2")]);
    let a3 = series("a", &[("instance", ""), ("job", "j"), ("x", "3")]);
    assert!(!state.contains_key(&a1), "old series of a kept: {state:?}");
    assert!(!state.contains_key(&a2), "old series of a kept: {state:?}");
    assert_eq!(state.get(&a3).map(String::as_str), Some("3"));
    assert_eq!(state.get(&series("b", J)).map(String::as_str), Some("5"));
}

#[test]
fn empty_put_clears_families_but_updates_push_time() {
    let gw = spawn_gateway(&[]);
    assert_eq!(gw.put("/metrics/job/j", "a 1\n").status, 200);
    let before = push_time(&gw.state(), J).expect("push_time_seconds after PUT");
    tick();
    assert_eq!(gw.put("/metrics/job/j", "").status, 200);
    let state = gw.state();
    assert!(!state.contains_key(&series("a", J)), "a kept: {state:?}");
    let after = push_time(&state, J).expect("push_time_seconds kept after empty PUT");
    assert!(after > before, "push time not updated: {before} -> {after}");
}

#[test]
fn empty_post_changes_only_push_time() {
    let gw = spawn_gateway(&[]);
    assert_eq!(gw.put("/metrics/job/j", "a 1\nb 2\n").status, 200);
    let before = gw.state();
    tick();
    assert_eq!(gw.post("/metrics/job/j", "").status, 200);
    let after = gw.state();
    let pt = series("push_time_seconds", J);
    let strip = |m: &std::collections::BTreeMap<String, String>| {
        let mut m = m.clone();
        m.remove(&pt);
        m
    };
    assert_eq!(strip(&before), strip(&after));
    assert!(push_time(&after, J).unwrap() > push_time(&before, J).unwrap());
}

#[test]
fn delete_answers_202_and_removes_the_group() {
    let gw = spawn_gateway(&[]);
    assert_eq!(gw.put("/metrics/job/j", "a 1\n").status, 200);
    assert_eq!(gw.put("/metrics/job/j/x/1", "a 2\n").status, 200);
    assert_eq!(gw.delete("/metrics/job/j").status, 202);
    let state = gw.state();
    let other = [("instance", ""), ("job", "j"), ("x", "1")];
    let expected: std::collections::BTreeMap<String, String> = [
        (series("a", &other), "2".to_string()),
        (
            series("push_time_seconds", &other),
            state[&series("push_time_seconds", &other)].clone(),
        ),
        (series("push_failure_time_seconds", &other), "0".to_string()),
    ]
    .into_iter()
    .collect();
    assert_eq!(
        state, expected,
        "only the group {{job=j,x=1}} should remain after deleting {{job=j}}"
    );
}

#[test]
fn delete_of_an_unknown_group_is_202_and_changes_nothing() {
    let gw = spawn_gateway(&[]);
    assert_eq!(gw.put("/metrics/job/j", "a 1\n").status, 200);
    let before = gw.state();
    assert_eq!(gw.delete("/metrics/job/other").status, 202);
    assert_eq!(gw.delete("/metrics/job/j/x/1").status, 202);
    assert_eq!(before, gw.state());
}

#[test]
fn put_and_post_answer_200_with_an_empty_body() {
    let gw = spawn_gateway(&[]);
    let put = gw.put("/metrics/job/j", "a 1\n");
    assert_eq!((put.status, put.body.len()), (200, 0));
    let post = gw.post("/metrics/job/j", "b 1\n");
    assert_eq!((post.status, post.body.len()), (200, 0));
}

#[test]
fn empty_put_to_a_new_group_creates_it() {
    let gw = spawn_gateway(&[]);
    assert_eq!(gw.put("/metrics/job/j", "").status, 200);
    let state = gw.state();
    assert!(push_time(&state, J).unwrap() > 1.5e9, "{state:?}");
    assert_eq!(
        state
            .get(&series("push_failure_time_seconds", J))
            .map(String::as_str),
        Some("0")
    );
}

#[test]
fn post_adds_new_families_and_keeps_other_groups() {
    let gw = spawn_gateway(&[]);
    assert_eq!(gw.put("/metrics/job/j", "a 1\n").status, 200);
    assert_eq!(gw.put("/metrics/job/k", "a 9\n").status, 200);
    assert_eq!(gw.post("/metrics/job/j", "b 2\n").status, 200);
    assert_eq!(gw.put("/metrics/job/j", "c 3\n").status, 200);
    let state = gw.state();
    let k = [("instance", ""), ("job", "k")];
    assert_eq!(state.get(&series("a", &k)).map(String::as_str), Some("9"));
    assert_eq!(state.get(&series("c", J)).map(String::as_str), Some("3"));
    assert!(!state.contains_key(&series("a", J)));
    assert!(!state.contains_key(&series("b", J)));
}
