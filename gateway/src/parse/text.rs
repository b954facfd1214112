//! The Prometheus text exposition format 0.0.4, parsed as strictly as upstream's parser:
//! the same accepted inputs, the same rejections (a missing final newline, trailing blanks
//! after a value, CR line endings, bad escapes, duplicate label names, ...), and the same
//! grouping of `_sum`/`_count`/`_bucket` lines into summaries and histograms.
//!
//! It is a byte-at-a-time state machine so that every edge case falls out the way it does
//! upstream; it allocates one string per distinct label name and value.
//!
//! ```
//! use gateway::parse::text::parse;
//! use gateway::model::NameValidation;
//! let families = parse(b"# TYPE jobs counter\njobs{kind=\"a\"} 3\n", NameValidation::Legacy).unwrap();
//! assert_eq!(&*families[0].name, "jobs");
//! assert!(parse(b"jobs 3", NameValidation::Legacy).is_err()); // no final newline
//! ```

use std::collections::{HashMap, HashSet};

use crate::model::{
    Bucket, Label, Metric, MetricFamily, MetricType, NameValidation, Quantile, Str, Value,
    BUCKET_LABEL, QUANTILE_LABEL,
};

use super::{ParseError, ParseLimits};

/// Parses a text-format body into metric families, in order of first appearance. Families
/// without samples are dropped, as upstream does.
///
/// # Errors
/// The first syntax error, with its line number.
pub fn parse(input: &[u8], validation: NameValidation) -> Result<Vec<MetricFamily>, ParseError> {
    parse_limited(input, validation, ParseLimits::NONE)
}

/// [`parse`], refusing lines beyond `limits` with [`ParseError::Limit`].
///
/// # Errors
/// The first syntax error or exceeded limit, with its line number.
pub fn parse_limited(
    input: &[u8],
    validation: NameValidation,
    limits: ParseLimits,
) -> Result<Vec<MetricFamily>, ParseError> {
    let mut parser = Parser::new(input, validation, limits);
    let mut state = State::StartOfLine;
    while let Some(next) = parser.step(state) {
        state = next;
    }
    match parser.err {
        None => {}
        Some(Stop::Eof) => {
            return Err(ParseError::new(
                parser.line,
                "unexpected end of input stream".into(),
            ))
        }
        Some(Stop::Error(e)) => return Err(e),
    }
    Ok(parser.finish())
}

#[derive(Clone, Copy, Debug)]
enum State {
    StartOfLine,
    StartComment,
    ReadingMetricName,
    ReadingLabels,
    StartLabelName,
    StartLabelValue,
    ReadingValue,
    StartTimestamp,
    ReadingHelp,
    ReadingType,
}

enum Stop {
    Eof,
    Error(ParseError),
}

/// A family under construction: its type stays unset until a TYPE line or a sample fixes it.
struct FamilyBuilder {
    name: Str,
    help: Option<Str>,
    metric_type: Option<MetricType>,
    metrics: Vec<MetricBuilder>,
}

impl FamilyBuilder {
    /// The effective type as upstream's getter reports it: unset reads as counter.
    fn effective_type(&self) -> MetricType {
        self.metric_type.unwrap_or(MetricType::Counter)
    }
}

#[derive(Default)]
struct MetricBuilder {
    labels: Vec<Label>,
    value: Option<Value>,
    timestamp_ms: Option<i64>,
}

/// Which special sample of a summary or histogram the current line is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Suffix {
    None,
    Sum,
    Count,
}

