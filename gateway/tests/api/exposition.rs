//! The text exposition: ordering, HELP/TYPE lines, number formatting, histograms and
//! escaping, as upstream's Go text encoder writes them.

use crate::helpers::spawn_gateway;

/// Family names in the order of their `# TYPE` lines.
fn type_order(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect()
}

/// Sample lines of one family (exact name, not its suffixed series), in exposition order.
fn sample_lines<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .collect()
}

#[test]
fn families_are_sorted_by_name() {
    let gw = spawn_gateway(&[]);
    assert_eq!(
        gw.put("/metrics/job/a", "zz_last 1\nmm_mid 1\n").status,
        200
    );
    assert_eq!(
        gw.put("/metrics/job/b", "aa_first 1\nmm_mid2 1\n").status,
        200
    );
    let text = gw.scrape();
    let order = type_order(&text);
    let mut sorted = order.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(order, sorted, "families not sorted or repeated:\n{text}");
    for name in [
        "aa_first",
        "mm_mid",
        "mm_mid2",
        "zz_last",
        "push_time_seconds",
    ] {
        assert!(order.iter().any(|n| n == name), "{name} missing:\n{text}");
    }
    // Every sample line follows the TYPE line of its own family.
    let mut current = String::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            current = rest.split(' ').next().unwrap().to_string();
        } else if !line.starts_with('#') {
            let name = line.split(['{', ' ']).next().unwrap();
            assert!(
                name == current
                    || ["_bucket", "_sum", "_count", "_total", "_created"]
                        .iter()
                        .any(|s| name.strip_suffix(s) == Some(current.as_str())),
                "sample {line:?} under family {current}"
            );
        }
    }
}

#[test]
fn metrics_within_a_family_are_sorted_like_upstream() {
    let gw = spawn_gateway(&[]);
    // Upstream sorts by number of labels first, then by label values in label-name order.
    assert_eq!(
        gw.put("/metrics/job/j", "m{a=\"z\"} 1\nm{a=\"b\"} 2\n")
            .status,
        200
    );
    assert_eq!(gw.put("/metrics/job/j/x/y", "m 3\n").status, 200);
    assert_eq!(gw.put("/metrics/job/k", "m 4\n").status, 200);
    assert_eq!(gw.put("/metrics/job/i", "m 5\n").status, 200);
    let text = gw.scrape();
    assert_eq!(
        sample_lines(&text, "m"),
        vec![
            "m{instance=\"\",job=\"i\"} 5",
            "m{instance=\"\",job=\"k\"} 4",
            "m{instance=\"\",job=\"j\",x=\"y\"} 3",
            "m{a=\"b\",instance=\"\",job=\"j\"} 2",
            "m{a=\"z\",instance=\"\",job=\"j\"} 1",
        ],
        "{text}"
    );
}

#[test]
fn help_and_type_lines() {
    let gw = spawn_gateway(&[]);
    let body = "# HELP g A gauge.\n# TYPE g gauge\ng 1\n# TYPE c_total counter\nc_total 2\nu 3\n";
    assert_eq!(gw.put("/metrics/job/j", body).status, 200);
    let text = gw.scrape();
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|l| *l == "# HELP g A gauge.")
        .expect(&text);
    assert_eq!(
        &lines[at..at + 3],
        &[
            "# HELP g A gauge.",
            "# TYPE g gauge",
            "g{instance=\"\",job=\"j\"} 1"
        ],
        "{text}"
    );
    assert!(lines.contains(&"# TYPE c_total counter"), "{text}");
    assert!(
        lines.contains(&"c_total{instance=\"\",job=\"j\"} 2"),
        "{text}"
    );
    assert!(lines.contains(&"# TYPE u untyped"), "{text}");
    assert!(lines.contains(&"u{instance=\"\",job=\"j\"} 3"), "{text}");
    // The gateway's own help for the group metrics.
    assert!(
        lines.contains(&"# HELP push_time_seconds Last Unix time when changing this group in the Pushgateway succeeded."),
        "{text}"
    );
    assert!(lines.contains(&"# TYPE push_time_seconds gauge"), "{text}");
}

