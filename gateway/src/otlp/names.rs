//! OTLP metric and attribute names as Prometheus 3 translates them by default
//! (`UnderscoreEscapingWithSuffixes`), or, with UTF-8 names allowed, with the suffixes but
//! without escaping (`NoUTF8EscapingWithSuffixes`): the unit (`By` → `bytes`, `By/s` →
//! `bytes_per_second`, `{packets}` dropped), `_total` for monotonic counters and `_ratio`
//! for gauges of unit `1`; attribute keys to label names (`http.method` →
//! `http_method`, a leading digit gets `key_`).

/// Which scheme names follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Escaping {
    /// Characters outside `[a-zA-Z0-9:]` (labels: `[a-zA-Z0-9]`) become `_`, runs of them one.
    Underscores,
    /// Names stay as sent (`--push.enable-utf8-names`).
    None,
}

/// What the name's suffixes depend on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameKind {
    /// A monotonic cumulative sum: `_total`.
    Counter,
    /// A gauge: `_ratio` when its unit is `1`.
    Gauge,
    /// Anything else (up-down counters, histograms, summaries): the unit only.
    Other,
}

/// The Prometheus name of an OTLP metric, or `None` when nothing of it survives.
///
/// ```
/// use gateway::otlp::names::{metric_name, Escaping, NameKind};
/// let name = metric_name("http.server.duration", "s", NameKind::Other, Escaping::Underscores);
/// assert_eq!(name.as_deref(), Some("http_server_duration_seconds"));
/// let name = metric_name("io", "By/s", NameKind::Counter, Escaping::Underscores);
/// assert_eq!(name.as_deref(), Some("io_bytes_per_second_total"));
/// ```
pub fn metric_name(name: &str, unit: &str, kind: NameKind, escaping: Escaping) -> Option<String> {
    let built = match escaping {
        Escaping::Underscores => escaped_metric_name(name, unit, kind),
        Escaping::None => utf8_metric_name(name, unit, kind),
    };
    (!built.is_empty() && !built.bytes().all(|b| b == b'_')).then_some(built)
}

fn escaped_metric_name(name: &str, unit: &str, kind: NameKind) -> String {
    let mut tokens: Vec<&str> = name
        .split(|c: char| !is_metric_char(c))
        .filter(|t| !t.is_empty())
        .collect();
    let (main, per) = unit_suffixes(unit);
    let (main, per) = (clean_unit(&main), clean_unit(&per));
    let per = if per == "per_" {
        String::new()
    } else {
        per.trim_end_matches('_').to_string()
    };
    let mut main = if tokens.contains(&main.as_str()) {
        String::new()
    } else {
        main
    };
    let per = if tokens.contains(&per.as_str()) {
        String::new()
    } else {
        per
    };
    if !per.is_empty() {
        main = main.trim_end_matches('_').to_string();
    }
    let mut owned: Vec<String> = tokens.drain(..).map(str::to_string).collect();
    owned.extend([main, per].into_iter().filter(|s| !s.is_empty()));
    match kind {
        NameKind::Counter => {
            owned.retain(|t| t != "total");
            owned.push("total".into());
        }
        NameKind::Gauge if unit == "1" => {
            owned.retain(|t| t != "ratio");
            owned.push("ratio".into());
        }
        _ => {}
    }
    let joined = owned.join("_");
    if joined.starts_with(|c: char| c.is_ascii_digit()) {
        format!("_{joined}")
    } else {
        joined
    }
}

fn utf8_metric_name(name: &str, unit: &str, kind: NameKind) -> String {
    let mut name = name.to_string();
    let mut suffixes: Vec<&str> = Vec::new();
    // Innermost suffix last in this list; they are appended in reverse.
    match kind {
        NameKind::Gauge if unit == "1" => {
            trim_suffix_and_delimiter(&mut name, "ratio");
            suffixes.push("ratio");
        }
        NameKind::Counter => {
            trim_suffix_and_delimiter(&mut name, "total");
            suffixes.push("total");
        }
        _ => {}
    }
    let (main, per) = unit_suffixes(unit);
    if !per.is_empty() {
        trim_suffix_and_delimiter(&mut name, &per);
        suffixes.push(&per);
    }
    if !main.is_empty() && !name.ends_with(&main) {
        name.push('_');
        name.push_str(&main);
    }
    for suffix in suffixes.into_iter().rev() {
        name.push('_');
        name.push_str(suffix);
    }
    name
}

/// Removes `suffix` and the one character before it, when something remains.
fn trim_suffix_and_delimiter(name: &mut String, suffix: &str) {
    if name.ends_with(suffix) && name.len() > suffix.len() + 1 {
        let keep = name.len() - suffix.len() - 1;
        if name.is_char_boundary(keep) {
            name.truncate(keep);
        }
    }
}

/// The main and "per" parts of a UCUM unit in Prometheus words (`By/s` → `bytes`,
/// `per_second`); annotations in braces are no unit.
fn unit_suffixes(unit: &str) -> (String, String) {
    let mut parts = unit.splitn(2, '/');
    let main = parts.next().unwrap_or("").trim();
    let main = if main.is_empty() || main.contains(['{', '}']) {
        String::new()
    } else {
        main_unit(main).to_string()
    };
    let per = match parts.next().map(str::trim) {
        Some(per) if !per.is_empty() && !per.contains(['{', '}']) => {
            format!("per_{}", per_unit(per))
        }
        _ => String::new(),
    };
    (main, per)
}

