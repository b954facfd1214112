//! Decoding of push bodies: bytes plus a [`Format`] become metric families or a
//! [`ParseError`] that names the line and the problem. Grouping keys, the store and HTTP are
//! none of this module's business.

pub mod protobuf;
pub mod text;

use crate::model::{MetricFamily, NameValidation};

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
    match format {
        Format::Text => text::parse_limited(body, validation, limits),
        Format::Protobuf => protobuf::parse(body),
    }
}

#[cfg(test)]
mod tests;