struct Parser<'a> {
    input: &'a [u8],
    pos: usize,
    validation: NameValidation,
    limits: ParseLimits,
    /// Input offset past which the current line is too long.
    line_limit: usize,
    err: Option<Stop>,
    line: usize,
    current_byte: u8,
    token: Vec<u8>,
    families: Vec<FamilyBuilder>,
    family_index: HashMap<Str, usize>,
    strings: HashMap<Vec<u8>, Str>,
    current_family: Option<usize>,
    current_metric: MetricBuilder,
    /// Index of the metric the current line writes to, once known.
    current_metric_slot: Option<usize>,
    pending_labels: Vec<Label>,
    /// The names in `pending_labels` once there are more than a few.
    pending_names: HashSet<Str>,
    current_label_name: Option<Str>,
    /// Labels identifying a summary/histogram metric (all but quantile/le), sorted.
    signature_labels: Vec<(Str, Str)>,
    signatures: HashMap<(usize, Vec<(Str, Str)>), usize>,
    current_quantile: f64,
    current_bucket: f64,
    suffix: Suffix,
    inside_braces: bool,
    name_inside_braces_seen: bool,
}

impl<'a> Parser<'a> {
    fn new(input: &'a [u8], validation: NameValidation, limits: ParseLimits) -> Self {
        Parser {
            input,
            pos: 0,
            validation,
            limits,
            line_limit: usize::MAX,
            err: None,
            line: 0,
            current_byte: 0,
            token: Vec::new(),
            families: Vec::new(),
            family_index: HashMap::new(),
            strings: HashMap::new(),
            current_family: None,
            current_metric: MetricBuilder::default(),
            current_metric_slot: None,
            pending_labels: Vec::new(),
            pending_names: HashSet::new(),
            current_label_name: None,
            signature_labels: Vec::new(),
            signatures: HashMap::new(),
            current_quantile: f64::NAN,
            current_bucket: f64::NAN,
            suffix: Suffix::None,
            inside_braces: false,
            name_inside_braces_seen: false,
        }
    }

    fn finish(self) -> Vec<MetricFamily> {
        self.families
            .into_iter()
            .filter(|f| !f.metrics.is_empty())
            .map(|f| {
                let metric_type = f.effective_type();
                MetricFamily {
                    name: f.name,
                    help: f.help,
                    metric_type,
                    metrics: f
                        .metrics
                        .into_iter()
                        .map(|m| Metric {
                            labels: m.labels.into_boxed_slice(),
                            value: m.value.unwrap_or_else(|| empty_value(metric_type)),
                            extras: Metric::extras_from(m.timestamp_ms, Default::default()),
                        })
                        .collect(),
                }
            })
            .collect()
    }

    // === byte access, mirroring a buffered reader: at the end the byte reads as 0 ===

