//! `/api/v1/groups`: groups chosen by PromQL selectors (`match[]`, repeatable, OR-ed).
//!
//! `GET` lists them in grouping-key order, a page at a time with `limit`; a page that is
//! not the last carries `next`, which `after` takes to continue after it. `DELETE`
//! (behind `--web.enable-admin-api`) removes every matching group in one change, or with
//! `dry_run=true` only lists what it would remove. A selector that would match every group
//! cannot delete: wipe is the one way to do that.

use std::collections::BTreeMap;

use serde::Serialize;

use super::app::{App, HttpResponse};
use super::error::ApiError;
use super::json::{respond_json, unix_time};
use super::paging::{decode_cursor, encode_cursor, invalid, parse_limit, query_pairs};
use super::push::apply_everywhere;
use crate::clock::rfc3339;
use crate::model::GroupingKey;
use crate::replicate::ChangeRequest;
use crate::selector::Selector;
use crate::store::{GroupPage, GroupSummary};

/// The most `match[]` parameters one request may carry.
pub const MAX_SELECTORS: usize = 16;
/// The most regex matchers (`=~`, `!~`) in all the selectors of one request: each may
/// compile to `selector::MAX_REGEX_BYTES`, so this bounds what a request can allocate.
pub const MAX_REGEXES: usize = 32;

/// The parameters of a request.
#[derive(Debug, Default)]
struct GroupsQuery {
    selectors: Vec<Selector>,
    /// At most this many groups (`None`: all).
    limit: Option<usize>,
    /// Only groups after this key (from a previous page's `next`).
    after: Option<GroupingKey>,
    dry_run: bool,
}

/// `GET /api/v1/groups`: a page's `next` cursor goes beside `data` (see [`super::paging`]).
pub async fn list(app: &App, query: Option<&str>) -> Result<HttpResponse, ApiError> {
    let query = parse_query(query)?;
    if query.dry_run {
        return Err(invalid("dry_run applies to DELETE only"));
    }
    let page = list_off_workers(app, query.selectors, query.after, query.limit).await?;
    let next = page
        .more
        .then(|| page.groups.last().map(|last| encode_cursor(&last.key)))
        .flatten();
    let body = ListResponse {
        status: "success",
        data: page.groups.iter().map(group_json).collect(),
        next,
    };
    Ok(respond_json(&body))
}

/// `DELETE /api/v1/groups`.
pub async fn delete(app: &App, query: Option<&str>) -> Result<HttpResponse, ApiError> {
    if !app.config.enable_admin_api {
        return Err(ApiError::AdminApiDisabled);
    }
    let query = parse_query(query)?;
    if query.selectors.is_empty() {
        return Err(invalid(
            "at least one match[] selector is required (PUT /api/v1/admin/wipe deletes every group)",
        ));
    }
    if let Some(all) = query.selectors.iter().find(|s| s.matches_every_group()) {
        return Err(invalid(&format!(
            "selector {all} matches every group; use PUT /api/v1/admin/wipe to delete everything"
        )));
    }
    if query.limit.is_some() || query.after.is_some() {
        // A delete takes every match; a limit that it ignored would surprise.
        return Err(invalid("limit and after apply to listing only"));
    }
    let groups = if query.dry_run {
        list_off_workers(app, query.selectors, None, None)
            .await?
            .groups
    } else {
        let request = ChangeRequest::DeleteMatching {
            selectors: query.selectors,
        };
        let deleted = apply_everywhere(app, request).await?.deleted;
        tracing::info!(groups = deleted.len(), "deleted groups by matcher");
        deleted
    };
    let body = DeleteResponse {
        status: "success",
        data: DeleteData {
            deleted: if query.dry_run { 0 } else { groups.len() },
            dry_run: query.dry_run,
            matched: groups.len(),
            groups: groups.iter().map(group_json).collect(),
        },
    };
    Ok(respond_json(&body))
}

/// [`crate::store::Store::list_groups`] on the blocking pool: with selectors it may look at
/// every group.
async fn list_off_workers(
    app: &App,
    selectors: Vec<Selector>,
    after: Option<GroupingKey>,
    limit: Option<usize>,
) -> Result<GroupPage, ApiError> {
    let store = app.store.clone();
    // The store takes 0 for no limit; a parsed limit is at least 1.
    let limit = limit.unwrap_or(0);
    app.offload
        .always(move || store.list_groups(&selectors, after.as_ref(), limit))
        .await
}

