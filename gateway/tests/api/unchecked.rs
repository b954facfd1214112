//! `--push.disable-consistency-check`: pushes are acknowledged with 202 and inconsistent
//! state never breaks `/metrics`.

use std::collections::BTreeMap;

use crate::helpers::{samples, spawn_gateway, Gateway};
use crate::persist_helpers::{PersistGateway, TempDir};
use crate::protobuf::{family, metric, Kind, CONTENT_TYPE};

const FLAG: &str = "--push.disable-consistency-check";

fn dropped(text: &str) -> f64 {
    samples(text)
        .get("pushgateway_scrape_dropped_series_total")
        .unwrap_or_else(|| panic!("no pushgateway_scrape_dropped_series_total:\n{text}"))
        .parse()
        .unwrap()
}

/// Scrapes and checks the invariants: 200, every series at most once (`samples` panics
/// otherwise), one TYPE line per family.
fn healthy_scrape(gw: &Gateway) -> String {
    let r = gw.get("/metrics");
    assert_eq!(r.status, 200, "{}", r.text());
    healthy(r.text())
}

/// Checks a scrape's invariants (see [`healthy_scrape`]).
fn healthy(text: String) -> String {
    samples(&text);
    let mut types: BTreeMap<&str, usize> = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            *types.entry(rest.split(' ').next().unwrap()).or_default() += 1;
        }
    }
    assert!(
        types.values().all(|n| *n == 1),
        "a family typed twice:\n{text}"
    );
    text
}

#[test]
fn pushes_answer_202() {
    let gw = spawn_gateway(&[FLAG]);
    assert_eq!(gw.put("/metrics/job/j", "a 1\n").status, 202);
    assert_eq!(gw.post("/metrics/job/j", "b 1\n").status, 202);
    assert_eq!(gw.delete("/metrics/job/j").status, 202);
}

#[test]
fn pushed_metrics_are_stored() {
    let gw = spawn_gateway(&[FLAG]);
    assert_eq!(gw.put("/metrics/job/j", "a 1\n").status, 202);
    let text = healthy_scrape(&gw);
    assert!(
        text.lines().any(|l| l == "a{instance=\"\",job=\"j\"} 1"),
        "{text}"
    );
}

#[test]
fn same_name_with_two_types_never_breaks_the_scrape() {
    let gw = spawn_gateway(&[FLAG]);
    assert_eq!(
        gw.put("/metrics/job/a", "# TYPE m counter\nm 1\n").status,
        202
    );
    assert_eq!(
        gw.put("/metrics/job/b", "# TYPE m gauge\nm 2\n").status,
        202
    );
    let text = healthy_scrape(&gw);
    assert!(text.lines().any(|l| l.starts_with("# TYPE m ")), "{text}");
    let again = healthy_scrape(&gw);
    assert!(dropped(&again) > 0.0, "{again}");
}

#[test]
fn duplicate_series_across_groups_never_break_the_scrape() {
    let gw = spawn_gateway(&[FLAG]);
    assert_eq!(gw.put("/metrics/job/j", "m{g=\"1\"} 1\n").status, 202);
    assert_eq!(gw.put("/metrics/job/j/g/1", "m 2\n").status, 202);
    let text = healthy_scrape(&gw);
    let m = "m{g=\"1\",instance=\"\",job=\"j\"}";
    let count = text
        .lines()
        .filter(|l| l.starts_with(&format!("{m} ")))
        .count();
    assert_eq!(count, 1, "{text}");
    let again = healthy_scrape(&gw);
    assert!(dropped(&again) > 0.0, "{again}");
}

#[test]
fn summary_and_count_collision_never_breaks_the_scrape() {
    let gw = spawn_gateway(&[FLAG]);
    let summary = "# TYPE foo summary\nfoo_sum 2\nfoo_count 3\n";
    assert_eq!(gw.put("/metrics/job/a", summary).status, 202);
    assert_eq!(gw.put("/metrics/job/b", "foo_count 1\n").status, 202);
    let text = healthy_scrape(&gw);
    let summary_exposed = text.lines().any(|l| l == "# TYPE foo summary");
    let count_family_exposed = text.lines().any(|l| l.starts_with("# TYPE foo_count "));
    assert!(
        !(summary_exposed && count_family_exposed),
        "summary foo and family foo_count exposed together:\n{text}"
    );
    let again = healthy_scrape(&gw);
    assert!(dropped(&again) > 0.0, "{again}");
}

