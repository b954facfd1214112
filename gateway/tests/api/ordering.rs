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

/// Four groups whose pushes all produce the series `m{a="1",b="1",instance="",job="j"}`.
const SAME_SERIES: [(&str, &str); 4] = [
    ("/metrics/job/j/a/1/b/1", "m 1\n"),
    ("/metrics/job/j/a/1", "m{b=\"1\"} 1\n"),
    ("/metrics/job/j/b/1", "m{a=\"1\"} 1\n"),
    ("/metrics/job/j", "m{a=\"1\",b=\"1\"} 1\n"),
];

#[test]
fn concurrent_pushes_of_one_series_from_four_groups_admit_exactly_one() {
    let gw = Arc::new(spawn_gateway(&[]));
    for round in 0..15 {
        let barrier = Arc::new(std::sync::Barrier::new(SAME_SERIES.len()));
        let threads: Vec<_> = SAME_SERIES
            .iter()
            .map(|(path, body)| {
                let gw = Arc::clone(&gw);
                let barrier = Arc::clone(&barrier);
                std::thread::spawn(move || {
                    barrier.wait();
                    gw.put(path, body).status
                })
            })
            .collect();
        let statuses: Vec<u16> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(
            statuses.iter().filter(|s| **s == 200).count(),
            1,
            "round {round}: {statuses:?}"
        );
        assert!(
            statuses.iter().all(|s| *s == 200 || *s == 400),
            "{statuses:?}"
        );
        // `state` panics if the series is exposed twice.
        let state = gw.state();
        let m = series(
            "m",
            &[("a", "1"), ("b", "1"), ("instance", ""), ("job", "j")],
        );
        assert_eq!(
            state.get(&m).map(String::as_str),
            Some("1"),
            "round {round}"
        );
        for (path, _) in SAME_SERIES {
            assert_eq!(gw.delete(path).status, 202);
        }
    }
}

#[test]
fn concurrent_pushes_of_one_name_with_two_types_never_mix_types() {
    let gw = Arc::new(spawn_gateway(&[]));
    for round in 0..15 {
        let barrier = Arc::new(std::sync::Barrier::new(8));
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let gw = Arc::clone(&gw);
                let barrier = Arc::clone(&barrier);
                std::thread::spawn(move || {
                    let kind = if t % 2 == 0 { "counter" } else { "gauge" };
                    barrier.wait();
                    let r = gw.put(
                        &format!("/metrics/job/t{t}"),
                        &format!("# TYPE m {kind}\nm 1\n"),
                    );
                    (kind, r.status)
                })
            })
            .collect();
        let results: Vec<(&str, u16)> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let winners: std::collections::BTreeSet<&str> = results
            .iter()
            .filter(|(_, s)| *s == 200)
            .map(|(k, _)| *k)
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: {results:?}");
        let winner = *winners.iter().next().unwrap();
        for (kind, status) in &results {
            let expected = if *kind == winner { 200 } else { 400 };
            assert_eq!(*status, expected, "round {round}: {results:?}");
        }
        let text = gw.scrape();
        assert!(
            text.lines().any(|l| l == format!("# TYPE m {winner}")),
            "{text}"
        );
        assert_eq!(
            text.lines().filter(|l| l.starts_with("m{")).count(),
            4,
            "{text}"
        );
        for t in 0..8 {
            assert_eq!(gw.delete(&format!("/metrics/job/t{t}")).status, 202);
        }
    }
}

#[test]
fn scrapes_never_see_half_of_a_push() {
    let gw = Arc::new(spawn_gateway(&[]));
    assert_eq!(
        gw.put("/metrics/job/j", "m{x=\"1\"} 0\nm{x=\"2\"} 0\nn 0\n")
            .status,
        200
    );
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let gw = Arc::clone(&gw);
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            for i in 1..=150 {
                let body = format!("m{{x=\"1\"}} {i}\nm{{x=\"2\"}} {i}\nn {i}\n");
                let r = if i % 2 == 0 {
                    gw.put("/metrics/job/j", &body)
                } else {
                    gw.post("/metrics/job/j", &body)
                };
                assert_eq!(r.status, 200);
            }
            done.store(true, std::sync::atomic::Ordering::SeqCst);
        })
    };
    let j = |x: &str| series("m", &[("instance", ""), ("job", "j"), ("x", x)]);
    let n = series("n", &[("instance", ""), ("job", "j")]);
    let mut scrapes = 0;
    let mut last = 0u64;
    while !done.load(std::sync::atomic::Ordering::SeqCst) || scrapes < 5 {
        let state = gw.state();
        let a = &state[&j("1")];
        assert_eq!(a, &state[&j("2")], "torn push in scrape {scrapes}");
        assert_eq!(a, &state[&n], "torn push in scrape {scrapes}");
        let v: u64 = a.parse().unwrap();
        assert!(v >= last, "went back from {last} to {v}");
        last = v;
        scrapes += 1;
    }
    writer.join().unwrap();
    assert_eq!(gw.state()[&n], "150");
}
