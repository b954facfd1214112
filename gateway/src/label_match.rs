//! Conditions on a group's grouping labels, shared by the expiry rules, the quotas and the
//! push scopes of users: exact values and fully anchored regular expressions, all of which
//! must hold. A label the key lacks has the empty value, as in PromQL.

use std::collections::BTreeMap;
use std::fmt::Write;

use regex::Regex;

use crate::model::GroupingKey;

/// Grouping labels with exact values and labels matching expressions; all must hold.
#[derive(Debug, Clone, Default)]
pub struct LabelMatcher {
    /// Grouping labels that must have exactly these values.
    pub labels: BTreeMap<String, String>,
    /// Grouping labels whose values must match these expressions completely.
    pub labels_regex: Vec<(String, Regex)>,
}

impl LabelMatcher {
    /// Whether every condition holds for `key` (always, without conditions).
    pub fn matches(&self, key: &GroupingKey) -> bool {
        self.labels
            .iter()
            .all(|(name, value)| key.get(name).is_some_and(|v| **v == **value))
            && self
                .labels_regex
                .iter()
                .all(|(name, regex)| regex.is_match(key.get(name).map_or("", |v| v)))
    }

    /// Whether it has no condition at all (and so matches every group).
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.labels_regex.is_empty()
    }

    /// The conditions as a PromQL selector, `{job="a",instance=~"b.*"}` (the expressions
    /// as written, without the anchors added here).
    pub fn describe(&self) -> String {
        let mut text = String::from("{");
        let conditions = self
            .labels
            .iter()
            .map(|(name, value)| (name, "=", value.as_str()))
            .chain(
                self.labels_regex
                    .iter()
                    .map(|(name, regex)| (name, "=~", unanchored(regex.as_str()))),
            );
        for (i, (name, operator, value)) in conditions.enumerate() {
            let comma = if i == 0 { "" } else { "," };
            let _ = write!(text, "{comma}{name}{operator}{value:?}");
        }
        text.push('}');
        text
    }
}

/// Compiles `expression` so that it must match a whole value, as PromQL's `=~`.
///
/// # Errors
/// The regex crate's reason.
pub fn anchored(expression: &str) -> Result<Regex, regex::Error> {
    // `.` matches a newline too, as in PromQL (and the selectors of `/api/v1/groups`): a
    // label value with a newline must not slip past a quota or a rule meant to cover it.
    Regex::new(&format!("^(?s:{expression})$"))
}

/// The expression given to [`anchored`].
fn unanchored(pattern: &str) -> &str {
    pattern
        .strip_prefix("^(?s:")
        .and_then(|p| p.strip_suffix(")$"))
        .unwrap_or(pattern)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Label;

    fn key(labels: &[(&str, &str)]) -> GroupingKey {
        GroupingKey::new(labels.iter().map(|(n, v)| Label::new(*n, *v)).collect())
    }

    #[test]
    fn all_conditions_must_hold_and_expressions_are_anchored() {
        let matcher = LabelMatcher {
            labels: [("instance".to_string(), "a".to_string())].into(),
            labels_regex: vec![("job".into(), anchored("team-a-.*").expect("regex"))],
        };
        assert!(matcher.matches(&key(&[("job", "team-a-x"), ("instance", "a")])));
        assert!(!matcher.matches(&key(&[("job", "team-a-x"), ("instance", "b")])));
        assert!(!matcher.matches(&key(&[("job", "x-team-a-x"), ("instance", "a")])));
        assert!(!matcher.matches(&key(&[("job", "team-a-x")])));
        assert!(
            matcher.matches(&key(&[("job", "team-a-x\ny"), ("instance", "a")])),
            "a newline is any character, as in PromQL"
        );
        // A missing label is the empty value.
        let optional = LabelMatcher {
            labels: BTreeMap::new(),
            labels_regex: vec![("env".into(), anchored("|dev").expect("regex"))],
        };
        assert!(optional.matches(&key(&[("job", "j")])));
        assert!(LabelMatcher::default().matches(&key(&[("job", "j")])));
        assert_eq!(
            matcher.describe(),
            r#"{instance="a",job=~"team-a-.*"}"#,
            "as written"
        );
    }
}
