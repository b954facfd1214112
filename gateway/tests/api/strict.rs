//! A strict parser of the text exposition formats, independent of the gateway's own: it
//! accepts exactly what a well-formed scrape may contain and returns its set of series, so
//! that tests can assert that nothing a client pushed added, removed or merged a series.
//!
//! Stricter than Prometheus where the gateway never needs the latitude: no comments other
//! than `# HELP`/`# TYPE` (and `# UNIT`/`# EOF` in OpenMetrics), no timestamps, no trailing
//! commas, each family declared once, each series once, each label name once per series.
//! Quoted (UTF-8) names only when `utf8_names` is set. Also used by the fuzz target
//! `scrape_roundtrip` (included by path), so it uses nothing but `std`.

#![allow(dead_code)]

use std::collections::BTreeSet;

/// Which text format to expect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Syntax {
    /// Prometheus text format 0.0.4.
    Text,
    /// OpenMetrics 1.0.0 text, ending in `# EOF`.
    OpenMetrics,
}

/// A series: sample name and its labels sorted by name.
pub type SeriesKey = (String, Vec<(String, String)>);

/// Parses a whole exposition.
///
/// # Errors
/// The first line that is not well-formed, with its number and the reason.
pub fn parse(body: &str, syntax: Syntax, utf8_names: bool) -> Result<BTreeSet<SeriesKey>, String> {
    let mut series = BTreeSet::new();
    let mut declared: BTreeSet<String> = BTreeSet::new();
    let mut saw_eof = false;
    if !body.is_empty() && !body.ends_with('\n') {
        return Err("the body does not end with a newline".into());
    }
    for (i, line) in body.lines().enumerate() {
        let n = i + 1;
        let fail = |reason: String| format!("line {n}: {reason}: {line:?}");
        if saw_eof {
            return Err(fail("content after # EOF".into()));
        }
        if let Some(comment) = line.strip_prefix('#') {
            if syntax == Syntax::OpenMetrics && comment == " EOF" {
                saw_eof = true;
                continue;
            }
            let mut cursor = Cursor::new(comment);
            let keyword = cursor
                .strip(" HELP ")
                .map(|()| "HELP")
                .or_else(|| cursor.strip(" TYPE ").map(|()| "TYPE"))
                .or_else(|| {
                    (syntax == Syntax::OpenMetrics)
                        .then(|| cursor.strip(" UNIT ").map(|()| "UNIT"))
                        .flatten()
                })
                .ok_or_else(|| fail("a comment that is not HELP or TYPE".into()))?;
            let name = cursor.name(utf8_names, false).map_err(&fail)?;
            match keyword {
                "TYPE" => {
                    cursor.expect(' ').map_err(&fail)?;
                    let kind = cursor.rest();
                    let known: &[&str] = match syntax {
                        Syntax::Text => &[
                            "counter",
                            "gauge",
                            "summary",
                            "histogram",
                            "gaugehistogram",
                            "untyped",
                        ],
                        Syntax::OpenMetrics => &[
                            "counter",
                            "gauge",
                            "summary",
                            "histogram",
                            "gaugehistogram",
                            "unknown",
                            "stateset",
                            "info",
                        ],
                    };
                    if !known.contains(&kind) {
                        return Err(fail(format!("unknown type {kind:?}")));
                    }
                    if !declared.insert(name.clone()) {
                        return Err(fail(format!("family {name:?} declared twice")));
                    }
                }
                _ => {
                    // HELP text: anything on the line, with only known escapes.
                    if cursor.at_end() {
                        continue;
                    }
                    cursor.expect(' ').map_err(&fail)?;
                    check_escapes(cursor.rest(), syntax == Syntax::OpenMetrics).map_err(&fail)?;
                }
            }
            continue;
        }
        let mut cursor = Cursor::new(line);
        let (name, labels) = cursor.series(utf8_names).map_err(&fail)?;
        cursor.expect(' ').map_err(&fail)?;
        let value = cursor.token();
        if !is_number(value) {
            return Err(fail(format!("value {value:?} is not a number")));
        }
        if syntax == Syntax::OpenMetrics && cursor.strip(" # ").is_some() {
            let labels = cursor.labels(utf8_names).map_err(&fail)?;
            let runes: usize = labels
                .iter()
                .map(|(n, v)| n.chars().count() + v.chars().count())
                .sum();
            if runes > 128 {
                return Err(fail(format!("exemplar labels have {runes} runes")));
            }
            cursor.expect(' ').map_err(&fail)?;
            let value = cursor.token();
            if !is_number(value) {
                return Err(fail(format!("exemplar value {value:?} is not a number")));
            }
            if cursor.strip(" ").is_some() {
                let timestamp = cursor.token();
                if !is_number(timestamp) {
                    return Err(fail(format!("exemplar timestamp {timestamp:?}")));
                }
            }
        }
        if !cursor.at_end() {
            return Err(fail(format!("unexpected {:?}", cursor.rest())));
        }
        if !series.insert((name.clone(), labels)) {
            return Err(fail(format!("series of {name:?} repeated")));
        }
    }
    if syntax == Syntax::OpenMetrics && !saw_eof {
        return Err("no # EOF at the end".into());
    }
    Ok(series)
}

