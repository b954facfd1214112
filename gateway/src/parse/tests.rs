//! Table-driven tests of the text parser: what upstream accepts we accept, what it rejects
//! we reject (the expectations were taken from running the reference gateway).

use super::text::{parse, parse_float};
use crate::model::{MetricType, NameValidation, Value};

fn ok(input: &str) -> Vec<crate::model::MetricFamily> {
    parse(input.as_bytes(), NameValidation::Legacy)
        .unwrap_or_else(|e| panic!("{input:?} should parse: {e}"))
}

#[test]
fn rejects_like_upstream() {
    let cases = [
        ("missing final newline", "foo 1"),
        ("trailing blank after value", "foo 1 \n"),
        ("carriage return", "foo 1\r\n"),
        ("no value", "foo\n"),
        ("bad value", "foo bar\n"),
        ("bad name start", "1foo 1\n"),
        ("invalid escape in label value", "foo{a=\"\\t\"} 1\n"),
        ("unterminated label value", "foo{a=\"b} 1\n"),
        ("duplicate label name", "foo{a=\"1\",a=\"2\"} 1\n"),
        ("reserved __name__", "foo{__name__=\"x\"} 1\n"),
        ("second HELP", "# HELP foo a\n# HELP foo b\nfoo 1\n"),
        ("second TYPE", "# TYPE foo gauge\n# TYPE foo gauge\nfoo 1\n"),
        ("TYPE after samples", "foo 1\n# TYPE foo gauge\n"),
        ("unknown type", "# TYPE foo bar\nfoo 1\n"),
        ("bad timestamp", "foo 1 x\n"),
        ("spurious after timestamp", "foo 1 2 3\n"),
        ("hex float", "foo 0x1p3\n"),
        ("float overflow", "foo 1e400\n"),
        ("signed NaN", "foo +NaN\n"),
        ("bad quantile", "# TYPE s summary\ns{quantile=\"x\"} 1\n"),
        ("bad le", "# TYPE h histogram\nh_bucket{le=\"x\"} 1\n"),
        ("label without quotes", "foo{a=b} 1\n"),
        ("missing equals", "foo{a \"b\"} 1\n"),
        ("invalid metric name in comment", "# TYPE foo-bar gauge\n"),
        (
            "negative float bucket",
            "# TYPE h histogram\nh_bucket{le=\"1\"} -1.5\n",
        ),
    ];
    for (name, input) in cases {
        assert!(
            parse(input.as_bytes(), NameValidation::Legacy).is_err(),
            "{name}: {input:?} should be rejected"
        );
    }
}

#[test]
fn accepts_like_upstream() {
    let cases = [
        ("empty body", ""),
        (
            "blank lines and comments",
            "\n# just a comment\n  \nfoo 1\n",
        ),
        ("empty braces", "foo{} 1\n"),
        ("trailing comma", "foo{a=\"1\",} 1\n"),
        ("blanks inside braces", "foo{ a = \"1\" , b=\"2\" } 1\n"),
        ("no space before value", "foo{a=\"1\"}1\n"),
        ("timestamp (rejected later, by the store)", "foo 1 1234\n"),
        ("upper-case type", "# TYPE foo COUNTER\nfoo 1\n"),
        ("HELP without text", "# HELP foo\nfoo 1\n"),
        ("exponent", "foo 1.5E-7\n"),
        ("special values", "a NaN\nb +Inf\nc -Inf\nd inf\n"),
        ("quoted name in braces", "{\"foo\",a=\"1\"} 1\n"),
        ("tabs", "foo\t1\n"),
    ];
    for (name, input) in cases {
        assert!(
            parse(input.as_bytes(), NameValidation::Legacy).is_ok(),
            "{name}: {input:?} should be accepted"
        );
    }
}

#[test]
fn groups_summary_lines_by_labels() {
    let families = ok("# TYPE s summary\n\
         s{a=\"1\",quantile=\"0.5\"} 2\n\
         s{a=\"2\",quantile=\"0.5\"} 3\n\
         s_sum{a=\"1\"} 10\n\
         s_count{a=\"1\"} 4.9\n");
    assert_eq!(families.len(), 1);
    let family = &families[0];
    assert_eq!(family.metric_type, MetricType::Summary);
    assert_eq!(family.metrics.len(), 2);
    match &family.metrics[0].value {
        Value::Summary(s) => {
            assert_eq!(s.count, 4, "count is truncated like Go's uint64()");
            assert_eq!(s.sum, 10.0);
            assert_eq!(s.quantiles.len(), 1);
        }
        other => panic!("not a summary: {other:?}"),
    }
    assert_eq!(family.metrics[0].labels.len(), 1, "quantile is not a label");
}

#[test]
fn sum_without_declared_summary_is_its_own_family() {
    let families = ok("s_sum 1\ns_count 2\n");
    let names: Vec<_> = families.iter().map(|f| f.name.to_string()).collect();
    assert_eq!(names, ["s_sum", "s_count"]);
}

#[test]
fn histogram_buckets_and_float_counts() {
    let families = ok("# TYPE h histogram\n\
         h_bucket{le=\"0.5\"} 1\n\
         h_bucket{le=\"+Inf\"} 2.5\n\
         h_sum 3\n\
         h_count 2.5\n");
    match &families[0].metrics[0].value {
        Value::Histogram(h) => {
            assert_eq!(h.buckets.len(), 2);
            assert!(h.float_counts);
            assert_eq!(h.count, 2.5);
            assert_eq!(h.buckets[1].upper_bound, f64::INFINITY);
        }
        other => panic!("not a histogram: {other:?}"),
    }
}

