//! Persistence (`--persistence.file`), black box: acknowledged pushes survive SIGKILL at
//! any moment (and a request in flight is applied fully or not at all), a clean restart
//! reproduces the exposition byte for byte, damaged or foreign files make the binary refuse
//! to start (or move them aside on request), an unusable path is refused, a full disk
//! answers 503 without losing or changing anything, and restore is fast. Also: protobuf-only
//! content (exemplars, native histograms) survives, a lenient start over damaged files stays
//! consistent after a crash, snapshots follow the interval and the log size and delete the
//! log they cover, a covered segment is not replayed, the admin wipe is persisted.
//!
//! Tests marked `//!
//! The crash test prints its seed; `PGW_PERSIST_SEED=<seed>` replays the same choices
//! (the kill moments still depend on timing).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use gateway::proto;
use prost::Message;

use crate::helpers::{series, START_DEADLINE};
use crate::persist_helpers::{
    file_names, try_http, unix_now, Instance, PersistGateway, Rng, TempDir,
};

/// A temporary directory with `data/` (the persistence file's directory) and `logs/`.
fn dirs(tag: &str) -> (TempDir, PathBuf, PathBuf) {
    let tmp = TempDir::new(tag);
    let data = tmp.path.join("data");
    let logs = tmp.path.join("logs");
    fs::create_dir_all(&data).unwrap();
    fs::create_dir_all(&logs).unwrap();
    (tmp, data, logs)
}

// ============================================================================================
// 1. Crash test.
// ============================================================================================

const THREADS: u64 = 4;
const GROUPS_PER_THREAD: u64 = 4;
const CYCLES: u64 = 20;
/// Tolerance when comparing a push time with the client's clock (same machine).
const CLOCK_SLACK: f64 = 0.05;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Put,
    Post,
    Delete,
}

/// Expected series (exposition series text to value) per family name.
type Families = BTreeMap<&'static str, Vec<(String, f64)>>;

#[derive(Clone, Debug)]
struct Op {
    kind: Kind,
    group: u64,
    id: u64,
    families: Families,
    body: String,
}

#[derive(Clone, Debug)]
enum Outcome {
    /// 2xx, answered at this time.
    Acked(f64),
    /// Sent (or attempted), no complete answer: the gateway died meanwhile.
    NoAnswer,
    /// Any other answer: a failure of the test.
    Refused(u16, String),
}

#[derive(Clone, Debug)]
struct Sent {
    op: Op,
    sent_at: f64,
    outcome: Outcome,
}

/// Per group (thread, group): the request in flight at the kill, and the window in which
/// it may have been applied.
type InFlight = BTreeMap<(u64, u64), (Op, (f64, f64))>;

/// A group's modelled content: families and the window its push time must lie in.
#[derive(Clone, Debug, PartialEq)]
struct GroupModel {
    families: Families,
    push_window: (f64, f64),
}

fn crash_group_path(t: u64, g: u64) -> String {
    format!("/metrics/job/crash/t/{t}/g/{g}")
}

/// The labels of every series of a crash group, sorted as in the exposition, with `extra`.
fn crash_series(name: &str, t: u64, g: u64, extra: &[(&str, &str)]) -> String {
    let (t, g) = (t.to_string(), g.to_string());
    let mut labels: Vec<(&str, &str)> = vec![
        ("g", g.as_str()),
        ("instance", ""),
        ("job", "crash"),
        ("t", t.as_str()),
    ];
    labels.extend_from_slice(extra);
    series(name, &labels)
}

/// `crash_series` with an `le` label last, as the exposition places it.
fn bucket_series(t: u64, g: u64, le: &str) -> String {
    let s = crash_series("fam_h_bucket", t, g, &[]);
    format!("{},le=\"{le}\"}}", &s[..s.len() - 1])
}

/// The text every series of crash group (t, g) contains, and no other series does.
fn crash_group_marker(t: u64, g: u64) -> String {
    format!("g=\"{g}\",instance=\"\",job=\"crash\",t=\"{t}\"")
}

/// A deterministic operation number `n` of thread `t`: a PUT, POST or DELETE of one of the
/// thread's groups, with values derived from a unique id.
fn make_op(rng: &mut Rng, t: u64, n: u64) -> Op {
    let group = rng.below(GROUPS_PER_THREAD);
    let kind = match rng.below(100) {
        0..=44 => Kind::Put,
        45..=84 => Kind::Post,
        _ => Kind::Delete,
    };
    let id = (t + 1) * 100_000 + n;
    let v = id as f64;
    let mut families = Families::new();
    let mut body = String::new();
    if kind != Kind::Delete {
        let mask = rng.range(1, 15);
        if mask & 1 != 0 {
            body.push_str(&format!(
                "# TYPE fam_a gauge\nfam_a{{a=\"x\"}} {v}\nfam_a{{a=\"y\"}} {}\n",
                v + 0.5
            ));
            families.insert(
                "fam_a",
                vec![
                    (crash_series("fam_a", t, group, &[("a", "x")]), v),
                    (crash_series("fam_a", t, group, &[("a", "y")]), v + 0.5),
                ],
            );
        }
        if mask & 2 != 0 {
            body.push_str(&format!("# TYPE fam_b_total counter\nfam_b_total {v}\n"));
            families.insert(
                "fam_b_total",
                vec![(crash_series("fam_b_total", t, group, &[]), v)],
            );
        }
        if mask & 4 != 0 {
            body.push_str(&format!("# TYPE fam_c gauge\nfam_c {}\n", -2.0 * v));
            families.insert(
                "fam_c",
                vec![(crash_series("fam_c", t, group, &[]), -2.0 * v)],
            );
        }
        if mask & 8 != 0 {
            body.push_str(&format!(
                "# TYPE fam_h histogram\nfam_h_bucket{{le=\"1\"}} {v}\nfam_h_bucket{{le=\"+Inf\"}} {}\nfam_h_sum {}\nfam_h_count {}\n",
                v + 1.0,
                v * 1.5,
                v + 1.0
            ));
            families.insert(
                "fam_h",
                vec![
                    (bucket_series(t, group, "1"), v),
                    (bucket_series(t, group, "+Inf"), v + 1.0),
                    (crash_series("fam_h_sum", t, group, &[]), v * 1.5),
                    (crash_series("fam_h_count", t, group, &[]), v + 1.0),
                ],
            );
        }
    }
    Op {
        kind,
        group,
        id,
        families,
        body,
    }
}

/// The model after `op`, pushed within `window`.
fn apply(before: Option<&GroupModel>, op: &Op, window: (f64, f64)) -> Option<GroupModel> {
    match op.kind {
        Kind::Delete => None,
        Kind::Put => Some(GroupModel {
            families: op.families.clone(),
            push_window: window,
        }),
        Kind::Post => {
            let mut families = before.map(|b| b.families.clone()).unwrap_or_default();
            for (name, samples) in &op.families {
                families.insert(name, samples.clone());
            }
            Some(GroupModel {
                families,
                push_window: window,
            })
        }
    }
}

fn flatten(model: Option<&GroupModel>) -> BTreeMap<String, f64> {
    model
        .map(|m| m.families.values().flatten().cloned().collect())
        .unwrap_or_default()
}

/// One thread of load: operations on its own groups until the first failed exchange.
fn worker(addr: std::net::SocketAddr, t: u64, seed: u64, first_n: u64) -> Vec<Sent> {
    let mut rng = Rng::new(seed);
    let mut sent = Vec::new();
    for n in first_n..first_n + 1_000_000 {
        let op = make_op(&mut rng, t, n);
        let method = match op.kind {
            Kind::Put => "PUT",
            Kind::Post => "POST",
            Kind::Delete => "DELETE",
        };
        let sent_at = unix_now();
        let result = try_http(
            addr,
            method,
            &crash_group_path(t, op.group),
            op.body.as_bytes(),
            Duration::from_secs(10),
        );
        let (outcome, stop) = match result {
            Ok(r) if (200..300).contains(&r.status) => (Outcome::Acked(unix_now()), false),
            Ok(r) => (Outcome::Refused(r.status, r.text()), true),
            Err(_) => (Outcome::NoAnswer, true),
        };
        sent.push(Sent {
            op,
            sent_at,
            outcome,
        });
        if stop {
            break;
        }
    }
    sent
}

