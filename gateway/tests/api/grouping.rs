//! Grouping keys in the push path: several labels, percent-encoding, `@base64`, and how
//! grouping labels combine with the labels in the body.

use crate::helpers::{series, spawn_gateway};

fn value_of(gw: &crate::helpers::Gateway, name: &str, labels: &[(&str, &str)]) -> Option<String> {
    gw.state().get(&series(name, labels)).cloned()
}

#[test]
fn several_grouping_labels_become_labels_of_every_series() {
    let gw = spawn_gateway(&[]);
    assert_eq!(
        gw.put("/metrics/job/j/a/1/b/2", "m 1\nn{c=\"3\"} 2\n")
            .status,
        200
    );
    let g = [("a", "1"), ("b", "2"), ("instance", ""), ("job", "j")];
    assert_eq!(value_of(&gw, "m", &g).as_deref(), Some("1"));
    let n = [
        ("a", "1"),
        ("b", "2"),
        ("c", "3"),
        ("instance", ""),
        ("job", "j"),
    ];
    assert_eq!(value_of(&gw, "n", &n).as_deref(), Some("2"));
    assert!(value_of(&gw, "push_time_seconds", &g).is_some());
}

#[test]
fn percent_encoded_values_are_decoded() {
    let gw = spawn_gateway(&[]);
    let r = gw.put("/metrics/job/my%20job/loc/caf%C3%A9", "m 1\n");
    assert_eq!(r.status, 200, "{}", r.text());
    let g = [("instance", ""), ("job", "my job"), ("loc", "café")];
    assert_eq!(value_of(&gw, "m", &g).as_deref(), Some("1"));
    // The same group addressed without encoding where none is needed.
    assert_eq!(gw.delete("/metrics/job/my%20job/loc/caf%C3%A9").status, 202);
    assert_eq!(value_of(&gw, "m", &g), None);
}

#[test]
fn base64_job_with_a_slash() {
    let gw = spawn_gateway(&[]);
    // "a/b" in base64 (URL-safe and standard agree here).
    let r = gw.put("/metrics/job@base64/YS9i", "m 1\n");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        value_of(&gw, "m", &[("instance", ""), ("job", "a/b")]).as_deref(),
        Some("1")
    );
}

#[test]
fn base64_label_uses_the_url_safe_alphabet() {
    let gw = spawn_gateway(&[]);
    // "???" is "Pz8/" in the standard alphabet and "Pz8_" in the URL-safe one;
    // "~~~" is "fn5+" / "fn5-".
    let r = gw.put("/metrics/job/j/q@base64/Pz8_/t@base64/fn5-", "m 1\n");
    assert_eq!(r.status, 200, "{}", r.text());
    let g = [("instance", ""), ("job", "j"), ("q", "???"), ("t", "~~~")];
    assert_eq!(value_of(&gw, "m", &g).as_deref(), Some("1"));
}

#[test]
fn base64_padding_is_optional() {
    let gw = spawn_gateway(&[]);
    assert_eq!(gw.put("/metrics/job/j/x@base64/YQ==", "m 1\n").status, 200);
    let g = [("instance", ""), ("job", "j"), ("x", "a")];
    assert_eq!(value_of(&gw, "m", &g).as_deref(), Some("1"));
    // Unpadded addresses the same group: the PUT replaces the value.
    assert_eq!(gw.put("/metrics/job/j/x@base64/YQ", "m 2\n").status, 200);
    assert_eq!(value_of(&gw, "m", &g).as_deref(), Some("2"));
    // And so does the plain form.
    assert_eq!(gw.delete("/metrics/job/j/x/a").status, 202);
    assert_eq!(value_of(&gw, "m", &g), None);
}

#[test]
fn base64_value_containing_a_slash() {
    let gw = spawn_gateway(&[]);
    // "/tmp/x" -> "L3RtcC94"
    let r = gw.put("/metrics/job/j/path@base64/L3RtcC94", "m 1\n");
    assert_eq!(r.status, 200, "{}", r.text());
    let g = [("instance", ""), ("job", "j"), ("path", "/tmp/x")];
    assert_eq!(value_of(&gw, "m", &g).as_deref(), Some("1"));
}

