//! Aggregating pushes (`/aggregate/metrics/job/...`), black box: counters, histograms and
//! summaries add per series, gauges keep the last value, families the push does not name
//! stay, what cannot be added is refused with 400 and changes nothing, DELETE and an
//! ordinary PUT reset the group, the route prefix and `@base64` work as on `/metrics`.
//! `Idempotency-Key`: a retry changes nothing, the table is bounded and fails closed.
//! Concurrency: 8 clients with retries count exactly the distinct pushes. Persistence: a
//! SIGKILL loses no acknowledged increment, and retrying the unanswered pushes after the
//! restart counts each exactly once.

use std::fs;
use std::time::Duration;

use crate::helpers::{failure_time, push_time, series, spawn_gateway, Gateway};
use crate::persist_helpers::{try_request, PersistGateway, TempDir};

const GROUP: &str = "/aggregate/metrics/job/lambda-calls";

fn labels() -> Vec<(&'static str, &'static str)> {
    vec![("instance", ""), ("job", "lambda-calls")]
}

fn keyed(
    gw: &Gateway,
    method: &str,
    path: &str,
    key: &str,
    body: &str,
) -> crate::helpers::Response {
    gw.request(method, path, &[("Idempotency-Key", key)], body.as_bytes())
}

fn value(gw: &Gateway, name: &str, extra: &[(&str, &str)]) -> Option<String> {
    let mut l = labels();
    l.extend_from_slice(extra);
    gw.state().get(&series(name, &l)).cloned()
}

#[test]
fn counters_add_and_gauges_keep_the_last_value() {
    let gw = spawn_gateway(&[]);
    let body = |calls: u32, temp: u32| {
        format!("# TYPE calls_total counter\ncalls_total {calls}\n# TYPE temp gauge\ntemp {temp}\n")
    };
    assert_eq!(gw.put(GROUP, &body(1, 10)).status, 200);
    assert_eq!(gw.post(GROUP, &body(2, 20)).status, 200);
    assert_eq!(gw.put(GROUP, &body(3, 5)).status, 200);
    assert_eq!(value(&gw, "calls_total", &[]).as_deref(), Some("6"));
    assert_eq!(value(&gw, "temp", &[]).as_deref(), Some("5"));
    // A family the push does not name stays, whichever method.
    assert_eq!(gw.put(GROUP, "other_total 1\n").status, 200);
    assert_eq!(value(&gw, "calls_total", &[]).as_deref(), Some("6"));
    assert!(push_time(&gw.state(), &labels()).is_some());
    // The same group is visible on the ordinary tree, and an ordinary PUT resets it.
    let counter = |v: u32| format!("# TYPE calls_total counter\ncalls_total {v}\n");
    assert_eq!(
        gw.put("/metrics/job/lambda-calls", &counter(100)).status,
        200
    );
    assert_eq!(gw.put(GROUP, &counter(1)).status, 200);
    assert_eq!(value(&gw, "calls_total", &[]).as_deref(), Some("101"));
    assert_eq!(value(&gw, "other_total", &[]), None);
    // DELETE on the aggregate tree deletes the group.
    assert_eq!(gw.delete(GROUP).status, 202);
    assert_eq!(value(&gw, "calls_total", &[]), None);
}

#[test]
fn untyped_samples_keep_the_last_value() {
    let gw = spawn_gateway(&[]);
    assert_eq!(gw.put(GROUP, "plain 1\n").status, 200);
    assert_eq!(gw.put(GROUP, "plain 7\n").status, 200);
    assert_eq!(value(&gw, "plain", &[]).as_deref(), Some("7"));
}

#[test]
fn series_add_by_their_full_label_set() {
    let gw = spawn_gateway(&[]);
    for code in ["200", "500", "200", "200"] {
        let body = format!("# TYPE requests_total counter\nrequests_total{{code=\"{code}\"}} 1\n");
        assert_eq!(gw.post(&format!("{GROUP}/region/eu"), &body).status, 200);
    }
    let state = gw.state();
    let at = |code: &str| {
        state
            .get(&series(
                "requests_total",
                &[
                    ("code", code),
                    ("instance", ""),
                    ("job", "lambda-calls"),
                    ("region", "eu"),
                ],
            ))
            .cloned()
    };
    assert_eq!(at("200").as_deref(), Some("3"));
    assert_eq!(at("500").as_deref(), Some("1"));
}