/// Parses a sample value of the exposition.
fn value(text: &str) -> f64 {
    match text {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        _ => text
            .parse()
            .unwrap_or_else(|e| panic!("bad value {text:?}: {e}")),
    }
}

/// Checks every crash group against its model or, when a request to it was in flight at
/// the kill, against the model after that request; updates the model to what was found.
/// Returns how many in-flight requests turned out applied and not applied.
fn verify_crash_groups(
    instance: &Instance,
    model: &mut BTreeMap<(u64, u64), Option<GroupModel>>,
    in_flight: &InFlight,
    context: &str,
) -> (u64, u64) {
    let state = instance.state();
    let mut counted = 0;
    let (mut applied, mut not_applied) = (0, 0);
    for t in 0..THREADS {
        for g in 0..GROUPS_PER_THREAD {
            let marker = crash_group_marker(t, g);
            let mut actual = BTreeMap::new();
            let mut push_time = None;
            let mut failure_time = None;
            for (series, v) in state.iter().filter(|(s, _)| s.contains(&marker)) {
                counted += 1;
                if series.starts_with("push_time_seconds{") {
                    push_time = Some(value(v));
                } else if series.starts_with("push_failure_time_seconds{") {
                    failure_time = Some(value(v));
                } else {
                    actual.insert(series.clone(), value(v));
                }
            }
            let before = model[&(t, g)].clone();
            let mut candidates = vec![(before.clone(), false)];
            if let Some((op, window)) = in_flight.get(&(t, g)) {
                candidates.push((apply(before.as_ref(), op, *window), true));
            }
            let matching = candidates.iter().find(|(candidate, _)| {
                if flatten(candidate.as_ref()) != actual {
                    return false;
                }
                match (candidate, push_time) {
                    (None, None) => failure_time.is_none(),
                    (Some(m), Some(pt)) => {
                        failure_time == Some(0.0)
                            && pt >= m.push_window.0 - CLOCK_SLACK
                            && pt <= m.push_window.1 + CLOCK_SLACK
                    }
                    _ => false,
                }
            });
            match matching {
                Some((found, was_applied)) => {
                    if in_flight.contains_key(&(t, g)) {
                        if *was_applied {
                            applied += 1;
                        } else {
                            not_applied += 1;
                        }
                    }
                    model.insert((t, g), found.clone());
                }
                None => panic!(
                    "{context}: group t={t} g={g} is in no allowed state.\n\
                     found: {actual:?}\npush_time={push_time:?} failure_time={failure_time:?}\n\
                     allowed: {candidates:#?}\nin flight: {:#?}",
                    in_flight.get(&(t, g))
                ),
            }
        }
    }
    let others = state
        .keys()
        .filter(|s| !s.contains("job=\"crash\"") && !s.contains("job=\"static\""))
        .count();
    assert_eq!(others, 0, "{context}: unexpected series in {state:#?}");
    let crash_total = state.keys().filter(|s| s.contains("job=\"crash\"")).count();
    assert_eq!(counted, crash_total, "{context}: series outside the groups");
    (applied, not_applied)
}

fn static_lines(instance: &Instance) -> BTreeMap<String, String> {
    instance
        .state()
        .into_iter()
        .filter(|(s, _)| s.contains("job=\"static\""))
        .collect()
}

#[test]
fn persistence_sigkill_under_load_keeps_every_acknowledged_push() {
    crash_test("fsync=always", &[], CYCLES, false);
}

/// Kills aimed at the first background snapshot (interval 1 s) of a store made large enough
/// (5k series) for the snapshot to take a while: a kill while the snapshot is written, or
/// while covered segments are deleted, loses nothing.
#[test]
fn persistence_sigkill_during_background_snapshots() {
    crash_test("snapshot hunting", &[], 4, true);
}

/// With `--persistence.fsync=interval` a push is acknowledged once written, not fsynced:
/// a crash of the process (not of the machine) must still lose nothing acknowledged.
#[test]
fn persistence_sigkill_under_load_with_interval_fsync() {
    crash_test(
        "fsync=interval",
        &["--persistence.fsync=interval"],
        8,
        false,
    );
}

/// Kills the gateway under load `cycles` times (see the module documentation); with
/// `hunt_snapshots`, around the moment of the first background snapshot.
fn crash_test(variant: &str, args: &[&str], cycles: u64, hunt_snapshots: bool) {
    let seed = Rng::seed_from_env_or_clock();
    println!("crash test ({variant}) seed: {seed} (replay with PGW_PERSIST_SEED={seed})");
    let mut rng = Rng::new(seed);
    let (_tmp, data, logs) = dirs("crash");
    let mut all_args = vec!["--persistence.interval=1s"];
    all_args.extend_from_slice(args);
    let mut gateway = PersistGateway::new(&data.join("state"), &logs, &all_args);
    let mut instance = gateway.start();

    // Groups written once, whose lines (push_time_seconds included) must never change.
    for s in 0..2 {
        let r = instance.put(
            &format!("/metrics/job/static/s/{s}"),
            "# HELP st A static summary.\n# TYPE st summary\nst{quantile=\"0.5\"} 0.25\n\
             st{quantile=\"0.99\"} 1e-3\nst_sum 17.125\nst_count 9\n\
             # TYPE sg gauge\nsg{l=\"ä \\\"q\\\" \\\\ \\n\"} NaN\n",
        );
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let mut static_count = 2 * 7;
    if hunt_snapshots {
        let mut body = String::from("# TYPE bulk gauge\n");
        for i in 0..5_000 {
            body.push_str(&format!("bulk{{i=\"{i}\"}} {i}\n"));
        }
        let r = instance.put("/metrics/job/static/s/bulk", &body);
        assert_eq!(r.status, 200, "{}", r.text());
        static_count += 5_000 + 2;
    }
    let static_before = static_lines(&instance);
    assert_eq!(static_before.len(), static_count);
    let mut killed_while_writing_a_snapshot = 0;

    let mut model: BTreeMap<(u64, u64), Option<GroupModel>> = (0..THREADS)
        .flat_map(|t| (0..GROUPS_PER_THREAD).map(move |g| ((t, g), None)))
        .collect();
    let mut next_n = vec![0u64; THREADS as usize];
    let (mut acked, mut applied, mut not_applied) = (0u64, 0u64, 0u64);
    let started = Instant::now();
    for cycle in 0..cycles {
        let addr = instance.addr;
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let worker_seed = rng.next_u64();
                let first_n = next_n[t as usize];
                std::thread::spawn(move || worker(addr, t, worker_seed, first_n))
            })
            .collect();
        let mut delay = rng.range(20, 300);
        if hunt_snapshots {
            delay = rng.range(950, 1_150);
        } else if cycle % 8 == 7 {
            // Long enough for a background snapshot (interval 1 s) to run under load.
            delay += 1_100;
        }
        std::thread::sleep(Duration::from_millis(delay));
        if cycle % 4 == 2 {
            // SIGKILL during the graceful shutdown (final snapshot) that SIGTERM starts.
            instance.send_sigterm();
            std::thread::sleep(Duration::from_millis(rng.range(0, 30)));
        }
        instance.kill();
        let killed_at = unix_now();
        // A snapshot's temporary file from this very run: killed while writing it.
        let fresh_tmp = fs::metadata(data.join("state.tmp"))
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().unwrap_or_default() < Duration::from_millis(delay));
        if fresh_tmp {
            killed_while_writing_a_snapshot += 1;
        }

        let mut in_flight = InFlight::new();
        for (t, handle) in (0..THREADS).zip(workers) {
            let sent = handle.join().expect("worker panicked");
            next_n[t as usize] += sent.len() as u64;
            for s in sent {
                let key = (t, s.op.group);
                match s.outcome {
                    Outcome::Acked(answered_at) => {
                        acked += 1;
                        let after = apply(model[&key].as_ref(), &s.op, (s.sent_at, answered_at));
                        model.insert(key, after);
                    }
                    Outcome::NoAnswer => {
                        in_flight.insert(key, (s.op, (s.sent_at, killed_at)));
                    }
                    Outcome::Refused(status, body) => panic!(
                        "seed {seed} cycle {cycle}: op {} of thread {t} answered {status}: {body}",
                        s.op.id
                    ),
                }
            }
        }

        instance = gateway.start();
        let context = format!("{variant}, seed {seed}, cycle {cycle} (killed after {delay} ms)");
        let (a, n) = verify_crash_groups(&instance, &mut model, &in_flight, &context);
        applied += a;
        not_applied += n;
        assert_eq!(
            static_lines(&instance),
            static_before,
            "{context}: static groups changed"
        );

        if cycle % 6 == 5 {
            // A clean restart in between: the whole exposition, push times included, is
            // reproduced byte for byte.
            let before = instance.pushed_text();
            let status = instance.terminate();
            assert!(status.success(), "{context}: SIGTERM exit {status:?}");
            instance = gateway.start();
            assert_eq!(
                instance.pushed_text(),
                before,
                "{context}: clean restart changed the exposition"
            );
        }
    }
    drop(instance);
    let background_snapshots: usize = file_names(&logs)
        .iter()
        .map(|name| {
            let text = fs::read_to_string(logs.join(name)).unwrap_or_default();
            // At shutdown the final snapshot logs the same message, without `seconds=`.
            text.lines()
                .filter(|l| l.contains("metrics persisted") && l.contains("seconds="))
                .count()
        })
        .sum();
    println!(
        "crash test ({variant}): {cycles} kills in {:.1} s, {acked} acknowledged requests, \
         in flight at the kill: {applied} applied, {not_applied} not applied; \
         {background_snapshots} background snapshots, \
         {killed_while_writing_a_snapshot} kills while a snapshot was being written",
        started.elapsed().as_secs_f64()
    );
    assert!(acked >= 20, "too little load to mean anything: {acked}");
}

