//! Content negotiation for scrapes, following upstream's rules: the `Accept` entries are
//! tried in order of their quality; delimited protobuf, OpenMetrics and text 0.0.4 are
//! recognised; anything else gets text. The `escaping` parameter decides whether names
//! outside the classic character set are sent as they are (`allow-utf-8`) or escaped.

/// Media type of the protobuf exposition.
pub const PROTOBUF_TYPE: &str = "application/vnd.google.protobuf";
/// Content type of the delimited protobuf exposition.
pub const PROTOBUF_CONTENT_TYPE: &str =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";
/// Content type of the text exposition.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Content type of the OpenMetrics exposition.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The wire format of a scrape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// Text 0.0.4.
    Text,
    /// Length-delimited protobuf.
    Protobuf,
    /// OpenMetrics 1.0.0 text.
    OpenMetrics,
}

/// A negotiated scrape format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ScrapeFormat {
    /// The encoding.
    pub encoding: Encoding,
    /// Whether names may be sent unescaped (`escaping=allow-utf-8`).
    pub utf8_names: bool,
}

impl ScrapeFormat {
    /// Text 0.0.4 with escaped names, the default.
    pub const TEXT: ScrapeFormat = ScrapeFormat {
        encoding: Encoding::Text,
        utf8_names: false,
    };

    /// The `Content-Type` of a response in this format.
    pub fn content_type(self) -> String {
        let base = match self.encoding {
            Encoding::Text => TEXT_CONTENT_TYPE,
            Encoding::Protobuf => PROTOBUF_CONTENT_TYPE,
            Encoding::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
        };
        let escaping = if self.utf8_names {
            "allow-utf-8"
        } else {
            "underscores"
        };
        format!("{base}; escaping={escaping}")
    }
}

/// Picks the format for an `Accept` header (absent: text).
pub fn negotiate(accept: Option<&str>) -> ScrapeFormat {
    let mut entries: Vec<(f64, usize, MediaRange)> = accept
        .unwrap_or("")
        .split(',')
        .enumerate()
        .filter_map(|(i, entry)| MediaRange::parse(entry).map(|m| (m.quality, i, m)))
        .collect();
    // Highest quality first; equal qualities keep their order.
    entries.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut utf8_names = false;
    for (_, _, range) in &entries {
        match range.param("escaping") {
            Some("allow-utf-8") => utf8_names = true,
            Some("underscores" | "dots" | "values") => utf8_names = false,
            _ => {}
        }
        let version = range.param("version");
        let encoding = match range.media_type.as_str() {
            PROTOBUF_TYPE
                if range.param("proto") == Some("io.prometheus.client.MetricFamily")
                    && range.param("encoding") == Some("delimited") =>
            {
                Some(Encoding::Protobuf)
            }
            "application/openmetrics-text"
                if matches!(version, None | Some("1.0.0") | Some("0.0.1")) =>
            {
                Some(Encoding::OpenMetrics)
            }
            "text/plain" if matches!(version, None | Some("0.0.4")) => Some(Encoding::Text),
            _ => None,
        };
        if let Some(encoding) = encoding {
            return ScrapeFormat {
                encoding,
                utf8_names,
            };
        }
    }
    ScrapeFormat {
        encoding: Encoding::Text,
        utf8_names,
    }
}

struct MediaRange {
    media_type: String,
    params: Vec<(String, String)>,
    quality: f64,
}

impl MediaRange {
    fn parse(entry: &str) -> Option<MediaRange> {
        let mut parts = entry.split(';');
        let media_type = parts.next()?.trim().to_ascii_lowercase();
        if media_type.is_empty() {
            return None;
        }
        let mut quality = 1.0;
        let mut params = Vec::new();
        for part in parts {
            let Some((name, value)) = part.split_once('=') else {
                continue;
            };
            let name = name.trim().to_ascii_lowercase();
            let value = value.trim().trim_matches('"').to_string();
            if name == "q" {
                quality = value.parse().unwrap_or(0.0);
            } else {
                params.push((name, value));
            }
        }
        Some(MediaRange {
            media_type,
            params,
            quality,
        })
    }

    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_accept_headers() {
        let prometheus_native = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3,*/*;q=0.1";
        assert_eq!(
            negotiate(Some(prometheus_native)).encoding,
            Encoding::Protobuf
        );
        let prometheus_default = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(
            negotiate(Some(prometheus_default)).encoding,
            Encoding::OpenMetrics
        );
        assert_eq!(negotiate(None), ScrapeFormat::TEXT);
        assert_eq!(negotiate(Some("application/json")), ScrapeFormat::TEXT);
        assert_eq!(
            negotiate(Some(
                "text/plain;version=0.0.4;q=0.2,application/openmetrics-text;q=0.9"
            ))
            .encoding,
            Encoding::OpenMetrics
        );
        assert!(negotiate(Some("text/plain;version=0.0.4;escaping=allow-utf-8")).utf8_names);
    }
}
