//! Text format 0.0.4, byte-compatible with upstream's encoder.
//!
//! ```
//! use gateway::expose::{encode_family, ScrapeFormat};
//! use gateway::model::*;
//! let metric = Metric::new(vec![Label::new("job", "a")], Value::Counter(1e6));
//! let out = encode_family(ScrapeFormat::TEXT, "jobs", Some("Jobs run."), MetricType::Counter, &[Series::alone(&metric)]);
//! assert_eq!(out, b"# HELP jobs Jobs run.\n# TYPE jobs counter\njobs{job=\"a\"} 1e+06\n");
//! ```

use super::number::write_float;
use super::{buckets_with_infinity, exposed_name, Family, ScrapeFormat};
use crate::model::{
    is_legacy_label_name, is_legacy_metric_name, Series, SeriesLabels, ValueRef, BUCKET_LABEL,
    QUANTILE_LABEL,
};

/// Writes a family's `# HELP` (if any) and `# TYPE` lines.
pub fn write_family_header(out: &mut String, family: &Family<'_>) {
    write_header(
        out,
        family.name,
        family.help,
        family.metric_type.as_str(),
        false,
    );
}

/// Writes the samples of a family's metrics, without the header.
pub fn write_metrics(out: &mut String, family: &Family<'_>) {
    for series in family.metrics {
        write_metric(out, family.format, family.name, series);
    }
}

fn write_metric(out: &mut String, format: ScrapeFormat, name: &str, series: &Series<'_>) {
    let labels = series.labels();
    let sample = |out: &mut String, suffix: &str, extra: Option<(&str, f64)>, value: f64| {
        write_sample(out, format, name, suffix, &labels, extra, value)
    };
    match series.value() {
        ValueRef::Counter(v) | ValueRef::Gauge(v) | ValueRef::Untyped(v) => {
            sample(out, "", None, v)
        }
        ValueRef::Summary(summary) => {
            for q in &summary.quantiles {
                sample(out, "", Some((QUANTILE_LABEL, q.quantile)), q.value);
            }
            sample(out, "_sum", None, summary.sum);
            sample(out, "_count", None, summary.count as f64);
        }
        ValueRef::Histogram(histogram) => {
            for (upper_bound, count, _) in buckets_with_infinity(histogram) {
                sample(out, "_bucket", Some((BUCKET_LABEL, upper_bound)), count);
            }
            sample(out, "_sum", None, histogram.sum);
            sample(out, "_count", None, histogram.count);
        }
    }
}

/// Writes the `# HELP` (if any) and `# TYPE` lines; OpenMetrics also escapes `"` in help.
pub(super) fn write_header(
    out: &mut String,
    name: &str,
    help: Option<&str>,
    type_name: &str,
    escape_quotes: bool,
) {
    if let Some(help) = help {
        out.push_str("# HELP ");
        write_name(out, name);
        out.push(' ');
        escape_into(out, help, escape_quotes);
        out.push('\n');
    }
    out.push_str("# TYPE ");
    write_name(out, name);
    out.push(' ');
    out.push_str(type_name);
    out.push('\n');
}

/// Writes `name{labels} value`, or `{"name",labels} value` for a name outside the classic
/// character set.
pub(super) fn write_sample(
    out: &mut String,
    format: ScrapeFormat,
    name: &str,
    suffix: &str,
    labels: &SeriesLabels<'_>,
    extra: Option<(&str, f64)>,
    value: f64,
) {
    write_series(out, format, name, suffix, labels, extra, write_float);
    out.push(' ');
    write_float(out, value);
    out.push('\n');
}

/// Writes the series part of a sample line; `float` formats the extra label's value.
pub(super) fn write_series(
    out: &mut String,
    format: ScrapeFormat,
    name: &str,
    suffix: &str,
    labels: &SeriesLabels<'_>,
    extra: Option<(&str, f64)>,
    float: fn(&mut String, f64),
) {
    // Suffixes (`_sum`, `_bucket`, ...) are classic characters, so a name with its suffix
    // is classic exactly when the name is (or, for an empty name, the suffix): checked
    // without building it for every sample.
    let quoted_name = !is_legacy_metric_name(if name.is_empty() { suffix } else { name });
    let mut first = true;
    if quoted_name {
        out.push_str("{\"");
        escape_into(out, name, true);
        escape_into(out, suffix, true);
        out.push('"');
        first = false;
    } else {
        out.push_str(name);
        out.push_str(suffix);
        if !labels.is_empty() || extra.is_some() {
            out.push('{');
        }
    }
    for label in labels.clone() {
        if !first {
            out.push(',');
        }
        first = false;
        write_label_name(out, &exposed_name(format, label.name, true));
        out.push_str("=\"");
        escape_into(out, label.value, true);
        out.push('"');
    }
    if let Some((label, bound)) = extra {
        if !first {
            out.push(',');
        }
        out.push_str(label);
        out.push_str("=\"");
        float(out, bound);
        out.push('"');
    }
    if quoted_name || !labels.is_empty() || extra.is_some() {
        out.push('}');
    }
}

/// Writes a metric name, quoted when it is outside the classic character set.
pub(super) fn write_name(out: &mut String, name: &str) {
    write_bare_or_quoted(out, name, is_legacy_metric_name(name));
}

/// Writes a label name, quoted when it is outside the classic label character set (which,
/// unlike a metric name's, has no `:`).
pub(super) fn write_label_name(out: &mut String, name: &str) {
    write_bare_or_quoted(out, name, is_legacy_label_name(name));
}

fn write_bare_or_quoted(out: &mut String, name: &str, bare: bool) {
    if bare {
        out.push_str(name);
    } else {
        out.push('"');
        escape_into(out, name, true);
        out.push('"');
    }
}

/// Escapes `\` and newline, and `"` too inside quotes (label values, quoted names).
pub(super) fn escape_into(out: &mut String, text: &str, quotes: bool) {
    let plain = !text
        .bytes()
        .any(|b| b == b'\\' || b == b'\n' || (quotes && b == b'"'));
    if plain {
        out.push_str(text);
        return;
    }
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quotes => out.push_str("\\\""),
            other => out.push(other),
        }
    }
}