fn main_unit(unit: &str) -> &str {
    match unit {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "TiBy" => "tibibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "TBy" => "terabytes",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "1" => "",
        "%" => "percent",
        other => other,
    }
}

fn per_unit(unit: &str) -> &str {
    match unit {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        other => other,
    }
}

/// A unit part with every character outside `[a-zA-Z0-9:]` as `_`, runs of `_` as one, and
/// no leading `_`.
fn clean_unit(unit: &str) -> String {
    let replaced: String = unit
        .chars()
        .map(|c| if is_metric_char(c) { c } else { '_' })
        .collect();
    collapse_underscores(&replaced)
        .trim_start_matches('_')
        .to_string()
}

fn collapse_underscores(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if !(c == '_' && out.ends_with('_')) {
            out.push(c);
        }
    }
    out
}

fn is_metric_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == ':'
}

/// The label name of an attribute key, or `None` when it has none (empty, or nothing but
/// underscores).
///
/// ```
/// use gateway::otlp::names::{label_name, Escaping};
/// assert_eq!(label_name("http.request.method", Escaping::Underscores).as_deref(), Some("http_request_method"));
/// assert_eq!(label_name("2xx", Escaping::Underscores).as_deref(), Some("key_2xx"));
/// assert_eq!(label_name("http.method", Escaping::None).as_deref(), Some("http.method"));
/// ```
pub fn label_name(key: &str, escaping: Escaping) -> Option<String> {
    if key.is_empty() || key.bytes().all(|b| b == b'_') {
        return None;
    }
    if escaping == Escaping::None {
        return Some(key.to_string());
    }
    // `__x__` keeps its double underscores around the sanitised inside.
    let reserved = key.len() >= 4 && key.starts_with("__") && key.ends_with("__");
    let inner = if reserved {
        &key[2..key.len() - 2]
    } else {
        key
    };
    let mut name = String::with_capacity(key.len() + 4);
    if reserved {
        name.push_str("__");
    }
    let mut previous_underscore = false;
    for c in inner.chars() {
        if c.is_ascii_alphanumeric() {
            name.push(c);
            previous_underscore = false;
        } else if !previous_underscore {
            name.push('_');
            previous_underscore = true;
        }
    }
    if reserved {
        name.push_str("__");
    }
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert_str(0, "key_");
    }
    (!name.bytes().all(|b| b == b'_')).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names_as_prometheus_translates_them() {
        use Escaping::{None as Utf8, Underscores};
        use NameKind::{Counter, Gauge, Other};
        for (name, unit, kind, escaping, expected) in [
            (
                "http.server.duration",
                "ms",
                Other,
                Underscores,
                "http_server_duration_milliseconds",
            ),
            ("requests", "1", Counter, Underscores, "requests_total"),
            (
                "requests_total",
                "{request}",
                Counter,
                Underscores,
                "requests_total",
            ),
            ("total.requests", "", Counter, Underscores, "requests_total"),
            (
                "cpu.utilization",
                "1",
                Gauge,
                Underscores,
                "cpu_utilization_ratio",
            ),
            (
                "cpu.utilization",
                "1",
                Other,
                Underscores,
                "cpu_utilization",
            ),
            (
                "memory.usage",
                "By",
                Gauge,
                Underscores,
                "memory_usage_bytes",
            ),
            (
                "memory_usage_bytes",
                "By",
                Gauge,
                Underscores,
                "memory_usage_bytes",
            ),
            (
                "net.io",
                "By/s",
                Counter,
                Underscores,
                "net_io_bytes_per_second_total",
            ),
            ("rate", "1/s", Gauge, Underscores, "rate_per_second"),
            ("temp", "Cel", Gauge, Underscores, "temp_celsius"),
            ("a__b..c", "", Other, Underscores, "a_b_c"),
            ("2xx.count", "", Other, Underscores, "_2xx_count"),
            ("weird", "m/s²", Other, Underscores, "weird_meters_per_s"),
            ("ns:name", "", Other, Underscores, "ns:name"),
            (
                "http.server.duration",
                "ms",
                Other,
                Utf8,
                "http.server.duration_milliseconds",
            ),
            ("requests.total", "1", Counter, Utf8, "requests_total"),
            ("io", "By/s", Counter, Utf8, "io_bytes_per_second_total"),
            ("cpu", "1", Gauge, Utf8, "cpu_ratio"),
        ] {
            assert_eq!(
                metric_name(name, unit, kind, escaping).as_deref(),
                Some(expected),
                "{name:?} {unit:?} {kind:?} {escaping:?}"
            );
        }
        assert_eq!(metric_name("...", "", Other, Underscores), None);
        assert_eq!(metric_name("", "", Other, Utf8), None);
    }

    #[test]
    fn label_names_as_prometheus_translates_them() {
        for (key, expected) in [
            ("service.name", Some("service_name")),
            ("a..b", Some("a_b")),
            ("a__b", Some("a_b")),
            ("_private", Some("_private")),
            ("__meta__", Some("__meta__")),
            ("__a.b__", Some("__a_b__")),
            ("9lives", Some("key_9lives")),
            ("ünïcode", Some("_n_code")),
            ("___", None),
            ("", None),
        ] {
            assert_eq!(
                label_name(key, Escaping::Underscores).as_deref(),
                expected,
                "{key:?}"
            );
        }
    }
}
