//! Flags that change naming and routing: UTF-8 names, external URL, telemetry path.

use crate::helpers::{series, spawn_gateway};

#[test]
fn dotted_label_name_in_the_path_needs_the_utf8_flag() {
    let gw = spawn_gateway(&[]);
    let r = gw.put("/metrics/job/j/my.label/1", "m 1\n");
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("improper label name"), "{}", r.text());

    let gw = spawn_gateway(&["--push.enable-utf8-names"]);
    let r = gw.put("/metrics/job/j/my.label/1", "m 1\n");
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn quoted_utf8_names_in_the_body_need_the_flag() {
    let body = "{\"my.metric\",\"a.b\"=\"1\"} 2\n";
    let gw = spawn_gateway(&[]);
    let r = gw.put("/metrics/job/j", body);
    assert_eq!(r.status, 400, "{}", r.text());

    let gw = spawn_gateway(&["--push.enable-utf8-names"]);
    let r = gw.put("/metrics/job/j", body);
    assert_eq!(r.status, 200, "{}", r.text());
    // The default text scrape escapes with underscores; asking for UTF-8 keeps the names.
    let text = gw.scrape();
    assert!(
        text.lines()
            .any(|l| l == "my_metric{a_b=\"1\",instance=\"\",job=\"j\"} 2"),
        "{text}"
    );
    let utf8 = gw.request(
        "GET",
        "/metrics",
        &[("Accept", "text/plain;version=0.0.4;escaping=allow-utf-8")],
        b"",
    );
    assert_eq!(utf8.status, 200);
    assert!(
        utf8.text()
            .lines()
            .any(|l| l == "{\"my.metric\",\"a.b\"=\"1\",instance=\"\",job=\"j\"} 2"),
        "{}",
        utf8.text()
    );
}

#[test]
fn dots_and_values_escaping_as_prometheus_common_defines_them() {
    let gw = spawn_gateway(&["--push.enable-utf8-names"]);
    let body = "{\"my.metric_x\",\"a.b\"=\"1\",plain_label=\"2\"} 2\n";
    assert_eq!(gw.put("/metrics/job/j", body).status, 200);
    for (escaping, line) in [
        (
            "dots",
            "my_dot_metric__x{a_dot_b=\"1\",instance=\"\",job=\"j\",plain_label=\"2\"} 2",
        ),
        (
            "values",
            "U__my_2e_metric__x{U__a_2e_b=\"1\",instance=\"\",job=\"j\",plain_label=\"2\"} 2",
        ),
    ] {
        let accept = format!("text/plain;version=0.0.4;escaping={escaping}");
        let r = gw.request("GET", "/metrics", &[("Accept", accept.as_str())], b"");
        assert_eq!(r.status, 200);
        let content_type = r.header("content-type").unwrap_or_default().to_string();
        assert!(
            content_type.ends_with(&format!("escaping={escaping}")),
            "{content_type}"
        );
        assert!(
            r.text().lines().any(|l| l == line),
            "{escaping}: {}",
            r.text()
        );
    }
}

#[test]
fn external_url_path_becomes_the_route_prefix() {
    let gw = spawn_gateway(&["--web.external-url=http://example.com/pg/"]);
    assert_eq!(
        gw.request_raw("PUT", "/pg/metrics/job/j", b"m 1\n").status,
        200
    );
    let r = gw.request_raw("GET", "/pg/metrics", b"");
    assert_eq!(r.status, 200);
    assert!(
        r.text()
            .lines()
            .any(|l| l == "m{instance=\"\",job=\"j\"} 1"),
        "{}",
        r.text()
    );
    assert_eq!(gw.request_raw("GET", "/pg/-/healthy", b"").status, 200);
    assert_eq!(
        gw.request_raw("PUT", "/metrics/job/k", b"m 1\n").status,
        404
    );
}

#[test]
fn telemetry_path_moves_only_the_scrape() {
    let gw = spawn_gateway(&["--web.telemetry-path=/scrape"]);
    assert_eq!(gw.put("/metrics/job/j", "m 1\n").status, 200);
    let r = gw.get("/scrape");
    assert_eq!(r.status, 200);
    assert!(
        r.text()
            .lines()
            .any(|l| l == "m{instance=\"\",job=\"j\"} 1"),
        "{}",
        r.text()
    );
    assert_eq!(gw.delete("/metrics/job/j").status, 202);
    assert!(!gw.get("/scrape").text().contains("job=\"j\""));
}

#[test]
fn base64_and_plain_job_address_the_same_group() {
    let gw = spawn_gateway(&[]);
    // "foo" is "Zm9v".
    assert_eq!(gw.put("/metrics/job@base64/Zm9v", "m 1\n").status, 200);
    assert_eq!(gw.post("/metrics/job/foo", "n 2\n").status, 200);
    let state = gw.state();
    let g = [("instance", ""), ("job", "foo")];
    assert_eq!(state.get(&series("m", &g)).map(String::as_str), Some("1"));
    assert_eq!(state.get(&series("n", &g)).map(String::as_str), Some("2"));
    assert_eq!(gw.delete("/metrics/job/foo").status, 202);
    assert!(gw.state().is_empty());
}

#[test]
fn empty_label_value_in_the_body_is_kept() {
    // Upstream's parser keeps the pair and the Go encoder writes it.
    let gw = spawn_gateway(&[]);
    assert_eq!(gw.put("/metrics/job/j", "m{x=\"\"} 1\n").status, 200);
    let text = gw.scrape();
    assert!(
        text.lines()
            .any(|l| l == "m{instance=\"\",job=\"j\",x=\"\"} 1"),
        "{text}"
    );
}

#[test]
fn large_push_and_many_groups() {
    let gw = spawn_gateway(&[]);
    let body: String = (0..20_000)
        .map(|i| format!("big{{i=\"{i}\"}} {i}\n"))
        .collect();
    let started = std::time::Instant::now();
    let r = gw.put("/metrics/job/big", &body);
    assert_eq!(r.status, 200, "{}", r.text());
    for g in 0..300 {
        let r = gw.put(
            &format!("/metrics/job/g{g}"),
            &format!("small{{k=\"{g}\"}} 1\n"),
        );
        assert_eq!(r.status, 200);
    }
    let text = gw.scrape();
    assert_eq!(
        text.lines().filter(|l| l.starts_with("big{")).count(),
        20_000
    );
    assert_eq!(
        text.lines().filter(|l| l.starts_with("small{")).count(),
        300
    );
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("push_time_seconds{"))
            .count(),
        301
    );
    // Generous: this is a debug build on a shared machine.
    assert!(
        started.elapsed().as_secs() < 30,
        "took {:?}",
        started.elapsed()
    );
}