#[test]
fn values_are_formatted_like_go() {
    let gw = spawn_gateway(&[]);
    let cases = [
        ("1000000", "1e+06"),
        ("1e6", "1e+06"),
        ("0.00000015", "1.5e-07"),
        ("0.0001", "0.0001"),
        ("100000", "100000"),
        ("123456789", "1.23456789e+08"),
        ("-2.5", "-2.5"),
        ("0.1", "0.1"),
        ("NaN", "NaN"),
        ("+Inf", "+Inf"),
        ("-Inf", "-Inf"),
        ("0", "0"),
    ];
    let body: String = cases
        .iter()
        .enumerate()
        .map(|(i, (input, _))| format!("v{{i=\"{i:02}\"}} {input}\n"))
        .collect();
    assert_eq!(gw.put("/metrics/job/j", &body).status, 200);
    let text = gw.scrape();
    for (i, (input, expected)) in cases.iter().enumerate() {
        let line = format!("v{{i=\"{i:02}\",instance=\"\",job=\"j\"}} {expected}");
        assert!(
            text.lines().any(|l| l == line),
            "{input} should be exposed as {expected}:\n{}",
            sample_lines(&text, "v").join("\n")
        );
    }
}

#[test]
fn histogram_without_an_inf_bucket_gets_one_equal_to_its_count() {
    let gw = spawn_gateway(&[]);
    let body =
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"5\"} 3\nh_sum 7.5\nh_count 4\n";
    assert_eq!(gw.put("/metrics/job/j", body).status, 200);
    let text = gw.scrape();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("h_") || l.starts_with("# TYPE h "))
        .collect();
    assert_eq!(
        lines,
        vec![
            "# TYPE h histogram",
            "h_bucket{instance=\"\",job=\"j\",le=\"1\"} 2",
            "h_bucket{instance=\"\",job=\"j\",le=\"5\"} 3",
            "h_bucket{instance=\"\",job=\"j\",le=\"+Inf\"} 4",
            "h_sum{instance=\"\",job=\"j\"} 7.5",
            "h_count{instance=\"\",job=\"j\"} 4",
        ],
        "{text}"
    );
}

#[test]
fn summary_exposition() {
    let gw = spawn_gateway(&[]);
    let body =
        "# TYPE s summary\ns{quantile=\"0.9\"} 3\ns{quantile=\"0.5\"} 2\ns_sum 10\ns_count 4\n";
    assert_eq!(gw.put("/metrics/job/j", body).status, 200);
    let text = gw.scrape();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("s{") || l.starts_with("s_") || l.starts_with("# TYPE s "))
        .collect();
    assert_eq!(
        lines,
        vec![
            "# TYPE s summary",
            // Upstream keeps quantiles in pushed order.
            "s{instance=\"\",job=\"j\",quantile=\"0.9\"} 3",
            "s{instance=\"\",job=\"j\",quantile=\"0.5\"} 2",
            "s_sum{instance=\"\",job=\"j\"} 10",
            "s_count{instance=\"\",job=\"j\"} 4",
        ],
        "{text}"
    );
}

#[test]
fn label_values_are_escaped() {
    let gw = spawn_gateway(&[]);
    let body = "m{x=\"a\\\\b\\\"c\\nd\"} 1\n";
    assert_eq!(gw.put("/metrics/job/j", body).status, 200);
    let text = gw.scrape();
    assert!(
        text.lines()
            .any(|l| l == "m{instance=\"\",job=\"j\",x=\"a\\\\b\\\"c\\nd\"} 1"),
        "{text}"
    );
}

#[test]
fn grouping_label_values_are_escaped() {
    let gw = spawn_gateway(&[]);
    // x = `a"b\c` through the path.
    assert_eq!(gw.put("/metrics/job/j/x/a%22b%5Cc", "m 1\n").status, 200);
    let text = gw.scrape();
    assert!(
        text.lines()
            .any(|l| l == "m{instance=\"\",job=\"j\",x=\"a\\\"b\\\\c\"} 1"),
        "{text}"
    );
}