#[test]
fn syntax_errors_are_still_rejected() {
    let gw = spawn_gateway(&[FLAG]);
    let r = gw.put("/metrics/job/j", "m 1");
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text().contains("text format parsing error in line"),
        "{}",
        r.text()
    );
}

#[test]
fn dropping_scrape_counts_its_drops() {
    let gw = spawn_gateway(&[FLAG]);
    assert_eq!(
        gw.put("/metrics/job/a", "# TYPE m counter\nm 1\n").status,
        202
    );
    assert_eq!(
        gw.put("/metrics/job/b", "# TYPE m gauge\nm 2\n").status,
        202
    );
    let text = healthy_scrape(&gw);
    assert!(
        dropped(&text) > 0.0,
        "first scrape after the conflict:\n{text}"
    );
}

#[test]
fn pushing_the_gateways_own_names_never_breaks_the_scrape() {
    let gw = spawn_gateway(&[FLAG]);
    for (job, body) in [
        ("a", "pushgateway_http_requests_total 1\n"),
        ("b", "# TYPE process_cpu_seconds_total gauge\nprocess_cpu_seconds_total 1\n"),
        ("c", "push_time_seconds 5\n"),
        ("d", "# TYPE push_failure_time_seconds counter\npush_failure_time_seconds 5\n"),
        ("e", "# TYPE pushgateway_build_info summary\npushgateway_build_info_sum 1\npushgateway_build_info_count 1\n"),
    ] {
        let r = gw.put(&format!("/metrics/job/{job}"), body);
        assert_eq!(r.status, 202, "{body}: {}", r.text());
    }
    let text = healthy_scrape(&gw);
    // The gateway's own families keep their types.
    for line in [
        "# TYPE push_time_seconds gauge",
        "# TYPE push_failure_time_seconds gauge",
        "# TYPE pushgateway_build_info gauge",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line}:\n{text}");
    }
    assert!(
        !text
            .lines()
            .any(|l| l.starts_with("pushgateway_build_info_sum")),
        "{text}"
    );
    // Every group keeps a push time.
    for job in ["a", "b", "c", "d", "e"] {
        let pt = format!("push_time_seconds{{instance=\"\",job=\"{job}\"}} ");
        assert!(
            text.lines().any(|l| l.starts_with(&pt)),
            "no push time for {job}:\n{text}"
        );
    }
}

#[test]
fn json_api_and_gzip_scrape_work_in_an_inconsistent_state() {
    use std::io::Read;
    let gw = spawn_gateway(&[FLAG]);
    assert_eq!(
        gw.put("/metrics/job/a", "# TYPE m counter\nm 1\n").status,
        202
    );
    assert_eq!(
        gw.put("/metrics/job/b", "# TYPE m gauge\nm 2\n").status,
        202
    );
    let json = gw.get("/api/v1/metrics");
    assert_eq!(json.status, 200);
    assert_eq!(json.json()["data"].as_array().unwrap().len(), 2);
    let r = gw.request("GET", "/metrics", &[("Accept-Encoding", "gzip")], b"");
    assert_eq!(r.status, 200);
    let mut text = String::new();
    flate2::read::GzDecoder::new(&r.body[..])
        .read_to_string(&mut text)
        .unwrap();
    samples(&text);
    assert_eq!(
        text.lines().filter(|l| l.starts_with("# TYPE m ")).count(),
        1,
        "{text}"
    );
}

