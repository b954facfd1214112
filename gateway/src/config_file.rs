//! The optional TOML configuration file (`--config.file`): flag values under `[flags]`
//! (a flag given on the command line wins) and what does not fit flags, the expiry rules
//! under `[expiry]`, the users' access rules (`[[access]]`) and the quotas (`[[quota]]`,
//! both in [`access`]). Unknown keys, unknown flags and wrong types are rejected with the
//! line and the reason.
//!
//! `[[aggregate]]` tables name groups that aggregate when pushed on `/metrics/job/...`
//! (see [`aggregate`]).
//!
//! ```toml
//! [flags]
//! "persistence.file" = "/data/pushgateway.db"
//! "web.enable-lifecycle" = true
//!
//! [expiry]
//! default_ttl = "24h"           # groups without a matching rule; omit: never expire
//!
//! [[expiry.rules]]              # the first matching rule wins
//! labels = { job = "backup" }   # exact values of grouping labels
//! ttl = "2h"
//!
//! [[expiry.rules]]
//! labels_regex = { job = "batch-.*" }   # fully anchored regular expressions
//! ttl = "30m"
//!
//! [[access]]                    # what one user may do; users without an entry: anything
//! user = "team-a"
//! push = { job = "team-a-.*" }  # push and delete only groups matching (anchored)
//! scrape = false                # GET /metrics, /api/v1/*, the UI
//! admin = false                 # wipe, deletes by matcher, /-/reload, /-/quit
//!
//! [[quota]]
//! name = "team-a"
//! labels_regex = { job = "team-a-.*" }
//! max_series = 100000
//! max_groups = 500
//!
//! [[aggregate]]                 # ordinary pushes to matching groups add up
//! match = '{job=~"lambda-.*"}'
//! ```

mod access;
mod aggregate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::duration::parse_go_duration;
use crate::expiry::{ExpiryPolicy, ExpiryRule};
use crate::label_match::{anchored, LabelMatcher};
use crate::store::Quota;
use crate::web::{AccessRules, AggregateRules};