fn is_number(text: &str) -> bool {
    matches!(text, "+Inf" | "-Inf" | "NaN")
        || (!text.is_empty()
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
            && text.parse::<f64>().is_ok())
}

fn check_escapes(text: &str, quotes_escaped: bool) -> Result<(), String> {
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('\\' | 'n') => {}
                Some('"') if quotes_escaped => {}
                other => return Err(format!("unknown escape \\{other:?}")),
            },
            '"' if quotes_escaped => return Err("unescaped quote".into()),
            _ => {}
        }
    }
    Ok(())
}

fn is_legacy_name(name: &str, is_label: bool) -> bool {
    let mut bytes = name.bytes();
    let first_ok = |b: u8| b.is_ascii_alphabetic() || b == b'_' || (!is_label && b == b':');
    match bytes.next() {
        Some(b) if first_ok(b) => {}
        _ => return false,
    }
    bytes.all(|b| first_ok(b) || b.is_ascii_digit())
}

struct Cursor<'a> {
    rest: &'a str,
}

impl<'a> Cursor<'a> {
    fn new(text: &'a str) -> Cursor<'a> {
        Cursor { rest: text }
    }

    fn at_end(&self) -> bool {
        self.rest.is_empty()
    }

    fn rest(&mut self) -> &'a str {
        std::mem::take(&mut self.rest)
    }

    fn strip(&mut self, prefix: &str) -> Option<()> {
        self.rest = self.rest.strip_prefix(prefix)?;
        Some(())
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        self.rest = self
            .rest
            .strip_prefix(c)
            .ok_or_else(|| format!("expected {c:?} before {:?}", self.rest))?;
        Ok(())
    }

    fn peek(&self) -> Option<char> {
        self.rest.chars().next()
    }

