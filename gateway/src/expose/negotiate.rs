//! Content negotiation for scrapes, following upstream's rules (`expfmt.Negotiate`): the
//! `Accept` entries are tried in order of their quality; delimited protobuf and text 0.0.4
//! are recognised, OpenMetrics only when enabled (upstream never serves it); anything else
//! gets text. Upstream also serves protobuf's text encodings (`encoding=text`,
//! `compact-text`); ours refuses them with the reason instead of answering in another
//! format. The `escaping` parameter of the chosen entry decides whether names outside the
//! classic character set are sent as they are (`allow-utf-8`) or escaped, and how
//! (`underscores`, the default; `dots`; `values`), as `prometheus/common` defines them.

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

/// How names outside the classic character set are sent (the `escaping` parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Escaping {
    /// As they are (`allow-utf-8`).
    AllowUtf8,
    /// Every other character becomes `_` (`underscores`, the default).
    Underscores,
    /// `.` becomes `_dot_`, `_` becomes `__`, every other character `__` (`dots`).
    Dots,
    /// `U__` and then `_` as `__` and every other character as `_<hex code point>_`
    /// (`values`), which can be decoded back.
    Values,
}

impl Escaping {
    /// The scheme named by an `escaping` parameter value.
    pub fn from_param(value: &str) -> Option<Escaping> {
        match value {
            "allow-utf-8" => Some(Escaping::AllowUtf8),
            "underscores" => Some(Escaping::Underscores),
            "dots" => Some(Escaping::Dots),
            "values" => Some(Escaping::Values),
            _ => None,
        }
    }

    /// The parameter value naming this scheme.
    pub fn as_param(self) -> &'static str {
        match self {
            Escaping::AllowUtf8 => "allow-utf-8",
            Escaping::Underscores => "underscores",
            Escaping::Dots => "dots",
            Escaping::Values => "values",
        }
    }
}

/// A negotiated scrape format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ScrapeFormat {
    /// The encoding.
    pub encoding: Encoding,
    /// How names outside the classic character set are sent.
    pub escaping: Escaping,
}

impl ScrapeFormat {
    /// Text 0.0.4 with escaped names, the default.
    pub const TEXT: ScrapeFormat = ScrapeFormat {
        encoding: Encoding::Text,
        escaping: Escaping::Underscores,
    };

    /// Whether names are sent as they are.
    pub fn utf8_names(self) -> bool {
        self.escaping == Escaping::AllowUtf8
    }

    /// The `Content-Type` of a response in this format.
    pub fn content_type(self) -> String {
        let base = match self.encoding {
            Encoding::Text => TEXT_CONTENT_TYPE,
            Encoding::Protobuf => PROTOBUF_CONTENT_TYPE,
            Encoding::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
        };
        format!("{base}; escaping={}", self.escaping.as_param())
    }
}

/// Whether scrapers may get OpenMetrics (`--web.enable-openmetrics`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMetrics {
    /// Served when the scraper prefers it.
    Enabled,
    /// Never served, as upstream: text 0.0.4 instead.
    Disabled,
}

/// A scrape asked first for a format the gateway does not serve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NotAcceptable(pub String);

