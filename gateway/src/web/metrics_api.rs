//! `/api/v1/metrics`: every group with its families, in upstream's JSON shape, streamed a
//! page of groups at a time in grouping-key order, or one page of it with `limit` and
//! `after` (the convention of [`super::paging`]).
//!
//! The whole list is never built in memory: the body is made as the client reads it, each
//! piece from a page of groups taken under a short read lock ([`Store::group_page`]) and
//! serialized with no lock held. Without `limit` and `after` the body is byte for byte
//! what it was as one buffer, `{"data":[...],"status":"success"}`; a page that is not the
//! last adds `"next":"<cursor>"` between the two, which upstream's clients ignore.
//!
//! Objects are serialized straight from borrowed data (no `serde_json::Value` tree: with
//! thousands of groups that costs several times more). Every object is a `BTreeMap`, so
//! no key can appear twice and keys come sorted, as Go's encoder sorts map keys. A family
//! named like one of the group's own keys (`labels`, `last_push_successful`, `expires_at`)
//! is left out of its group's object: upstream lets it overwrite the group's labels, which
//! leaves the group unidentifiable.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use serde::Serialize;

use super::app::{App, HttpResponse};
use super::error::ApiError;
use super::json::{respond_body, unix_time};
use super::paging::{decode_cursor, encode_cursor, invalid, parse_limit, query_pairs};
use super::response_body::ResponseBody;
use crate::clock::rfc3339;
use crate::expiry::ExpiryPolicy;
use crate::expose::number;
use crate::model::{GroupingKey, Label, Series, SeriesLabels, Value};
use crate::store::{
    GroupView, Store, PUSH_FAILURE_TIME_HELP, PUSH_FAILURE_TIME_METRIC, PUSH_TIME_HELP,
    PUSH_TIME_METRIC,
};

/// The largest `limit`: a page is built whole before it is sent, so it must stay small.
pub const MAX_LIMIT: usize = 10_000;
/// Groups per piece of the body, at most.
const PIECE_GROUPS: usize = 64;
/// Series per piece of the body, about (a piece holds at least one group, however large):
/// a piece costs a few milliseconds to serialize, on the blocking pool.
const PIECE_SERIES: usize = 4_096;

/// `GET /api/v1/metrics`: every group, or with `limit` and/or `after` one page of them.
///
/// # Errors
/// [`ApiError::InvalidParameter`] for a `limit` that is not from 1 to [`MAX_LIMIT`] or an
/// `after` that is not a `next` cursor.
pub fn list(app: &App, query: Option<&str>) -> Result<HttpResponse, ApiError> {
    let mut limit = None;
    let mut after = None;
    // Other parameters are ignored, as Prometheus's API does.
    for (name, value) in query_pairs(query)? {
        match name.as_str() {
            "limit" => {
                let n = parse_limit(&value)?;
                if !(1..=MAX_LIMIT).contains(&n) {
                    return Err(invalid(&format!(
                        "invalid limit {n}: a page holds 1 to {MAX_LIMIT} groups \
                         (leave limit out for every group)"
                    )));
                }
                limit = Some(n);
            }
            "after" => after = Some(Arc::new(decode_cursor(&value)?)),
            _ => {}
        }
    }
    let pieces = Arc::new(Mutex::new(Pieces {
        store: app.store.clone(),
        policy: app.expirer.policy(),
        after,
        remaining: limit,
        started: false,
        first: true,
        done: false,
    }));
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
    /// The last group sent (or the request's `after`).
    after: Option<Arc<GroupingKey>>,
    /// Groups still to send with a `limit`; `None`: all.
    remaining: Option<usize>,
    started: bool,
    first: bool,
    done: bool,
}

impl Pieces {
    fn next(&mut self) -> Option<Bytes> {
        if self.done {
            return None;
        }
        let mut out = Vec::new();
        if !self.started {
            out.extend_from_slice(b"{\"data\":[");
            self.started = true;
        }
        let wanted = self.remaining.unwrap_or(usize::MAX).min(PIECE_GROUPS);
        let page = self
            .store
            .group_page(self.after.as_deref(), wanted, PIECE_SERIES);
        for group in &page.groups {
            if !self.first {
                out.push(b',');
            }
            self.first = false;
            let last = if group.push_time > 0.0 {
                group.push_time
            } else {
                group.failure_time
            };
            let object = group_object(group, self.policy.deadline(&group.key, group.ttl, last));
            // Borrowed strings, maps with string keys and plain structs always serialize,
            // and a Vec takes every write.
            if let Err(e) = serde_json::to_writer(&mut out, &object) {
                tracing::error!(err = %e, "cannot serialize a group for /api/v1/metrics");
            }
        }
        if let Some(remaining) = self.remaining.as_mut() {
            *remaining -= page.groups.len();
        }
        if let Some(last) = page.groups.last() {
            self.after = Some(last.key.clone());
        }
        let full = self.remaining == Some(0);
        if full || !page.more {
            out.extend_from_slice(b"]");
            if full && page.more {
                if let Some(after) = &self.after {
                    out.extend_from_slice(b",\"next\":\"");
                    out.extend_from_slice(encode_cursor(after).as_bytes());
                    out.push(b'"');
                }
            }
            out.extend_from_slice(b",\"status\":\"success\"}");
            self.done = true;
        }
        Some(Bytes::from(out))
    }
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

fn group_object(group: &GroupView, expires_at: Option<f64>) -> BTreeMap<&str, GroupEntry<'_>> {
    let mut object = BTreeMap::new();
    for stored in &group.families {
        let family = &stored.family;
        let metrics = stored.series().map(metric_json).collect();
        let json = FamilyJson {
            help: family.help.as_deref().filter(|h| !h.is_empty()),
            metrics,
            time_stamp: rfc3339(unix_time(stored.pushed_at)),
            metric_type: family.metric_type.as_upper_str(),
        };
        object.insert(&*family.name, GroupEntry::Family(json));
    }
    for (name, help, time, stamp) in [
        (
            PUSH_TIME_METRIC,
            PUSH_TIME_HELP,
            group.push_time,
            group.push_time_stamp(),
        ),
        (
            PUSH_FAILURE_TIME_METRIC,
            PUSH_FAILURE_TIME_HELP,
            group.failure_time,
            group.failure_time_stamp(),
        ),
    ] {
        // The group's own series: its labels, with `instance=""` if unset.
        let metric = MetricJson::Sample {
            labels: label_map(SeriesLabels::new(&[], &group.key)),
            value: format_float(time),
        };
        let json = FamilyJson {
            help: Some(help),
            metrics: vec![metric],
            time_stamp: rfc3339(unix_time(stamp)),
            metric_type: "GAUGE",
        };
        object.insert(name, GroupEntry::Family(json));
    }
    // Inserted last, so that they replace a family of the same name.
    if let Some(deadline) = expires_at {
        let text = rfc3339(unix_time(deadline));
        object.insert("expires_at", GroupEntry::Text(text));
    }
    let labels = label_map(group.key.labels());
    object.insert("labels", GroupEntry::Labels(labels));
    let successful = group.push_time >= group.failure_time;
    object.insert("last_push_successful", GroupEntry::Flag(successful));
    object
}

