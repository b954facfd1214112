//! Log lines in logfmt, the format upstream writes by default:
//! `ts=2024-01-02T03:04:05.678Z level=info caller=gateway::persist msg="metrics persisted" file=/data/pg.db`.
//! Values with blanks, quotes or `=` are quoted.

use std::fmt;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Formats each event as one logfmt line.
pub struct Logfmt;

impl<S, N> FormatEvent<S, N> for Logfmt
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let metadata = event.metadata();
        let now = crate::clock::rfc3339_millis(std::time::SystemTime::now());
        let mut fields = Fields::default();
        event.record(&mut fields);
        write!(
            writer,
            "ts={now} level={} caller={}",
            metadata.level().as_str().to_ascii_lowercase(),
            metadata.target()
        )?;
        if let Some(message) = &fields.message {
            write!(writer, " msg={}", quote(message))?;
        }
        for (key, value) in &fields.pairs {
            write!(writer, " {key}={}", quote(value))?;
        }
        writeln!(writer)
    }
}

#[derive(Default)]
struct Fields {
    message: Option<String>,
    pairs: Vec<(&'static str, String)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.record(field, value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.record(field, format!("{value:?}"));
    }
}

impl Fields {
    fn record(&mut self, field: &Field, value: String) {
        if field.name() == "message" {
            self.message = Some(value);
        } else {
            self.pairs.push((field.name(), value));
        }
    }
}

/// Quotes a value when logfmt needs it.
fn quote(value: &str) -> String {
    if !value.is_empty() && !value.contains([' ', '"', '=', '\n', '\t']) {
        return value.to_string();
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            other => out.push(other),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn quotes_only_when_needed() {
        assert_eq!(quote("plain"), "plain");
        assert_eq!(quote("two words"), "\"two words\"");
        assert_eq!(quote("a=b"), "\"a=b\"");
        assert_eq!(quote("say \"hi\""), "\"say \\\"hi\\\"\"");
        assert_eq!(quote(""), "\"\"");
    }
}
