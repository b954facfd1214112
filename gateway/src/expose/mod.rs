//! The exposition: a store snapshot plus the gateway's own metrics become the body of a
//! scrape, in upstream's order (families by name; within a family, metrics by label
//! values), in the format the scraper negotiated: text 0.0.4 (byte-compatible with
//! upstream), delimited protobuf, or OpenMetrics 1.0.0. Each group's part of a family is
//! cached per format (and its gzip member once compressed), so a scrape re-encodes only
//! the groups that changed since the last one.

mod gzip;
pub mod negotiate;
pub mod number;
pub mod openmetrics;
mod parallel;
pub mod protobuf;
pub mod render;
pub mod runs;
pub mod text;

pub use negotiate::{negotiate, Encoding, Escaping, NotAcceptable, OpenMetrics, ScrapeFormat};
pub use render::{Rendered, RenderedChunks, Renderer};
pub use runs::Piece;

use crate::model::{is_classic_char, is_unescaped, legacy_escaped, Histogram, MetricType, Series};

/// Encodes one family (name, help, type, sorted metrics) in the given format. A family
/// without metrics encodes to nothing.
pub fn encode_family(
    format: ScrapeFormat,
    name: &str,
    help: Option<&str>,
    metric_type: MetricType,
    metrics: &[Series<'_>],
) -> Vec<u8> {
    if metrics.is_empty() {
        return Vec::new();
    }
    let body = encode_metrics(format, name, metric_type, metrics);
    let mut out = encode_family_header(format, name, help, metric_type, body.len());
    out.extend_from_slice(&body);
    out
}

/// The header of a family (`# HELP` and `# TYPE`, or the start of its protobuf message),
/// to be followed by `metrics_len` bytes of its metrics from [`encode_metrics`], which
/// may come in several pieces (each a sorted run of the family's metrics).
pub fn encode_family_header(
    format: ScrapeFormat,
    name: &str,
    help: Option<&str>,
    metric_type: MetricType,
    metrics_len: usize,
) -> Vec<u8> {
    let name = exposed_name(format, name, false);
    let family = Family {
        format,
        name: &name,
        help,
        metric_type,
        metrics: &[],
    };
    match format.encoding {
        Encoding::Text => {
            let mut out = String::new();
            text::write_family_header(&mut out, &family);
            out.into_bytes()
        }
        Encoding::OpenMetrics => {
            let mut out = String::new();
            openmetrics::write_family_header(&mut out, &family);
            out.into_bytes()
        }
        Encoding::Protobuf => protobuf::encode_family_header(&family, metrics_len),
    }
}

/// The metrics of a family without its header, in the order given.
pub fn encode_metrics(
    format: ScrapeFormat,
    name: &str,
    metric_type: MetricType,
    metrics: &[Series<'_>],
) -> Vec<u8> {
    let name = exposed_name(format, name, false);
    let family = Family {
        format,
        name: &name,
        help: None,
        metric_type,
        metrics,
    };
    match format.encoding {
        Encoding::Text => {
            let mut out = String::new();
            text::write_metrics(&mut out, &family);
            out.into_bytes()
        }
        Encoding::OpenMetrics => {
            let mut out = String::new();
            openmetrics::write_metrics(&mut out, &family);
            out.into_bytes()
        }
        Encoding::Protobuf => protobuf::encode_metrics(&family),
    }
}

/// One family as every encoder gets it: its name already escaped for the scraper, its
/// metrics sorted and not empty.
pub struct Family<'a> {
    /// The negotiated format, for the escaping of label names.
    pub format: ScrapeFormat,
    /// The exposed name ([`exposed_name`]).
    pub name: &'a str,
    /// HELP text, if any.
    pub help: Option<&'a str>,
    /// The family's type.
    pub metric_type: MetricType,
    /// The metrics in exposition order.
    pub metrics: &'a [Series<'a>],
}

/// A histogram's classic buckets as `(upper bound, cumulative count, index among the
/// pushed buckets)`, with the `+Inf` bucket (index `None`) added when it was not pushed,
/// as upstream does.
pub(crate) fn buckets_with_infinity(
    histogram: &Histogram,
) -> impl Iterator<Item = (f64, f64, Option<usize>)> + '_ {
    let pushed = histogram
        .buckets
        .iter()
        .enumerate()
        .map(|(i, b)| (b.upper_bound, b.count, Some(i)));
    let has_infinity = histogram
        .buckets
        .iter()
        .any(|b| b.upper_bound == f64::INFINITY);
    let infinity = (!has_infinity).then_some((f64::INFINITY, histogram.count, None));
    pushed.chain(infinity)
}

/// A name as the scraper gets it: unchanged if it may carry UTF-8 names or the name is a
/// classic one, otherwise escaped by the negotiated scheme as `prometheus/common`'s
/// `EscapeName` does (a label name keeps no `:`, which no classic label name has).
///
/// ```
/// use gateway::expose::{exposed_name, Encoding, Escaping, ScrapeFormat};
/// let format = |escaping| ScrapeFormat { encoding: Encoding::Text, escaping };
/// assert_eq!(exposed_name(format(Escaping::Underscores), "a.b_c", false), "a_b_c");
/// assert_eq!(exposed_name(format(Escaping::Dots), "a.b_c", false), "a_dot_b__c");
/// assert_eq!(exposed_name(format(Escaping::Values), "a.b_c", false), "U__a_2e_b__c");
/// assert_eq!(exposed_name(format(Escaping::Values), "a_b", false), "a_b");
/// ```
pub fn exposed_name(format: ScrapeFormat, name: &str, is_label: bool) -> std::borrow::Cow<'_, str> {
    if format.utf8_names() {
        return std::borrow::Cow::Borrowed(name);
    }
    if matches!(format.escaping, Escaping::AllowUtf8 | Escaping::Underscores) {
        return legacy_escaped(name, is_label);
    }
    if is_unescaped(name, is_label) {
        return std::borrow::Cow::Borrowed(name);
    }
    let classic = |i: usize, c: char| is_classic_char(i, c, is_label);
    let mut escaped = String::with_capacity(name.len() + 8);
    if format.escaping == Escaping::Values {
        escaped.push_str("U__");
    }
    for (i, c) in name.char_indices() {
        match c {
            '_' => escaped.push_str("__"),
            '.' if format.escaping == Escaping::Dots => escaped.push_str("_dot_"),
            c if classic(i, c) => escaped.push(c),
            _ if format.escaping == Escaping::Dots => escaped.push_str("__"),
            c => {
                use std::fmt::Write;
                let _ = write!(escaped, "_{:x}_", u32::from(c));
            }
        }
    }
    std::borrow::Cow::Owned(escaped)
}
