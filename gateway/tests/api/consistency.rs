//! Every kind of rejected push: 400 with the reason in the body, and the scrape unchanged
//! apart from `push_failure_time_seconds` of the target group.

use std::collections::BTreeMap;

use crate::helpers::{series, spawn_gateway, Gateway};

/// Consistency errors (checked against the stored state).
const INCONSISTENT: &str = "pushed metrics are invalid or inconsistent with existing metrics";
/// Syntax errors of the text format.
const SYNTAX: &str = "text format parsing error in line";

/// The pushed state without what a rejected push to `group` may change: its failure
/// time, and, for a group that did not exist, its `push_time_seconds 0`.
fn comparable(
    state: &BTreeMap<String, String>,
    group: Option<&[(&str, &str)]>,
) -> BTreeMap<String, String> {
    let mut state = state.clone();
    if let Some(group) = group {
        state.remove(&series("push_failure_time_seconds", group));
    }
    state
}

/// Sends a push that must be rejected with 400 and a body containing `reason`, and checks
/// the state. `group` is the target group's labels (with `instance`), `None` when the path
/// itself is invalid and no group is addressed.
fn assert_rejected(
    gw: &Gateway,
    method: &str,
    path: &str,
    body: &str,
    reason: &str,
    group: Option<&[(&str, &str)]>,
) {
    let before = gw.state();
    let response = gw.request(method, path, &[], body.as_bytes());
    assert_eq!(
        response.status,
        400,
        "{method} {path} with {body:?} answered {}: {}",
        response.status,
        response.text()
    );
    assert!(
        response.text().contains(reason),
        "{method} {path} with {body:?}: body {:?} lacks {reason:?}",
        response.text()
    );
    let after = gw.state();
    let mut after_cmp = comparable(&after, group);
    if let Some(group) = group {
        let pt = series("push_time_seconds", group);
        if !before.contains_key(&pt) {
            // A rejected push to a new group may create it with push_time_seconds 0.
            if let Some(v) = after_cmp.remove(&pt) {
                assert_eq!(
                    v, "0",
                    "push time of a group that never had a successful push"
                );
            }
        }
    }
    assert_eq!(
        comparable(&before, group),
        after_cmp,
        "{method} {path} with {body:?} changed the stored state"
    );
}

const J: &[(&str, &str)] = &[("instance", ""), ("job", "j")];

