//! PromQL label selectors over grouping keys: `{job="batch",instance=~"w.*"}`.
//!
//! [`Selector::parse`] reads the syntax Prometheus reads inside the braces of a vector
//! selector: the operators `=`, `!=`, `=~` and `!~`; values in double, single or backtick
//! quotes with Go's string escapes; label names as identifiers or, as Prometheus 3 allows,
//! as quoted UTF-8 strings; a trailing comma. Regexes are anchored at both ends and `.`
//! matches a newline, as in PromQL (`^(?s:re)$`). [`Selector::matches`] tests a
//! [`GroupingKey`], where an absent label matches as the empty string.
//!
//! Selectors come from clients, so the input length, the number of matchers and the
//! compiled size of each regex are bounded. What a selector is used for (listing,
//! deleting, the access rules) belongs to the callers; this module knows only the syntax
//! and the match.

use std::fmt;

use regex::{Regex, RegexBuilder};

use crate::model::{GroupingKey, JOB_LABEL};

/// The longest selector accepted, in bytes.
pub const MAX_SELECTOR_BYTES: usize = 4096;
/// The most matchers one selector may have.
pub const MAX_MATCHERS: usize = 64;
/// The most memory one compiled regex may take (the `regex` crate's size limit).
pub const MAX_REGEX_BYTES: usize = 256 * 1024;

/// Why a selector cannot be used; messages name the offending thing and its byte offset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// The selector is longer than [`MAX_SELECTOR_BYTES`].
    #[error("selector is {len} bytes long, at most {MAX_SELECTOR_BYTES} are accepted")]
    TooLong {
        /// Its length.
        len: usize,
    },
    /// The selector has more than [`MAX_MATCHERS`] matchers.
    #[error("selector has more than {MAX_MATCHERS} matchers")]
    TooManyMatchers,
    /// Something else was expected at a byte offset.
    #[error("at byte {at}: expected {expected}, found {found}")]
    Expected {
        /// Byte offset in the selector.
        at: usize,
        /// What the grammar needs there.
        expected: &'static str,
        /// What is there (quoted), or "end of input".
        found: String,
    },
    /// A quoted string has no closing quote.
    #[error("at byte {at}: unterminated quoted string")]
    Unterminated {
        /// Where the string starts.
        at: usize,
    },
    /// A backslash escape that Go's string syntax does not have.
    #[error("at byte {at}: invalid escape sequence in quoted string")]
    InvalidEscape {
        /// Where the backslash is.
        at: usize,
    },
    /// Escapes produced bytes that are not UTF-8.
    #[error("at byte {at}: quoted string is not valid UTF-8")]
    InvalidUtf8 {
        /// Where the string starts.
        at: usize,
    },
    /// A label name that is empty.
    #[error("at byte {at}: empty label name")]
    EmptyLabelName {
        /// Where the name starts.
        at: usize,
    },
    /// A metric name, which grouping keys do not have.
    #[error("metric name `{0}` cannot select groups; use label matchers such as {{job=\"x\"}}")]
    MetricName(String),
    /// A regex that does not compile, or compiles too large.
    #[error("invalid regex for label `{label}`: {reason}")]
    InvalidRegex {
        /// The label whose matcher holds the regex.
        label: String,
        /// The regex engine's reason.
        reason: String,
    },
}

/// How a matcher compares a label's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchOp {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `=~`
    Regex,
    /// `!~`
    NotRegex,
}

impl MatchOp {
    /// The operator as written in PromQL.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        }
    }

    /// The operator's code in the persistence codec (stable: stored in files and streams).
    pub fn code(self) -> u8 {
        match self {
            MatchOp::Equal => 0,
            MatchOp::NotEqual => 1,
            MatchOp::Regex => 2,
            MatchOp::NotRegex => 3,
        }
    }

    /// The operator of a codec code.
    pub fn from_code(code: u8) -> Option<MatchOp> {
        Some(match code {
            0 => MatchOp::Equal,
            1 => MatchOp::NotEqual,
            2 => MatchOp::Regex,
            3 => MatchOp::NotRegex,
            _ => return None,
        })
    }
}

/// One condition on one label.
#[derive(Debug, Clone)]
pub struct Matcher {
    name: String,
    op: MatchOp,
    value: String,
    /// Compiled for `=~` and `!~`, anchored.
    regex: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Matcher) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

