//! Text-format details that upstream's parser accepts or rejects.

use crate::helpers::{series, spawn_gateway};

const J: &[(&str, &str)] = &[("instance", ""), ("job", "j")];

#[test]
fn comments_and_blank_lines_are_ignored() {
    let gw = spawn_gateway(&[]);
    let body = "\n# just a comment\n#\nm 1\n\n# another\n";
    let r = gw.put("/metrics/job/j", body);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        gw.state().get(&series("m", J)).map(String::as_str),
        Some("1")
    );
}

#[test]
fn samples_of_one_family_need_not_be_contiguous() {
    let gw = spawn_gateway(&[]);
    let body = "# TYPE a gauge\na{x=\"1\"} 1\nb 5\na{x=\"2\"} 2\n";
    let r = gw.put("/metrics/job/j", body);
    assert_eq!(r.status, 200, "{}", r.text());
    let text = gw.scrape();
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|l| *l == "# TYPE a gauge")
        .expect(&text);
    assert_eq!(
        &lines[at + 1..at + 3],
        &[
            "a{instance=\"\",job=\"j\",x=\"1\"} 1",
            "a{instance=\"\",job=\"j\",x=\"2\"} 2"
        ],
        "{text}"
    );
}

#[test]
fn type_after_samples_is_a_syntax_error() {
    let gw = spawn_gateway(&[]);
    let r = gw.put("/metrics/job/j", "m 1\n# TYPE m gauge\n");
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text().contains("text format parsing error in line"),
        "{}",
        r.text()
    );
}

#[test]
fn second_help_line_is_a_syntax_error() {
    let gw = spawn_gateway(&[]);
    let r = gw.put("/metrics/job/j", "# HELP m one\n# HELP m two\nm 1\n");
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text().contains("text format parsing error in line"),
        "{}",
        r.text()
    );
}

#[test]
fn names_with_colons_and_underscores_are_valid() {
    let gw = spawn_gateway(&[]);
    let r = gw.put("/metrics/job/j", "ns:sub_m{_x=\"1\"} 1\n_m 2\n");
    assert_eq!(r.status, 200, "{}", r.text());
    let state = gw.state();
    let x = [("_x", "1"), ("instance", ""), ("job", "j")];
    assert_eq!(
        state.get(&series("ns:sub_m", &x)).map(String::as_str),
        Some("1")
    );
    assert_eq!(state.get(&series("_m", J)).map(String::as_str), Some("2"));
}

#[test]
fn le_and_quantile_values_are_reformatted() {
    let gw = spawn_gateway(&[]);
    let body = "# TYPE h histogram\nh_bucket{le=\"0.00001\"} 1\nh_bucket{le=\"1000000\"} 2\n\
                h_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 2\n\
                # TYPE s summary\ns{quantile=\"0.50\"} 1\ns_sum 1\ns_count 1\n";
    assert_eq!(gw.put("/metrics/job/j", body).status, 200);
    let text = gw.scrape();
    for line in [
        "h_bucket{instance=\"\",job=\"j\",le=\"1e-05\"} 1",
        "h_bucket{instance=\"\",job=\"j\",le=\"1e+06\"} 2",
        "h_bucket{instance=\"\",job=\"j\",le=\"+Inf\"} 2",
        "s{instance=\"\",job=\"j\",quantile=\"0.5\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line}:\n{text}");
    }
}

#[test]
fn value_spellings_go_accepts() {
    let gw = spawn_gateway(&[]);
    let cases = [
        ("inf", "+Inf"),
        ("-inf", "-Inf"),
        ("nan", "NaN"),
        ("1E3", "1000"),
        ("+1", "1"),
        ("1.0", "1"),
        ("-0", "0"), // Go's writeFloat prints any zero as "0".
        ("-1", "-1"),
        ("0.30000000000000004", "0.30000000000000004"),
        ("12345678", "1.2345678e+07"),
        ("123456", "123456"),
    ];
    let body: String = cases
        .iter()
        .enumerate()
        .map(|(i, (input, _))| format!("v{{i=\"{i:02}\"}} {input}\n"))
        .collect();
    let r = gw.put("/metrics/job/j", &body);
    assert_eq!(r.status, 200, "{}", r.text());
    let text = gw.scrape();
    for (i, (input, expected)) in cases.iter().enumerate() {
        let line = format!("v{{i=\"{i:02}\",instance=\"\",job=\"j\"}} {expected}");
        assert!(
            text.lines().any(|l| l == line),
            "{input} should be exposed as {expected}:\n{text}"
        );
    }
}

#[test]
fn differing_help_across_groups_is_accepted_and_exposed_once() {
    let gw = spawn_gateway(&[]);
    let a = "# HELP m one\n# TYPE m counter\nm 1\n";
    let b = "# HELP m two\n# TYPE m counter\nm 2\n";
    assert_eq!(gw.put("/metrics/job/a", a).status, 200);
    let r = gw.put("/metrics/job/b", b);
    assert_eq!(r.status, 200, "{}", r.text());
    let text = gw.scrape();
    let helps: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("# HELP m "))
        .collect();
    assert_eq!(helps.len(), 1, "{text}");
    assert!(
        helps[0] == "# HELP m one" || helps[0] == "# HELP m two",
        "{text}"
    );
    assert_eq!(
        text.lines().filter(|l| l.starts_with("m{")).count(),
        2,
        "{text}"
    );
}