/// A snapshot does not record that unchecked pushes made the store inconsistent: a
/// gateway restarted on it with the check on finds that out and keeps the scrape whole,
/// from the snapshot (SIGTERM) as from the log (SIGKILL).
#[test]
fn an_inconsistent_store_restarted_with_the_check_on_keeps_the_scrape_whole() {
    for stop in ["sigterm", "sigkill"] {
        let dir = TempDir::new("unchecked-restart");
        let file = dir.path.join("store");
        let mut unchecked = PersistGateway::new(&file, &dir.path, &[FLAG]);
        let gw = unchecked.start();
        for (path, body) in [
            ("/metrics/job/a", "# TYPE m counter\nm 1\n"),
            ("/metrics/job/b", "# TYPE m gauge\nm 2\n"),
            ("/metrics/job/j", "d{g=\"1\"} 1\n"),
            ("/metrics/job/j/g/1", "d 2\n"),
            (
                "/metrics/job/s",
                "# TYPE foo summary\nfoo_sum 2\nfoo_count 3\n",
            ),
            ("/metrics/job/c", "foo_count 1\n"),
        ] {
            assert_eq!(gw.put(path, body).status, 202, "{path}");
        }
        healthy(gw.scrape());
        let before = healthy(gw.scrape());
        assert!(dropped(&before) > 0.0, "{before}");
        let mut gw = gw;
        if stop == "sigterm" {
            assert!(gw.terminate().success(), "{}", gw.stderr());
        } else {
            gw.kill();
        }
        drop(gw);

        let mut checked = PersistGateway::new(&file, &dir.path, &[]);
        let gw = checked.start();
        healthy(gw.scrape());
        let after = healthy(gw.scrape());
        assert!(dropped(&after) > 0.0, "{stop}: nothing left out:\n{after}");
        let shown = |series: &str| after.lines().filter(|l| l.starts_with(series)).count();
        let m = shown("m{instance=\"\",job=\"a\"} ") + shown("m{instance=\"\",job=\"b\"} ");
        assert_eq!(m, 1, "{stop}: m of two types:\n{after}");
        assert_eq!(
            shown("d{g=\"1\",instance=\"\",job=\"j\"} "),
            1,
            "{stop}:\n{after}"
        );
        let summary = after.lines().any(|l| l == "# TYPE foo summary");
        let count = after.lines().any(|l| l.starts_with("# TYPE foo_count "));
        assert!(!(summary && count), "{stop}: foo and foo_count:\n{after}");
    }
}

/// The label names of a sample line (`name{a="1",b="2"} v`), values skipped with their
/// escapes.
fn label_names(line: &str) -> Vec<String> {
    let Some(start) = line.find('{') else {
        return Vec::new();
    };
    let mut names = Vec::new();
    let mut chars = line[start + 1..].chars();
    let mut name = String::new();
    while let Some(c) = chars.next() {
        match c {
            '}' => break,
            ',' => {}
            '=' => {
                names.push(std::mem::take(&mut name));
                assert_eq!(chars.next(), Some('"'), "{line}");
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
            }
            c => name.push(c),
        }
    }
    names
}

/// [`healthy`], and no sample names a label twice or one of the reserved `__` names.
fn healthy_labels(text: String) -> String {
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let mut names = label_names(line);
        assert!(
            names.iter().all(|n| !n.starts_with("__")),
            "a reserved label name in {line:?}:\n{text}"
        );
        let all = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), all, "a label twice in {line:?}:\n{text}");
    }
    healthy(text)
}

/// What the check refuses in label names: names that the default scrape escapes alike
/// (`a.b` and `a_b`), in two series or in one, a summary's `quantile` or a histogram's
/// `le` given as a label (here by the grouping key), and a reserved name (`__name__`). Stored unchecked, they are left out
/// of the scrape, also after a restart with the check on.
#[test]
fn labels_that_escape_alike_or_repeat_quantile_or_le_never_break_the_scrape() {
    let utf8 = "--push.enable-utf8-names";
    let dir = TempDir::new("unchecked-labels");
    let file = dir.path.join("store");
    let mut unchecked = PersistGateway::new(&file, &dir.path, &[FLAG, utf8]);
    let mut gw = unchecked.start();
    for (path, body) in [
        ("/metrics/job/e", "m{\"a.b\"=\"1\"} 1\nm{a_b=\"1\"} 2\n"),
        ("/metrics/job/f", "n{\"a.b\"=\"1\",a_b=\"2\"} 1\n"),
        (
            "/metrics/job/q/quantile/x",
            "# TYPE s summary\ns_sum 1\ns_count 2\ns{quantile=\"0.5\"} 1\n",
        ),
        (
            "/metrics/job/q/le/y",
            "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
        ),
    ] {
        let r = gw.put(path, body);
        assert_eq!(r.status, 202, "{path}: {}", r.text());
    }
    // A reserved label name, which only the protobuf format can carry.
    let reserved = family("r", None, Kind::Gauge, &[metric(&[("__name__", "z")], 1.0)]);
    let headers = [("Content-Type", CONTENT_TYPE)];
    let r = gw.request_with("PUT", "/metrics/job/r", &headers, &reserved);
    assert_eq!(r.status, 202, "{}", r.text());
    healthy_labels(gw.scrape());
    let before = healthy_labels(gw.scrape());
    assert!(dropped(&before) > 0.0, "{before}");
    assert!(gw.terminate().success(), "{}", gw.stderr());
    drop(gw);

    let mut checked = PersistGateway::new(&file, &dir.path, &[utf8]);
    let gw = checked.start();
    healthy_labels(gw.scrape());
    let after = healthy_labels(gw.scrape());
    assert!(dropped(&after) > 0.0, "nothing left out:\n{after}");
}