impl Eq for Matcher {}

impl Matcher {
    /// A matcher; regexes are compiled anchored, within [`MAX_REGEX_BYTES`].
    ///
    /// # Errors
    /// An empty name, or a regex that does not compile or is too large.
    pub fn new(
        name: impl Into<String>,
        op: MatchOp,
        value: impl Into<String>,
    ) -> Result<Matcher, SelectorError> {
        let name = name.into();
        let value = value.into();
        if name.is_empty() {
            return Err(SelectorError::EmptyLabelName { at: 0 });
        }
        let regex = match op {
            MatchOp::Equal | MatchOp::NotEqual => None,
            MatchOp::Regex | MatchOp::NotRegex => Some(compile_anchored(&name, &value)?),
        };
        Ok(Matcher {
            name,
            op,
            value,
            regex,
        })
    }

    /// The label name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The operator.
    pub fn op(&self) -> MatchOp {
        self.op
    }

    /// The value or the regex as written (unanchored).
    pub fn value(&self) -> &str {
        &self.value
    }

    /// Whether a label value (the empty string when the label is absent) satisfies this.
    pub fn matches_value(&self, value: &str) -> bool {
        match (self.op, &self.regex) {
            (MatchOp::Equal, _) => value == self.value,
            (MatchOp::NotEqual, _) => value != self.value,
            (MatchOp::Regex, Some(re)) => re.is_match(value),
            (MatchOp::NotRegex, Some(re)) => !re.is_match(value),
            // `new` compiles a regex for both regex operators.
            (MatchOp::Regex | MatchOp::NotRegex, None) => false,
        }
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if is_identifier(&self.name) {
            f.write_str(&self.name)?;
        } else {
            write_quoted(f, &self.name)?;
        }
        f.write_str(self.op.as_str())?;
        write_quoted(f, &self.value)
    }
}

/// A conjunction of matchers: a grouping key is selected when every matcher holds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selector {
    matchers: Vec<Matcher>,
}

impl Selector {
    /// Parses `{name op "value", ...}`.
    ///
    /// ```
    /// use gateway::model::{GroupingKey, Label};
    /// use gateway::selector::Selector;
    ///
    /// let s = Selector::parse(r#"{job="batch", instance=~"w.*"}"#).unwrap();
    /// let key = GroupingKey::new(vec![Label::new("job", "batch"), Label::new("instance", "w1")]);
    /// assert!(s.matches(&key));
    /// assert_eq!(s.to_string(), r#"{job="batch",instance=~"w.*"}"#);
    /// ```
    ///
    /// # Errors
    /// A syntax error (with its byte offset), an invalid or too large regex, an input
    /// longer than [`MAX_SELECTOR_BYTES`] or with more than [`MAX_MATCHERS`] matchers.
    pub fn parse(input: &str) -> Result<Selector, SelectorError> {
        if input.len() > MAX_SELECTOR_BYTES {
            return Err(SelectorError::TooLong { len: input.len() });
        }
        Parser { input, pos: 0 }.selector()
    }

    /// A selector made of these matchers (e.g. decoded from a persisted change).
    ///
    /// # Errors
    /// More than [`MAX_MATCHERS`] matchers.
    pub fn from_matchers(matchers: Vec<Matcher>) -> Result<Selector, SelectorError> {
        if matchers.len() > MAX_MATCHERS {
            return Err(SelectorError::TooManyMatchers);
        }
        Ok(Selector { matchers })
    }

    /// The matchers, in the order written.
    pub fn matchers(&self) -> &[Matcher] {
        &self.matchers
    }

    /// How many of its matchers hold a regex (what bounds the memory its compiling took).
    pub fn regex_count(&self) -> usize {
        self.matchers.iter().filter(|m| m.regex.is_some()).count()
    }

    /// Whether every matcher holds for `key` (an absent label has the empty value).
    pub fn matches(&self, key: &GroupingKey) -> bool {
        self.matchers
            .iter()
            .all(|m| m.matches_value(key.get(&m.name).map_or("", |v| v)))
    }

    /// Whether this selects every group, as Prometheus judges it: no matcher, or only
    /// matchers that the empty value satisfies (`{job=~".*"}`, `{a=""}`). Prometheus refuses
    /// such selectors ("at least one non-empty matcher"); callers that delete do as well.
    pub fn matches_everything(&self) -> bool {
        self.matchers.iter().all(|m| m.matches_value(""))
    }

