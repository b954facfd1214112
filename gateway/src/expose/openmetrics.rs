//! OpenMetrics 1.0.0 text: counters are declared without their `_total` suffix, untyped
//! is `unknown`, sample values always show a fraction or exponent, counts are integers,
//! bucket exemplars follow their sample, and the body ends with `# EOF` (added by the
//! renderer).
//!
//! A counter whose name does not end in `_total` is exposed as `unknown` rather than
//! renamed, so that Prometheus stores the same series name as from the text format.
//! `le`/`quantile` values are written OpenMetrics-style (`1.0`), which is what Prometheus
//! stores for the same bound scraped as protobuf.

use super::number::write_float;
use super::text::{escape_into, write_header, write_label_name, write_series};
use super::{buckets_with_infinity, exposed_name, Family, ScrapeFormat};
use crate::model::{
    Exemplar, MetricType, Series, SeriesLabels, ValueRef, BUCKET_LABEL, QUANTILE_LABEL,
};

/// Writes a family's `# TYPE` and `# HELP` (if any) lines.
pub fn write_family_header(out: &mut String, family: &Family<'_>) {
    let (declared, metric_type) = declared(family);
    let type_name = match metric_type {
        MetricType::Untyped => "unknown",
        other => other.as_str(),
    };
    write_header(out, declared, family.help, type_name, true);
}

/// Writes the samples of a family's metrics, without the header.
pub fn write_metrics(out: &mut String, family: &Family<'_>) {
    let (declared, metric_type) = declared(family);
    for series in family.metrics {
        write_metric(out, family.format, declared, metric_type, series);
    }
}

/// The name and type a family is declared with: a counter without the `_total` suffix,
/// or as `unknown` when its name lacks one.
fn declared<'a>(family: &Family<'a>) -> (&'a str, MetricType) {
    let name = family.name;
    match family.metric_type {
        MetricType::Counter => match name.strip_suffix("_total") {
            Some(base) => (base, MetricType::Counter),
            None => (name, MetricType::Untyped),
        },
        other => (name, other),
    }
}

fn write_metric(
    out: &mut String,
    format: ScrapeFormat,
    name: &str,
    metric_type: MetricType,
    series: &Series<'_>,
) {
    let labels = &series.labels();
    let extras = series.extras();
    match series.value() {
        ValueRef::Counter(v) if metric_type == MetricType::Untyped => {
            sample(out, format, name, "", labels, None, Number::Float(v), None)
        }
        ValueRef::Counter(v) => {
            let exemplar = extras.and_then(|e| e.exemplar.as_ref());
            sample(
                out,
                format,
                name,
                "_total",
                labels,
                None,
                Number::Float(v),
                exemplar,
            );
        }
        ValueRef::Gauge(v) | ValueRef::Untyped(v) => {
            sample(out, format, name, "", labels, None, Number::Float(v), None)
        }
        ValueRef::Summary(summary) => {
            for q in &summary.quantiles {
                sample(
                    out,
                    format,
                    name,
                    "",
                    labels,
                    Some((QUANTILE_LABEL, q.quantile)),
                    Number::Float(q.value),
                    None,
                );
            }
            sample(
                out,
                format,
                name,
                "_sum",
                labels,
                None,
                Number::Float(summary.sum),
                None,
            );
            sample(
                out,
                format,
                name,
                "_count",
                labels,
                None,
                Number::Int(summary.count as f64),
                None,
            );
        }
        ValueRef::Histogram(histogram) => {
            let count = |c: f64| {
                if histogram.float_counts {
                    Number::Float(c)
                } else {
                    Number::Int(c)
                }
            };
            for (upper_bound, bucket_count, pushed) in buckets_with_infinity(histogram) {
                let exemplar = pushed
                    .and_then(|i| extras?.bucket_exemplars.get(i))
                    .and_then(Option::as_ref);
                sample(
                    out,
                    format,
                    name,
                    "_bucket",
                    labels,
                    Some((BUCKET_LABEL, upper_bound)),
                    count(bucket_count),
                    exemplar,
                );
            }
            let (sum, total) = if metric_type == MetricType::GaugeHistogram {
                ("_gsum", "_gcount")
            } else {
                ("_sum", "_count")
            };
            sample(
                out,
                format,
                name,
                sum,
                labels,
                None,
                Number::Float(histogram.sum),
                None,
            );
            sample(
                out,
                format,
                name,
                total,
                labels,
                None,
                count(histogram.count),
                None,
            );
        }
    }
}

enum Number {
    Float(f64),
    Int(f64),
}

#[allow(clippy::too_many_arguments)]
fn sample(
    out: &mut String,
    format: ScrapeFormat,
    name: &str,
    suffix: &str,
    labels: &SeriesLabels<'_>,
    extra: Option<(&str, f64)>,
    value: Number,
    exemplar: Option<&Exemplar>,
) {
    write_series(
        out,
        format,
        name,
        suffix,
        labels,
        extra,
        write_openmetrics_float,
    );
    out.push(' ');
    match value {
        Number::Float(v) => write_openmetrics_float(out, v),
        Number::Int(v) => out.push_str(&format!("{}", v.max(0.0) as u64)),
    }
    if let Some(exemplar) = exemplar {
        out.push_str(" # {");
        for (i, label) in exemplar.labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_label_name(out, &exposed_name(format, &label.name, true));
            out.push_str("=\"");
            escape_into(out, &label.value, true);
            out.push('"');
        }
        out.push_str("} ");
        write_openmetrics_float(out, exemplar.value);
        if let Some(ts) = exemplar.timestamp {
            out.push(' ');
            write_float(out, ts.seconds as f64 + f64::from(ts.nanos) / 1e9);
        }
    }
    out.push('\n');
}

/// Like the text format's numbers, but whole numbers keep a `.0`.
fn write_openmetrics_float(out: &mut String, value: f64) {
    let start = out.len();
    write_float(out, value);
    let written = &out[start..];
    if value.is_finite() && !written.contains(['e', '.']) {
        out.push_str(".0");
    }
}
