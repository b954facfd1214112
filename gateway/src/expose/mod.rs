//! The exposition: a store snapshot plus the gateway's own metrics become the body of a
//! scrape, in upstream's order (families by name; within a family, metrics by label
//! values), in the format the scraper negotiated: text 0.0.4 (byte-compatible with
//! upstream), delimited protobuf, or OpenMetrics 1.0.0. Rendered families are cached per
//! format, name and version, so a scrape re-encodes only what changed since the last one.

pub mod negotiate;
pub mod number;
pub mod openmetrics;
pub mod protobuf;
pub mod render;
pub mod text;

pub use negotiate::{negotiate, Encoding, ScrapeFormat};
pub use render::{Rendered, RenderedChunks, Renderer};

use crate::model::{legacy_escaped, MetricType, Series};

/// Encodes one family (name, help, type, sorted metrics) in the given format.
pub fn encode_family(
    format: ScrapeFormat,
    name: &str,
    help: Option<&str>,
    metric_type: MetricType,
    metrics: &[Series<'_>],
) -> Vec<u8> {
    match format.encoding {
        Encoding::Text => {
            let mut out = String::new();
            text::write_family(&mut out, format, name, help, metric_type, metrics);
            out.into_bytes()
        }
        Encoding::OpenMetrics => {
            let mut out = String::new();
            openmetrics::write_family(&mut out, format, name, help, metric_type, metrics);
            out.into_bytes()
        }
        Encoding::Protobuf => protobuf::encode_family(format, name, help, metric_type, metrics),
    }
}

/// A name as the scraper gets it: unchanged if it may carry UTF-8 names or the name is a
/// classic one, otherwise with every character outside the classic set replaced by `_`
/// (Prometheus' underscore escaping, the default).
pub fn exposed_name(format: ScrapeFormat, name: &str, is_label: bool) -> std::borrow::Cow<'_, str> {
    if format.utf8_names {
        return std::borrow::Cow::Borrowed(name);
    }
    legacy_escaped(name, is_label)
}
