//! Decoding of push bodies: bytes plus a [`Format`] become metric families or a
//! [`ParseError`] that names the line and the problem. Grouping keys, the store and HTTP are
//! none of this module's business.

pub mod protobuf;
pub mod text;

use std::collections::HashSet;

use crate::model::{MetricFamily, NameValidation, Value};

/// A body that could not be decoded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseError {
    /// A text-format syntax error, with upstream's wording.
    #[error("text format parsing error in line {line}: {message}")]
    Text {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A protobuf body that does not decode.
    #[error("{0}")]
    Protobuf(String),
    /// A text-format line beyond a [`ParseLimits`] limit.
    #[error("text format parsing error in line {line}: {message}")]
    Limit {
        /// 1-based line number.
        line: usize,
        /// Which limit, with its flag.
        message: String,
    },
}

/// Bounds on what one line of a text push may carry, so that a line costs what its
/// limits allow and no more (protobuf pushes are bounded by the store's limits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseLimits {
    /// Most labels on one sample line (`quantile` and `le` not counted).
    pub max_labels_per_series: usize,
    /// Longest line in bytes, newline not counted.
    pub max_line_bytes: usize,
}

impl ParseLimits {
    /// No limits.
    pub const NONE: ParseLimits = ParseLimits {
        max_labels_per_series: usize::MAX,
        max_line_bytes: usize::MAX,
    };
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits::NONE
    }
}

impl ParseError {
    pub(crate) fn new(line: usize, message: String) -> ParseError {
        ParseError::Text { line, message }
    }
}

/// The wire format of a push body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format 0.0.4 (the fallback for any other content type, as upstream).
    Text,
    /// Length-delimited `io.prometheus.client.MetricFamily` messages.
    Protobuf,
}

/// Decodes a push body.
///
/// # Errors
/// A [`ParseError`] describing the first problem found.
pub fn parse(
    body: &[u8],
    format: Format,
    validation: NameValidation,
    limits: ParseLimits,
) -> Result<Vec<MetricFamily>, ParseError> {
    let mut families = match format {
        Format::Text => text::parse_limited(body, validation, limits),
        Format::Protobuf => protobuf::parse(body),
    }?;
    drop_repeated_bounds(&mut families);
    Ok(families)
}

/// Keeps only the first of repeated quantiles in a summary and of repeated bucket bounds in
/// a histogram (with its exemplar): each repeat would be exposed as a second series with
/// the same labels. Upstream exposes them all; Prometheus, scraping that, keeps the first,
/// so the first is what stays here.
fn drop_repeated_bounds(families: &mut [MetricFamily]) {
    for metric in families.iter_mut().flat_map(|f| &mut f.metrics) {
        match &mut metric.value {
            Value::Summary(summary) if ascending(summary.quantiles.iter().map(|q| q.quantile)) => {}
            Value::Histogram(histogram)
                if ascending(histogram.buckets.iter().map(|b| b.upper_bound)) => {}
            Value::Summary(summary) => {
                let mut seen = HashSet::with_capacity(summary.quantiles.len());
                summary
                    .quantiles
                    .retain(|q| seen.insert(bound_key(q.quantile)));
            }
            Value::Histogram(histogram) => {
                let mut seen = HashSet::with_capacity(histogram.buckets.len());
                let keep: Vec<bool> = histogram
                    .buckets
                    .iter()
                    .map(|b| seen.insert(bound_key(b.upper_bound)))
                    .collect();
                if keep.iter().all(|&k| k) {
                    continue;
                }
                let mut kept = keep.iter();
                histogram.buckets.retain(|_| *kept.next().unwrap_or(&true));
                if let Some(extras) = metric.extras.as_mut() {
                    let mut kept = keep.iter();
                    extras
                        .bucket_exemplars
                        .retain(|_| *kept.next().unwrap_or(&true));
                }
            }
            _ => {}
        }
    }
}

/// Whether the bounds strictly increase (the usual case), so that none can repeat.
fn ascending(mut bounds: impl Iterator<Item = f64>) -> bool {
    let Some(mut previous) = bounds.next() else {
        return true;
    };
    bounds.all(|bound| {
        let increases = bound > previous;
        previous = bound;
        increases
    })
}

/// Bounds are the same label value exactly when their bits are, except that every NaN is
/// written `NaN`.
fn bound_key(bound: f64) -> u64 {
    if bound.is_nan() {
        f64::NAN.to_bits()
    } else {
        bound.to_bits()
    }
}

#[cfg(test)]
mod tests;