#[test]
fn help_escapes_and_label_escapes() {
    let families = ok("# HELP foo a\\\\b\\nc\nfoo{a=\"x\\\"y\\\\z\\n\"} 1\n");
    assert_eq!(families[0].help.as_deref(), Some("a\\b\nc"));
    assert_eq!(&*families[0].metrics[0].labels[0].value, "x\"y\\z\n");
}

#[test]
fn empty_families_are_dropped() {
    let families = ok("# TYPE foo gauge\n# HELP bar x\n");
    assert!(families.is_empty());
}

#[test]
fn error_names_the_line() {
    let err = parse(b"a 1\nb 2\nc x\n", NameValidation::Legacy).unwrap_err();
    assert!(err.to_string().contains("line 3"), "{err}");
}

#[test]
fn floats_like_go() {
    for (input, expected) in [
        ("1", Some(1.0)),
        ("-1.5e3", Some(-1500.0)),
        (".5", Some(0.5)),
        ("5.", Some(5.0)),
        ("+Inf", Some(f64::INFINITY)),
        ("-infinity", Some(f64::NEG_INFINITY)),
        ("1e-400", Some(0.0)),
        ("1e400", None),
        ("0x10", None),
        ("1_000", None),
        ("", None),
        ("--1", None),
    ] {
        assert_eq!(parse_float(input), expected, "{input:?}");
    }
    assert!(parse_float("NaN").is_some_and(f64::is_nan));
    assert!(parse_float("nan").is_some_and(f64::is_nan));
    assert_eq!(parse_float("-nan"), None);
}

#[test]
fn repeated_quantiles_and_buckets_keep_the_first() {
    use super::{parse as parse_body, Format};
    let body = "# TYPE s summary\ns{quantile=\"0.5\"} 1\ns{quantile=\"0.50\"} 2\ns{quantile=\"0.9\"} 5\n\
                # TYPE h histogram\nh_bucket{le=\"2\"} 2\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"1.0\"} 9\nh_bucket{le=\"+Inf\"} 3\nh_bucket{le=\"+Inf\"} 4\n";
    let families = parse_body(
        body.as_bytes(),
        Format::Text,
        NameValidation::Legacy,
        super::ParseLimits::NONE,
    )
    .expect("parses");
    let Value::Summary(summary) = &families[0].metrics[0].value else {
        panic!("{families:?}")
    };
    let quantiles: Vec<(String, f64)> = summary
        .quantiles
        .iter()
        .map(|q| (q.quantile.to_string(), q.value))
        .collect();
    assert_eq!(quantiles, [("0.5".into(), 1.0), ("0.9".into(), 5.0)]);
    let Value::Histogram(histogram) = &families[1].metrics[0].value else {
        panic!("{families:?}")
    };
    let buckets: Vec<(f64, f64)> = histogram
        .buckets
        .iter()
        .map(|b| (b.upper_bound, b.count))
        .collect();
    assert_eq!(buckets, [(2.0, 2.0), (1.0, 1.0), (f64::INFINITY, 3.0)]);
}

#[test]
fn duplicate_labels_are_found_among_many() {
    let many: String = (0..50).map(|i| format!("l{i}=\"v\",")).collect();
    let input = format!("foo{{{many}l7=\"again\"}} 1\n");
    let err = parse(input.as_bytes(), NameValidation::Legacy).expect_err("duplicate");
    assert!(err.to_string().contains("duplicate label names"), "{err}");
    // The set is per line: the next line may use the same names.
    let input = format!("foo{{{many}x=\"1\"}} 1\nfoo{{{many}x=\"2\"}} 1\n");
    let families = ok(&input);
    assert_eq!(families[0].metrics.len(), 2);
    assert_eq!(families[0].metrics[0].labels.len(), 51);
}

#[test]
fn lines_beyond_the_limits_are_refused_with_the_flag() {
    use super::{ParseError, ParseLimits};
    let limits = ParseLimits {
        max_labels_per_series: 3,
        max_line_bytes: 40,
    };
    let parse_limited =
        |input: &str| super::text::parse_limited(input.as_bytes(), NameValidation::Legacy, limits);
    assert!(parse_limited("foo{a=\"1\",b=\"2\",c=\"3\"} 1\n").is_ok());
    // A line of exactly the limit (newline not counted) passes.
    let exact = format!("# {}\nfoo 1\n", "x".repeat(38));
    assert!(parse_limited(&exact).is_ok());
    for (input, flag, line) in [
        (
            "foo{a=\"1\",b=\"2\",c=\"3\",d=\"4\"} 1\n",
            "--push.max-labels-per-series",
            1,
        ),
        (
            &format!("foo 1\n# {}\n", "x".repeat(39)),
            "--push.max-line-bytes",
            2,
        ),
        (
            &format!("foo{{a=\"{}\"}} 1\n", "x".repeat(60)),
            "--push.max-line-bytes",
            1,
        ),
    ] {
        match parse_limited(input) {
            Err(ParseError::Limit { line: at, message }) => {
                assert!(message.contains(flag), "{input:?}: {message}");
                assert_eq!(at, line, "{input:?}");
            }
            other => panic!("{input:?}: expected a limit error, got {other:?}"),
        }
    }
}