/// A configuration file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("config file {path}: {reason}")]
pub struct ConfigFileError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong, with the line where known.
    pub reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileFormat {
    #[serde(default)]
    flags: BTreeMap<Spanned<String>, Spanned<toml::Value>>,
    #[serde(default)]
    expiry: ExpiryFormat,
    #[serde(default)]
    access: Vec<Spanned<access::AccessFormat>>,
    #[serde(default)]
    quota: Vec<Spanned<access::QuotaFormat>>,
    #[serde(default)]
    aggregate: Vec<aggregate::AggregateFormat>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpiryFormat {
    default_ttl: Option<Spanned<String>>,
    #[serde(default)]
    rules: Vec<RuleFormat>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFormat {
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    labels_regex: BTreeMap<String, Spanned<String>>,
    ttl: Spanned<String>,
}

/// The contents of a configuration file.
#[derive(Debug, Clone, Default)]
pub struct ConfigFile {
    /// Flags as command-line arguments (`--name=value`), to go before the real ones.
    pub args: Vec<(String, String)>,
    /// The expiry rules.
    pub expiry: ExpiryPolicy,
    /// The users' access rules.
    pub access: AccessRules,
    /// The quotas.
    pub quotas: Vec<Quota>,
    /// The groups that aggregate when pushed on the ordinary paths.
    pub aggregate: AggregateRules,
}

/// Reads and checks a configuration file; `known_flag` tells whether a long flag exists
/// and takes a value (`Some(true)`), is a switch (`Some(false)`), or is unknown (`None`).
///
/// # Errors
/// [`ConfigFileError`] with the line and the reason.
pub fn load(
    path: &Path,
    known_flag: impl Fn(&str) -> Option<bool>,
) -> Result<ConfigFile, ConfigFileError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigFileError {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let source = Source { path, text: &text };
    let error = |span: std::ops::Range<usize>, reason: String| source.error(span, reason);
    let format: FileFormat = toml::from_str(&text).map_err(|e| ConfigFileError {
        path: path.to_path_buf(),
        reason: match e.span() {
            Some(span) => format!("line {}: {}", line_of(&text, span.start), e.message()),
            None => e.message().to_string(),
        },
    })?;

    let mut args = Vec::new();
    for (name, value) in &format.flags {
        let flag = name.get_ref();
        let takes_value = match known_flag(flag) {
            _ if flag == "config.file" => {
                return Err(error(
                    name.span(),
                    "config.file cannot be set in the config file".into(),
                ))
            }
            Some(takes_value) => takes_value,
            None => return Err(error(name.span(), format!("unknown flag {flag:?}"))),
        };
        let rendered = match (value.get_ref(), takes_value) {
            (toml::Value::Boolean(true), false) => String::new(),
            (toml::Value::Boolean(false), false) => continue,
            (toml::Value::String(s), true) => s.clone(),
            (toml::Value::Integer(i), true) => i.to_string(),
            (toml::Value::Float(f), true) => f.to_string(),
            (other, false) => {
                return Err(error(
                    value.span(),
                    format!(
                        "flag {flag:?} is a switch and needs true or false, not {}",
                        other.type_str()
                    ),
                ))
            }
            (other, true) => {
                return Err(error(
                    value.span(),
                    format!(
                        "flag {flag:?} needs a string or a number, not {}",
                        other.type_str()
                    ),
                ))
            }
        };
        args.push((flag.clone(), rendered));
    }

    let duration =
        |s: &Spanned<String>| parse_go_duration(s.get_ref()).map_err(|e| error(s.span(), e));
    let default_ttl = format
        .expiry
        .default_ttl
        .as_ref()
        .map(duration)
        .transpose()?;
    let mut rules = Vec::new();
    for rule in &format.expiry.rules {
        let ttl = duration(&rule.ttl)?;
        let matcher = source.matcher(&rule.labels, &rule.labels_regex)?;
        if matcher.is_empty() {
            return Err(error(
                rule.ttl.span(),
                "a rule needs labels or labels_regex to match".into(),
            ));
        }
        rules.push(ExpiryRule { matcher, ttl });
    }
    let aggregate =
        aggregate::rules(&format.aggregate).map_err(|(span, reason)| error(span, reason))?;
    Ok(ConfigFile {
        args,
        expiry: ExpiryPolicy { default_ttl, rules },
        access: access::access_rules(&source, &format.access)?,
        quotas: access::quotas(&source, &format.quota)?,
        aggregate,
    })
}

/// The file's text, to turn positions into line numbers in errors.
struct Source<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Source<'_> {
    fn error(&self, span: std::ops::Range<usize>, reason: String) -> ConfigFileError {
        ConfigFileError {
            path: self.path.to_path_buf(),
            reason: format!("line {}: {reason}", line_of(self.text, span.start)),
        }
    }

    /// Exact values and anchored expressions of grouping labels, as rules and quotas
    /// write them.
    fn matcher(
        &self,
        labels: &BTreeMap<String, String>,
        labels_regex: &BTreeMap<String, Spanned<String>>,
    ) -> Result<LabelMatcher, ConfigFileError> {
        let mut compiled = Vec::new();
        for (name, expression) in labels_regex {
            let regex = anchored(expression.get_ref()).map_err(|e| {
                self.error(
                    expression.span(),
                    format!("invalid regular expression: {e}"),
                )
            })?;
            compiled.push((name.clone(), regex));
        }
        Ok(LabelMatcher {
            labels: labels.clone(),
            labels_regex: compiled,
        })
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str) -> Result<ConfigFile, ConfigFileError> {
        let path = std::env::temp_dir().join(format!(
            "pgw-config-{}-{}.toml",
            std::process::id(),
            text.len()
        ));
        std::fs::write(&path, text).expect("write");
        let known = |name: &str| match name {
            "web.listen-address" | "persistence.file" => Some(true),
            "web.enable-lifecycle" => Some(false),
            _ => None,
        };
        let result = load(&path, known);
        let _ = std::fs::remove_file(&path);
        result
    }

    #[test]
    fn reads_flags_and_rules() {
        let file = load_text(
            "[flags]\n\"persistence.file\" = \"/d/p.db\"\n\"web.enable-lifecycle\" = true\n\n[expiry]\ndefault_ttl = \"1h\"\n[[expiry.rules]]\nlabels = { job = \"a\" }\nttl = \"5m\"\n",
        )
        .expect("valid");
        assert_eq!(
            file.args,
            vec![
                ("persistence.file".to_string(), "/d/p.db".to_string()),
                ("web.enable-lifecycle".to_string(), String::new())
            ]
        );
        assert_eq!(file.expiry.rules.len(), 1);
        assert_eq!(
            file.expiry.default_ttl,
            Some(std::time::Duration::from_secs(3600))
        );
    }

    #[test]
    fn reads_access_rules_and_quotas() {
        let file = load_text(
            "[[access]]\nuser = \"team-a\"\npush = { job = \"team-a-.*\" }\n\n[[access]]\nuser = \"ops\"\nadmin = true\nscrape = true\n\n[[quota]]\nlabels_regex = { job = \"team-a-.*\" }\nmax_series = 100\n\n[[quota]]\nname = \"backup\"\nlabels = { job = \"backup\" }\nmax_groups = 3\n",
        )
        .expect("valid");
        assert!(!file.access.is_empty());
        let names: Vec<_> = file.quotas.iter().map(|q| q.name.as_str()).collect();
        assert_eq!(
            names,
            [r#"{job=~"team-a-.*"}"#, "backup"],
            "the default name is the selector"
        );
        assert_eq!(
            (file.quotas[0].max_series, file.quotas[0].max_groups),
            (Some(100), None)
        );
        assert_eq!(file.quotas[1].max_groups, Some(3));
    }

    #[test]
    fn reads_aggregate_rules() {
        let file = load_text(
            "[[aggregate]]\nmatch = '{job=~\"lambda-.*\"}'\n[[aggregate]]\nmatch = '{job=\"fanout\",stage!=\"\"}'\n",
        )
        .expect("valid");
        let key =
            |job: &str| crate::model::GroupingKey::new(vec![crate::model::Label::new("job", job)]);
        assert!(file.aggregate.matches(&key("lambda-resize")));
        assert!(!file.aggregate.matches(&key("batch")));
        assert!(!file.aggregate.matches(&key("fanout")));
        assert_eq!(file.aggregate.selectors().len(), 2);
    }

    #[test]
    fn rejections_name_the_line() {
        for (text, line, words) in [
            ("[flags]\n\"no.such\" = \"x\"\n", 2, "unknown flag"),
            ("[expiry]\nbogus = 1\n", 2, "unknown field"),
            ("[expiry]\ndefault_ttl = 5\n", 2, "string"),
            ("[expiry]\ndefault_ttl = \"5 parsecs\"\n", 2, "duration"),
            ("[flags]\n\"web.enable-lifecycle\" = \"yes\"\n", 2, "switch"),
            (
                "\n[[aggregate]]\nmatch = '{job=~\"(\"}'\n",
                3,
                "invalid selector",
            ),
            ("[[aggregate]]\nmatch = '{job=~\".*\"}'\n", 2, "every group"),
            (
                "[[aggregate]]\nselector = '{job=\"a\"}'\n",
                2,
                "unknown field",
            ),
            (
                "\n\n[[expiry.rules]]\nlabels_regex = { job = \"(\" }\nttl = \"1m\"\n",
                4,
                "regular expression",
            ),
            ("[[access]]\nuser = \"a\"\nbogus = 1\n", 3, "unknown field"),
            ("[[access]]\nuser = \"\"\n", 2, "must not be empty"),
            (
                "[[access]]\nuser = \"a\"\n[[access]]\nuser = \"a\"\n",
                4,
                "second entry",
            ),
            (
                "[[access]]\nuser = \"a\"\npush = { job = \"[\" }\n",
                3,
                "regular expression",
            ),
            ("[[quota]]\nmax_series = 5\n", 1, "labels"),
            ("[[quota]]\nlabels = { job = \"a\" }\n", 1, "max_series or max_groups"),
            (
                "[[quota]]\nlabels = { job = \"a\" }\nmax_groups = 0\n",
                3,
                "at least 1",
            ),
            (
                "[[quota]]\nlabels = { job = \"a\" }\nmax_series = -1\n",
                3,
                "at least 1",
            ),
            (
                "[[quota]]\nname = \"q\"\nlabels = { job = \"a\" }\nmax_series = 1\n\n[[quota]]\nname = \"q\"\nlabels = { job = \"b\" }\nmax_series = 1\n",
                6,
                "taken",
            ),
        ] {
            let error = load_text(text)
                .err()
                .unwrap_or_else(|| panic!("{text:?} accepted"));
            let message = error.to_string();
            assert!(
                message.contains(&format!("line {line}")),
                "{text:?}: {message}"
            );
            assert!(message.contains(words), "{text:?}: {message}");
        }
    }
}
