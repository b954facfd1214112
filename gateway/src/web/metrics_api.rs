//! `/api/v1/metrics`: every group with its families, in upstream's JSON shape, streamed a
//! page of groups at a time in grouping-key order, or one page of it with `limit` and
//! `after` (the convention of [`super::paging`]).
//!
//! The whole list is never built in memory: the body is made as the client reads it, each
//! piece from a page of groups taken under a short read lock ([`Store::group_page`]) and
//! serialized on the blocking pool with no lock held; a group larger than a piece is split
//! between its families. Without `limit` and `after` the body is byte for byte what it was
//! as one buffer, `{"data":[...],"status":"success"}`; a page that is not the last adds
//! `"next":"<cursor>"` between the two, which upstream's clients ignore.
//!
//! Values are serialized straight from borrowed data (no `serde_json::Value` tree: with
//! thousands of groups that costs several times more). A group's keys are listed once,
//! sorted, as Go's encoder sorts map keys, and every inner object is a `BTreeMap` for the
//! same reason. A family named like one of the group's own keys (`labels`,
//! `last_push_successful`, `expires_at`) is left out of its group's object: upstream lets
//! it overwrite the group's labels, which leaves the group unidentifiable.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use serde::Serialize;

use super::app::{App, HttpResponse};
use super::error::ApiError;
use super::json::{respond_body, unix_time};
use super::paging::{decode_cursor, encode_cursor, parse_limit, query_pairs};
use super::response_body::ResponseBody;
use crate::clock::rfc3339;
use crate::expiry::ExpiryPolicy;
use crate::expose::number;
use crate::model::{GroupingKey, LabelRef, Series, SeriesLabels, ValueRef};
use crate::store::{
    GroupView, Store, PUSH_FAILURE_TIME_HELP, PUSH_FAILURE_TIME_METRIC, PUSH_TIME_HELP,
    PUSH_TIME_METRIC,
};

/// Groups per piece of the body, at most.
const PIECE_GROUPS: usize = 64;
/// Series per piece of the body, about (a piece holds at least one group, however large):
/// a piece costs a few milliseconds to serialize, on the blocking pool.
const PIECE_SERIES: usize = 4_096;

/// `GET /api/v1/metrics`: every group, or with `limit` and/or `after` one page of them.
///
/// # Errors
/// [`ApiError::InvalidParameter`] for a `limit` that is not from 1 to
/// [`MAX_LIMIT`](super::paging::MAX_LIMIT) or an
/// `after` that is not a `next` cursor.
pub fn list(app: &App, query: Option<&str>) -> Result<HttpResponse, ApiError> {
    let mut limit = None;
    let mut after = None;
    // Other parameters are ignored, as Prometheus's API does.
    for (name, value) in query_pairs(query)? {
        match name.as_str() {
            "limit" => limit = Some(parse_limit(&value)?),
            "after" => after = Some(Arc::new(decode_cursor(&value)?)),
            _ => {}
        }
    }
    let pieces = Pieces::new(app.store.clone(), app.expirer.policy(), after, limit);
    let pieces = Arc::new(Mutex::new(pieces));
    let offload = app.offload.clone();
    // Each piece is serialized on the blocking pool (its cost grows with the groups'
    // size), one at a time: the mutex is never contended.
    Ok(respond_body(ResponseBody::pulled(move || {
        let (pieces, offload) = (pieces.clone(), offload.clone());
        Box::pin(async move {
            offload
                .always(move || pieces.lock().next())
                .await
                .unwrap_or_else(|e| {
                    // Ends the body short, which no JSON parser takes for the whole list.
                    tracing::warn!(err = %e, "cannot serialize the rest of /api/v1/metrics");
                    None
                })
        })
    })))
}

/// The pieces of one body: the opening, pages of groups, then the closing.
struct Pieces {
    store: Store,
    policy: Arc<ExpiryPolicy>,
    /// The last group started (or the request's `after`).
    after: Option<Arc<GroupingKey>>,
    /// Groups still to start with a `limit`; `None`: all.
    remaining: Option<usize>,
    /// A group larger than a piece, with what is left to write of it.
    open: Option<OpenGroup>,
    started: bool,
    first: bool,
    done: bool,
}

/// A group being written, its object's keys in order, and how many are written.
struct OpenGroup {
    view: GroupView,
    keys: Vec<Key>,
    written: usize,
}

impl Pieces {
    fn new(
        store: Store,
        policy: Arc<ExpiryPolicy>,
        after: Option<Arc<GroupingKey>>,
        limit: Option<usize>,
    ) -> Pieces {
        Pieces {
            store,
            policy,
            after,
            remaining: limit,
            open: None,
            started: false,
            first: true,
            done: false,
        }
    }

