//! The scrape reflects every change at once, whatever was scraped (plain or gzip) before.

use std::io::Read;

use flate2::read::GzDecoder;

use crate::helpers::{pushed_samples, series, spawn_gateway, Gateway};

fn gzip_state(gw: &Gateway) -> std::collections::BTreeMap<String, String> {
    let r = gw.request("GET", "/metrics", &[("Accept-Encoding", "gzip")], b"");
    assert_eq!(r.status, 200);
    let mut text = String::new();
    GzDecoder::new(&r.body[..])
        .read_to_string(&mut text)
        .unwrap();
    pushed_samples(&text)
}

/// Method, path, body, and the expected value (or absence) of some series afterwards.
type Step<'a> = (&'a str, &'a str, &'a str, Vec<(String, Option<&'a str>)>);

#[test]
fn every_change_shows_in_the_next_scrape() {
    let gw = spawn_gateway(&[]);
    let j = [("instance", ""), ("job", "j")];
    let k = [("instance", ""), ("job", "k")];
    let steps: Vec<Step<'_>> = vec![
        (
            "PUT",
            "/metrics/job/j",
            "a 1\nb 1\n",
            vec![(series("a", &j), Some("1"))],
        ),
        (
            "POST",
            "/metrics/job/j",
            "a 2\n",
            vec![(series("a", &j), Some("2")), (series("b", &j), Some("1"))],
        ),
        (
            "PUT",
            "/metrics/job/k",
            "a 3\n",
            vec![(series("a", &k), Some("3")), (series("a", &j), Some("2"))],
        ),
        (
            "PUT",
            "/metrics/job/j",
            "b 4\n",
            vec![(series("a", &j), None), (series("b", &j), Some("4"))],
        ),
        (
            "DELETE",
            "/metrics/job/k",
            "",
            vec![(series("a", &k), None)],
        ),
        (
            "POST",
            "/metrics/job/j",
            "",
            vec![(series("b", &j), Some("4"))],
        ),
        ("PUT", "/metrics/job/j", "", vec![(series("b", &j), None)]),
    ];
    for (i, (method, path, body, expect)) in steps.into_iter().enumerate() {
        // Scrape both ways before the change so that any cache is warm.
        gw.scrape();
        gzip_state(&gw);
        let r = gw.request(method, path, &[], body.as_bytes());
        assert!(r.status == 200 || r.status == 202, "step {i}: {}", r.status);
        for state in [gw.state(), gzip_state(&gw)] {
            for (s, v) in &expect {
                assert_eq!(
                    state.get(s).map(String::as_str),
                    *v,
                    "step {i}: {s} in {state:?}"
                );
            }
        }
    }
}

#[test]
fn push_time_moves_in_the_scrape() {
    let gw = spawn_gateway(&[]);
    let j = [("instance", ""), ("job", "j")];
    let pt = series("push_time_seconds", &j);
    assert_eq!(gw.put("/metrics/job/j", "a 1\n").status, 200);
    let first = gw.state()[&pt].clone();
    crate::helpers::tick();
    assert_eq!(gw.put("/metrics/job/j", "a 1\n").status, 200);
    let second = gw.state()[&pt].clone();
    assert_ne!(
        first, second,
        "push time did not move for an identical push"
    );
}
