//! The grouping key in a push URL: `/metrics/job/<job>{/<name>/<value>}`, with `@base64`
//! on the job or any label name marking a URL-safe base64 value. Parsing follows upstream:
//! the path is percent-decoded before it is split, and every rejection carries upstream's
//! reason.
//!
//! ```
//! use gateway::grouping::parse_grouping_path;
//! use gateway::model::NameValidation;
//! let key = parse_grouping_path("batch", false, "/instance@base64/aG9zdC8x", NameValidation::Legacy).unwrap();
//! assert_eq!(key.get("instance").map(|v| &**v), Some("host/1"));
//! assert_eq!(key.get("job").map(|v| &**v), Some("batch"));
//! ```

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;

use crate::model::{
    is_legacy_label_name, is_reserved_label_name, legacy_escaped, GroupingKey, Label,
    NameValidation, JOB_LABEL, RESERVED_LABEL_PREFIX,
};

/// Marks a base64-encoded value in the path.
pub const BASE64_SUFFIX: &str = "@base64";

/// A grouping key that cannot be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupingError {
    /// The job value is not valid base64.
    #[error("invalid base64 encoding in job name {0:?}")]
    JobBase64(String),
    /// A label name with no value, or a trailing slash after a value.
    #[error("odd number of components in label string {0:?}")]
    OddComponents(String),
    /// A label name that is not a valid name, or is reserved.
    #[error("improper label name {0:?}")]
    ImproperName(String),
    /// A label value that is not valid base64.
    #[error("invalid base64 encoding for label {name}={value:?}")]
    LabelBase64 {
        /// The label name.
        name: String,
        /// The undecodable value.
        value: String,
    },
    /// The job is empty.
    #[error("job name is required")]
    EmptyJob,
    /// Two label names that a scrape without UTF-8 names would show as one.
    #[error("label names {first:?} and {second:?} would both be exposed as {exposed:?}")]
    NameCollision {
        /// One name, decoded.
        first: String,
        /// The other name, decoded.
        second: String,
        /// The name both escape to.
        exposed: String,
    },
}

/// Go's `base64.RawURLEncoding` after trimming `=`: no padding, lenient trailing bits.
const LENIENT_URL_SAFE: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(true),
);

/// Decodes a base64 path value: URL-safe alphabet, padding optional, `=` alone is empty.
pub fn decode_base64(value: &str) -> Option<String> {
    let bytes = LENIENT_URL_SAFE.decode(value.trim_end_matches('=')).ok()?;
    String::from_utf8(bytes).ok()
}

/// Builds the grouping key from the (already percent-decoded) job segment and the rest of
/// the path after it (`""`, `"/"`, or `"/name/value/..."`).
///
/// # Errors
/// A [`GroupingError`] with upstream's reason.
pub fn parse_grouping_path(
    job: &str,
    job_is_base64: bool,
    labels_path: &str,
    validation: NameValidation,
) -> Result<GroupingKey, GroupingError> {
    let job = if job_is_base64 {
        decode_base64(job).ok_or_else(|| GroupingError::JobBase64(job.to_string()))?
    } else {
        job.to_string()
    };
    let mut labels = split_labels(labels_path, validation)?;
    if job.is_empty() {
        return Err(GroupingError::EmptyJob);
    }
    // The job from the path wins over a `job` label later in the path, as upstream.
    labels.push(Label::new(JOB_LABEL, job));
    let key = GroupingKey::new(labels);
    check_exposed_names(&key)?;
    Ok(key)
}

/// Refuses two distinct names that the default scrape escapes alike (`a.b` and `a_b` both
/// become `a_b`): every series of the group would carry that label twice there.
fn check_exposed_names(key: &GroupingKey) -> Result<(), GroupingError> {
    let labels = key.labels();
    if labels.iter().all(|l| is_legacy_label_name(&l.name)) {
        return Ok(());
    }
    let mut exposed: Vec<(String, &str)> = labels
        .iter()
        .map(|l| (legacy_escaped(&l.name, true).into_owned(), &*l.name))
        .collect();
    exposed.sort_unstable();
    match exposed.windows(2).find(|w| w[0].0 == w[1].0) {
        Some(pair) => Err(GroupingError::NameCollision {
            first: pair[0].1.to_string(),
            second: pair[1].1.to_string(),
            exposed: pair[0].0.clone(),
        }),
        None => Ok(()),
    }
}