    /// The next piece: about [`PIECE_SERIES`] series, split between groups or, inside a
    /// larger group, between its families.
    fn next(&mut self) -> Option<Bytes> {
        if self.done {
            return None;
        }
        let mut out = Vec::new();
        if !self.started {
            out.extend_from_slice(b"{\"data\":[");
            self.started = true;
        }
        let mut budget = PIECE_SERIES;
        if let Some(open) = self.open.take() {
            self.open = write_keys(&mut out, open, &mut budget);
            return Some(Bytes::from(out));
        }
        let wanted = self.remaining.unwrap_or(usize::MAX).min(PIECE_GROUPS);
        let page = self.store.group_page(self.after.as_deref(), wanted, budget);
        for view in page.groups {
            if !self.first {
                out.push(b',');
            }
            self.first = false;
            self.after = Some(view.key.clone());
            if let Some(remaining) = self.remaining.as_mut() {
                *remaining -= 1;
            }
            let last = if view.push_time > 0.0 {
                view.push_time
            } else {
                view.failure_time
            };
            let keys = object_keys(&view, self.policy.deadline(&view.key, view.ttl, last));
            out.push(b'{');
            let open = OpenGroup {
                view,
                keys,
                written: 0,
            };
            self.open = write_keys(&mut out, open, &mut budget);
            if self.open.is_some() {
                // The rest of the page follows the rest of this group (after it, by key).
                return Some(Bytes::from(out));
            }
        }
        let full = self.remaining == Some(0);
        if full || !page.more {
            out.extend_from_slice(b"]");
            if let Some(after) = self.after.as_ref().filter(|_| full && page.more) {
                out.extend_from_slice(b",\"next\":\"");
                out.extend_from_slice(encode_cursor(after).as_bytes());
                out.push(b'"');
            }
            out.extend_from_slice(b",\"status\":\"success\"}");
            self.done = true;
        }
        Some(Bytes::from(out))
    }
}

/// Writes the keys of `group` not yet written, until their series exhaust `budget`; returns
/// the group if some are left, else closes its object.
fn write_keys(out: &mut Vec<u8>, mut group: OpenGroup, budget: &mut usize) -> Option<OpenGroup> {
    while let Some(&key) = group.keys.get(group.written) {
        if group.written > 0 {
            out.push(b',');
        }
        // Borrowed strings, maps with string keys and plain structs always serialize, and
        // a Vec takes every write.
        let written = serde_json::to_writer(&mut *out, key_name(&group.view, key)).and_then(|()| {
            out.push(b':');
            serde_json::to_writer(&mut *out, &key_value(&group.view, key))
        });
        if let Err(e) = written {
            tracing::error!(err = %e, "cannot serialize a group for /api/v1/metrics");
        }
        group.written += 1;
        *budget = budget.saturating_sub(key_series(&group.view, key));
        if *budget == 0 && group.written < group.keys.len() {
            return Some(group);
        }
    }
    out.push(b'}');
    None
}

/// One key of a group's object.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Key {
    /// The family at this index of the group's families.
    Family(usize),
    PushTime,
    FailureTime,
    /// The group's expiry, at this Unix time.
    ExpiresAt(f64),
    Labels,
    LastPushSuccessful,
}

/// The keys of a group's object in the order Go writes them (sorted). A family named
/// like one of the group's own keys is left out: the own key replaces it.
fn object_keys(group: &GroupView, expires_at: Option<f64>) -> Vec<Key> {
    let mut keys: BTreeMap<&str, Key> = group
        .families
        .iter()
        .enumerate()
        .map(|(i, stored)| (&*stored.name, Key::Family(i)))
        .collect();
    keys.insert(PUSH_TIME_METRIC, Key::PushTime);
    keys.insert(PUSH_FAILURE_TIME_METRIC, Key::FailureTime);
    if let Some(deadline) = expires_at {
        keys.insert("expires_at", Key::ExpiresAt(deadline));
    }
    keys.insert("labels", Key::Labels);
    keys.insert("last_push_successful", Key::LastPushSuccessful);
    keys.into_values().collect()
}

fn key_name(group: &GroupView, key: Key) -> &str {
    match key {
        Key::Family(i) => group.families.get(i).map_or("", |f| &*f.name),
        Key::PushTime => PUSH_TIME_METRIC,
        Key::FailureTime => PUSH_FAILURE_TIME_METRIC,
        Key::ExpiresAt(_) => "expires_at",
        Key::Labels => "labels",
        Key::LastPushSuccessful => "last_push_successful",
    }
}

/// The series a key writes, which is what a piece is measured in.
fn key_series(group: &GroupView, key: Key) -> usize {
    match key {
        Key::Family(i) => group.families.get(i).map_or(0, |f| f.len()),
        _ => 1,
    }
}

fn key_value(group: &GroupView, key: Key) -> Option<GroupEntry<'_>> {
    Some(match key {
        Key::Family(i) => {
            let stored = group.families.get(i)?;
            let family = &**stored;
            GroupEntry::Family(FamilyJson {
                help: family.help.as_deref().filter(|h| !h.is_empty()),
                metrics: stored.series().map(metric_json).collect(),
                time_stamp: rfc3339(unix_time(stored.pushed_at)),
                metric_type: family.metric_type.as_upper_str(),
            })
        }
        Key::PushTime => own_timestamp(
            group,
            PUSH_TIME_HELP,
            group.push_time,
            group.push_time_stamp(),
        ),
        Key::FailureTime => own_timestamp(
            group,
            PUSH_FAILURE_TIME_HELP,
            group.failure_time,
            group.failure_time_stamp(),
        ),
        Key::ExpiresAt(deadline) => GroupEntry::Text(rfc3339(unix_time(deadline))),
        Key::Labels => GroupEntry::Labels(label_map(group.key.labels())),
        Key::LastPushSuccessful => GroupEntry::Flag(group.push_time >= group.failure_time),
    })
}

