use super::*;
use crate::model::Label;

fn key(labels: &[(&str, &str)]) -> GroupingKey {
    GroupingKey::new(labels.iter().map(|(n, v)| Label::new(*n, *v)).collect())
}

fn parse(s: &str) -> Selector {
    Selector::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

#[test]
fn operators_match_as_in_promql() {
    let k = key(&[("job", "batch"), ("instance", "w1")]);
    let cases = [
        (r#"{job="batch"}"#, true),
        (r#"{job="batc"}"#, false),
        (r#"{job!="batch"}"#, false),
        (r#"{job!="other"}"#, true),
        (r#"{instance=~"w.*"}"#, true),
        // Anchored at both ends: a substring is not a match.
        (r#"{instance=~"w"}"#, false),
        (r#"{instance=~"1"}"#, false),
        (r#"{instance=~"w1|x"}"#, true),
        (r#"{instance!~"w.*"}"#, false),
        (r#"{instance!~"x.*"}"#, true),
        (r#"{job="batch",instance=~"w.*"}"#, true),
        (r#"{job="batch",instance=~"x.*"}"#, false),
        // An absent label is the empty string.
        (r#"{zone=""}"#, true),
        (r#"{zone!=""}"#, false),
        (r#"{zone=~"a?"}"#, true),
        (r#"{zone!~".+"}"#, true),
        (r#"{zone="x"}"#, false),
        (r#"{}"#, true),
    ];
    for (s, want) in cases {
        assert_eq!(parse(s).matches(&k), want, "{s}");
    }
}

#[test]
fn dot_matches_newline_as_in_promql() {
    let k = key(&[("job", "a\nb")]);
    assert!(parse(r#"{job=~"a.b"}"#).matches(&k));
}

#[test]
fn syntax_variants() {
    let k = key(&[("job", "x"), ("my.label", "v")]);
    for s in [
        r#"{job="x"}"#,
        "{job='x'}",
        "{job=`x`}",
        " { job = \"x\" , } ",
        "{\n\tjob=\"x\"\n}",
        r#"{"my.label"="v"}"#,
        r#"{'my.label'="v", job="x"}"#,
    ] {
        assert!(parse(s).matches(&k), "{s}");
    }
}

#[test]
fn escapes_follow_go() {
    let cases = [
        (r#"{a="q\"q"}"#, "q\"q"),
        (r#"{a='q\'q'}"#, "q'q"),
        (r#"{a="\\"}"#, "\\"),
        (r#"{a="\n\t\r\a\b\f\v"}"#, "\n\t\r\x07\x08\x0c\x0b"),
        (r#"{a="\x41\101\u00e9\U0001F600"}"#, "AAé😀"),
        (r#"{a="\xc3\xa9"}"#, "é"),
        (r"{a=`\n`}", "\\n"),
        ("{a=`x\ny`}", "x\ny"),
        (r#"{a="é"}"#, "é"),
    ];
    for (s, want) in cases {
        let sel = parse(s);
        assert_eq!(sel.matchers()[0].value(), want, "{s}");
    }
}

#[test]
fn errors_name_the_problem() {
    let cases: &[(&str, &str)] = &[
        ("", "expected `{`"),
        ("job=\"x\"", "metric name `job`"),
        ("up{job=\"x\"}", "metric name `up`"),
        (r#"{"up"}"#, "metric name `up`"),
        (r#"{"up", job="x"}"#, "metric name `up`"),
        (r#"{job="x""#, "expected `,` or `}`, found end of input"),
        (r#"{job="x"} x"#, "expected end of input"),
        (r#"{job="x" job="y"}"#, "expected `,` or `}`"),
        (r#"{job=="x"}"#, "expected a quoted label value"),
        (r#"{job~"x"}"#, "expected one of"),
        (r#"{job=x}"#, "expected a quoted label value"),
        (r#"{1job="x"}"#, "expected a label name"),
        (r#"{,}"#, "expected a label name"),
        (r#"{job="x}"#, "unterminated"),
        ("{job=\"x\ny\"}", "unterminated"),
        ("{job=`x}", "unterminated"),
        (r#"{job="\q"}"#, "invalid escape"),
        (r#"{job="\'"}"#, "invalid escape"),
        (r#"{job='\"'}"#, "invalid escape"),
        (r#"{job="\x4"}"#, "invalid escape"),
        (r#"{job="\400"}"#, "invalid escape"),
        (r#"{job="\uD800"}"#, "invalid escape"),
        (r#"{job="\xff"}"#, "not valid UTF-8"),
        (r#"{""="x"}"#, "empty label name"),
        (r#"{job=~"("}"#, "invalid regex for label `job`"),
        (r#"{job=~"x{1000}{1000}"}"#, "invalid regex for label `job`"),
    ];
    for (s, want) in cases {
        let err = Selector::parse(s).expect_err(s).to_string();
        assert!(err.contains(want), "{s}: {err}");
    }
}

#[test]
fn input_is_bounded() {
    let long = format!(r#"{{job="{}"}}"#, "x".repeat(MAX_SELECTOR_BYTES));
    assert!(matches!(
        Selector::parse(&long),
        Err(SelectorError::TooLong { .. })
    ));
    let many = format!(
        "{{{}}}",
        (0..=MAX_MATCHERS)
            .map(|i| format!("a{i}=\"\""))
            .collect::<Vec<_>>()
            .join(",")
    );
    assert_eq!(Selector::parse(&many), Err(SelectorError::TooManyMatchers));
}

#[test]
fn matches_everything_as_prometheus_judges_it() {
    for s in [
        "{}",
        r#"{job=~".*"}"#,
        r#"{a=""}"#,
        r#"{a!~".+"}"#,
        r#"{a!="x"}"#,
    ] {
        assert!(parse(s).matches_everything(), "{s}");
    }
    for s in [
        r#"{job="x"}"#,
        r#"{job=~".+"}"#,
        r#"{job!=""}"#,
        r#"{a="",job="x"}"#,
    ] {
        assert!(!parse(s).matches_everything(), "{s}");
    }
}

#[test]
fn every_group_also_counts_conditions_any_job_satisfies() {
    // Every group has a non-empty job: these select all of them.
    for s in [
        "{}",
        r#"{a=""}"#,
        r#"{job!=""}"#,
        r#"{job!~""}"#,
        r#"{job=~".+"}"#,
        r#"{job=~".+",instance=~".*"}"#,
    ] {
        assert!(parse(s).matches_every_group(), "{s}");
    }
    for s in [
        r#"{job="x"}"#,
        r#"{job=~"a.+"}"#,
        r#"{job!="",instance="i"}"#,
        r#"{instance!=""}"#,
    ] {
        assert!(!parse(s).matches_every_group(), "{s}");
    }
}

#[test]
fn display_parses_back_to_the_same_selector() {
    for s in [
        r#"{job="batch",instance=~"w.*"}"#,
        r#"{"my.label"!="a\"b\\c\n"}"#,
        "{a=`\u{1}`}",
        "{}",
    ] {
        let sel = parse(s);
        assert_eq!(parse(&sel.to_string()), sel, "{s} -> {sel}");
    }
}
