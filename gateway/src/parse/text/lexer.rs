//! Byte access and tokens: the buffered-reader view of the input (the byte past the end
//! reads as 0), names plain or quoted, label values and escapes, and float literals.

use crate::model::Str;

use super::{Parser, Stop};
use crate::parse::ParseError;

impl Parser<'_> {
    pub(super) fn read_byte(&mut self) -> bool {
        match self.input.get(self.pos) {
            Some(_) if self.pos > self.line_limit => {
                self.current_byte = 0;
                self.limit_exceeded(format!(
                    "line is longer than the limit of {} bytes (--push.max-line-bytes)",
                    self.limits.max_line_bytes
                ));
                false
            }
            Some(&b) => {
                self.pos += 1;
                self.current_byte = b;
                true
            }
            None => {
                self.current_byte = 0;
                if self.err.is_none() {
                    self.err = Some(Stop::Eof);
                }
                false
            }
        }
    }

    pub(super) fn failed(&self) -> bool {
        self.err.is_some()
    }

    pub(super) fn error(&mut self, msg: String) {
        self.err = Some(Stop::Error(ParseError::new(self.line, msg)));
    }

    pub(super) fn limit_exceeded(&mut self, message: String) {
        let line = self.line;
        self.err = Some(Stop::Error(ParseError::Limit { line, message }));
    }

    pub(super) fn skip_blank_tab(&mut self) {
        while self.read_byte() && is_blank_or_tab(self.current_byte) {}
    }

    pub(super) fn skip_blank_tab_if_current_blank_tab(&mut self) {
        if is_blank_or_tab(self.current_byte) {
            self.skip_blank_tab();
        }
    }

    pub(super) fn token_string(&self) -> String {
        String::from_utf8_lossy(&self.token).into_owned()
    }

    /// Interns the current token so that repeated names and values share one allocation.
    pub(super) fn token_str(&mut self) -> Str {
        if let Some(s) = self.strings.get(&self.token) {
            return s.clone();
        }
        let s: Str = String::from_utf8_lossy(&self.token).into();
        self.strings.insert(self.token.clone(), s.clone());
        s
    }

    pub(super) fn read_token_until_whitespace(&mut self) {
        self.token.clear();
        while !self.failed() && !is_blank_or_tab(self.current_byte) && self.current_byte != b'\n' {
            self.token.push(self.current_byte);
            self.read_byte();
        }
    }

    /// Appends the character an escape (`\\`, `\n`, `\"`) stands for; any other escape in
    /// HELP text and names is an error. Returns whether parsing may go on.
    pub(super) fn push_escaped(&mut self) -> bool {
        match self.current_byte {
            b'\\' => self.token.push(b'\\'),
            b'n' => self.token.push(b'\n'),
            b'"' => self.token.push(b'"'),
            other => {
                self.error(format!("invalid escape sequence '\\{}'", other as char));
                return false;
            }
        }
        true
    }

    pub(super) fn read_token_until_newline(&mut self, recognize_escapes: bool) {
        self.token.clear();
        let mut escaped = false;
        while !self.failed() {
            if recognize_escapes && escaped {
                if !self.push_escaped() {
                    return;
                }
                escaped = false;
            } else {
                match self.current_byte {
                    b'\n' => return,
                    b'\\' => escaped = true,
                    other => self.token.push(other),
                }
            }
            self.read_byte();
        }
    }

    /// Reads a metric or label name, plain or quoted (`"my.name"`).
    pub(super) fn read_name_token(&mut self, is_label: bool) {
        self.token.clear();
        let starts =
            |b: u8| b.is_ascii_alphabetic() || b == b'_' || b == b'"' || (!is_label && b == b':');
        if !starts(self.current_byte) {
            return;
        }
        let what = if is_label {
            "label name"
        } else {
            "metric name"
        };
        let mut quoted = false;
        let mut escaped = false;
        while !self.failed() {
            if escaped {
                if !self.push_escaped() {
                    return;
                }
                escaped = false;
            } else {
                match self.current_byte {
                    b'"' => {
                        quoted = !quoted;
                        if !quoted {
                            self.read_byte();
                            return;
                        }
                    }
                    b'\n' => {
                        let msg = format!(
                            "{what} {:?} contains unescaped new-line",
                            self.token_string()
                        );
                        self.error(msg);
                        return;
                    }
                    b'\\' => escaped = true,
                    other => self.token.push(other),
                }
            }
            self.read_byte();
            let b = self.current_byte;
            // Inside quotes every byte continues the name; outside, the name charset does.
            let continues = quoted || starts(b) || b.is_ascii_digit() || (!is_label && b == b':');
            let stop_char = if is_label { b'=' } else { b' ' };
            if !continues || (!quoted && b == stop_char) {
                return;
            }
        }
    }

    pub(super) fn read_token_as_label_value(&mut self) {
        self.token.clear();
        let mut escaped = false;
        loop {
            if !self.read_byte() {
                return;
            }
            if escaped {
                match self.current_byte {
                    b'"' | b'\\' => self.token.push(self.current_byte),
                    b'n' => self.token.push(b'\n'),
                    other => {
                        self.error(format!("invalid escape sequence '\\{}'", other as char));
                        return;
                    }
                }
                escaped = false;
                continue;
            }
            match self.current_byte {
                b'"' => return,
                b'\n' => {
                    let msg = format!(
                        "label value {:?} contains unescaped new-line",
                        self.token_string()
                    );
                    self.error(msg);
                    return;
                }
                b'\\' => escaped = true,
                other => self.token.push(other),
            }
        }
    }
}

pub(super) fn is_blank_or_tab(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Parses a float the way upstream does (Go's `strconv.ParseFloat` minus `p`, `P` and `_`):
/// decimal and exponent forms, `NaN`, `Inf`/`Infinity` with an optional sign, any case; an
/// out-of-range literal is an error rather than an infinity.
pub fn parse_float(s: &str) -> Option<f64> {
    if s.is_empty() || s.contains(['p', 'P', '_']) {
        return None;
    }
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    let lower = unsigned.to_ascii_lowercase();
    match lower.as_str() {
        "inf" | "infinity" => {
            return Some(if s.starts_with('-') {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            })
        }
        // Go accepts NaN only without a sign.
        "nan" => return (unsigned.len() == s.len()).then_some(f64::NAN),
        _ => {}
    }
    if !unsigned
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return None;
    }
    let value: f64 = s.parse().ok()?;
    // Go reports overflow as an error where Rust rounds to infinity.
    value.is_finite().then_some(value)
}