// ============================================================================================
// 2. Clean restart.
// ============================================================================================

#[test]
fn persistence_restarts_reproduce_the_exposition_byte_for_byte() {
    let (_tmp, data, logs) = dirs("clean");
    let mut gateway = PersistGateway::new(&data.join("state"), &logs, &[]);
    let mut instance = gateway.start();
    let pushes: &[(&str, &str, &str, u16)] = &[
        (
            "PUT",
            "/metrics/job/j1",
            "# HELP m1 Help with \\\\ backslash and \\n newline, ä€.\n# TYPE m1 gauge\n\
             m1{lbl=\"ä€ \\\"quoted\\\" \\\\ back\\nslash\"} 1.5\nm1{lbl=\"b\"} NaN\n\
             m1{lbl=\"c\"} -Inf\nm1{lbl=\"d\"} 1.7976931348623157e308\nm1{lbl=\"e\"} 5e-324\n\
             # TYPE c1_total counter\nc1_total 3\n",
            200,
        ),
        (
            "POST",
            "/metrics/job/j1/instance/i1",
            "# TYPE s1 summary\ns1{quantile=\"0.5\"} 0.1\ns1{quantile=\"0.9\"} 0.3\n\
             s1_sum 12.5\ns1_count 40\n\
             # HELP h1 A histogram.\n# TYPE h1 histogram\nh1_bucket{le=\"0.1\"} 1\n\
             h1_bucket{le=\"1\"} 3\nh1_bucket{le=\"+Inf\"} 4\nh1_sum 2.75\nh1_count 4\n",
            200,
        ),
        (
            "PUT",
            "/metrics/job@base64/L3Zhci90bXA=/x/y",
            "u 42\nu2{a=\"1\",b=\"2\"} -0.000001\n",
            200,
        ),
        ("PUT", "/metrics/job/j3", "# TYPE g3 gauge\ng3 7\n", 200),
        ("PUT", "/metrics/job/gone", "gone 1\n", 200),
        ("DELETE", "/metrics/job/gone", "", 202),
        // Inconsistent with j1's gauge m1: refused, and the failure time recorded, for an
        // existing group and for a new one.
        ("PUT", "/metrics/job/j3", "# TYPE m1 counter\nm1 1\n", 400),
        ("POST", "/metrics/job/j4", "# TYPE m1 counter\nm1 1\n", 400),
    ];
    let run = |instance: &Instance, pushes: &[(&str, &str, &str, u16)]| {
        for (method, path, body, status) in pushes {
            std::thread::sleep(Duration::from_millis(3));
            let r = instance.request(method, path, body.as_bytes());
            assert_eq!(r.status, *status, "{method} {path}: {}", r.text());
        }
    };
    run(&instance, pushes);
    let before = instance.pushed_text();
    let state = instance.state();
    let failure = state
        .get("push_failure_time_seconds{instance=\"\",job=\"j3\"}")
        .map(|v| value(v));
    assert!(failure.is_some_and(|f| f > 0.0), "{before}");
    assert!(
        state.contains_key("push_failure_time_seconds{instance=\"\",job=\"j4\"}"),
        "{before}"
    );
    assert!(!before.contains("gone"), "{before}");

    // Log only (no snapshot was written): SIGKILL and restart.
    instance.kill();
    instance = gateway.start();
    assert_eq!(instance.pushed_text(), before, "after SIGKILL (log replay)");
    assert!(instance.stderr().contains("restored persisted metrics"));

    // SIGTERM writes a snapshot; restart from it.
    let status = instance.terminate();
    assert!(status.success(), "exit after SIGTERM: {status:?}");
    assert!(data.join("state").is_file(), "no snapshot after SIGTERM");
    instance = gateway.start();
    assert_eq!(instance.pushed_text(), before, "after SIGTERM (snapshot)");

    // Snapshot plus log: more changes, then SIGKILL.
    run(
        &instance,
        &[
            ("POST", "/metrics/job/j3", "# TYPE g4 gauge\ng4 8\n", 200),
            ("DELETE", "/metrics/job/j1/instance/i1", "", 202),
            ("PUT", "/metrics/job/j5", "# TYPE m1 gauge\nm1 -1\n", 200),
        ],
    );
    let before = instance.pushed_text();
    assert!(
        before.contains("g4{instance=\"\",job=\"j3\"} 8"),
        "{before}"
    );
    instance.kill();
    instance = gateway.start();
    assert_eq!(
        instance.pushed_text(),
        before,
        "after SIGKILL (snapshot + log)"
    );
    let status = instance.terminate();
    assert!(status.success(), "exit after SIGTERM: {status:?}");
    instance = gateway.start();
    assert_eq!(instance.pushed_text(), before, "after a second SIGTERM");
}

const PROTOBUF: &str =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

fn label(name: &str, value: &str) -> proto::LabelPair {
    proto::LabelPair {
        name: Some(name.into()),
        value: Some(value.into()),
    }
}

fn exemplar(trace: &str, value: f64, seconds: i64) -> proto::Exemplar {
    proto::Exemplar {
        label: vec![label("trace_id", trace)],
        value: Some(value),
        timestamp: Some(proto::Timestamp {
            seconds,
            nanos: 123_000_000,
        }),
    }
}