    /// Whether this selects every group a gateway can hold: [`Selector::matches_everything`],
    /// or conditions on `job` that any job satisfies (every group has a non-empty `job`:
    /// `{job!=""}`, `{job!~""}`, `{job=~".+"}`). Deletes and `[[aggregate]]` rules refuse
    /// such selectors, so that wipe stays the one way to delete everything.
    pub fn matches_every_group(&self) -> bool {
        self.matchers.iter().all(|m| {
            m.matches_value("")
                || (m.name == JOB_LABEL
                    && match m.op {
                        MatchOp::NotEqual | MatchOp::NotRegex => m.value.is_empty(),
                        MatchOp::Regex => m.value == ".+",
                        MatchOp::Equal => false,
                    })
        })
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, m) in self.matchers.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{m}")?;
        }
        f.write_str("}")
    }
}

/// `^(?s:value)$`, as PromQL anchors label regexes.
fn compile_anchored(label: &str, value: &str) -> Result<Regex, SelectorError> {
    RegexBuilder::new(&format!("^(?s:{value})$"))
        .size_limit(MAX_REGEX_BYTES)
        .dfa_size_limit(MAX_REGEX_BYTES)
        .build()
        .map_err(|e| SelectorError::InvalidRegex {
            label: label.to_owned(),
            reason: match e {
                regex::Error::CompiledTooBig(limit) => {
                    format!("compiles to more than {limit} bytes")
                }
                // The syntax error's own text spans lines; one line reads better in a 400.
                other => {
                    let text = other.to_string();
                    let last = text.lines().last().unwrap_or("").trim();
                    last.strip_prefix("error: ").unwrap_or(last).to_owned()
                }
            },
        })
}

fn is_identifier(s: &str) -> bool {
    crate::model::is_legacy_label_name(s)
}

/// Double-quoted with the escapes Go's `%q` would use for these characters.
fn write_quoted(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c if c.is_control() => write!(f, "\\u{:04x}", c as u32)?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("\"")
}

// === the parser ===