    fn read_byte(&mut self) -> bool {
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

    fn failed(&self) -> bool {
        self.err.is_some()
    }

    fn error(&mut self, msg: String) {
        self.err = Some(Stop::Error(ParseError::new(self.line, msg)));
    }

    fn limit_exceeded(&mut self, message: String) {
        let line = self.line;
        self.err = Some(Stop::Error(ParseError::Limit { line, message }));
    }

    fn skip_blank_tab(&mut self) {
        while self.read_byte() && is_blank_or_tab(self.current_byte) {}
    }

    fn skip_blank_tab_if_current_blank_tab(&mut self) {
        if is_blank_or_tab(self.current_byte) {
            self.skip_blank_tab();
        }
    }

    fn token_string(&self) -> String {
        String::from_utf8_lossy(&self.token).into_owned()
    }

    /// Interns the current token so that repeated names and values share one allocation.
    fn token_str(&mut self) -> Str {
        if let Some(s) = self.strings.get(&self.token) {
            return s.clone();
        }
        let s: Str = String::from_utf8_lossy(&self.token).into();
        self.strings.insert(self.token.clone(), s.clone());
        s
    }

    fn read_token_until_whitespace(&mut self) {
        self.token.clear();
        while !self.failed() && !is_blank_or_tab(self.current_byte) && self.current_byte != b'\n' {
            self.token.push(self.current_byte);
            self.read_byte();
        }
    }

    /// Appends the character an escape (`\\`, `\n`, `\"`) stands for; any other escape in
    /// HELP text and names is an error. Returns whether parsing may go on.
    fn push_escaped(&mut self) -> bool {
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

    fn read_token_until_newline(&mut self, recognize_escapes: bool) {
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
    fn read_name_token(&mut self, is_label: bool) {
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

    fn read_token_as_label_value(&mut self) {
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

    // === families ===

    fn family(&self) -> Option<&FamilyBuilder> {
        self.current_family.map(|i| &self.families[i])
    }

    fn family_type(&self) -> MetricType {
        self.family()
            .map(FamilyBuilder::effective_type)
            .unwrap_or(MetricType::Counter)
    }

    fn family_name(&self) -> String {
        self.family()
            .map(|f| f.name.to_string())
            .unwrap_or_default()
    }

    /// Finds or creates the family the current token names, recognising `_sum`, `_count`
    /// and `_bucket` lines of an already declared summary or histogram.
    fn set_or_create_current_family(&mut self) {
        self.suffix = Suffix::None;
        let name = self.token_string();
        if !self.validation.is_valid_metric_name(&name) {
            self.error(format!("invalid metric name {name:?}"));
            return;
        }
        if let Some(&i) = self.family_index.get(name.as_str()) {
            self.current_family = Some(i);
            return;
        }
        let (base, suffix) = split_suffix(&name, false);
        if suffix != Suffix::None {
            if let Some(&i) = self.family_index.get(base) {
                if self.families[i].effective_type() == MetricType::Summary {
                    self.current_family = Some(i);
                    self.suffix = suffix;
                    return;
                }
            }
        }
        let (base, suffix) = split_suffix(&name, true);
        if base.len() != name.len() {
            if let Some(&i) = self.family_index.get(base) {
                if self.families[i].effective_type().is_histogram_like() {
                    self.current_family = Some(i);
                    self.suffix = suffix;
                    return;
                }
            }
        }
        let name: Str = name.into();
        self.family_index.insert(name.clone(), self.families.len());
        self.current_family = Some(self.families.len());
        self.families.push(FamilyBuilder {
            name,
            help: None,
            metric_type: None,
            metrics: Vec::new(),
        });
    }

    fn ensure_type_set(&mut self) {
        if let Some(i) = self.current_family {
            let family = &mut self.families[i];
            if family.metric_type.is_none() {
                family.metric_type = Some(MetricType::Untyped);
            }
        }
    }

    // === states ===

    fn step(&mut self, state: State) -> Option<State> {
        let next = match state {
            State::StartOfLine => self.start_of_line(),
            State::StartComment => self.start_comment(),
            State::ReadingMetricName => self.reading_metric_name(),
            State::ReadingLabels => self.reading_labels(),
            State::StartLabelName => self.start_label_name(),
            State::StartLabelValue => self.start_label_value(),
            State::ReadingValue => self.reading_value(),
            State::StartTimestamp => self.start_timestamp(),
            State::ReadingHelp => self.reading_help(),
            State::ReadingType => self.reading_type(),
        };
        // A state that hit an error or the end of input stops the machine.
        match next {
            Some(_) if self.failed() => None,
            other => other,
        }
    }

    fn start_of_line(&mut self) -> Option<State> {
        self.line += 1;
        self.line_limit = self.pos.saturating_add(self.limits.max_line_bytes);
        self.inside_braces = false;
        self.name_inside_braces_seen = false;
        self.skip_blank_tab();
        if self.failed() {
            // The end of input at the start of a line is the regular end.
            if matches!(self.err, Some(Stop::Eof)) {
                self.err = None;
            }
            return None;
        }
        match self.current_byte {
            b'#' => Some(State::StartComment),
            b'\n' => Some(State::StartOfLine),
            b'{' => {
                self.inside_braces = true;
                Some(State::ReadingLabels)
            }
            _ => Some(State::ReadingMetricName),
        }
    }

    fn start_comment(&mut self) -> Option<State> {
        self.skip_blank_tab();
        if self.failed() {
            return None;
        }
        if self.current_byte == b'\n' {
            return Some(State::StartOfLine);
        }
        self.read_token_until_whitespace();
        if self.failed() {
            return None;
        }
        if self.current_byte == b'\n' {
            return Some(State::StartOfLine);
        }
        let keyword = self.token_string();
        if keyword != "HELP" && keyword != "TYPE" {
            // Any other comment is skipped up to the end of the line.
            while self.current_byte != b'\n' {
                if !self.read_byte() {
                    return None;
                }
            }
            return Some(State::StartOfLine);
        }
        self.skip_blank_tab();
        if self.failed() {
            return None;
        }
        self.read_name_token(false);
        if self.failed() {
            return None;
        }
        if self.current_byte == b'\n' {
            return Some(State::StartOfLine);
        }
        if !is_blank_or_tab(self.current_byte) {
            self.error("invalid metric name in comment".into());
            return None;
        }
        self.set_or_create_current_family();
        if self.failed() {
            return None;
        }
        self.skip_blank_tab();
        if self.failed() {
            return None;
        }
        if self.current_byte == b'\n' {
            return Some(State::StartOfLine);
        }
        Some(if keyword == "HELP" {
            State::ReadingHelp
        } else {
            State::ReadingType
        })
    }

    fn reading_metric_name(&mut self) -> Option<State> {
        self.read_name_token(false);
        if self.failed() {
            return None;
        }
        if self.token.is_empty() {
            self.error("invalid metric name".into());
            return None;
        }
        self.set_or_create_current_family();
        if self.failed() {
            return None;
        }
        self.ensure_type_set();
        self.current_metric = MetricBuilder::default();
        self.skip_blank_tab_if_current_blank_tab();
        if self.failed() {
            return None;
        }
        Some(State::ReadingLabels)
    }

    fn reading_labels(&mut self) -> Option<State> {
        // The signature labels are reset for every line; they matter only for summaries
        // and histograms, whose lines are merged by them.
        self.signature_labels.clear();
        self.current_quantile = f64::NAN;
        self.current_bucket = f64::NAN;
        self.pending_labels.clear();
        if !self.pending_names.is_empty() {
            self.pending_names.clear();
        }
        if self.current_byte != b'{' {
            return Some(State::ReadingValue);
        }
        Some(State::StartLabelName)
    }

    /// Opens a family whose name was given inside the braces (`{"name", a="b"}`).
    fn take_name_inside_braces(&mut self) -> bool {
        self.set_or_create_current_family();
        if self.failed() {
            return false;
        }
        self.ensure_type_set();
        self.current_metric = MetricBuilder::default();
        self.name_inside_braces_seen = true;
        true
    }

    fn close_labels(&mut self) -> Option<State> {
        if self.current_family.is_none() {
            self.error("invalid metric name".into());
            return None;
        }
        let labels = std::mem::take(&mut self.pending_labels);
        self.current_metric.labels.extend(labels);
        self.skip_blank_tab();
        if self.failed() {
            return None;
        }
        Some(State::ReadingValue)
    }

    fn start_label_name(&mut self) -> Option<State> {
        self.skip_blank_tab();
        if self.failed() {
            return None;
        }
        if self.current_byte == b'}' {
            return self.close_labels();
        }
        self.read_name_token(true);
        if self.failed() {
            return None;
        }
        if self.token.is_empty() {
            let msg = format!("invalid label name for metric {:?}", self.family_name());
            self.error(msg);
            return None;
        }
        self.skip_blank_tab_if_current_blank_tab();
        if self.failed() {
            return None;
        }
        if self.current_byte != b'=' {
            if self.inside_braces {
                if self.name_inside_braces_seen {
                    let msg = format!("multiple metric names for metric {:?}", self.family_name());
                    self.error(msg);
                    return None;
                }
                return match self.current_byte {
                    b',' => self
                        .take_name_inside_braces()
                        .then_some(State::StartLabelName),
                    b'}' => {
                        if !self.take_name_inside_braces() {
                            return None;
                        }
                        self.close_labels()
                    }
                    other => {
                        self.error(format!("unexpected end of metric name '{}'", other as char));
                        None
                    }
                };
            }
            let found = self.current_byte as char;
            self.error(format!("expected '=' after label name, found '{found}'"));
            return None;
        }
        let name = self.token_str();
        if &*name == "__name__" {
            self.error("label name \"__name__\" is reserved".into());
            return None;
        }
        if !self.validation.is_valid_label_name(&name) {
            self.error(format!("invalid label name {name:?}"));
            return None;
        }
        let family_type = self.family_type();
        let special = (family_type == MetricType::Summary && &*name == QUANTILE_LABEL)
            || (family_type.is_histogram_like() && &*name == BUCKET_LABEL);
        if !special {
            if self.is_duplicate_label(&name) {
                let msg = format!("duplicate label names for metric {:?}", self.family_name());
                self.error(msg);
                return None;
            }
            if self.pending_labels.len() >= self.limits.max_labels_per_series {
                let msg = format!(
                    "metric {:?} has more than {} labels, the limit (--push.max-labels-per-series)",
                    self.family_name(),
                    self.limits.max_labels_per_series
                );
                self.limit_exceeded(msg);
                return None;
            }
            self.pending_labels.push(Label::new(name.clone(), ""));
        }
        self.current_label_name = Some(name);
        Some(State::StartLabelValue)
    }

    /// Whether the current line has a label `name` already: a scan for the few labels
    /// most lines have, a set beyond, so that a line costs linear time in its labels.
    fn is_duplicate_label(&mut self, name: &Str) -> bool {
        const SCAN_UP_TO: usize = 8;
        if self.pending_labels.len() < SCAN_UP_TO {
            return self.pending_labels.iter().any(|l| l.name == *name);
        }
        if self.pending_names.is_empty() {
            let names = self.pending_labels.iter().map(|l| l.name.clone());
            self.pending_names.extend(names);
        }
        !self.pending_names.insert(name.clone())
    }

    fn start_label_value(&mut self) -> Option<State> {
        self.skip_blank_tab();
        if self.failed() {
            return None;
        }
        if self.current_byte != b'"' {
            let found = self.current_byte as char;
            self.error(format!(
                "expected '\"' at start of label value, found '{found}'"
            ));
            return None;
        }
        self.read_token_as_label_value();
        if self.failed() {
            return None;
        }
        if std::str::from_utf8(&self.token).is_err() {
            let msg = format!("invalid label value {:?}", self.token_string());
            self.error(msg);
            return None;
        }
        let value = self.token_str();
        let name = self.current_label_name.clone().unwrap_or_else(|| "".into());
        let family_type = self.family_type();
        if family_type == MetricType::Summary && &*name == QUANTILE_LABEL {
            match parse_float(&value) {
                Some(q) => self.current_quantile = q,
                None => {
                    self.error(format!(
                        "expected float as value for 'quantile' label, got {value:?}"
                    ));
                    return None;
                }
            }
        } else if family_type.is_histogram_like() && &*name == BUCKET_LABEL {
            match parse_float(&value) {
                Some(le) => self.current_bucket = le,
                None => {
                    self.error(format!(
                        "expected float as value for 'le' label, got {value:?}"
                    ));
                    return None;
                }
            }
        } else {
            if let Some(label) = self.pending_labels.last_mut() {
                if label.name == name {
                    label.value = value.clone();
                }
            }
            if family_type == MetricType::Summary || family_type.is_histogram_like() {
                self.signature_labels.push((name, value));
            }
        }
        self.skip_blank_tab();
        if self.failed() {
            return None;
        }
        match self.current_byte {
            b',' => Some(State::StartLabelName),
            b'}' => self.close_labels(),
            _ => {
                let value = self
                    .pending_labels
                    .last()
                    .map(|l| l.value.to_string())
                    .unwrap_or_default();
                self.error(format!("unexpected end of label value {value:?}"));
                None
            }
        }
    }

    /// Decides which metric the current line writes to: summaries and histograms merge
    /// lines with the same labels; every other line is a metric of its own.
    fn place_current_metric(&mut self) {
        let Some(family_index) = self.current_family else {
            return;
        };
        let family_type = self.families[family_index].effective_type();
        let metric = std::mem::take(&mut self.current_metric);
        if family_type == MetricType::Summary || family_type.is_histogram_like() {
            let mut signature = std::mem::take(&mut self.signature_labels);
            signature.sort();
            let key = (family_index, signature);
            if let Some(&slot) = self.signatures.get(&key) {
                self.current_metric_slot = Some(slot);
                return;
            }
            let slot = self.families[family_index].metrics.len();
            self.signatures.insert(key, slot);
            self.families[family_index].metrics.push(metric);
            self.current_metric_slot = Some(slot);
        } else {
            let slot = self.families[family_index].metrics.len();
            self.families[family_index].metrics.push(metric);
            self.current_metric_slot = Some(slot);
        }
    }

    fn current_metric_mut(&mut self) -> Option<&mut MetricBuilder> {
        let family = self.current_family?;
        let slot = self.current_metric_slot?;
        self.families[family].metrics.get_mut(slot)
    }

    fn reading_value(&mut self) -> Option<State> {
        self.place_current_metric();
        self.read_token_until_whitespace();
        if self.failed() {
            return None;
        }
        let token = self.token_string();
        let Some(value) = parse_float(&token) else {
            self.error(format!("expected float as value, got {token:?}"));
            return None;
        };
        let family_type = self.family_type();
        let family_name = self.family_name();
        let suffix = self.suffix;
        let quantile = self.current_quantile;
        let bucket = self.current_bucket;
        let mut problem = None;
        if let Some(metric) = self.current_metric_mut() {
            match family_type {
                MetricType::Counter => metric.value = Some(Value::Counter(value)),
                MetricType::Gauge => metric.value = Some(Value::Gauge(value)),
                MetricType::Untyped => metric.value = Some(Value::Untyped(value)),
                MetricType::Summary => {
                    let summary = match &mut metric.value {
                        Some(Value::Summary(s)) => s,
                        other => {
                            *other = Some(Value::Summary(Box::default()));
                            match other {
                                Some(Value::Summary(s)) => s,
                                _ => unreachable!("just set to a summary"),
                            }
                        }
                    };
                    match suffix {
                        // Go converts with uint64(value): truncation towards zero.
                        Suffix::Count => summary.count = value as u64,
                        Suffix::Sum => summary.sum = value,
                        Suffix::None if !quantile.is_nan() => {
                            summary.quantiles.push(Quantile { quantile, value })
                        }
                        Suffix::None => {}
                    }
                }
                MetricType::Histogram | MetricType::GaugeHistogram => {
                    let histogram = match &mut metric.value {
                        Some(Value::Histogram(h)) => h,
                        other => {
                            *other = Some(Value::Histogram(Box::default()));
                            match other {
                                Some(Value::Histogram(h)) => h,
                                _ => unreachable!("just set to a histogram"),
                            }
                        }
                    };
                    let integral = value == (value as u64) as f64;
                    match suffix {
                        Suffix::Count => {
                            if !integral && value < 0.0 {
                                problem =
                                    Some(format!("negative count for histogram {family_name:?}"));
                            } else {
                                histogram.count = if integral {
                                    (value as u64) as f64
                                } else {
                                    value
                                };
                                histogram.float_counts |= !integral;
                            }
                        }
                        Suffix::Sum => histogram.sum = value,
                        Suffix::None if !bucket.is_nan() => {
                            if !integral && value < 0.0 {
                                problem = Some(format!(
                                    "negative bucket population for histogram {family_name:?}"
                                ));
                            } else {
                                histogram.float_counts |= !integral;
                                histogram.buckets.push(Bucket {
                                    upper_bound: bucket,
                                    count: if integral {
                                        (value as u64) as f64
                                    } else {
                                        value
                                    },
                                });
                            }
                        }
                        Suffix::None => {}
                    }
                }
            }
        }
        if let Some(msg) = problem {
            self.error(msg);
            return None;
        }
        if self.current_byte == b'\n' {
            return Some(State::StartOfLine);
        }
        Some(State::StartTimestamp)
    }

    fn start_timestamp(&mut self) -> Option<State> {
        self.skip_blank_tab();
        if self.failed() {
            return None;
        }
        self.read_token_until_whitespace();
        if self.failed() {
            return None;
        }
        let token = self.token_string();
        let Ok(timestamp) = token.parse::<i64>() else {
            self.error(format!("expected integer as timestamp, got {token:?}"));
            return None;
        };
        if let Some(metric) = self.current_metric_mut() {
            metric.timestamp_ms = Some(timestamp);
        }
        self.read_token_until_newline(false);
        if self.failed() {
            return None;
        }
        if !self.token.is_empty() {
            let msg = format!("spurious string after timestamp: {:?}", self.token_string());
            self.error(msg);
            return None;
        }
        Some(State::StartOfLine)
    }

    fn reading_help(&mut self) -> Option<State> {
        if self.family().and_then(|f| f.help.as_ref()).is_some() {
            let msg = format!("second HELP line for metric name {:?}", self.family_name());
            self.error(msg);
            return None;
        }
        self.read_token_until_newline(true);
        if self.failed() {
            return None;
        }
        let help: Str = self.token_string().into();
        if let Some(i) = self.current_family {
            self.families[i].help = Some(help);
        }
        Some(State::StartOfLine)
    }

    fn reading_type(&mut self) -> Option<State> {
        if self.family().and_then(|f| f.metric_type).is_some() {
            let msg = format!(
                "second TYPE line for metric name {:?}, or TYPE reported after samples",
                self.family_name()
            );
            self.error(msg);
            return None;
        }
        self.read_token_until_newline(false);
        if self.failed() {
            return None;
        }
        let keyword = self.token_string();
        let Some(metric_type) = MetricType::from_keyword(&keyword) else {
            self.error(format!("unknown metric type {keyword:?}"));
            return None;
        };
        if let Some(i) = self.current_family {
            self.families[i].metric_type = Some(metric_type);
        }
        Some(State::StartOfLine)
    }
}

fn is_blank_or_tab(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Splits `_sum`/`_count` (and `_bucket` for histograms) off a sample name.
fn split_suffix(name: &str, with_bucket: bool) -> (&str, Suffix) {
    if name.len() > 6 && name.ends_with("_count") {
        (&name[..name.len() - 6], Suffix::Count)
    } else if name.len() > 4 && name.ends_with("_sum") {
        (&name[..name.len() - 4], Suffix::Sum)
    } else if with_bucket && name.len() > 7 && name.ends_with("_bucket") {
        (&name[..name.len() - 7], Suffix::None)
    } else {
        (name, Suffix::None)
    }
}

fn empty_value(metric_type: MetricType) -> Value {
    match metric_type {
        MetricType::Counter => Value::Counter(0.0),
        MetricType::Gauge => Value::Gauge(0.0),
        MetricType::Untyped => Value::Untyped(0.0),
        MetricType::Summary => Value::Summary(Box::default()),
        MetricType::Histogram | MetricType::GaugeHistogram => Value::Histogram(Box::default()),
    }
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