#[derive(Serialize)]
struct ListResponse<'a> {
    status: &'static str,
    data: Vec<GroupJson<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
}

#[derive(Serialize)]
struct DeleteResponse<'a> {
    status: &'static str,
    data: DeleteData<'a>,
}

#[derive(Serialize)]
struct DeleteData<'a> {
    /// Groups removed (0 for a dry run).
    deleted: usize,
    dry_run: bool,
    /// Groups the selectors matched.
    matched: usize,
    groups: Vec<GroupJson<'a>>,
}

#[derive(Serialize)]
struct GroupJson<'a> {
    labels: BTreeMap<&'a str, &'a str>,
    /// RFC 3339; `null` for a group that never had a successful push.
    last_push: Option<String>,
    series: usize,
}

fn group_json(group: &GroupSummary) -> GroupJson<'_> {
    GroupJson {
        labels: group
            .key
            .labels()
            .iter()
            .map(|l| (&*l.name, &*l.value))
            .collect(),
        last_push: (group.push_time > 0.0).then(|| rfc3339(unix_time(group.push_time))),
        series: group.series,
    }
}

/// Reads `match[]`, `limit`, `after` and `dry_run` from a form-encoded query; other
/// parameters are ignored, as Prometheus's API does.
fn parse_query(query: Option<&str>) -> Result<GroupsQuery, ApiError> {
    let mut parsed = GroupsQuery::default();
    for (name, value) in query_pairs(query)? {
        match name.as_str() {
            "match[]" => {
                if parsed.selectors.len() == MAX_SELECTORS {
                    return Err(invalid(&format!(
                        "more than {MAX_SELECTORS} match[] selectors"
                    )));
                }
                let selector = Selector::parse(&value)
                    .map_err(|e| invalid(&format!("invalid match[] selector {value:?}: {e}")))?;
                let regexes: usize = parsed.selectors.iter().map(Selector::regex_count).sum();
                if regexes + selector.regex_count() > MAX_REGEXES {
                    return Err(invalid(&format!(
                        "more than {MAX_REGEXES} regex matchers in the match[] selectors"
                    )));
                }
                parsed.selectors.push(selector);
            }
            "limit" => parsed.limit = Some(parse_limit(&value)?),
            "after" => parsed.after = Some(decode_cursor(&value)?),
            "dry_run" => {
                parsed.dry_run = match value.as_str() {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => {
                        return Err(invalid(&format!(
                            "invalid dry_run {value:?}: expected true or false"
                        )))
                    }
                }
            }
            _ => {}
        }
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_is_form_decoded() {
        let q = parse_query(Some(
            "match%5B%5D=%7Bjob%3D%22a+b%22%7D&match[]={job=~\"x.*\"}&limit=5&dry_run=true&other=1",
        ))
        .expect("query");
        assert_eq!(q.selectors.len(), 2);
        assert_eq!(q.selectors[0].to_string(), r#"{job="a b"}"#);
        assert_eq!(q.limit, Some(5));
        assert!(q.dry_run);
    }

    #[test]
    fn bad_parameters_are_refused() {
        for query in [
            "match[]=job",
            "match[]={job=~\"(\"}",
            "limit=-1",
            "limit=x",
            "limit=0",
            "limit=10001",
            "dry_run=yes",
            "match[]=%ff",
        ] {
            assert!(parse_query(Some(query)).is_err(), "{query}");
        }
        let many = vec!["match[]={a=\"1\"}"; MAX_SELECTORS + 1].join("&");
        assert!(parse_query(Some(&many)).is_err());
        let regexes = format!(
            "match[]={{{}}}",
            (0..=MAX_REGEXES)
                .map(|i| format!("a{i}=~\"x\""))
                .collect::<Vec<_>>()
                .join(",")
        );
        let err = parse_query(Some(&regexes)).expect_err("too many regexes");
        assert!(err.to_string().contains("regex matchers"), "{err}");
    }
}
