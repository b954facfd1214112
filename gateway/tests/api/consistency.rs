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
fn reserved_label_name_in_the_body() {
    let gw = with_baseline(&[]);
    assert_rejected(
        &gw,
        "PUT",
        "/metrics/job/j",
        "m{__x=\"1\"} 1\n",
        INCONSISTENT,
        Some(J),
    );
}

#[test]
fn body_instance_colliding_with_another_groups_key() {
    let gw = with_baseline(&[]);
    // {job=j} stores m{instance="b",job="j"}; {job=j,instance=b} would store the same series.
    assert_eq!(
        gw.post("/metrics/job/j", "m{instance=\"b\"} 1\n").status,
        200
    );
    let g = [("instance", "b"), ("job", "j")];
    assert_rejected(
        &gw,
        "PUT",
        "/metrics/job/j/instance/b",
        "m 2\n",
        INCONSISTENT,
        Some(&g),
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

// The check must see the state the push leads to: families the push replaces, groups
// deleted or wiped, no longer count.

#[test]
fn post_may_change_the_type_of_a_family_it_replaces() {
    let gw = spawn_gateway(&[]);
    assert_eq!(
        gw.put("/metrics/job/j", "# TYPE m counter\nm 1\nother 1\n")
            .status,
        200
    );
    let r = gw.post("/metrics/job/j", "# TYPE m gauge\nm 2\n");
    assert_eq!(r.status, 200, "{}", r.text());
    let text = gw.scrape();
    assert!(text.lines().any(|l| l == "# TYPE m gauge"), "{text}");
    assert!(
        text.lines().any(|l| l == "m{instance=\"\",job=\"j\"} 2"),
        "{text}"
    );
}

#[test]
fn put_may_change_types_of_the_group_it_replaces() {
    let gw = spawn_gateway(&[]);
    assert_eq!(
        gw.put("/metrics/job/j", "# TYPE m counter\nm 1\n").status,
        200
    );
    let r = gw.put("/metrics/job/j", "# TYPE m summary\nm_sum 1\nm_count 1\n");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(gw.scrape().lines().any(|l| l == "# TYPE m summary"));
}

#[test]
fn a_name_is_free_again_once_no_group_uses_it() {
    let gw = spawn_gateway(&[]);
    assert_eq!(
        gw.put("/metrics/job/a", "# TYPE m counter\nm 1\n").status,
        200
    );
    assert_eq!(
        gw.put("/metrics/job/b", "# TYPE m counter\nm 1\n").status,
        200
    );
    // Still used by b after a is deleted.
    assert_eq!(gw.delete("/metrics/job/a").status, 202);
    assert_eq!(
        gw.put("/metrics/job/c", "# TYPE m gauge\nm 1\n").status,
        400
    );
    // Free once b drops it by a replacing PUT.
    assert_eq!(gw.put("/metrics/job/b", "x 1\n").status, 200);
    let r = gw.put("/metrics/job/c", "# TYPE m gauge\nm 1\n");
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn a_series_is_free_again_after_its_group_is_deleted() {
    let gw = spawn_gateway(&[]);
    assert_eq!(gw.put("/metrics/job/j", "m{g=\"1\"} 1\n").status, 200);
    assert_eq!(gw.put("/metrics/job/j/g/1", "m 2\n").status, 400);
    assert_eq!(gw.delete("/metrics/job/j").status, 202);
    let r = gw.put("/metrics/job/j/g/1", "m 2\n");
    assert_eq!(r.status, 200, "{}", r.text());
    let state = gw.state();
    let m = series("m", &[("g", "1"), ("instance", ""), ("job", "j")]);
    assert_eq!(state.get(&m).map(String::as_str), Some("2"));
}

#[test]
fn names_are_free_again_after_a_wipe() {
    let gw = spawn_gateway(&["--web.enable-admin-api"]);
    assert_eq!(
        gw.put("/metrics/job/a", "# TYPE m counter\nm 1\n").status,
        200
    );
    let wipe = gw.request("PUT", "/api/v1/admin/wipe", &[], b"");
    assert!((200..300).contains(&wipe.status));
    let r = gw.put("/metrics/job/b", "# TYPE m gauge\nm 1\n");
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn a_rejected_push_reserves_nothing() {
    let gw = spawn_gateway(&[]);
    assert_eq!(
        gw.put("/metrics/job/a", "# TYPE m counter\nm 1\n").status,
        200
    );
    // Rejected as a whole: n must not be taken by this push.
    assert_eq!(
        gw.put(
            "/metrics/job/b",
            "# TYPE m gauge\nm 1\n# TYPE n gauge\nn 1\n"
        )
        .status,
        400
    );
    let r = gw.put("/metrics/job/c", "# TYPE n counter\nn 1\n");
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn same_series_in_two_groups_with_distinct_labels_is_fine() {
    let gw = spawn_gateway(&[]);
    assert_eq!(
        gw.put("/metrics/job/a", "# TYPE m counter\nm 1\n").status,
        200
    );
    let r = gw.put("/metrics/job/b", "# TYPE m counter\nm 2\n");
    assert_eq!(r.status, 200, "{}", r.text());
    let r = gw.put("/metrics/job/a/x/1", "# TYPE m counter\nm 3\n");
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn summary_and_a_bucket_name_may_coexist() {
    // Upstream only reserves _count and _sum next to a summary.
    let gw = spawn_gateway(&[]);
    let summary = "# TYPE foo summary\nfoo_sum 2\nfoo_count 3\n";
    assert_eq!(gw.put("/metrics/job/a", summary).status, 200);
    let r = gw.put("/metrics/job/b", "foo_bucket 1\n");
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn count_family_before_its_summary_in_one_push() {
    let gw = with_baseline(&[]);
    // foo_count comes before the TYPE line, so it is a family of its own that collides.
    let body = "foo_count 1\n# TYPE foo summary\nfoo_sum 1\n";
    assert_rejected(&gw, "PUT", "/metrics/job/j", body, INCONSISTENT, Some(J));
}

#[test]
fn bucket_family_when_a_histogram_exists_in_another_group() {
    let gw = with_baseline(&[]);
    let histogram = "# TYPE bar histogram\nbar_bucket{le=\"+Inf\"} 1\nbar_sum 1\nbar_count 1\n";
    assert_eq!(gw.put("/metrics/job/k", histogram).status, 200);
    assert_rejected(
        &gw,
        "PUT",
        "/metrics/job/j",
        "bar_bucket 1\n",
        INCONSISTENT,
        Some(J),
    );
    assert_rejected(
        &gw,
        "PUT",
        "/metrics/job/j",
        "# TYPE bar_sum gauge\nbar_sum 1\n",
        INCONSISTENT,
        Some(J),
    );
}

#[test]
fn same_histogram_from_two_groups_is_fine() {
    let gw = spawn_gateway(&[]);
    let histogram = "# TYPE bar histogram\nbar_bucket{le=\"+Inf\"} 1\nbar_sum 1\nbar_count 1\n";
    assert_eq!(gw.put("/metrics/job/a", histogram).status, 200);
    let r = gw.put("/metrics/job/b", histogram);
    assert_eq!(r.status, 200, "{}", r.text());
}