fn label_map<'a>(labels: impl IntoIterator<Item = &'a Label>) -> BTreeMap<&'a str, &'a str> {
    labels.into_iter().map(|l| (&*l.name, &*l.value)).collect()
}

/// `{"bound": "count", ...}`; a bound given twice keeps its last value, as Go's map does.
fn float_map(pairs: impl Iterator<Item = (f64, f64)>) -> BTreeMap<String, String> {
    pairs
        .map(|(k, v)| (format_float(k), format_float(v)))
        .collect()
}

fn metric_json(series: Series<'_>) -> MetricJson<'_> {
    let labels = label_map(series.labels());
    match &series.metric.value {
        Value::Summary(summary) => MetricJson::Summary {
            count: summary.count.to_string(),
            labels,
            quantiles: float_map(summary.quantiles.iter().map(|q| (q.quantile, q.value))),
            sum: format_float(summary.sum),
        },
        Value::Histogram(histogram) => MetricJson::Histogram {
            buckets: match native_with_spans(series.metric) {
                Some(native) => Buckets::Native(native_buckets(native)),
                None => Buckets::Classic(float_map(
                    histogram.buckets.iter().map(|b| (b.upper_bound, b.count)),
                )),
            },
            count: format_float(histogram.count),
            labels,
            sum: format_float(histogram.sum),
        },
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => MetricJson::Sample {
            labels,
            value: format_float(*v),
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
fn native_with_spans(metric: &crate::model::Metric) -> Option<&crate::model::NativeHistogram> {
    let native = metric.extras.as_ref()?.native.as_ref()?;
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
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::model::{Metric, MetricFamily, MetricType};
    use crate::store::{PushMode, StoreConfig};

    /// The body as it was written before streaming: one `serde_json::to_string` of it all.
    fn one_buffer(store: &Store, policy: &ExpiryPolicy) -> String {
        #[derive(Serialize)]
        struct Whole<'a> {
            data: Vec<BTreeMap<&'a str, GroupEntry<'a>>>,
            status: &'static str,
        }
        let groups = store.groups();
        let data = groups
            .iter()
            .map(|g| group_object(g, policy.deadline(&g.key, g.ttl, g.push_time)))
            .collect();
        serde_json::to_string(&Whole {
            data,
            status: "success",
        })
        .expect("serializes")
    }

    fn streamed(store: &Store, policy: ExpiryPolicy, limit: Option<usize>) -> String {
        let mut pieces = Pieces {
            store: store.clone(),
            policy: Arc::new(policy),
            after: None,
            remaining: limit,
            started: false,
            first: true,
            done: false,
        };
        let mut body = Vec::new();
        let mut count = 0;
        while let Some(piece) = pieces.next() {
            body.extend_from_slice(&piece);
            count += 1;
        }
        assert!(
            count > 1 || store.stats().groups < PIECE_GROUPS,
            "{count} pieces"
        );
        String::from_utf8(body).expect("UTF-8")
    }

    #[test]
    fn the_streamed_body_is_the_one_buffer_body_byte_for_byte() {
        let store = Store::new(StoreConfig::default());
        let policy = || ExpiryPolicy {
            default_ttl: Some(Duration::from_secs(60)),
            rules: Vec::new(),
        };
        assert_eq!(
            streamed(&store, policy(), None),
            one_buffer(&store, &policy())
        );
        for g in 0..300 {
            let series = if g % 50 == 0 { 3000 } else { g % 7 };
            let family = MetricFamily {
                name: format!("m{}", g % 3).into(),
                help: (g % 2 == 0).then(|| "Help \"quoted\"\n".into()),
                metric_type: MetricType::Gauge,
                metrics: (0..series)
                    .map(|i| Metric::new(vec![Label::new("i", i.to_string())], Value::Gauge(-0.5)))
                    .collect(),
            };
            let key = GroupingKey::new(vec![
                Label::new("job", "j"),
                Label::new("instance", format!("é{g}")),
            ]);
            store
                .push(key, vec![family], PushMode::Replace, 1e9 + g as f64)
                .expect("push");
        }
        let whole = streamed(&store, policy(), None);
        assert_eq!(whole, one_buffer(&store, &policy()));
        // A page as large as the store is the same body.
        assert_eq!(streamed(&store, policy(), Some(MAX_LIMIT)), whole);
    }
}
