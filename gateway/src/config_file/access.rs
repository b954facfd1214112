//! The `[[access]]` and `[[quota]]` tables of the configuration file, checked and turned
//! into [`AccessRules`] and [`Quota`]s.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use toml::Spanned;

use super::{ConfigFileError, Source};
use crate::store::Quota;
use crate::web::{AccessRules, UserAccess};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AccessFormat {
    user: Spanned<String>,
    /// Anchored expressions on grouping labels; absent: no pushes at all.
    #[serde(default)]
    push: Option<BTreeMap<String, Spanned<String>>>,
    #[serde(default)]
    scrape: bool,
    #[serde(default)]
    admin: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct QuotaFormat {
    #[serde(default)]
    name: Option<Spanned<String>>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    labels_regex: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    max_series: Option<Spanned<i64>>,
    #[serde(default)]
    max_groups: Option<Spanned<i64>>,
}

/// One entry per user; an entry grants only what it names.
pub(super) fn access_rules(
    source: &Source<'_>,
    entries: &[Spanned<AccessFormat>],
) -> Result<AccessRules, ConfigFileError> {
    let mut users = BTreeMap::new();
    for entry in entries {
        let format = entry.get_ref();
        let user = format.user.get_ref();
        if user.is_empty() {
            return Err(source.error(format.user.span(), "access: user must not be empty".into()));
        }
        let push = format
            .push
            .as_ref()
            .map(|scope| source.matcher(&BTreeMap::new(), scope))
            .transpose()?;
        let access = UserAccess {
            push,
            scrape: format.scrape,
            admin: format.admin,
        };
        if users.insert(user.clone(), access).is_some() {
            return Err(source.error(
                format.user.span(),
                format!("access: user {user:?} has a second entry; merge them into one"),
            ));
        }
    }
    Ok(AccessRules::new(users))
}

/// The quotas in file order, each with a unique name (by default its selector).
pub(super) fn quotas(
    source: &Source<'_>,
    entries: &[Spanned<QuotaFormat>],
) -> Result<Vec<Quota>, ConfigFileError> {
    let mut quotas = Vec::new();
    let mut names = BTreeSet::new();
    for entry in entries {
        let format = entry.get_ref();
        let error = |reason: &str| source.error(entry.span(), format!("quota: {reason}"));
        let matcher = source.matcher(&format.labels, &format.labels_regex)?;
        if matcher.is_empty() {
            return Err(error(
                "needs labels or labels_regex to say which groups it counts",
            ));
        }
        let limit = |value: &Option<Spanned<i64>>, key: &str| {
            value
                .as_ref()
                .map(|v| {
                    usize::try_from(*v.get_ref())
                        .ok()
                        .filter(|&v| v > 0)
                        .ok_or_else(|| {
                            source.error(
                                v.span(),
                                format!("quota: {key} must be at least 1 (omit it for no limit)"),
                            )
                        })
                })
                .transpose()
        };
        let max_series = limit(&format.max_series, "max_series")?;
        let max_groups = limit(&format.max_groups, "max_groups")?;
        if max_series.is_none() && max_groups.is_none() {
            return Err(error("needs max_series or max_groups"));
        }
        let name = match &format.name {
            Some(name) if name.get_ref().is_empty() => {
                return Err(source.error(name.span(), "quota: name must not be empty".into()))
            }
            Some(name) => name.get_ref().clone(),
            None => matcher.describe(),
        };
        if !names.insert(name.clone()) {
            return Err(error(&format!(
                "the name {name:?} is taken by an earlier quota"
            )));
        }
        quotas.push(Quota {
            name,
            matcher,
            max_series,
            max_groups,
        });
    }
    Ok(quotas)
}