    /// Everything up to the next space.
    fn token(&mut self) -> &'a str {
        let end = self.rest.find(' ').unwrap_or(self.rest.len());
        let (token, rest) = self.rest.split_at(end);
        self.rest = rest;
        token
    }

    /// A `"…"` string with `\\`, `\"` and `\n` escapes.
    fn quoted(&mut self) -> Result<String, String> {
        self.expect('"')?;
        let mut out = String::new();
        let mut chars = self.rest.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.rest = &self.rest[i + 1..];
                    return Ok(out);
                }
                '\\' => match chars.next() {
                    Some((_, '\\')) => out.push('\\'),
                    Some((_, '"')) => out.push('"'),
                    Some((_, 'n')) => out.push('\n'),
                    other => return Err(format!("unknown escape {other:?}")),
                },
                c => out.push(c),
            }
        }
        Err("unterminated string".into())
    }

    /// A bare classic name, or a quoted one when UTF-8 names are allowed.
    fn name(&mut self, utf8_names: bool, is_label: bool) -> Result<String, String> {
        if self.peek() == Some('"') {
            if !utf8_names {
                return Err("a quoted name in a scrape without UTF-8 names".into());
            }
            let name = self.quoted()?;
            if name.is_empty() {
                return Err("an empty quoted name".into());
            }
            return Ok(name);
        }
        let end = self
            .rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(self.rest.len());
        let name = &self.rest[..end];
        if !is_legacy_name(name, is_label) {
            return Err(format!("{name:?} is not a valid bare name"));
        }
        self.rest = &self.rest[end..];
        Ok(name.to_string())
    }

    /// `name{labels}`, `name`, or `{"name",labels}`.
    fn series(&mut self, utf8_names: bool) -> Result<SeriesKey, String> {
        if self.peek() == Some('{') {
            if !utf8_names {
                return Err("a quoted metric name in a scrape without UTF-8 names".into());
            }
            self.expect('{')?;
            let name = self.name(true, false)?;
            let labels = if self.strip("}").is_some() {
                Vec::new()
            } else {
                self.expect(',')?;
                self.label_list(true)?
            };
            return Ok((name, labels));
        }
        let name = self.name(false, false)?;
        let labels = if self.peek() == Some('{') {
            self.labels(utf8_names)?
        } else {
            Vec::new()
        };
        Ok((name, labels))
    }

    /// `{name="value",...}`.
    fn labels(&mut self, utf8_names: bool) -> Result<Vec<(String, String)>, String> {
        self.expect('{')?;
        if self.strip("}").is_some() {
            return Ok(Vec::new());
        }
        self.label_list(utf8_names)
    }

    /// `name="value",...}` after the opening brace (and the name in `{"name",`).
    fn label_list(&mut self, utf8_names: bool) -> Result<Vec<(String, String)>, String> {
        let mut labels: Vec<(String, String)> = Vec::new();
        loop {
            let name = self.name(utf8_names, true)?;
            self.expect('=')?;
            let value = self.quoted()?;
            if labels.iter().any(|(n, _)| *n == name) {
                return Err(format!("label {name:?} twice"));
            }
            labels.push((name, value));
            if self.strip("}").is_some() {
                break;
            }
            self.expect(',')?;
        }
        labels.sort();
        Ok(labels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_well_formed_and_refuses_the_rest() {
        let ok = "# HELP a_total Some \\\\ help.\n# TYPE a_total counter\n\
                  a_total{job=\"j\",x=\"a\\\"b\"} 1\n{\"a.b\",\"c.d\"=\"1\"} NaN\n";
        let series = parse(ok, Syntax::Text, true).unwrap();
        assert_eq!(series.len(), 2);
        assert!(parse(ok, Syntax::Text, false).is_err(), "quoted names");
        for bad in [
            "a 1\na 1\n",
            "a{x=\"1\",x=\"2\"} 1\n",
            "a{x=\"1\",} 1\n",
            "a 1 123\n",
            "# comment\n",
            "# TYPE a gauge\n# TYPE a gauge\n",
            "a{\"\"=\"1\"} 1\n",
            "a{b:c=\"1\"} 1\n",
            "a 1",
        ] {
            assert!(parse(bad, Syntax::Text, true).is_err(), "{bad:?}");
        }
        let om = "# TYPE a counter\na_total 1.0 # {t=\"x\"} 1.0 2.5\n# EOF\n";
        assert_eq!(parse(om, Syntax::OpenMetrics, false).unwrap().len(), 1);
        assert!(parse("a 1.0\n", Syntax::OpenMetrics, false).is_err());
        assert!(parse("# EOF\na 1\n", Syntax::OpenMetrics, false).is_err());
    }
}
