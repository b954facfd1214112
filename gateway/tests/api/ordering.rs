//! Request ordering: sequential requests apply in order, concurrent pushes to distinct
//! groups all land.

use std::sync::Arc;

use crate::helpers::{series, spawn_gateway};

#[test]
fn alternating_put_and_delete_ends_with_the_last_request() {
    let gw = spawn_gateway(&[]);
    let m = series("m", &[("instance", ""), ("job", "j")]);
    for round in 0..3 {
        for i in 0..20 {
            if i % 2 == 0 {
                assert_eq!(gw.put("/metrics/job/j", &format!("m {i}\n")).status, 200);
            } else {
                assert_eq!(gw.delete("/metrics/job/j").status, 202);
            }
        }
        // Last request was a DELETE.
        let state = gw.state();
        assert!(
            !state.keys().any(|k| k.contains("job=\"j\"")),
            "round {round}: group survived its final DELETE: {state:?}"
        );
        assert_eq!(
            gw.put("/metrics/job/j", &format!("m {}\n", 100 + round))
                .status,
            200
        );
        let state = gw.state();
        let expected = (100 + round).to_string();
        assert_eq!(state.get(&m), Some(&expected), "round {round}");
        assert_eq!(gw.delete("/metrics/job/j").status, 202);
    }
}

#[test]
fn concurrent_puts_to_distinct_groups_all_land() {
    let gw = Arc::new(spawn_gateway(&[]));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let gw = Arc::clone(&gw);
            std::thread::spawn(move || {
                for i in 0..25 {
                    let body = format!("# TYPE m gauge\nm{{k=\"v\"}} {i}\nn_{t} {i}\n");
                    let r = gw.put(&format!("/metrics/job/t{t}"), &body);
                    assert_eq!(r.status, 200, "{}", r.text());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // `state` panics on a series exposed twice.
    let state = gw.state();
    for t in 0..8 {
        let job = format!("t{t}");
        let m = series("m", &[("instance", ""), ("job", &job), ("k", "v")]);
        assert_eq!(state.get(&m).map(String::as_str), Some("24"), "{m}");
        let n = series(&format!("n_{t}"), &[("instance", ""), ("job", &job)]);
        assert_eq!(state.get(&n).map(String::as_str), Some("24"), "{n}");
    }
    assert_eq!(state.keys().filter(|k| k.starts_with("m{")).count(), 8);
    let text = gw.scrape();
    assert_eq!(
        text.lines().filter(|l| *l == "# TYPE m gauge").count(),
        1,
        "{text}"
    );
}