#[test]
fn base64_equals_sign_alone_is_the_empty_value() {
    let gw = spawn_gateway(&[]);
    let r = gw.put("/metrics/job/j/e@base64/=", "m 1\n");
    assert_eq!(r.status, 200, "{}", r.text());
    // Upstream adds every grouping label to every series, empty values included.
    let g = [("e", ""), ("instance", ""), ("job", "j")];
    let state = gw.state();
    assert_eq!(
        state.get(&series("m", &g)).map(String::as_str),
        Some("1"),
        "{state:?}"
    );
    assert!(
        state.contains_key(&series("push_time_seconds", &g)),
        "{state:?}"
    );
    // The same base64 address deletes the group.
    assert_eq!(gw.delete("/metrics/job/j/e@base64/=").status, 202);
    assert!(!gw.state().keys().any(|k| k.starts_with("m{")));
}

#[test]
fn grouping_labels_overwrite_same_named_labels_in_the_body() {
    let gw = spawn_gateway(&[]);
    let body = "m{x=\"body\",job=\"other\"} 1\n";
    assert_eq!(gw.put("/metrics/job/j/x/key", body).status, 200);
    let state = gw.state();
    let expected = series("m", &[("instance", ""), ("job", "j"), ("x", "key")]);
    assert_eq!(
        state.get(&expected).map(String::as_str),
        Some("1"),
        "{state:?}"
    );
    assert!(!state
        .keys()
        .any(|k| k.contains("\"body\"") || k.contains("\"other\"")));
}

#[test]
fn empty_instance_is_added_when_neither_key_nor_sample_has_one() {
    let gw = spawn_gateway(&[]);
    assert_eq!(gw.put("/metrics/job/j", "m 1\n").status, 200);
    let text = gw.scrape();
    assert!(
        text.lines().any(|l| l == "m{instance=\"\",job=\"j\"} 1"),
        "{text}"
    );
}

#[test]
fn instance_from_the_key_is_used() {
    let gw = spawn_gateway(&[]);
    assert_eq!(
        gw.put("/metrics/job/j/instance/i1", "m{instance=\"b\"} 1\n")
            .status,
        200
    );
    let text = gw.scrape();
    assert!(
        text.lines().any(|l| l == "m{instance=\"i1\",job=\"j\"} 1"),
        "{text}"
    );
}

#[test]
fn instance_in_the_body_is_kept_when_the_key_has_none() {
    let gw = spawn_gateway(&[]);
    assert_eq!(
        gw.put("/metrics/job/j", "m{instance=\"b\"} 1\n").status,
        200
    );
    let state = gw.state();
    assert_eq!(
        state
            .get(&series("m", &[("instance", "b"), ("job", "j")]))
            .map(String::as_str),
        Some("1"),
        "{state:?}"
    );
    assert!(!state.contains_key(&series("m", &[("instance", ""), ("job", "j")])));
    // The group itself still has the empty instance.
    assert!(state.contains_key(&series(
        "push_time_seconds",
        &[("instance", ""), ("job", "j")]
    )));
}

#[test]
fn trailing_slash_after_the_job_addresses_the_job_group() {
    let gw = spawn_gateway(&[]);
    assert_eq!(gw.put("/metrics/job/j/", "m 1\n").status, 200);
    let state = gw.state();
    assert_eq!(
        state
            .get(&series("m", &[("instance", ""), ("job", "j")]))
            .map(String::as_str),
        Some("1"),
        "{state:?}"
    );
}

#[test]
fn empty_plain_label_value_at_the_end_of_the_path() {
    let gw = spawn_gateway(&[]);
    // Upstream splits "/a/" into ["a", ""]: label a with an empty value.
    assert_eq!(gw.put("/metrics/job/j/a/", "m 1\n").status, 200);
    let g = [("a", ""), ("instance", ""), ("job", "j")];
    assert_eq!(value_of(&gw, "m", &g).as_deref(), Some("1"));
}

#[test]
fn encoded_slash_in_a_plain_value_splits_like_upstream() {
    let gw = spawn_gateway(&[]);
    // Upstream routes on the decoded path: "a%2Fb" is job "a" followed by a lone "b".
    let r = gw.put("/metrics/job/a%2Fb", "m 1\n");
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(gw.state().is_empty());
}