#[test]
fn help_is_escaped() {
    let gw = spawn_gateway(&[]);
    let body = "# HELP h back\\\\slash and\\nnewline \"quoted\"\nh 1\n";
    assert_eq!(gw.put("/metrics/job/j", body).status, 200);
    let text = gw.scrape();
    assert!(
        text.lines()
            .any(|l| l == "# HELP h back\\\\slash and\\nnewline \"quoted\""),
        "{text}"
    );
}

#[test]
fn content_type_is_the_text_format() {
    let gw = spawn_gateway(&[]);
    let r = gw.get("/metrics");
    assert_eq!(r.status, 200);
    let ct = r.header("content-type").unwrap_or_default();
    assert!(ct.starts_with("text/plain"), "{ct}");
    assert!(ct.contains("version=0.0.4"), "{ct}");
}

#[test]
fn le_and_quantile_come_last_in_the_label_set() {
    let gw = spawn_gateway(&[]);
    let body = "# TYPE h histogram\nh_bucket{zone=\"a\",le=\"1\"} 1\nh_bucket{zone=\"a\",le=\"+Inf\"} 2\n\
                h_sum{zone=\"a\"} 3\nh_count{zone=\"a\"} 2\n\
                # TYPE s summary\ns{zone=\"a\",quantile=\"0.5\"} 1\ns_sum{zone=\"a\"} 1\ns_count{zone=\"a\"} 1\n";
    assert_eq!(gw.put("/metrics/job/j", body).status, 200);
    let text = gw.scrape();
    for line in [
        "h_bucket{instance=\"\",job=\"j\",zone=\"a\",le=\"1\"} 1",
        "h_bucket{instance=\"\",job=\"j\",zone=\"a\",le=\"+Inf\"} 2",
        "h_sum{instance=\"\",job=\"j\",zone=\"a\"} 3",
        "s{instance=\"\",job=\"j\",zone=\"a\",quantile=\"0.5\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line}:\n{text}");
    }
}

#[test]
fn sorting_is_bytewise() {
    // Go compares strings byte by byte: ':' < 'A' < 'Z' < '_' < 'a' < non-ASCII.
    let gw = spawn_gateway(&[]);
    let body = "a_m 1\n_m 1\nZ_m 1\nA_m 1\n:m 1\n";
    assert_eq!(gw.put("/metrics/job/j", body).status, 200);
    let body =
        "v{k=\"é\"} 1\nv{k=\"a\"} 2\nv{k=\"Z\"} 3\nv{k=\"_\"} 4\nv{k=\"10\"} 5\nv{k=\"9\"} 6\n";
    assert_eq!(gw.put("/metrics/job/k", body).status, 200);
    let text = gw.scrape();
    let pushed: Vec<String> = type_order(&text)
        .into_iter()
        .filter(|n| n.ends_with("_m") || n == ":m")
        .collect();
    assert_eq!(pushed, vec![":m", "A_m", "Z_m", "_m", "a_m"], "{text}");
    let values: Vec<&str> = sample_lines(&text, "v")
        .iter()
        // v{instance="",job="k",k="<value>"}: the sixth piece between quotes.
        .map(|l| l.split('"').nth(5).unwrap())
        .collect();
    assert_eq!(values, vec!["10", "9", "Z", "_", "a", "é"], "{text}");
}

#[test]
fn newline_in_a_grouping_label_value_is_escaped() {
    let gw = spawn_gateway(&[]);
    let r = gw.put("/metrics/job/j/y/a%0Ab", "m 1\n");
    assert_eq!(r.status, 200, "{}", r.text());
    let text = gw.scrape();
    assert!(
        text.lines()
            .any(|l| l == "m{instance=\"\",job=\"j\",y=\"a\\nb\"} 1"),
        "{text}"
    );
}