fn split_labels(path: &str, validation: NameValidation) -> Result<Vec<Label>, GroupingError> {
    // The path after the job starts with `/` when it is not empty; anything else is no
    // label path (and slicing it by bytes could split a character).
    let rest = match path.strip_prefix('/') {
        Some(rest) => rest,
        None if path.is_empty() => return Ok(Vec::new()),
        None => return Err(GroupingError::OddComponents(path.to_string())),
    };
    if rest.is_empty() {
        return Ok(Vec::new());
    }
    let components: Vec<&str> = rest.split('/').collect();
    if !components.len().is_multiple_of(2) {
        return Err(GroupingError::OddComponents(path.to_string()));
    }
    let mut labels = Vec::with_capacity(components.len() / 2);
    for pair in components.chunks(2) {
        let (name, value) = (pair[0], pair[1]);
        let trimmed = name.strip_suffix(BASE64_SUFFIX).unwrap_or(name);
        let unescaped = match validation {
            NameValidation::Legacy => trimmed.to_string(),
            NameValidation::Utf8 => unescape_name(trimmed),
        };
        // The decoded name is the one stored and exposed, so it is the one checked:
        // `U______name____` is `__name__`.
        if !validation.is_valid_label_name(&unescaped)
            || is_reserved_label_name(&unescaped)
            || trimmed.starts_with(RESERVED_LABEL_PREFIX)
        {
            return Err(GroupingError::ImproperName(trimmed.to_string()));
        }
        let value = if trimmed.len() == name.len() {
            value.to_string()
        } else {
            decode_base64(value).ok_or_else(|| GroupingError::LabelBase64 {
                name: trimmed.to_string(),
                value: value.to_string(),
            })?
        };
        labels.push(Label::new(unescaped, value));
    }
    Ok(labels)
}

/// Reverses Prometheus' value-encoding escaping of names (`U__` prefix, `_` written as
/// `__`, other characters as `_<hex code point>_`). Anything malformed is left as it is.
pub fn unescape_name(name: &str) -> String {
    let Some(body) = name.strip_prefix("U__") else {
        return name.to_string();
    };
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '_' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'_') {
            chars.next();
            out.push('_');
            continue;
        }
        let mut hex = String::new();
        loop {
            match chars.next() {
                Some('_') => break,
                Some(h) if h.is_ascii_hexdigit() => hex.push(h),
                _ => return name.to_string(),
            }
        }
        match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
            Some(decoded) => out.push(decoded),
            None => return name.to_string(),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(job: &str, b64: bool, rest: &str) -> Result<Vec<(String, String)>, GroupingError> {
        parse_grouping_path(job, b64, rest, NameValidation::Legacy).map(|k| {
            k.labels()
                .iter()
                .map(|l| (l.name.to_string(), l.value.to_string()))
                .collect()
        })
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn accepted_paths() {
        assert_eq!(key("j", false, ""), Ok(pairs(&[("job", "j")])));
        assert_eq!(key("j", false, "/"), Ok(pairs(&[("job", "j")])));
        assert_eq!(
            key("j", false, "/b/2/a/1"),
            Ok(pairs(&[("a", "1"), ("b", "2"), ("job", "j")]))
        );
        assert_eq!(
            key("j", false, "/a/"),
            Ok(pairs(&[("a", ""), ("job", "j")]))
        );
        assert_eq!(key("j", false, "/job/other"), Ok(pairs(&[("job", "j")])));
        // Padding optional, "=" alone is the empty value, URL-safe alphabet.
        assert_eq!(key("Zm9v", true, ""), Ok(pairs(&[("job", "foo")])));
        assert_eq!(key("Zm9v==", true, ""), Ok(pairs(&[("job", "foo")])));
        assert_eq!(
            key("j", false, "/a@base64/="),
            Ok(pairs(&[("a", ""), ("job", "j")]))
        );
        assert_eq!(
            key("j", false, "/a@base64/Pz8-"),
            Ok(pairs(&[("a", "??>"), ("job", "j")]))
        );
    }

    #[test]
    fn rejected_paths() {
        assert!(matches!(
            key("j", false, "/a"),
            Err(GroupingError::OddComponents(_))
        ));
        assert!(matches!(
            key("j", false, "/a/1/"),
            Err(GroupingError::OddComponents(_))
        ));
        assert!(matches!(
            key("j", false, "/__a/1"),
            Err(GroupingError::ImproperName(_))
        ));
        assert!(matches!(
            key("j", false, "/a-b/1"),
            Err(GroupingError::ImproperName(_))
        ));
        assert!(matches!(
            key("j", false, "/a@base64/!!"),
            Err(GroupingError::LabelBase64 { .. })
        ));
        assert!(matches!(
            key("!!", true, ""),
            Err(GroupingError::JobBase64(_))
        ));
        assert_eq!(key("=", true, ""), Err(GroupingError::EmptyJob));
        assert_eq!(key("", false, ""), Err(GroupingError::EmptyJob));
    }

    #[test]
    fn utf8_names_are_checked_after_decoding() {
        let utf8 = |rest: &str| parse_grouping_path("j", false, rest, NameValidation::Utf8);
        assert_eq!(
            utf8("/U______name____/evil"),
            Err(GroupingError::ImproperName("U______name____".into()))
        );
        assert!(matches!(
            utf8("/U__a_2e_b/1/a_b/2"),
            Err(GroupingError::NameCollision { .. })
        ));
        // The same name twice is no collision: the last value wins, as upstream.
        assert!(utf8("/a_b/1/a_b/2").is_ok());
        assert!(utf8("/U__a_2e_b/1").is_ok());
    }

    #[test]
    fn utf8_names_are_unescaped() {
        assert_eq!(unescape_name("U__my_2e_name"), "my.name");
        assert_eq!(unescape_name("U__a__b"), "a_b");
        assert_eq!(unescape_name("plain"), "plain");
        assert_eq!(unescape_name("U__bad_zz_"), "U__bad_zz_");
    }
}