#[test]
fn blanks_and_tabs_between_tokens_are_accepted() {
    let gw = spawn_gateway(&[]);
    let body = "  a 1\nb\t2\nc {x = \"1\" , y=\"2\"}   3\nd{} 4\ne{x=\"1\",} 5\n";
    let r = gw.put("/metrics/job/j", body);
    assert_eq!(r.status, 200, "{}", r.text());
    let state = gw.state();
    let xy = [("instance", ""), ("job", "j"), ("x", "1"), ("y", "2")];
    let x = [("instance", ""), ("job", "j"), ("x", "1")];
    for (series, value) in [
        (series("a", J), "1"),
        (series("b", J), "2"),
        (series("c", &xy), "3"),
        (series("d", J), "4"),
        (series("e", &x), "5"),
    ] {
        assert_eq!(
            state.get(&series).map(String::as_str),
            Some(value),
            "{series}: {state:?}"
        );
    }
}

#[test]
fn type_keyword_values_are_case_insensitive() {
    let gw = spawn_gateway(&[]);
    let r = gw.put("/metrics/job/j", "# TYPE m GAUGE\nm 1\n");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(gw.scrape().lines().any(|l| l == "# TYPE m gauge"));
}

#[test]
fn unknown_type_is_a_syntax_error() {
    let gw = spawn_gateway(&[]);
    let r = gw.put("/metrics/job/j", "# TYPE m gaugeish\nm 1\n");
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text().contains("text format parsing error in line 1"),
        "{}",
        r.text()
    );
}

#[test]
fn trailing_blank_after_the_value_is_a_syntax_error() {
    let gw = spawn_gateway(&[]);
    // Upstream reads a timestamp after the blank and finds none.
    let r = gw.put("/metrics/job/j", "m 1 \n");
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text().contains("text format parsing error in line 1"),
        "{}",
        r.text()
    );
    assert!(gw.state().is_empty());
}

#[test]
fn invalid_utf8_label_value_is_a_syntax_error() {
    let gw = spawn_gateway(&[]);
    let r = gw.request("PUT", "/metrics/job/j", &[], b"m{x=\"\xff\"} 1\n");
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text().contains("text format parsing error in line 1"),
        "{}",
        r.text()
    );
}

#[test]
fn name_label_in_the_body_is_rejected() {
    let gw = spawn_gateway(&[]);
    let r = gw.put("/metrics/job/j", "m{__name__=\"x\"} 1\n");
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(gw.state().keys().all(|k| k.starts_with("push_")));
}

#[test]
fn line_numbers_in_syntax_errors_count_from_one() {
    let gw = spawn_gateway(&[]);
    let r = gw.put("/metrics/job/j", "# HELP m x\nm 1\nm{ 2\n");
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text().contains("text format parsing error in line 3"),
        "{}",
        r.text()
    );
}

/// Upstream exposes a repeated quantile or bucket bound as a second series with the same
/// labels; Prometheus scraping that keeps the first sample. Ours keeps only the first.
#[test]
fn repeated_quantiles_and_buckets_are_exposed_once() {
    let gw = spawn_gateway(&[]);
    let body = "# TYPE s summary\ns{quantile=\"0.5\"} 1\ns{quantile=\"0.50\"} 2\ns_sum 3\ns_count 2\n\
                # TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"1.0\"} 2\nh_bucket{le=\"+Inf\"} 3\nh_bucket{le=\"+Inf\"} 4\nh_sum 3\nh_count 3\n\
                # TYPE t summary\nt{a=\"1\",quantile=\"0.5\"} 1\nt{a=\"2\",quantile=\"0.9\"} 2\nt{a=\"1\",quantile=\"0.5\"} 3\n";
    let r = gw.put("/metrics/job/j", body);
    assert_eq!(r.status, 200, "{}", r.text());
    let text = gw.scrape();
    let mut seen = std::collections::HashSet::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let series = line.rsplit_once(' ').map_or(line, |(s, _)| s);
        assert!(seen.insert(series), "{series} twice:\n{text}");
    }
    let state = gw.state();
    for (name, labels, value) in [
        ("s", &[("quantile", "0.5")][..], "1"),
        ("h_bucket", &[("le", "1")][..], "1"),
        ("h_bucket", &[("le", "+Inf")][..], "3"),
        ("t", &[("a", "1"), ("quantile", "0.5")][..], "1"),
    ] {
        let mut all = labels.to_vec();
        all.extend_from_slice(J);
        all.sort();
        assert_eq!(
            state.get(&series(name, &all)).map(String::as_str),
            Some(value),
            "{name} {labels:?}: {state:?}"
        );
    }
}
