//! The label part of a sample line: `{name="value",...}`, quoted metric names inside the
//! braces, duplicate detection, and the `quantile`/`le` labels of summaries and histograms.

use crate::model::{Label, MetricType, Str, BUCKET_LABEL, QUANTILE_LABEL};

use super::family::MetricBuilder;
use super::lexer::parse_float;
use super::{Parser, State};

impl Parser<'_> {
    pub(super) fn reading_labels(&mut self) -> Option<State> {
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
    pub(super) fn take_name_inside_braces(&mut self) -> bool {
        self.set_or_create_current_family();
        if self.failed() {
            return false;
        }
        self.ensure_type_set();
        self.current_metric = MetricBuilder::default();
        self.name_inside_braces_seen = true;
        true
    }

    pub(super) fn close_labels(&mut self) -> Option<State> {
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

    pub(super) fn start_label_name(&mut self) -> Option<State> {
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
    pub(super) fn is_duplicate_label(&mut self, name: &Str) -> bool {
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

    pub(super) fn start_label_value(&mut self) -> Option<State> {
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
}