#[test]
fn histograms_add_and_differing_bounds_are_refused() {
    let gw = spawn_gateway(&[]);
    let hist = |le: &str, b: u32, sum: u32| {
        format!(
            "# TYPE latency_seconds histogram\nlatency_seconds_bucket{{le=\"{le}\"}} {b}\nlatency_seconds_bucket{{le=\"+Inf\"}} {b}\nlatency_seconds_sum {sum}\nlatency_seconds_count {b}\n"
        )
    };
    assert_eq!(gw.put(GROUP, &hist("0.5", 2, 1)).status, 200);
    assert_eq!(gw.put(GROUP, &hist("0.5", 3, 2)).status, 200);
    assert_eq!(
        value(&gw, "latency_seconds_bucket", &[("le", "0.5")]).as_deref(),
        Some("5")
    );
    assert_eq!(value(&gw, "latency_seconds_sum", &[]).as_deref(), Some("3"));
    assert_eq!(
        value(&gw, "latency_seconds_count", &[]).as_deref(),
        Some("5")
    );
    let before = gw.state();
    let refused = gw.put(GROUP, &hist("1", 1, 1));
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert!(
        refused.text().contains("bucket bounds"),
        "{}",
        refused.text()
    );
    let after = gw.state();
    assert!(failure_time(&after, &labels()).is_some_and(|t| t > 0.0));
    let without_failure = |s: &std::collections::BTreeMap<String, String>| {
        s.iter()
            .filter(|(k, _)| !k.starts_with("push_failure_time_seconds"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(without_failure(&after), without_failure(&before));
}

#[test]
fn summaries_with_quantiles_and_type_conflicts_are_refused() {
    let gw = spawn_gateway(&[]);
    let summary = "# TYPE size summary\nsize_sum 10\nsize_count 2\n";
    assert_eq!(gw.put(GROUP, summary).status, 200);
    assert_eq!(gw.put(GROUP, summary).status, 200);
    assert_eq!(value(&gw, "size_sum", &[]).as_deref(), Some("20"));
    assert_eq!(value(&gw, "size_count", &[]).as_deref(), Some("4"));
    let quantiles = "# TYPE size summary\nsize{quantile=\"0.5\"} 1\nsize_sum 10\nsize_count 2\n";
    let refused = gw.put(GROUP, quantiles);
    assert_eq!(refused.status, 400);
    assert!(
        refused.text().contains("push a histogram"),
        "{}",
        refused.text()
    );
    let conflict = gw.put(GROUP, "# TYPE size gauge\nsize 1\n");
    assert_eq!(conflict.status, 400, "{}", conflict.text());
    let help = gw.put(GROUP, "# HELP x Some.\n# TYPE x counter\nx 1\n");
    assert_eq!(help.status, 200);
    let other_help = gw.put(GROUP, "# HELP x Other.\n# TYPE x counter\nx 1\n");
    assert_eq!(other_help.status, 400, "{}", other_help.text());
    assert_eq!(value(&gw, "size_count", &[]).as_deref(), Some("4"));
}

#[test]
fn unchecked_gateways_still_refuse_what_cannot_be_added() {
    let gw = spawn_gateway(&["--push.disable-consistency-check"]);
    assert_eq!(gw.put(GROUP, "c_total 1\n").status, 202);
    let quantiles = "# TYPE size summary\nsize{quantile=\"0.5\"} 1\nsize_sum 10\nsize_count 2\n";
    assert_eq!(gw.put(GROUP, quantiles).status, 400);
    // A series twice in one push cannot be added either; the answer says so.
    let twice = "# TYPE c_total counter\nc_total 1\nc_total 2\n";
    assert_eq!(gw.put(GROUP, twice).status, 400);
    assert_eq!(value(&gw, "c_total", &[]).as_deref(), Some("1"));
}

#[test]
fn route_prefix_and_base64_work_under_aggregate() {
    let gw = spawn_gateway(&["--web.route-prefix=/pgw"]);
    // job "a/b" in base64url, plus a base64 label value.
    let path = "/aggregate/metrics/job@base64/YS9i/path@base64/L3Zhci90bXA";
    assert_eq!(
        gw.put(path, "# TYPE c_total counter\nc_total 1\n").status,
        200
    );
    assert_eq!(
        gw.post(path, "# TYPE c_total counter\nc_total 2\n").status,
        200
    );
    let state = gw.state();
    let key = series(
        "c_total",
        &[("instance", ""), ("job", "a/b"), ("path", "/var/tmp")],
    );
    assert_eq!(state.get(&key).map(String::as_str), Some("3"), "{state:?}");
    // Outside the prefix, nothing.
    assert_eq!(
        gw.request_raw("PUT", "/aggregate/metrics/job/x", b"c 1\n")
            .status,
        404
    );
    let options = gw.request("OPTIONS", "/aggregate/metrics/job/x", &[], b"");
    assert_eq!(options.header("allow"), Some("DELETE, OPTIONS, POST, PUT"));
}

#[test]
fn an_idempotency_key_counts_a_retry_once() {
    let gw = spawn_gateway(&[]);
    let body = "# TYPE calls_total counter\ncalls_total 1\n";
    assert_eq!(keyed(&gw, "POST", GROUP, "k-1", body).status, 200);
    let retry = keyed(&gw, "POST", GROUP, "k-1", body);
    assert_eq!((retry.status, retry.text()), (200, String::new()));
    // The draft's quoted form is the same key.
    assert_eq!(keyed(&gw, "POST", GROUP, "\"k-1\"", body).status, 200);
    assert_eq!(keyed(&gw, "POST", GROUP, "k-2", body).status, 200);
    assert_eq!(value(&gw, "calls_total", &[]).as_deref(), Some("2"));
    // Keys work on ordinary pushes too: the retried POST does not bump the push time.
    assert_eq!(
        keyed(&gw, "POST", "/metrics/job/plain", "p-1", "g 1\n").status,
        200
    );
    let plain = [("instance", ""), ("job", "plain")];
    let first = push_time(&gw.state(), &plain);
    crate::helpers::tick();
    assert_eq!(
        keyed(&gw, "POST", "/metrics/job/plain", "p-1", "g 2\n").status,
        200
    );
    let state = gw.state();
    assert_eq!(push_time(&state, &plain), first);
    assert_eq!(
        state.get(&series("g", &plain)).map(String::as_str),
        Some("1")
    );
    // Bad keys are refused before anything happens.
    let long = "x".repeat(257);
    for bad in ["", long.as_str(), "\"\"", "a\"b"] {
        let r = keyed(&gw, "POST", GROUP, bad, body);
        assert_eq!(r.status, 400, "{bad:?}: {}", r.text());
    }
    assert_eq!(value(&gw, "calls_total", &[]).as_deref(), Some("2"));
}

#[test]
fn a_full_key_table_answers_429_and_counts_nothing() {
    let gw = spawn_gateway(&["--aggregate.idempotency-max-keys=2"]);
    let body = "# TYPE calls_total counter\ncalls_total 1\n";
    assert_eq!(keyed(&gw, "PUT", GROUP, "a", body).status, 200);
    assert_eq!(keyed(&gw, "PUT", GROUP, "b", body).status, 200);
    let full = keyed(&gw, "PUT", GROUP, "c", body);
    assert_eq!(full.status, 429, "{}", full.text());
    assert!(full.text().contains("--aggregate.idempotency-max-keys"));
    // Retries of known keys are still recognised.
    assert_eq!(keyed(&gw, "PUT", GROUP, "a", body).status, 200);
    assert_eq!(value(&gw, "calls_total", &[]).as_deref(), Some("2"));
    // Deleting the group frees its keys.
    assert_eq!(gw.delete(GROUP).status, 202);
    assert_eq!(keyed(&gw, "PUT", GROUP, "c", body).status, 200);
    let status = gw.get("/api/v1/status").text();
    assert!(
        status.contains("aggregate.idempotency-max-keys"),
        "{status}"
    );
}

#[test]
fn eight_clients_with_retries_count_exactly_the_distinct_pushes() {
    const CLIENTS: usize = 8;
    const PUSHES: usize = 1_000;
    let gw = spawn_gateway(&[]);
    let addr = gw.addr;
    let threads: Vec<_> = (0..CLIENTS)
        .map(|client| {
            std::thread::spawn(move || {
                let body = b"# TYPE jobs_total counter\njobs_total 1\n";
                for push in 0..PUSHES {
                    let key = format!("client-{client}-push-{push}");
                    // Every seventh push is sent twice, as a client retrying after a timeout.
                    let sends = if push % 7 == 0 { 2 } else { 1 };
                    for _ in 0..sends {
                        let r = crate::helpers::http(
                            addr,
                            "POST",
                            GROUP,
                            &[("Idempotency-Key", &key)],
                            body,
                        );
                        assert_eq!(r.status, 200, "{}", r.text());
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let expected = (CLIENTS * PUSHES).to_string();
    assert_eq!(value(&gw, "jobs_total", &[]), Some(expected));
}

#[test]
fn kill_9_loses_no_acknowledged_increment_and_retries_count_once() {
    let tmp = TempDir::new("aggregate-kill");
    let (data, logs) = (tmp.path.join("data"), tmp.path.join("logs"));
    fs::create_dir_all(&data).unwrap();
    fs::create_dir_all(&logs).unwrap();
    let mut pg = PersistGateway::new(&data.join("pg.db"), &logs, &[]);
    let mut instance = pg.start();
    let addr = instance.addr;
    const PUSHES: usize = 400;
    let pusher = std::thread::spawn(move || {
        let mut acknowledged = Vec::new();
        let mut unanswered = Vec::new();
        for push in 0..PUSHES {
            let key = format!("push-{push}");
            let sent = try_request(
                addr,
                "POST",
                GROUP,
                &[("Idempotency-Key", &key)],
                b"# TYPE jobs_total counter\njobs_total 1\n",
                Duration::from_secs(10),
            );
            match sent {
                Ok(r) if r.status == 200 => acknowledged.push(key),
                _ => unanswered.push(key),
            }
        }
        (acknowledged, unanswered)
    });
    // Kill once some pushes were acknowledged, while the rest keep coming.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let r = try_request(addr, "GET", "/metrics", &[], b"", Duration::from_secs(5));
        let done = r.is_ok_and(|r| {
            r.text()
                .contains("\njobs_total{instance=\"\",job=\"lambda-calls\"} 5")
        });
        if done || std::time::Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    instance.kill();
    let (acknowledged, unanswered) = pusher.join().unwrap();
    assert!(!acknowledged.is_empty());

    let instance = pg.start();
    let scrape = |instance: &crate::persist_helpers::Instance| -> f64 {
        let r = try_request(
            instance.addr,
            "GET",
            "/metrics",
            &[],
            b"",
            Duration::from_secs(10),
        )
        .unwrap();
        let text = r.text();
        text.lines()
            .find_map(|l| l.strip_prefix("jobs_total{instance=\"\",job=\"lambda-calls\"} "))
            .map_or(0.0, |v| v.parse().unwrap())
    };
    let restored = scrape(&instance);
    assert!(
        restored >= acknowledged.len() as f64,
        "{restored} < {} acknowledged",
        acknowledged.len()
    );
    // Retry everything, as clients that never saw an answer (and some that did) would.
    for key in unanswered.iter().chain(acknowledged.iter().take(20)) {
        let r = try_request(
            instance.addr,
            "POST",
            GROUP,
            &[("Idempotency-Key", key)],
            b"# TYPE jobs_total counter\njobs_total 1\n",
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert_eq!(scrape(&instance), PUSHES as f64);
}

#[test]
fn aggregate_rules_of_the_config_file_apply_to_ordinary_pushes_and_reload() {
    let dir = crate::helpers::scratch_dir("aggregate-rules");
    let file = dir.join("config.toml");
    fs::write(&file, "[[aggregate]]\nmatch = '{job=~\"lambda-.*\"}'\n").unwrap();
    let arg = format!("--config.file={}", file.display());
    let gw = spawn_gateway(&[&arg, "--web.enable-lifecycle"]);
    let counter = "# TYPE calls_total counter\ncalls_total 1\n";
    let total = |job: &str| {
        gw.state()
            .get(&series("calls_total", &[("instance", ""), ("job", job)]))
            .cloned()
    };
    for _ in 0..3 {
        assert_eq!(gw.put("/metrics/job/lambda-a", counter).status, 200);
        assert_eq!(gw.put("/metrics/job/batch", counter).status, 200);
    }
    assert_eq!(total("lambda-a").as_deref(), Some("3"));
    assert_eq!(total("batch").as_deref(), Some("1"));
    // An invalid file keeps the old rules.
    fs::write(&file, "[[aggregate]]\nmatch = '{job=~\"(\"}'\n").unwrap();
    let refused = gw.request("PUT", "/-/reload", &[], b"");
    assert_eq!(refused.status, 500);
    assert!(
        refused.text().contains("invalid selector"),
        "{}",
        refused.text()
    );
    assert_eq!(gw.put("/metrics/job/lambda-a", counter).status, 200);
    assert_eq!(total("lambda-a").as_deref(), Some("4"));
    // Without the rule, an ordinary PUT replaces (and so resets the aggregate).
    fs::write(&file, "").unwrap();
    assert_eq!(gw.request("PUT", "/-/reload", &[], b"").status, 200);
    assert_eq!(gw.put("/metrics/job/lambda-a", counter).status, 200);
    assert_eq!(total("lambda-a").as_deref(), Some("1"));
    let _ = fs::remove_dir_all(&dir);
}