struct Parser<'a> {
    input: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn selector(mut self) -> Result<Selector, SelectorError> {
        self.skip_space();
        if self.peek().is_some_and(is_identifier_start) {
            let name = self.identifier_with_colons();
            return Err(SelectorError::MetricName(name.to_owned()));
        }
        self.expect(b'{', "`{`")?;
        let mut matchers = Vec::new();
        loop {
            self.skip_space();
            if self.eat(b'}') {
                break;
            }
            if matchers.len() == MAX_MATCHERS {
                return Err(SelectorError::TooManyMatchers);
            }
            matchers.push(self.matcher()?);
            self.skip_space();
            if self.eat(b'}') {
                break;
            }
            self.expect(b',', "`,` or `}`")?;
        }
        self.skip_space();
        if self.pos < self.input.len() {
            return Err(self.expected("end of input"));
        }
        Ok(Selector { matchers })
    }

    fn matcher(&mut self) -> Result<Matcher, SelectorError> {
        let start = self.pos;
        let name = match self.peek() {
            Some(b'"' | b'\'' | b'`') => {
                let name = self.string()?;
                self.skip_space();
                if matches!(self.peek(), Some(b',' | b'}')) {
                    // Prometheus 3: a lone quoted string is the metric name.
                    return Err(SelectorError::MetricName(name));
                }
                if name.is_empty() {
                    return Err(SelectorError::EmptyLabelName { at: start });
                }
                name
            }
            Some(b) if is_identifier_start(b) => self.identifier().to_owned(),
            _ => return Err(self.expected("a label name")),
        };
        self.skip_space();
        let op = self.op()?;
        self.skip_space();
        if !matches!(self.peek(), Some(b'"' | b'\'' | b'`')) {
            return Err(self.expected("a quoted label value"));
        }
        let value = self.string()?;
        Matcher::new(name, op, value)
    }

    fn op(&mut self) -> Result<MatchOp, SelectorError> {
        let rest = &self.input.as_bytes()[self.pos..];
        let (op, len) = match rest {
            [b'=', b'~', ..] => (MatchOp::Regex, 2),
            [b'!', b'=', ..] => (MatchOp::NotEqual, 2),
            [b'!', b'~', ..] => (MatchOp::NotRegex, 2),
            [b'=', ..] => (MatchOp::Equal, 1),
            _ => return Err(self.expected("one of `=`, `!=`, `=~`, `!~`")),
        };
        self.pos += len;
        Ok(op)
    }

    /// A quoted string: `"…"` and `'…'` with Go's escapes (no newline inside), `` `…` `` raw.
    fn string(&mut self) -> Result<String, SelectorError> {
        let start = self.pos;
        let bytes = self.input.as_bytes();
        let quote = bytes[start];
        self.pos += 1;
        if quote == b'`' {
            let len = self.input[self.pos..]
                .find('`')
                .ok_or(SelectorError::Unterminated { at: start })?;
            let raw = self.input[self.pos..self.pos + len].to_owned();
            self.pos += len + 1;
            return Ok(raw);
        }
        let mut out: Vec<u8> = Vec::new();
        loop {
            let Some(&b) = bytes.get(self.pos) else {
                return Err(SelectorError::Unterminated { at: start });
            };
            match b {
                b'\n' => return Err(SelectorError::Unterminated { at: start }),
                b if b == quote => {
                    self.pos += 1;
                    break;
                }
                b'\\' => self.escape(quote, &mut out)?,
                b => {
                    out.push(b);
                    self.pos += 1;
                }
            }
        }
        String::from_utf8(out).map_err(|_| SelectorError::InvalidUtf8 { at: start })
    }

    /// One backslash escape, as Go's `strconv.UnquoteChar` reads it.
    fn escape(&mut self, quote: u8, out: &mut Vec<u8>) -> Result<(), SelectorError> {
        let at = self.pos;
        let bytes = self.input.as_bytes();
        let invalid = SelectorError::InvalidEscape { at };
        let Some(&c) = bytes.get(at + 1) else {
            return Err(SelectorError::Unterminated { at });
        };
        self.pos = at + 2;
        let simple = match c {
            b'a' => Some(0x07),
            b'b' => Some(0x08),
            b'f' => Some(0x0c),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'v' => Some(0x0b),
            b'\\' => Some(b'\\'),
            b'"' | b'\'' if c == quote => Some(c),
            _ => None,
        };
        if let Some(byte) = simple {
            out.push(byte);
            return Ok(());
        }
        let (digits, radix) = match c {
            b'0'..=b'7' => (3, 8),
            b'x' => (2, 16),
            b'u' => (4, 16),
            b'U' => (8, 16),
            _ => return Err(invalid),
        };
        let first = if radix == 8 { at + 1 } else { at + 2 };
        let text = bytes
            .get(first..first + digits)
            .and_then(|d| std::str::from_utf8(d).ok())
            .filter(|d| d.chars().all(|ch| ch.is_digit(radix)))
            .ok_or_else(|| invalid.clone())?;
        let value = u32::from_str_radix(text, radix).map_err(|_| invalid.clone())?;
        self.pos = first + digits;
        match c {
            // Octal and `\x` give one byte each, as in Go; UTF-8 is checked on the whole.
            b'0'..=b'7' | b'x' => out.push(u8::try_from(value).map_err(|_| invalid)?),
            _ => {
                let ch = char::from_u32(value).ok_or(invalid)?;
                out.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes());
            }
        }
        Ok(())
    }

    fn identifier(&mut self) -> &str {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            self.pos += 1;
        }
        &self.input[start..self.pos]
    }

    fn identifier_with_colons(&mut self) -> &str {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
        {
            self.pos += 1;
        }
        &self.input[start..self.pos]
    }

    fn skip_space(&mut self) {
        while self
            .peek()
            .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.input.as_bytes().get(self.pos).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, b: u8, what: &'static str) -> Result<(), SelectorError> {
        if self.eat(b) {
            Ok(())
        } else {
            Err(self.expected(what))
        }
    }

    fn expected(&self, expected: &'static str) -> SelectorError {
        let found = match self.input[self.pos..].chars().next() {
            Some(c) => format!("`{c}`"),
            None => "end of input".to_owned(),
        };
        SelectorError::Expected {
            at: self.pos,
            expected,
            found,
        }
    }
}

fn is_identifier_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

#[cfg(test)]
mod tests;
