//! Requests whose cost could grow faster than their size: many grouping labels, many labels
//! on one line, very long lines. Each limit answers 413 with its flag and leaves the store
//! as it was; inputs within raised limits complete in linear time without stalling others.

use std::time::{Duration, Instant};

use crate::helpers::{spawn_gateway, Gateway};

/// `/metrics/job/j/l0/v/l1/v/...` with `n` grouping labels besides `job`.
fn grouping_path(n: usize) -> String {
    let labels: String = (0..n).map(|i| format!("/l{i}/v")).collect();
    format!("/metrics/job/j{labels}")
}

/// `count` metrics of one family, each with its own label value.
fn metrics(count: usize) -> String {
    (0..count).map(|i| format!("m{{i=\"{i}\"}} 1\n")).collect()
}

/// One sample line with `n` labels.
fn crowded_line(n: usize) -> String {
    let labels: Vec<String> = (0..n).map(|i| format!("l{i}=\"v\"")).collect();
    format!("crowded{{{}}} 1\n", labels.join(","))
}

fn assert_refused(gateway: &Gateway, path: &str, body: &str, flag: &str) {
    let before = gateway.state();
    let response = gateway.put(path, body);
    assert_eq!(response.status, 413, "{}", response.text());
    assert!(response.text().contains(flag), "{}", response.text());
    assert_eq!(gateway.state(), before, "the store changed");
}

#[test]
fn many_grouping_labels_are_refused_and_the_store_is_unchanged() {
    let gateway = spawn_gateway(&[]);
    assert_eq!(gateway.put("/metrics/job/kept", "kept 1\n").status, 200);
    assert_refused(
        &gateway,
        &grouping_path(4000),
        &metrics(10),
        "--push.max-grouping-labels",
    );
    // At the default limit (32 labels, job included) a push is accepted.
    let response = gateway.put(&grouping_path(31), &metrics(400));
    assert_eq!(response.status, 200, "{}", response.text());
}

#[test]
fn many_grouping_labels_within_a_raised_limit_cost_linear_time() {
    // 4000 grouping labels on 400 metrics: minutes when each series looked up each
    // grouping label in a list, well under a second when the labels are merged.
    let gateway = spawn_gateway(&["--push.max-grouping-labels=5000"]);
    let started = Instant::now();
    let response = gateway.put(&grouping_path(4000), &metrics(400));
    assert_eq!(response.status, 200, "{}", response.text());
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the push took {:?}",
        started.elapsed()
    );
}

#[test]
fn many_labels_on_one_line_are_refused_and_the_store_is_unchanged() {
    let gateway = spawn_gateway(&[]);
    assert_eq!(gateway.put("/metrics/job/kept", "kept 1\n").status, 200);
    assert_refused(
        &gateway,
        "/metrics/job/crowded",
        &crowded_line(40_000),
        "--push.max-labels-per-series",
    );
    let response = gateway.put("/metrics/job/crowded", &crowded_line(512));
    assert_eq!(response.status, 200, "{}", response.text());
}

#[test]
fn long_lines_are_refused_and_the_store_is_unchanged() {
    let gateway = spawn_gateway(&[]);
    assert_eq!(gateway.put("/metrics/job/kept", "kept 1\n").status, 200);
    let comment = format!("# {}\nlong 1\n", "x".repeat(2 * 1024 * 1024));
    assert_refused(
        &gateway,
        "/metrics/job/long",
        &comment,
        "--push.max-line-bytes",
    );
}

#[test]
fn huge_lines_within_raised_limits_do_not_stall_other_requests() {
    // Two pushes of one line with 100k labels each: quadratic work on the async workers
    // once took minutes and starved /-/healthy meanwhile.
    let gateway = spawn_gateway(&[
        "--push.max-labels-per-series=200000",
        "--push.max-line-bytes=16777216",
    ]);
    let line = crowded_line(100_000);
    let started = Instant::now();
    let pushes: Vec<_> = (0..2)
        .map(|i| {
            let (addr, line) = (gateway.addr, line.clone());
            std::thread::spawn(move || {
                let path = format!("/metrics/job/crowded{i}");
                crate::helpers::http(addr, "PUT", &path, &[], line.as_bytes())
            })
        })
        .collect();
    let mut slowest = Duration::ZERO;
    while pushes.iter().any(|p| !p.is_finished()) {
        let asked = Instant::now();
        assert_eq!(gateway.get("/-/healthy").status, 200);
        slowest = slowest.max(asked.elapsed());
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the pushes did not finish"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    for push in pushes {
        let response = push.join().expect("push thread");
        assert_eq!(response.status, 200, "{}", response.text());
    }
    assert!(
        slowest < Duration::from_secs(5),
        "/-/healthy took {slowest:?} while the pushes were parsed"
    );
}