/// Picks the format for an `Accept` header (absent: text).
///
/// # Errors
/// [`NotAcceptable`] when the preferred acceptable entry is one of protobuf's text encodings.
pub fn negotiate(
    accept: Option<&str>,
    openmetrics: OpenMetrics,
) -> Result<ScrapeFormat, NotAcceptable> {
    let mut entries: Vec<(f64, usize, MediaRange)> = accept
        .unwrap_or("")
        .split(',')
        .enumerate()
        .filter_map(|(i, entry)| MediaRange::parse(entry).map(|m| (m.quality, i, m)))
        .collect();
    // Highest quality first; equal qualities keep their order.
    entries.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    // As upstream: the escaping of the entry that is served (or of the last one tried);
    // an unknown scheme counts as none.
    let mut escaping = Escaping::Underscores;
    for (_, _, range) in &entries {
        escaping = range
            .param("escaping")
            .and_then(Escaping::from_param)
            .unwrap_or(Escaping::Underscores);
        let version = range.param("version");
        let encoding = match range.media_type.as_str() {
            PROTOBUF_TYPE if range.param("proto") == Some("io.prometheus.client.MetricFamily") => {
                match range.param("encoding") {
                    Some("delimited") => Some(Encoding::Protobuf),
                    Some(text @ ("text" | "compact-text")) => {
                        return Err(NotAcceptable(format!(
                            "the protobuf {text} encoding is not served; ask for encoding=delimited, or text/plain;version=0.0.4 for text"
                        )))
                    }
                    _ => None,
                }
            }
            "application/openmetrics-text"
                if openmetrics == OpenMetrics::Enabled
                    && matches!(version, None | Some("1.0.0") | Some("0.0.1")) =>
            {
                Some(Encoding::OpenMetrics)
            }
            "text/plain" if matches!(version, None | Some("0.0.4")) => Some(Encoding::Text),
            _ => None,
        };
        if let Some(encoding) = encoding {
            return Ok(ScrapeFormat { encoding, escaping });
        }
    }
    Ok(ScrapeFormat {
        encoding: Encoding::Text,
        escaping,
    })
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

    fn encoding(accept: Option<&str>, openmetrics: OpenMetrics) -> Encoding {
        negotiate(accept, openmetrics).expect("acceptable").encoding
    }

    #[test]
    fn prometheus_accept_headers() {
        use OpenMetrics::{Disabled, Enabled};
        let prometheus_native = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3,*/*;q=0.1";
        assert_eq!(
            encoding(Some(prometheus_native), Disabled),
            Encoding::Protobuf
        );
        let prometheus_default = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(
            encoding(Some(prometheus_default), Enabled),
            Encoding::OpenMetrics
        );
        // As upstream unless enabled: text, even when OpenMetrics is asked for first.
        assert_eq!(encoding(Some(prometheus_default), Disabled), Encoding::Text);
        assert_eq!(negotiate(None, Disabled), Ok(ScrapeFormat::TEXT));
        assert_eq!(
            negotiate(Some("application/json"), Enabled),
            Ok(ScrapeFormat::TEXT)
        );
        let openmetrics_preferred =
            "text/plain;version=0.0.4;q=0.2,application/openmetrics-text;q=0.9";
        assert_eq!(
            encoding(Some(openmetrics_preferred), Enabled),
            Encoding::OpenMetrics
        );
        assert!(negotiate(
            Some("text/plain;version=0.0.4;escaping=allow-utf-8"),
            Disabled
        )
        .expect("acceptable")
        .utf8_names());
    }

    #[test]
    fn escaping_of_the_served_entry() {
        let escaping = |accept| {
            negotiate(Some(accept), OpenMetrics::Disabled)
                .expect("acceptable")
                .escaping
        };
        assert_eq!(escaping("text/plain;escaping=dots"), Escaping::Dots);
        assert_eq!(escaping("text/plain;escaping=values"), Escaping::Values);
        assert_eq!(escaping("text/plain;escaping=bogus"), Escaping::Underscores);
        // The escaping of an entry that is not served does not carry over.
        assert_eq!(
            escaping("application/json;escaping=allow-utf-8,text/plain;q=0.5"),
            Escaping::Underscores
        );
        assert_eq!(
            ScrapeFormat {
                encoding: Encoding::Text,
                escaping: Escaping::Dots
            }
            .content_type(),
            "text/plain; version=0.0.4; charset=utf-8; escaping=dots"
        );
    }

    #[test]
    fn protobuf_text_encodings_are_refused_not_replaced() {
        for accept in [
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=text",
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=compact-text,text/plain;q=0.5",
        ] {
            let refused = negotiate(Some(accept), OpenMetrics::Disabled).unwrap_err();
            assert!(refused.0.contains("encoding is not served"), "{refused}");
        }
        // Preferred below an acceptable format: that format is served.
        let text_first = "text/plain;version=0.0.4,application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=text;q=0.5";
        assert_eq!(
            encoding(Some(text_first), OpenMetrics::Disabled),
            Encoding::Text
        );
    }
}