/// The family of one of the group's own timestamps: one series with the group's labels
/// (with `instance=""` if unset).
fn own_timestamp<'a>(group: &'a GroupView, help: &'a str, time: f64, stamp: f64) -> GroupEntry<'a> {
    GroupEntry::Family(FamilyJson {
        help: Some(help),
        metrics: vec![MetricJson::Sample {
            labels: label_map(SeriesLabels::new(&[], &group.key)),
            value: format_float(time),
        }],
        time_stamp: rfc3339(unix_time(stamp)),
        metric_type: "GAUGE",
    })
}

/// One value of a group's object: its own keys, then one entry per family.
#[derive(Serialize)]
#[serde(untagged)]
enum GroupEntry<'a> {
    Text(String),
    Flag(bool),
    Labels(BTreeMap<&'a str, &'a str>),
    Family(FamilyJson<'a>),
}

#[derive(Serialize)]
struct FamilyJson<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    help: Option<&'a str>,
    metrics: Vec<MetricJson<'a>>,
    time_stamp: String,
    #[serde(rename = "type")]
    metric_type: &'static str,
}

/// One metric in upstream's shape; fields in key order, as Go writes them.
#[derive(Serialize)]
#[serde(untagged)]
enum MetricJson<'a> {
    Summary {
        count: String,
        labels: BTreeMap<&'a str, &'a str>,
        quantiles: BTreeMap<String, String>,
        sum: String,
    },
    Histogram {
        buckets: Buckets,
        count: String,
        labels: BTreeMap<&'a str, &'a str>,
        sum: String,
    },
    Sample {
        labels: BTreeMap<&'a str, &'a str>,
        value: String,
    },
}

fn label_map<'a, L: Into<LabelRef<'a>>>(
    labels: impl IntoIterator<Item = L>,
) -> BTreeMap<&'a str, &'a str> {
    labels
        .into_iter()
        .map(|l| {
            let l = l.into();
            (l.name, l.value)
        })
        .collect()
}

/// `{"bound": "count", ...}`; a bound given twice keeps its last value, as Go's map does.
fn float_map(pairs: impl Iterator<Item = (f64, f64)>) -> BTreeMap<String, String> {
    pairs
        .map(|(k, v)| (format_float(k), format_float(v)))
        .collect()
}

fn metric_json(series: Series<'_>) -> MetricJson<'_> {
    let labels = label_map(series.labels());
    match series.value() {
        ValueRef::Summary(summary) => MetricJson::Summary {
            count: summary.count.to_string(),
            labels,
            quantiles: float_map(summary.quantiles.iter().map(|q| (q.quantile, q.value))),
            sum: format_float(summary.sum),
        },
        ValueRef::Histogram(histogram) => MetricJson::Histogram {
            buckets: match native_with_spans(series.extras()) {
                Some(native) => Buckets::Native(native_buckets(native)),
                None => Buckets::Classic(float_map(
                    histogram.buckets.iter().map(|b| (b.upper_bound, b.count)),
                )),
            },
            count: format_float(histogram.count),
            labels,
            sum: format_float(histogram.sum),
        },
        ValueRef::Counter(v) | ValueRef::Gauge(v) | ValueRef::Untyped(v) => MetricJson::Sample {
            labels,
            value: format_float(v),
        },
    }
}

/// A histogram's buckets: classic bounds to counts, or a native histogram's intervals.
#[derive(Serialize)]
#[serde(untagged)]
enum Buckets {
    Classic(BTreeMap<String, String>),
    /// As upstream 1.8 writes them: `[boundaries, "lower", "upper", "count"]`, `boundaries`
    /// 0 for `(]`, 1 for `[)`, 3 for `[]`.
    Native(Vec<(u8, String, String, String)>),
}

/// The native histogram of a metric, when it has buckets of its own (spans).
fn native_with_spans(
    extras: Option<&crate::model::Extras>,
) -> Option<&crate::model::NativeHistogram> {
    let native = extras?.native.as_ref()?;
    native.has_spans().then_some(native)
}

fn native_buckets(native: &crate::model::NativeHistogram) -> Vec<(u8, String, String, String)> {
    native
        .intervals()
        .iter()
        .map(|bucket| {
            (
                bucket.boundaries as u8,
                format_float(bucket.lower),
                format_float(bucket.upper),
                format_float(bucket.count),
            )
        })
        .collect()
}

/// A value as upstream's API writes it (Go's `%v`): as in the exposition, but `-0` keeps
/// its sign.
fn format_float(v: f64) -> String {
    if v == 0.0 && v.is_sign_negative() {
        "-0".to_string()
    } else {
        number::format_float(v)
    }
}

#[cfg(test)]
mod tests;
