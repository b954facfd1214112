//! The settings every replica must share, because they decide the verdict on an entry or
//! what a replica accepts: the `--push.*` and `--storage.max-*` flags, the expiry rules and
//! the quotas.
//! Their description is stored in Redis next to the stream (`{<prefix>}:settings`); a
//! replica whose own differs stays unready and refuses pushes until it is resolved.
//!
//! The first replica to find no description stores its own. A replica started with
//! `--storage.redis.adopt-settings` stores its own at start, and a replica whose rules
//! changed on a reload stores the new ones: the operator asked for them.

use std::collections::HashSet;
use std::fmt::Write;

use redis::Script;

use crate::expiry::ExpiryPolicy;
use crate::store::Quota;

/// Lines shown at most in a mismatch's reason.
const SHOWN_DIFFERENCES: usize = 5;

/// The description: one `name=value` line per setting, in a fixed order.
pub fn describe(flags: &[(String, String)], policy: &ExpiryPolicy, quotas: &[Quota]) -> String {
    let mut text = String::new();
    for (name, value) in flags {
        let _ = writeln!(text, "{name}={value}");
    }
    let ttl = |t: Option<std::time::Duration>| t.map_or("none".into(), |t| format!("{t:?}"));
    let _ = writeln!(text, "expiry.default_ttl={}", ttl(policy.default_ttl));
    for (i, rule) in policy.rules.iter().enumerate() {
        let _ = write!(text, "expiry.rule.{i}=");
        for (name, value) in &rule.matcher.labels {
            let _ = write!(text, "{name}={value:?},");
        }
        for (name, regex) in &rule.matcher.labels_regex {
            let _ = write!(text, "{name}=~{:?},", regex.as_str());
        }
        let _ = writeln!(text, "ttl={:?}", rule.ttl);
    }
    for (i, quota) in quotas.iter().enumerate() {
        let _ = writeln!(text, "quota.{i}={}", quota.describe());
    }
    text
}

/// Why `stored` is not `mine`: the first differing lines of both.
pub fn differences(mine: &str, stored: &str) -> String {
    let only = |a: &str, b: &str| -> Vec<String> {
        let others: HashSet<&str> = b.lines().collect();
        a.lines()
            .filter(|line| !others.contains(line))
            .map(String::from)
            .collect()
    };
    let ours = only(mine, stored);
    let theirs = only(stored, mine);
    let shown = |lines: &[String]| {
        let mut text = lines
            .iter()
            .take(SHOWN_DIFFERENCES)
            .cloned()
            .collect::<Vec<_>>()
            .join(" ");
        if lines.len() > SHOWN_DIFFERENCES {
            let _ = write!(text, " (and {} more)", lines.len() - SHOWN_DIFFERENCES);
        }
        text
    };
    format!(
        "this replica's check-affecting settings differ from those stored in Redis: here [{}], \
         in Redis [{}]; run every replica with the same settings, or restart the replicas \
         with the new ones with --storage.redis.adopt-settings",
        shown(&ours),
        shown(&theirs)
    )
}

/// Stores `mine` when nothing is stored or when asked to (KEYS: settings; ARGV: mine,
/// 1 to replace what is stored); returns what is stored afterwards.
pub fn check_script() -> Script {
    Script::new(
        r"
local stored = redis.call('GET', KEYS[1])
if not stored or ARGV[2] == '1' then
  redis.call('SET', KEYS[1], ARGV[1])
  return ARGV[1]
end
return stored
",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expiry::ExpiryRule;
    use std::time::Duration;

    fn flags(max: &str) -> Vec<(String, String)> {
        vec![
            ("push.max-series".into(), max.into()),
            ("storage.max-groups".into(), "0".into()),
        ]
    }

    #[test]
    fn descriptions_differ_exactly_when_a_setting_does() {
        let none = ExpiryPolicy::default();
        let rule = ExpiryPolicy {
            default_ttl: None,
            rules: vec![ExpiryRule {
                matcher: crate::label_match::LabelMatcher {
                    labels: [("job".to_string(), "a\nb".to_string())].into(),
                    labels_regex: vec![],
                },
                ttl: Duration::from_secs(60),
            }],
        };
        assert_eq!(
            describe(&flags("10"), &none, &[]),
            describe(&flags("10"), &none, &[])
        );
        assert_ne!(
            describe(&flags("10"), &none, &[]),
            describe(&flags("11"), &none, &[])
        );
        assert_ne!(
            describe(&flags("10"), &none, &[]),
            describe(&flags("10"), &rule, &[])
        );
        // A label value cannot forge a line of its own.
        assert_eq!(describe(&flags("10"), &rule, &[]).lines().count(), 4);
        let why = differences(
            &describe(&flags("10"), &none, &[]),
            &describe(&flags("11"), &none, &[]),
        );
        assert!(
            why.contains("here [push.max-series=10]")
                && why.contains("in Redis [push.max-series=11]"),
            "{why}"
        );
    }
}