/// A gateway with one stored group `{job="j"}`, so rejections hit an existing group.
fn with_baseline(args: &[&str]) -> Gateway {
    let gw = spawn_gateway(args);
    let r = gw.put(
        "/metrics/job/j",
        "# TYPE base gauge\nbase{x=\"1\"} 1\nbase{x=\"2\"} 2\n",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    gw
}

#[test]
fn odd_number_of_path_components() {
    let gw = with_baseline(&[]);
    assert_rejected(&gw, "PUT", "/metrics/job/j/a", "m 1\n", "odd number", None);
    assert_rejected(
        &gw,
        "POST",
        "/metrics/job/j/a/1/b",
        "m 1\n",
        "odd number",
        None,
    );
}

#[test]
fn invalid_label_name_in_the_path() {
    let gw = with_baseline(&[]);
    let reason = "improper label name";
    assert_rejected(&gw, "PUT", "/metrics/job/j/a-b/1", "m 1\n", reason, None);
    assert_rejected(&gw, "PUT", "/metrics/job/j/1a/1", "m 1\n", reason, None);
}

#[test]
fn reserved_label_name_in_the_path() {
    let gw = with_baseline(&[]);
    assert_rejected(
        &gw,
        "PUT",
        "/metrics/job/j/__x/1",
        "m 1\n",
        "improper label name",
        None,
    );
}

#[test]
fn empty_job() {
    let gw = with_baseline(&[]);
    assert_rejected(
        &gw,
        "PUT",
        "/metrics/job@base64/=",
        "m 1\n",
        "job name is required",
        None,
    );
}

#[test]
fn invalid_base64() {
    let gw = with_baseline(&[]);
    assert_rejected(
        &gw,
        "PUT",
        "/metrics/job@base64/a$b",
        "m 1\n",
        "base64",
        None,
    );
    assert_rejected(
        &gw,
        "PUT",
        "/metrics/job/j/x@base64/%21%21",
        "m 1\n",
        "base64",
        None,
    );
}

#[test]
fn sample_with_a_timestamp() {
    let gw = with_baseline(&[]);
    assert_rejected(
        &gw,
        "PUT",
        "/metrics/job/j",
        "m 1 1700000000000\n",
        "timestamp",
        Some(J),
    );
    assert_rejected(
        &gw,
        "POST",
        "/metrics/job/j",
        "m 1 1700000000000\n",
        INCONSISTENT,
        Some(J),
    );
}

#[test]
fn carriage_return_line_ending() {
    let gw = with_baseline(&[]);
    assert_rejected(&gw, "PUT", "/metrics/job/j", "m 1\r\n", SYNTAX, Some(J));
}

#[test]
fn missing_final_newline() {
    let gw = with_baseline(&[]);
    assert_rejected(&gw, "PUT", "/metrics/job/j", "m 1\nn 2", SYNTAX, Some(J));
}

#[test]
fn malformed_line() {
    let gw = with_baseline(&[]);
    assert_rejected(
        &gw,
        "PUT",
        "/metrics/job/j",
        "m 1\nthis is not a sample\n",
        SYNTAX,
        Some(J),
    );
    assert_rejected(
        &gw,
        "PUT",
        "/metrics/job/j",
        "m{x=\"1\" 1\n",
        SYNTAX,
        Some(J),
    );
    assert_rejected(&gw, "PUT", "/metrics/job/j", "m one\n", SYNTAX, Some(J));
}

#[test]
fn invalid_metric_name() {
    let gw = with_baseline(&[]);
    assert_rejected(&gw, "PUT", "/metrics/job/j", "0m 1\n", SYNTAX, Some(J));
    assert_rejected(&gw, "PUT", "/metrics/job/j", "m-x 1\n", SYNTAX, Some(J));
}

#[test]
fn invalid_escape_in_a_label_value() {
    let gw = with_baseline(&[]);
    assert_rejected(
        &gw,
        "PUT",
        "/metrics/job/j",
        "m{x=\"a\\qb\"} 1\n",
        SYNTAX,
        Some(J),
    );
}

#[test]
fn duplicate_label_names() {
    let gw = with_baseline(&[]);
    assert_rejected(
        &gw,
        "PUT",
        "/metrics/job/j",
        "m{x=\"1\",x=\"2\"} 1\n",
        SYNTAX,
        Some(J),
    );
}

#[test]
fn duplicate_series_within_one_push() {
    let gw = with_baseline(&[]);
    assert_rejected(
        &gw,
        "PUT",
        "/metrics/job/j",
        "m 1\nm 2\n",
        INCONSISTENT,
        Some(J),
    );
    let body = "m{a=\"1\",b=\"2\"} 1\nm{b=\"2\",a=\"1\"} 2\n";
    assert_rejected(&gw, "PUT", "/metrics/job/j", body, INCONSISTENT, Some(J));
}

#[test]
fn duplicate_series_across_groups() {
    let gw = with_baseline(&[]);
    assert_eq!(gw.post("/metrics/job/j", "m{g=\"1\"} 1\n").status, 200);
    let g = [("g", "1"), ("instance", ""), ("job", "j")];
    assert_rejected(
        &gw,
        "PUT",
        "/metrics/job/j/g/1",
        "m 1\n",
        INCONSISTENT,
        Some(&g),
    );
}

#[test]
fn same_name_with_another_type_in_another_group() {
    let gw = with_baseline(&[]);
    assert_eq!(
        gw.put("/metrics/job/k", "# TYPE m counter\nm 1\n").status,
        200
    );
    assert_rejected(
        &gw,
        "PUT",
        "/metrics/job/j",
        "# TYPE m gauge\nm 1\n",
        INCONSISTENT,
        Some(J),
    );
    // Untyped counts as another type too.
    assert_rejected(
        &gw,
        "POST",
        "/metrics/job/j",
        "m 1\n",
        INCONSISTENT,
        Some(J),
    );
}

#[test]
fn count_series_when_a_summary_exists_in_another_group() {
    let gw = with_baseline(&[]);
    let summary = "# TYPE foo summary\nfoo{quantile=\"0.5\"} 1\nfoo_sum 2\nfoo_count 3\n";
    assert_eq!(gw.put("/metrics/job/k", summary).status, 200);
    assert_rejected(
        &gw,
        "PUT",
        "/metrics/job/j",
        "foo_count 1\n",
        INCONSISTENT,
        Some(J),
    );
    assert_rejected(
        &gw,
        "PUT",
        "/metrics/job/j",
        "# TYPE foo_sum gauge\nfoo_sum 1\n",
        INCONSISTENT,
        Some(J),
    );
}

#[test]
fn summary_when_its_count_series_exists_in_another_group() {
    let gw = with_baseline(&[]);
    assert_eq!(gw.put("/metrics/job/k", "foo_count 1\n").status, 200);
    let summary = "# TYPE foo summary\nfoo_sum 2\nfoo_count 3\n";
    assert_rejected(&gw, "PUT", "/metrics/job/j", summary, INCONSISTENT, Some(J));
}

#[test]
fn histogram_when_its_bucket_name_exists_in_another_group() {
    let gw = with_baseline(&[]);
    assert_eq!(
        gw.put("/metrics/job/k", "bar_bucket{le=\"1\"} 1\n").status,
        200
    );
    let histogram = "# TYPE bar histogram\nbar_bucket{le=\"+Inf\"} 1\nbar_sum 1\nbar_count 1\n";
    assert_rejected(
        &gw,
        "PUT",
        "/metrics/job/j",
        histogram,
        INCONSISTENT,
        Some(J),
    );
}

#[test]
fn summary_with_a_quantile_grouping_label() {
    let gw = with_baseline(&[]);
    let summary = "# TYPE s summary\ns{quantile=\"0.5\"} 1\ns_sum 1\ns_count 1\n";
    let g = [("instance", ""), ("job", "j"), ("quantile", "0.5")];
    assert_rejected(
        &gw,
        "PUT",
        "/metrics/job/j/quantile/0.5",
        summary,
        INCONSISTENT,
        Some(&g),
    );
}

#[test]
fn the_gateways_own_metric_names() {
    let gw = with_baseline(&[]);
    for body in [
        "pushgateway_http_requests_total 1\n",
        "# TYPE pushgateway_http_requests_total counter\npushgateway_http_requests_total 1\n",
        "# TYPE pushgateway_http_requests_total gauge\npushgateway_http_requests_total 1\n",
        "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 1\n",
        "process_cpu_seconds_total 1\n",
    ] {
        assert_rejected(&gw, "PUT", "/metrics/job/j", body, INCONSISTENT, Some(J));
    }
    // The names must not have been stored under the group.
    let text = gw.scrape();
    assert!(
        !text
            .lines()
            .any(|l| l.starts_with("pushgateway_http_requests_total{") && l.contains("job=\"j\"")),
        "{text}"
    );
}

#[test]
fn rejected_push_to_a_new_group() {
    let gw = with_baseline(&[]);
    let g = [("instance", ""), ("job", "new")];
    assert_rejected(
        &gw,
        "PUT",
        "/metrics/job/new",
        "m 1\nm 2\n",
        INCONSISTENT,
        Some(&g),
    );
}
