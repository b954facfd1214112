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

mod family;
mod labels;
mod lexer;
mod line;

use std::collections::{HashMap, HashSet};

use crate::model::{Label, MetricFamily, NameValidation, Str};

use super::{ParseError, ParseLimits};
use family::{FamilyBuilder, MetricBuilder, Suffix};

pub use lexer::parse_float;

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
}