/// Families only the protobuf format carries: exemplars, created timestamps, native and
/// float histograms, a gauge histogram, a unit.
fn protobuf_families() -> Vec<proto::MetricFamily> {
    let created = Some(proto::Timestamp {
        seconds: 1_700_000_000,
        nanos: 5,
    });
    let native = proto::Histogram {
        sample_count: Some(12),
        sample_sum: Some(34.5),
        schema: Some(3),
        zero_threshold: Some(1e-128),
        zero_count: Some(2),
        negative_span: vec![proto::BucketSpan {
            offset: Some(-2),
            length: Some(2),
        }],
        negative_delta: vec![1, 1],
        positive_span: vec![
            proto::BucketSpan {
                offset: Some(0),
                length: Some(2),
            },
            proto::BucketSpan {
                offset: Some(3),
                length: Some(1),
            },
        ],
        positive_delta: vec![2, -1, 3],
        bucket: vec![
            proto::Bucket {
                cumulative_count: Some(5),
                upper_bound: Some(1.0),
                exemplar: Some(exemplar("b1", 0.5, 1_700_000_001)),
                ..Default::default()
            },
            proto::Bucket {
                cumulative_count: Some(12),
                upper_bound: Some(f64::INFINITY),
                ..Default::default()
            },
        ],
        created_timestamp: created.clone(),
        exemplars: vec![
            exemplar("n1", 1.25, 1_700_000_002),
            exemplar("n2", -3.0, 1_700_000_003),
        ],
        ..Default::default()
    };
    let float = proto::Histogram {
        sample_count_float: Some(7.5),
        sample_sum: Some(1.0),
        schema: Some(0),
        zero_threshold: Some(0.001),
        zero_count_float: Some(0.5),
        positive_span: vec![proto::BucketSpan {
            offset: Some(1),
            length: Some(2),
        }],
        positive_count: vec![3.0, 4.0],
        ..Default::default()
    };
    let metric = |labels: Vec<proto::LabelPair>| proto::Metric {
        label: labels,
        ..Default::default()
    };
    vec![
        proto::MetricFamily {
            name: Some("pb_requests_total".into()),
            help: Some("Counter with an exemplar.".into()),
            r#type: Some(proto::MetricType::Counter as i32),
            metric: vec![proto::Metric {
                counter: Some(proto::Counter {
                    value: Some(17.0),
                    exemplar: Some(exemplar("c1", 1.0, 1_700_000_004)),
                    created_timestamp: created.clone(),
                }),
                ..metric(vec![label("path", "/a")])
            }],
            unit: None,
        },
        proto::MetricFamily {
            name: Some("pb_latency_seconds".into()),
            help: Some("Native and classic histogram.".into()),
            r#type: Some(proto::MetricType::Histogram as i32),
            metric: vec![
                proto::Metric {
                    histogram: Some(native),
                    ..metric(vec![label("kind", "native")])
                },
                proto::Metric {
                    histogram: Some(float),
                    ..metric(vec![label("kind", "float")])
                },
            ],
            unit: Some("seconds".into()),
        },
        proto::MetricFamily {
            name: Some("pb_queue".into()),
            help: Some("Gauge histogram.".into()),
            r#type: Some(proto::MetricType::GaugeHistogram as i32),
            metric: vec![proto::Metric {
                histogram: Some(proto::Histogram {
                    sample_count: Some(3),
                    sample_sum: Some(2.0),
                    bucket: vec![proto::Bucket {
                        cumulative_count: Some(3),
                        upper_bound: Some(f64::INFINITY),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                ..metric(vec![])
            }],
            unit: None,
        },
        proto::MetricFamily {
            name: Some("pb_summary".into()),
            help: None,
            r#type: Some(proto::MetricType::Summary as i32),
            metric: vec![proto::Metric {
                summary: Some(proto::Summary {
                    sample_count: Some(4),
                    sample_sum: Some(8.0),
                    quantile: vec![proto::Quantile {
                        quantile: Some(0.5),
                        value: Some(2.0),
                    }],
                    created_timestamp: created.clone(),
                }),
                ..metric(vec![])
            }],
            unit: None,
        },
    ]
}

/// The pushed families of a delimited protobuf scrape, each as its raw bytes.
fn pushed_protobuf(body: &[u8]) -> Vec<Vec<u8>> {
    let mut rest = body;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let len = prost::decode_length_delimiter(rest).expect("length prefix");
        let start = prost::length_delimiter_len(len);
        let message = &rest[start..start + len];
        let family = proto::MetricFamily::decode(message).expect("a MetricFamily");
        if !crate::helpers::is_own(family.name.as_deref().unwrap_or("")) {
            out.push(message.to_vec());
        }
        rest = &rest[start + len..];
    }
    out
}

/// Both scrape formats that carry everything, without the gateway's own metrics.
fn rich_scrapes(instance: &Instance) -> (Vec<Vec<u8>>, String) {
    let r = instance.request_with("GET", "/metrics", &[("Accept", PROTOBUF)], b"");
    assert_eq!(r.status, 200);
    let families = pushed_protobuf(&r.body);
    let r = instance.request_with(
        "GET",
        "/metrics",
        &[("Accept", "application/openmetrics-text; version=1.0.0")],
        b"",
    );
    assert_eq!(r.status, 200);
    (families, crate::persist_helpers::pushed_text(&r.text()))
}

#[test]
fn persistence_keeps_protobuf_only_content() {
    let (_tmp, data, logs) = dirs("protobuf");
    let mut gateway =
        PersistGateway::new(&data.join("state"), &logs, &["--web.enable-openmetrics"]);
    let mut instance = gateway.start();
    let mut body = Vec::new();
    for family in protobuf_families() {
        family.encode_length_delimited(&mut body).unwrap();
    }
    let r = instance.request_with(
        "PUT",
        "/metrics/job/pb/instance/i",
        &[("Content-Type", PROTOBUF)],
        &body,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let before = rich_scrapes(&instance);
    assert_eq!(before.0.len(), 6, "4 families + push times: {:?}", before.1);
    assert!(before.1.contains("trace_id=\"c1\""), "{}", before.1);

    instance.kill();
    instance = gateway.start();
    let after = rich_scrapes(&instance);
    assert_eq!(after.1, before.1, "OpenMetrics after SIGKILL (log replay)");
    assert_eq!(after.0, before.0, "protobuf after SIGKILL (log replay)");
    assert!(instance.terminate().success());
    let instance = gateway.start();
    let after = rich_scrapes(&instance);
    assert_eq!(after.1, before.1, "OpenMetrics after SIGTERM (snapshot)");
    assert_eq!(after.0, before.0, "protobuf after SIGTERM (snapshot)");
}

// ============================================================================================
// 3. Damaged and foreign files.
// ============================================================================================

/// Starts a gateway that is expected to refuse to start; returns its stderr.
fn expect_refusal(gateway: &mut PersistGateway, naming: &Path, what: &str) -> String {
    match gateway.try_start(START_DEADLINE) {
        Ok(instance) => panic!(
            "{what}: the gateway started; stderr:\n{}",
            instance.stderr()
        ),
        Err(failure) => {
            let status = failure
                .status
                .unwrap_or_else(|| panic!("{what}: neither ready nor exited: {failure:?}"));
            assert!(!status.success(), "{what}: exit status {status:?}");
            assert!(
                failure.stderr.contains(&naming.display().to_string()),
                "{what}: stderr does not name {}:\n{}",
                naming.display(),
                failure.stderr
            );
            failure.stderr
        }
    }
}

/// The one file in `dir` whose name starts with `prefix` and contains `.corrupt-`.
fn moved_aside(dir: &Path, prefix: &str) -> PathBuf {
    let names: Vec<String> = file_names(dir)
        .into_iter()
        .filter(|n| n.starts_with(prefix) && n.contains(".corrupt-"))
        .collect();
    assert_eq!(
        names.len(),
        1,
        "expected one moved-aside {prefix}: {:?}",
        file_names(dir)
    );
    dir.join(&names[0])
}

fn flip(bytes: &mut [u8], at: usize) {
    bytes[at] ^= 0x5a;
}

#[test]
fn persistence_damaged_snapshot_is_refused_or_moved_aside() {
    let (_tmp, data, logs) = dirs("badsnap");
    let file = data.join("state");
    let mut gateway = PersistGateway::new(&file, &logs, &[]);
    let mut instance = gateway.start();
    for j in 0..5 {
        let r = instance.put(&format!("/metrics/job/j{j}"), "# TYPE m gauge\nm 1\n");
        assert_eq!(r.status, 200);
    }
    assert!(instance.terminate().success());
    let mut bytes = fs::read(&file).expect("snapshot after SIGTERM");
    let middle = bytes.len() / 2;
    flip(&mut bytes, middle);
    fs::write(&file, &bytes).unwrap();

    let stderr = expect_refusal(&mut gateway, &file, "damaged snapshot");
    println!("refusal of a damaged snapshot: {stderr}");
    assert_eq!(
        fs::read(&file).unwrap(),
        bytes,
        "the damaged snapshot was changed"
    );

    let mut lenient =
        PersistGateway::new(&file, &logs, &["--persistence.start-empty-on-corruption"]);
    let instance = lenient.start();
    assert!(instance.state().is_empty(), "{:?}", instance.state());
    let aside = moved_aside(&data, "state");
    assert_eq!(fs::read(&aside).unwrap(), bytes, "moved-aside content");
    // It works normally from there.
    assert_eq!(instance.put("/metrics/job/new", "n 1\n").status, 200);
    drop(instance);
    let instance = gateway.start();
    assert_eq!(instance.state().len(), 3, "{:?}", instance.state());
}

/// Pushes three groups (three log records) and SIGKILLs: returns the segment with them.
fn log_with_three_records(gateway: &mut PersistGateway, data: &Path) -> PathBuf {
    let instance = gateway.start();
    for j in 0..3 {
        let r = instance.put(
            &format!("/metrics/job/j{j}"),
            "# TYPE m gauge\nm{a=\"some label value\"} 1\n",
        );
        assert_eq!(r.status, 200);
    }
    drop(instance); // SIGKILL: no snapshot.
    let segments: Vec<PathBuf> = file_names(data)
        .into_iter()
        .filter(|n| n.starts_with("state.wal-"))
        .map(|n| data.join(n))
        .filter(|p| fs::metadata(p).unwrap().len() > 8)
        .collect();
    assert_eq!(segments.len(), 1, "segments: {:?}", file_names(data));
    segments[0].clone()
}

#[test]
fn persistence_damaged_log_record_is_refused_or_moved_aside() {
    let (_tmp, data, logs) = dirs("badlog");
    let file = data.join("state");
    let mut gateway = PersistGateway::new(&file, &logs, &[]);
    let segment = log_with_three_records(&mut gateway, &data);
    let mut bytes = fs::read(&segment).unwrap();
    // In the payload of the first of the three records (past its header; each record is
    // about 90 bytes, after the 8-byte segment header).
    flip(&mut bytes, 8 + 20);
    fs::write(&segment, &bytes).unwrap();

    let stderr = expect_refusal(&mut gateway, &segment, "damaged log record");
    println!("refusal of a damaged log record: {stderr}");
    assert_eq!(
        fs::read(&segment).unwrap(),
        bytes,
        "the damaged log was changed"
    );

    let mut lenient =
        PersistGateway::new(&file, &logs, &["--persistence.start-empty-on-corruption"]);
    let instance = lenient.start();
    assert!(instance.state().is_empty(), "{:?}", instance.state());
    let name = segment.file_name().unwrap().to_string_lossy().into_owned();
    let aside = moved_aside(&data, &name);
    assert_eq!(fs::read(&aside).unwrap(), bytes, "moved-aside content");
    assert_eq!(instance.put("/metrics/job/new", "n 1\n").status, 200);
    drop(instance);
    let instance = gateway.start();
    assert_eq!(instance.state().len(), 3, "{:?}", instance.state());
}

/// The jobs of the pushed groups a gateway serves, sorted.
fn jobs(instance: &Instance) -> Vec<String> {
    let mut jobs: Vec<String> = instance
        .state()
        .keys()
        .filter(|s| s.starts_with("push_time_seconds{"))
        .map(|s| {
            let at = s.find("job=\"").unwrap() + 5;
            s[at..at + s[at..].find('"').unwrap()].to_string()
        })
        .collect();
    jobs.sort();
    jobs
}

/// A gateway started empty over a damaged snapshot must stay consistent with what it
/// served: after a crash, groups of the intact log segments that came after the moved-aside
/// snapshot must not come back.
#[test]
fn persistence_start_empty_over_a_damaged_snapshot_stays_empty_after_a_crash() {
    let (_tmp, data, logs) = dirs("lenient-snap");
    let file = data.join("state");
    let mut gateway = PersistGateway::new(&file, &logs, &[]);
    let mut instance = gateway.start();
    assert_eq!(instance.put("/metrics/job/a", "m 1\n").status, 200);
    assert!(instance.terminate().success()); // Snapshot with a.
    let instance = gateway.start();
    assert_eq!(instance.put("/metrics/job/b", "m 1\n").status, 200); // In the log.
    drop(instance); // SIGKILL.
    let mut bytes = fs::read(&file).unwrap();
    let middle = bytes.len() / 2;
    flip(&mut bytes, middle);
    fs::write(&file, &bytes).unwrap();

    let mut lenient =
        PersistGateway::new(&file, &logs, &["--persistence.start-empty-on-corruption"]);
    let instance = lenient.start();
    assert_eq!(jobs(&instance), Vec::<String>::new(), "not started empty");
    assert_eq!(instance.put("/metrics/job/c", "m 1\n").status, 200);
    drop(instance); // SIGKILL before any snapshot.
    let instance = gateway.start();
    assert_eq!(
        jobs(&instance),
        vec!["c".to_string()],
        "after a crash, the state differs from what was served; files: {:?}",
        file_names(&data)
    );
}

/// The same with a damaged log segment after intact ones.
#[test]
fn persistence_start_empty_over_a_damaged_log_stays_empty_after_a_crash() {
    let (_tmp, data, logs) = dirs("lenient-log");
    let file = data.join("state");
    let mut gateway = PersistGateway::new(&file, &logs, &[]);
    let instance = gateway.start();
    assert_eq!(instance.put("/metrics/job/a", "m 1\n").status, 200);
    drop(instance); // SIGKILL: a is in the first segment.
    let instance = gateway.start();
    for job in ["b", "b2"] {
        assert_eq!(
            instance.put(&format!("/metrics/job/{job}"), "m 1\n").status,
            200
        );
    }
    drop(instance); // b and b2 in the second segment.
    let second = data.join(
        file_names(&data)
            .into_iter()
            .filter(|n| n.starts_with("state.wal-"))
            .filter(|n| fs::metadata(data.join(n)).unwrap().len() > 8)
            .nth(1)
            .expect("a second non-empty segment"),
    );
    let mut bytes = fs::read(&second).unwrap();
    // In the payload of the first of its two records.
    flip(&mut bytes, 8 + 20);
    fs::write(&second, &bytes).unwrap();
    expect_refusal(&mut gateway, &second, "damaged second segment");

    let mut lenient =
        PersistGateway::new(&file, &logs, &["--persistence.start-empty-on-corruption"]);
    let instance = lenient.start();
    assert_eq!(jobs(&instance), Vec::<String>::new(), "not started empty");
    assert_eq!(instance.put("/metrics/job/c", "m 1\n").status, 200);
    drop(instance); // SIGKILL before any snapshot.
    let instance = gateway.start();
    assert_eq!(
        jobs(&instance),
        vec!["c".to_string()],
        "after a crash, the state differs from what was served; files: {:?}",
        file_names(&data)
    );
}

/// A damaged length field in the first of three records makes the record seem to run past
/// the end of the file: that is damage in the middle (two complete, acknowledged records
/// follow), not a torn tail, and must be refused rather than cut off.
#[test]
fn persistence_damaged_record_length_in_the_middle_is_refused() {
    let (_tmp, data, logs) = dirs("badlen");
    let file = data.join("state");
    let mut gateway = PersistGateway::new(&file, &logs, &[]);
    let segment = log_with_three_records(&mut gateway, &data);
    let mut bytes = fs::read(&segment).unwrap();
    // Second byte of the first record's little-endian length: +23040 bytes.
    flip(&mut bytes, 8 + 1);
    fs::write(&segment, &bytes).unwrap();
    let result = gateway.try_start(START_DEADLINE);
    let after = fs::read(&segment).unwrap();
    match result {
        Ok(instance) => panic!(
            "started over a damaged record followed by two acknowledged ones; serves jobs \
             {:?}; segment {} -> {} bytes; stderr:\n{}",
            jobs(&instance),
            bytes.len(),
            after.len(),
            instance.stderr()
        ),
        Err(failure) => {
            assert!(failure.status.is_some_and(|s| !s.success()), "{failure:?}");
            assert!(
                failure.stderr.contains(&segment.display().to_string()),
                "{failure:?}"
            );
            assert_eq!(after, bytes, "the damaged log was changed");
        }
    }
}

/// Only the newest segment can end in a torn record (a crash during a write); a damaged
/// last record of an earlier segment, with later segments after it, is damage.
#[test]
fn persistence_damaged_last_record_of_an_earlier_segment_is_refused() {
    let (_tmp, data, logs) = dirs("badtail");
    let file = data.join("state");
    let mut gateway = PersistGateway::new(&file, &logs, &[]);
    let instance = gateway.start();
    for job in ["a", "b"] {
        assert_eq!(
            instance.put(&format!("/metrics/job/{job}"), "m 1\n").status,
            200
        );
    }
    drop(instance); // SIGKILL: a and b in the first segment.
    let instance = gateway.start();
    assert_eq!(instance.put("/metrics/job/c", "m 1\n").status, 200);
    drop(instance); // c in the second.
    let first = data.join("state.wal-0000000001");
    let mut bytes = fs::read(&first).unwrap();
    let last = bytes.len() - 2; // In the payload of b's record.
    flip(&mut bytes, last);
    fs::write(&first, &bytes).unwrap();
    let result = gateway.try_start(START_DEADLINE);
    let after = fs::read(&first).unwrap();
    match result {
        Ok(instance) => panic!(
            "started over a damaged record of an earlier segment; serves jobs {:?}; \
             segment {} -> {} bytes; stderr:\n{}",
            jobs(&instance),
            bytes.len(),
            after.len(),
            instance.stderr()
        ),
        Err(failure) => {
            assert!(failure.status.is_some_and(|s| !s.success()), "{failure:?}");
            assert!(
                failure.stderr.contains(&first.display().to_string()),
                "{failure:?}"
            );
            assert_eq!(after, bytes, "the damaged log was changed");
        }
    }
}

/// After a power loss, a file system may have extended the last segment without its data
/// reaching the disk: the tail reads as zeros, record headers included. Only
/// unacknowledged records can be there (acknowledged ones were fsynced), so it is a torn
/// tail, not damage: the gateway must start with every record before it.
fn zero_filled_tail(what: &str, zero_last_record: bool, extra_zeros: usize) {
    let (_tmp, data, logs) = dirs("zerotail");
    let mut gateway = PersistGateway::new(&data.join("state"), &logs, &[]);
    let segment = log_with_three_records(&mut gateway, &data);
    let mut bytes = fs::read(&segment).unwrap();
    let len = bytes.len();
    if zero_last_record {
        // The three records have the same size (same body, same-length job names).
        let record = (len - 8) / 3;
        bytes[len - record..].fill(0);
    }
    bytes.resize(bytes.len() + extra_zeros, 0);
    fs::write(&segment, &bytes).unwrap();
    let instance = match gateway.try_start(START_DEADLINE) {
        Ok(instance) => instance,
        Err(failure) => panic!("{what}: refused to start: {failure:?}"),
    };
    let mut expected = vec!["j0".to_string(), "j1".to_string()];
    if !zero_last_record {
        expected.push("j2".into());
    }
    assert_eq!(jobs(&instance), expected, "{what}");
}

#[test]
fn persistence_zeros_after_the_last_record_are_a_torn_tail() {
    zero_filled_tail("4 KiB of zeros after the last record", false, 4096);
}

#[test]
fn persistence_zeroed_last_record_is_a_torn_tail() {
    zero_filled_tail("last record zeroed, header included", true, 0);
}

#[test]
fn persistence_torn_last_record_is_dropped_with_a_warning() {
    let (_tmp, data, logs) = dirs("torn");
    let mut gateway = PersistGateway::new(&data.join("state"), &logs, &[]);
    let segment = log_with_three_records(&mut gateway, &data);
    let len = fs::metadata(&segment).unwrap().len();
    let file = fs::OpenOptions::new().write(true).open(&segment).unwrap();
    file.set_len(len - 5).unwrap();
    drop(file);
    let instance = gateway.start();
    let state = instance.state();
    assert!(state.contains_key("m{a=\"some label value\",instance=\"\",job=\"j0\"}"));
    assert!(state.contains_key("m{a=\"some label value\",instance=\"\",job=\"j1\"}"));
    assert!(
        !state.keys().any(|s| s.contains("job=\"j2\"")),
        "the torn push is served: {state:?}"
    );
    let stderr = instance.stderr();
    assert!(
        stderr
            .lines()
            .any(|l| l.to_ascii_lowercase().contains("warn") && l.contains("torn")),
        "no warning about the torn record:\n{stderr}"
    );
    // The next pushes follow the valid records and survive another crash.
    assert_eq!(instance.put("/metrics/job/j9", "n 1\n").status, 200);
    drop(instance);
    let instance = gateway.start();
    let state = instance.state();
    assert!(
        state.contains_key("n{instance=\"\",job=\"j9\"}"),
        "{state:?}"
    );
    assert!(state.contains_key("m{a=\"some label value\",instance=\"\",job=\"j1\"}"));
}

#[test]
fn persistence_foreign_files_are_refused() {
    let mut rng = Rng::new(4);
    let random: Vec<u8> = (0..4096).map(|_| rng.next_u64() as u8).collect();
    // The start of an upstream (Go gob) persistence file: a type definition of
    // []*dto.MetricFamily followed by data; any such content must be refused.
    let mut gob = vec![
        0x0d, 0xff, 0x83, 0x02, 0x01, 0x02, 0xff, 0x84, 0x00, 0x01, 0xff, 0x82, 0x00, 0x00,
    ];
    gob.extend_from_slice(
        b"\x3a\xff\x81\x03\x01\x01\x0cMetricFamily\x01\xff\x82\x00\x01\x05\x01\x04Name\x01\x0c\x00",
    );
    gob.extend_from_slice(&random[..200]);
    let text = b"# TYPE foo gauge\nfoo 1\n".to_vec();
    for (what, content) in [("random bytes", &random), ("gob", &gob), ("text", &text)] {
        let (_tmp, data, logs) = dirs("foreign");
        let file = data.join("state");
        fs::write(&file, content).unwrap();
        let mut gateway = PersistGateway::new(&file, &logs, &[]);
        let stderr = expect_refusal(&mut gateway, &file, what);
        assert!(
            stderr.contains("format"),
            "{what}: the message does not say the format is wrong:\n{stderr}"
        );
        assert_eq!(&fs::read(&file).unwrap(), content, "{what}: file changed");
    }
    // A log segment that is no log segment.
    let (_tmp, data, logs) = dirs("foreign-wal");
    let file = data.join("state");
    let segment = data.join("state.wal-0000000001");
    fs::write(&segment, &random).unwrap();
    let mut gateway = PersistGateway::new(&file, &logs, &[]);
    expect_refusal(&mut gateway, &segment, "foreign log segment");
    assert_eq!(fs::read(&segment).unwrap(), random, "segment changed");
}

// ============================================================================================
// 4. Unusable paths.
// ============================================================================================

#[test]
fn persistence_unusable_paths_are_refused() {
    let (_tmp, data, logs) = dirs("unwritable");
    let regular = data.join("regular-file");
    fs::write(&regular, b"x").unwrap();
    let below_file = regular.join("sub").join("state");
    let mut gateway = PersistGateway::new(&below_file, &logs, &[]);
    let stderr = expect_refusal(&mut gateway, &regular, "directory under a regular file");
    assert!(
        stderr.to_ascii_lowercase().contains("not a directory"),
        "unclear message:\n{stderr}"
    );
    println!("refusal of a path under a regular file: {stderr}");

    let is_dir = data.join("a-directory");
    fs::create_dir(&is_dir).unwrap();
    let mut gateway = PersistGateway::new(&is_dir, &logs, &[]);
    let stderr = expect_refusal(&mut gateway, &is_dir, "persistence file is a directory");
    println!("refusal of a directory as persistence file: {stderr}");
}

// ============================================================================================
// 5. Full disk.
// ============================================================================================

/// A mounted tmpfs, unmounted on drop.
struct Mount {
    path: PathBuf,
}

impl Drop for Mount {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(&self.path)
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}

fn mount_tmpfs(path: &Path, size: &str) -> Result<Mount, String> {
    let output = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(path)
        .output()
        .map_err(|e| format!("cannot run mount: {e}"))?;
    if output.status.success() {
        Ok(Mount {
            path: path.to_path_buf(),
        })
    } else {
        Err(format!(
            "mount -t tmpfs failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

fn fill_body(i: usize) -> String {
    // Distinct label values, so that every log record is about as large as the body.
    let mut body = String::from("# TYPE fill gauge\n");
    for s in 0..40 {
        body.push_str(&format!(
            "fill{{s=\"{s}\",pad=\"{i}-{s}-{}\"}} {i}\n",
            "p".repeat(200)
        ));
    }
    body
}

/// Mounts a 2 MiB tmpfs on `data` with a 512 KiB filler file in it; `None` (after printing
/// why the test is skipped) when mounting is not possible.
fn small_tmpfs(data: &Path, test: &str) -> Option<(Mount, PathBuf)> {
    let mount = match mount_tmpfs(data, "2m") {
        Ok(mount) => mount,
        Err(reason) => {
            println!("SKIPPED {test}: {reason}");
            return None;
        }
    };
    let filler = data.join("filler");
    fs::write(&filler, vec![0u8; 512 * 1024]).unwrap();
    Some((mount, filler))
}

/// Pushes groups `fill/i/<n>` until one is answered 503; returns the acknowledged ones and
/// the refused one. Checks that the 503 gives the reason.
fn fill_until_503(instance: &Instance) -> (Vec<usize>, usize) {
    let mut acked = Vec::new();
    for i in 0..5_000 {
        let r = instance.put(&format!("/metrics/job/fill/i/{i}"), &fill_body(i));
        match r.status {
            200 => acked.push(i),
            503 => {
                let reason = r.text();
                println!(
                    "full disk: {} pushes acknowledged, push {i} answered 503: {reason}",
                    acked.len()
                );
                assert!(acked.len() > 10, "too few pushes before the disk was full");
                assert!(
                    reason.to_ascii_lowercase().contains("space"),
                    "the 503 does not give the reason: {reason:?}"
                );
                return (acked, i);
            }
            other => panic!("push {i}: unexpected {other}: {}", r.text()),
        }
    }
    panic!("2 MiB never filled up");
}

/// Every acknowledged fill group is served complete; the refused one not at all.
fn check_filled(instance: &Instance, acked: &[usize], refused: Option<usize>, what: &str) {
    let mut counts: BTreeMap<usize, usize> = BTreeMap::new();
    for series in instance.state().keys() {
        // `i` sorts first among the labels of the fill groups.
        if let Some(at) = series.find("{i=\"") {
            let rest = &series[at + 4..];
            let i = rest[..rest.find('"').unwrap()].parse().unwrap();
            *counts.entry(i).or_default() += 1;
        }
    }
    for i in acked {
        // 40 series plus push_time_seconds and push_failure_time_seconds.
        assert_eq!(
            counts.get(i).copied().unwrap_or(0),
            42,
            "{what}: acknowledged group {i} is incomplete"
        );
    }
    if let Some(refused) = refused {
        assert!(
            !counts.contains_key(&refused),
            "{what}: the refused push changed the store"
        );
    }
}

#[test]
fn persistence_full_disk_answers_503_and_recovers() {
    let test = "persistence_full_disk_answers_503_and_recovers";
    let (_tmp, data, logs) = dirs("fulldisk");
    let Some((_mount, filler)) = small_tmpfs(&data, test) else {
        return;
    };
    // Declared after the mount, so dropped (killed) before it is unmounted.
    let mut gateway = PersistGateway::new(&data.join("state"), &logs, &[]);
    let instance = gateway.start();
    let (acked, refused) = fill_until_503(&instance);
    check_filled(&instance, &acked, Some(refused), "while the disk is full");
    // Still full: another push is refused too, and changes nothing.
    let r = instance.put("/metrics/job/fill/i/99999", &fill_body(99_999));
    assert_eq!(r.status, 503, "{}", r.text());
    check_filled(&instance, &acked, Some(99_999), "while the disk is full");

    // Free space: pushes succeed again without a restart.
    fs::remove_file(&filler).unwrap();
    let r = instance.put("/metrics/job/after", "# TYPE after gauge\nafter 1\n");
    assert_eq!(r.status, 200, "after freeing space: {}", r.text());
    let r = instance.put(
        &format!("/metrics/job/fill/i/{refused}"),
        &fill_body(refused),
    );
    assert_eq!(r.status, 200, "after freeing space: {}", r.text());
    let mut all = acked.clone();
    all.push(refused);
    check_filled(&instance, &all, None, "after freeing space");
    let before = instance.pushed_text();

    // Everything acknowledged survives a crash and a clean restart on the same tmpfs.
    drop(instance);
    let mut instance = gateway.start();
    check_filled(&instance, &all, None, "after SIGKILL");
    check_contains(&instance, "after{instance=\"\",job=\"after\"}");
    assert_eq!(instance.pushed_text(), before, "after SIGKILL");
    assert!(instance.terminate().success());
    let instance = gateway.start();
    assert_eq!(instance.pushed_text(), before, "after SIGTERM");
}

#[test]
fn persistence_restart_on_a_full_disk_serves_the_acknowledged_data() {
    let test = "persistence_restart_on_a_full_disk_serves_the_acknowledged_data";
    let (_tmp, data, logs) = dirs("fulldisk-restart");
    let Some((_mount, filler)) = small_tmpfs(&data, test) else {
        return;
    };
    let mut gateway = PersistGateway::new(&data.join("state"), &logs, &[]);
    let mut instance = gateway.start();
    let (mut acked, refused) = fill_until_503(&instance);
    check_filled(&instance, &acked, Some(refused), "while the disk is full");
    // Small changes on the full disk: whatever each is answered (done, or 503 and nothing
    // done), the served state must be what a restart restores.
    let victim = acked[0];
    let r = instance.delete(&format!("/metrics/job/fill/i/{victim}"));
    println!("DELETE on the full disk: {} {}", r.status, r.text());
    match r.status {
        202 => {
            acked.remove(0);
        }
        503 => {}
        other => panic!("DELETE on a full disk answered {other}: {}", r.text()),
    }
    let r = instance.put(
        &format!("/metrics/job/fill/i/{}", acked[0]),
        "# TYPE fill counter\nfill 1\n",
    );
    println!(
        "inconsistent push on the full disk: {} {}",
        r.status,
        r.text()
    );
    assert!(
        [400, 503].contains(&r.status),
        "inconsistent push answered {}: {}",
        r.status,
        r.text()
    );
    check_filled(&instance, &acked, Some(refused), "after small changes");
    let before = instance.pushed_text();

    // Restart while the disk is still full, after SIGKILL and after SIGTERM (whose final
    // snapshot cannot be written either).
    for how in ["SIGKILL", "SIGTERM"] {
        if how == "SIGKILL" {
            instance.kill();
        } else {
            let status = instance.terminate();
            assert!(
                status.success(),
                "exit after SIGTERM on a full disk: {status:?}"
            );
        }
        instance = match gateway.try_start(START_DEADLINE) {
            Ok(instance) => instance,
            Err(failure) => panic!("cannot restart on the full disk after {how}: {failure:?}"),
        };
        check_filled(
            &instance,
            &acked,
            Some(refused),
            &format!("restart after {how}"),
        );
        assert_eq!(instance.pushed_text(), before, "restart after {how}");
    }
    fs::remove_file(&filler).unwrap();
    let r = instance.put("/metrics/job/after", "# TYPE after gauge\nafter 1\n");
    assert_eq!(r.status, 200, "after freeing space: {}", r.text());
}

fn check_contains(instance: &Instance, series: &str) {
    let state = instance.state();
    assert!(state.contains_key(series), "{series} missing: {state:?}");
}

// ============================================================================================
// 6. Restore time.
// ============================================================================================

/// The `seconds=` of the restore log line.
fn restore_seconds(stderr: &str) -> Option<f64> {
    let line = stderr
        .lines()
        .find(|l| l.contains("restored persisted metrics"))?;
    let at = line.find("seconds=")? + "seconds=".len();
    line[at..].split_whitespace().next()?.parse().ok()
}

#[test]
fn persistence_restore_of_100k_series_is_fast() {
    let (_tmp, data, logs) = dirs("restore");
    let mut gateway = PersistGateway::new(&data.join("state"), &logs, &[]);
    let mut instance = gateway.start();
    let t0 = Instant::now();
    for g in 0..100 {
        let mut body = String::with_capacity(40_000);
        body.push_str("# TYPE big gauge\n");
        for s in 0..1000 {
            body.push_str(&format!("big{{s=\"{s}\"}} {}\n", g * 1000 + s));
        }
        let r = instance.put(&format!("/metrics/job/big/g/{g}"), &body);
        assert_eq!(r.status, 200, "{}", r.text());
    }
    println!("100k: pushed in {:?}", t0.elapsed());
    let count = |instance: &Instance| {
        instance
            .scrape()
            .lines()
            .filter(|l| l.starts_with("big{"))
            .count()
    };
    // From the log (SIGKILL), then from the snapshot (SIGTERM).
    instance.kill();
    let instance_log = gateway.start();
    let from_log = (
        restore_seconds(&instance_log.stderr()),
        instance_log.ready_after,
    );
    let mut instance = instance_log;
    assert!(instance.terminate().success());
    let size = fs::metadata(data.join("state")).unwrap().len();
    let instance = gateway.start();
    let from_snapshot = (restore_seconds(&instance.stderr()), instance.ready_after);
    println!(
        "restore of 100k series: from the log {:?} s (ready after {:?}), from a {size}-byte \
         snapshot {:?} s (ready after {:?})",
        from_log.0, from_log.1, from_snapshot.0, from_snapshot.1
    );
    assert_eq!(count(&instance), 100_000);
    for (what, (seconds, ready)) in [("log", from_log), ("snapshot", from_snapshot)] {
        let seconds = seconds.unwrap_or_else(|| panic!("no restore log line ({what})"));
        // Bounds far above the idle-machine times (about a second): they catch a restore
        // gone quadratic, not a busy machine.
        assert!(seconds < 30.0, "restore from the {what} took {seconds} s");
        assert!(
            ready < Duration::from_secs(30),
            "ready after {ready:?} ({what})"
        );
    }
}

// ============================================================================================
// 7. Snapshot schedule, log clean-up, paths, wipe.
// ============================================================================================

/// A relative `--persistence.file` is resolved against the working directory, and its log
/// segments live beside it there.
#[test]
fn persistence_relative_file_path_works() {
    let (_tmp, data, logs) = dirs("relative");
    let mut gateway = PersistGateway::new(Path::new("state"), &logs, &[]);
    gateway.cwd = Some(data.clone());
    let instance = gateway.start();
    assert_eq!(instance.put("/metrics/job/a", "m 1\n").status, 200);
    drop(instance); // SIGKILL.
    let mut instance = gateway.start();
    assert_eq!(jobs(&instance), vec!["a".to_string()], "after SIGKILL");
    assert!(instance.terminate().success());
    assert!(data.join("state").is_file(), "{:?}", file_names(&data));
    let instance = gateway.start();
    assert_eq!(jobs(&instance), vec!["a".to_string()], "after SIGTERM");
    assert!(
        file_names(&data).iter().all(|n| n.starts_with("state")),
        "{:?}",
        file_names(&data)
    );
}

/// A log segment that the snapshot already covers (left over when a crash interrupted the
/// clean-up after a snapshot) must not be replayed over the snapshot.
#[test]
fn persistence_segment_covered_by_the_snapshot_is_not_replayed() {
    let (_tmp, data, logs) = dirs("covered");
    let file = data.join("state");
    let mut gateway = PersistGateway::new(&file, &logs, &[]);
    let instance = gateway.start();
    assert_eq!(instance.put("/metrics/job/a", "m 1\n").status, 200);
    drop(instance); // SIGKILL: "push a" in the first segment.
    let first = data.join("state.wal-0000000001");
    let old = fs::read(&first).unwrap();
    let mut instance = gateway.start();
    assert_eq!(instance.delete("/metrics/job/a").status, 202);
    assert_eq!(instance.put("/metrics/job/b", "m 1\n").status, 200);
    assert!(instance.terminate().success()); // Snapshot: only b; segments deleted.
    assert!(!first.exists(), "{:?}", file_names(&data));
    fs::write(&first, &old).unwrap();
    let instance = gateway.start();
    assert_eq!(
        jobs(&instance),
        vec!["b".to_string()],
        "an old segment was replayed over the snapshot"
    );
    drop(instance);
    let instance = gateway.start();
    assert_eq!(
        jobs(&instance),
        vec!["b".to_string()],
        "after another SIGKILL"
    );
}

/// With the process running, a snapshot is written every `--persistence.interval` and the
/// log segments it covers are deleted; restore uses both.
#[test]
fn persistence_background_snapshot_replaces_the_log() {
    let (_tmp, data, logs) = dirs("background");
    let file = data.join("state");
    let mut gateway = PersistGateway::new(&file, &logs, &["--persistence.interval=1s"]);
    let instance = gateway.start();
    for i in 0..20 {
        let r = instance.put(&format!("/metrics/job/a/i/{i}"), "m 1\n");
        assert_eq!(r.status, 200);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while !file.exists() {
        assert!(Instant::now() < deadline, "no snapshot within 60 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    let segments = || {
        file_names(&data)
            .into_iter()
            .filter(|n| n.starts_with("state.wal-"))
            .count()
    };
    // The clean-up follows the rename of the snapshot closely (but the machine may be busy).
    let deadline = Instant::now() + Duration::from_secs(60);
    while segments() > 1 {
        assert!(
            Instant::now() < deadline,
            "covered segments not deleted: {:?}",
            file_names(&data)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(instance.put("/metrics/job/b", "m 1\n").status, 200);
    let before = instance.pushed_text();
    drop(instance); // SIGKILL: snapshot plus one segment.
    let instance = gateway.start();
    assert_eq!(instance.pushed_text(), before);
    assert_eq!(jobs(&instance).len(), 21);
}

/// A log that outgrows 64 MiB triggers a snapshot long before the interval is up.
#[test]
fn persistence_large_log_triggers_a_snapshot() {
    let (_tmp, data, logs) = dirs("biglog");
    let file = data.join("state");
    let mut gateway = PersistGateway::new(&file, &logs, &["--persistence.interval=1h"]);
    let instance = gateway.start();
    let log_bytes = || -> u64 {
        file_names(&data)
            .iter()
            .filter(|n| n.starts_with("state.wal-"))
            .map(|n| fs::metadata(data.join(n)).map(|m| m.len()).unwrap_or(0))
            .sum()
    };
    // Each push replaces the same group with a distinct help text of almost 1 MiB (the
    // longest line --push.max-line-bytes allows): the store stays small, the log grows by
    // about 1 MiB per push.
    let filler = "h".repeat((1 << 20) - 64);
    // Push until the snapshot appears or well past the threshold; then the snapshot, which
    // runs in the background, gets all the time a loaded machine needs.
    let mut pushed = 0;
    while !file.exists() && pushed < 80 {
        let body = format!("# HELP big {pushed} {filler}\n# TYPE big gauge\nbig {pushed}\n");
        let r = instance.put("/metrics/job/big", &body);
        assert_eq!(r.status, 200, "{}", r.text());
        pushed += 1;
    }
    assert!(pushed >= 60, "a snapshot after only {pushed} MiB");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !file.exists() {
        assert!(
            Instant::now() < deadline,
            "no snapshot after {pushed} MiB of log ({} bytes on disk)",
            log_bytes()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    println!("snapshot after {pushed} pushes of 1 MiB");
    let deadline = Instant::now() + Duration::from_secs(60);
    while log_bytes() > 32 << 20 {
        assert!(
            Instant::now() < deadline,
            "the covered log was not deleted: {} bytes",
            log_bytes()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let before = instance.pushed_text();
    drop(instance);
    let instance = gateway.start();
    assert_eq!(instance.pushed_text(), before);
}

/// The admin wipe is persisted like any change.
#[test]
fn persistence_wipe_survives_a_crash() {
    let (_tmp, data, logs) = dirs("wipe");
    let mut gateway = PersistGateway::new(&data.join("state"), &logs, &["--web.enable-admin-api"]);
    let mut instance = gateway.start();
    assert_eq!(instance.put("/metrics/job/a", "m 1\n").status, 200);
    assert!(instance.terminate().success()); // a in the snapshot.
    let instance = gateway.start();
    assert_eq!(instance.put("/metrics/job/b", "m 1\n").status, 200);
    let r = instance.request("PUT", "/api/v1/admin/wipe", b"");
    assert!(
        (200..300).contains(&r.status),
        "wipe: {} {}",
        r.status,
        r.text()
    );
    assert_eq!(instance.put("/metrics/job/c", "m 1\n").status, 200);
    assert_eq!(jobs(&instance), vec!["c".to_string()]);
    drop(instance); // SIGKILL.
    let mut instance = gateway.start();
    assert_eq!(jobs(&instance), vec!["c".to_string()], "after SIGKILL");
    assert!(instance.terminate().success());
    let instance = gateway.start();
    assert_eq!(jobs(&instance), vec!["c".to_string()], "after SIGTERM");
}
