//! The line grammar: start of line, comments (`# HELP`, `# TYPE`), the metric name, the
//! value and the optional timestamp.

use crate::model::{Bucket, MetricType, Quantile, Str, Value};

use super::family::{MetricBuilder, Suffix};
use super::lexer::{is_blank_or_tab, parse_float};
use super::{Parser, State, Stop};

impl Parser<'_> {
    pub(super) fn start_of_line(&mut self) -> Option<State> {
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

    pub(super) fn start_comment(&mut self) -> Option<State> {
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

    pub(super) fn reading_metric_name(&mut self) -> Option<State> {
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

    pub(super) fn reading_value(&mut self) -> Option<State> {
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

    pub(super) fn start_timestamp(&mut self) -> Option<State> {
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

    pub(super) fn reading_help(&mut self) -> Option<State> {
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

    pub(super) fn reading_type(&mut self) -> Option<State> {
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