#[test]
fn get_on_a_push_path_is_405() {
    let gw = spawn_gateway(&[]);
    assert_eq!(gw.put("/metrics/job/j", "m 1\n").status, 200);
    assert_eq!(gw.get("/metrics/job/j").status, 405);
}

#[test]
fn job_label_later_in_the_path_does_not_override_the_job() {
    // Upstream sets labels["job"] from the job segment after parsing the rest.
    let gw = spawn_gateway(&[]);
    assert_eq!(gw.put("/metrics/job/j/job/k", "m 1\n").status, 200);
    let state = gw.state();
    assert_eq!(
        state
            .get(&series("m", &[("instance", ""), ("job", "j")]))
            .map(String::as_str),
        Some("1"),
        "{state:?}"
    );
    assert!(!state.keys().any(|k| k.contains("job=\"k\"")), "{state:?}");
}

#[test]
fn repeated_label_in_the_path_keeps_the_last_value() {
    let gw = spawn_gateway(&[]);
    assert_eq!(gw.put("/metrics/job/j/a/1/a/2", "m 1\n").status, 200);
    let g = [("a", "2"), ("instance", ""), ("job", "j")];
    assert_eq!(value_of(&gw, "m", &g).as_deref(), Some("1"));
}

#[test]
fn explicit_empty_instance_group_clashes_with_the_implicit_one() {
    // {job=j} and {job=j,instance=""} are two groups whose push_time_seconds would be the
    // same series; upstream's check rejects the second, in either order.
    let gw = spawn_gateway(&[]);
    assert_eq!(gw.put("/metrics/job/j", "m 1\n").status, 200);
    let r = gw.put("/metrics/job/j/instance@base64/=", "n 1\n");
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text()
            .contains("pushed metrics are invalid or inconsistent with existing metrics"),
        "{}",
        r.text()
    );
    let gw = spawn_gateway(&[]);
    assert_eq!(
        gw.put("/metrics/job/j/instance@base64/=", "n 1\n").status,
        200
    );
    let r = gw.put("/metrics/job/j", "m 1\n");
    assert_eq!(r.status, 400, "{}", r.text());
    // The scrape stays valid: every series once.
    gw.state();
}

#[test]
fn explicit_empty_label_group_is_distinct_from_the_group_without_it() {
    let gw = spawn_gateway(&[]);
    assert_eq!(gw.put("/metrics/job/j", "m 1\n").status, 200);
    let r = gw.put("/metrics/job/j/a@base64/=", "n 1\n");
    assert_eq!(r.status, 200, "{}", r.text());
    let state = gw.state();
    assert!(state.contains_key(&series(
        "push_time_seconds",
        &[("instance", ""), ("job", "j")]
    )));
    assert!(state.contains_key(&series(
        "push_time_seconds",
        &[("a", ""), ("instance", ""), ("job", "j")]
    )));
}

#[test]
fn trailing_slash_after_a_label_pair_is_an_odd_path() {
    let gw = spawn_gateway(&[]);
    let r = gw.put("/metrics/job/j/a/1/", "m 1\n");
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(gw.state().is_empty());
}

#[test]
fn delete_validates_the_path_like_a_push() {
    let gw = spawn_gateway(&[]);
    assert_eq!(gw.put("/metrics/job/j", "m 1\n").status, 200);
    let before = gw.state();
    for (path, reason) in [
        ("/metrics/job/j/a", "odd number"),
        ("/metrics/job/j/a-b/1", "improper label name"),
        ("/metrics/job@base64/a$b", "base64"),
        ("/metrics/job@base64/=", "job name is required"),
    ] {
        let r = gw.delete(path);
        assert_eq!(r.status, 400, "DELETE {path}: {}", r.text());
        assert!(r.text().contains(reason), "DELETE {path}: {}", r.text());
    }
    assert_eq!(before, gw.state());
}

/// Upstream's router (httprouter, HandleMethodNotAllowed) answers 405 with `Allow: GET`
/// for a path that only has a GET route.
#[test]
fn wrong_methods_on_the_scrape_path_are_405() {
    let gw = spawn_gateway(&[]);
    assert_eq!(gw.request("POST", "/metrics", &[], b"m 1\n").status, 405);
    assert_eq!(gw.request("PUT", "/metrics", &[], b"m 1\n").status, 405);
    assert_eq!(gw.request("DELETE", "/metrics", &[], b"").status, 405);
}
