//! The JSON API under `/api/v1`: `status` (flags, start time, build information) and
//! `metrics` (every group with its families), in upstream's shape, plus the admin wipe
//! behind `--web.enable-admin-api`; `groups` (by selector) is in [`super::groups`].

use std::collections::BTreeMap;
use std::sync::Arc;

use http::{Method, StatusCode};
use serde::Serialize;
use serde_json::{json, Map, Value as Json};

use super::app::{App, HttpResponse};
use super::error::{text_response, ApiError};
use super::groups;
use super::json::{respond_raw, unix_time};
use crate::clock::rfc3339;
use crate::expose::number;
use crate::model::{LabelRef, Series, SeriesLabels, ValueRef};
use crate::replicate::ChangeRequest;
use crate::store::{
    GroupView, PUSH_FAILURE_TIME_HELP, PUSH_FAILURE_TIME_METRIC, PUSH_TIME_HELP, PUSH_TIME_METRIC,
};

/// Dispatches `/api/v1/<rest>`; returns the handler name for the request counter.
pub async fn route(
    app: &Arc<App>,
    method: &Method,
    rest: &str,
    query: Option<&str>,
) -> (Option<&'static str>, Result<HttpResponse, ApiError>) {
    match (method, rest) {
        (&Method::GET, "/groups") => (Some("api/v1/groups"), groups::list(app, query).await),
        (&Method::DELETE, "/groups") => (
            Some("api/v1/groups/delete"),
            groups::delete(app, query).await,
        ),
        (_, "/groups") => (None, Err(ApiError::MethodNotAllowed)),
        (&Method::OPTIONS, _) => (Some("api/v1/options"), Ok(respond(Json::Null, false))),
        (&Method::GET, "/status") => (Some("api/v1/status"), Ok(respond(status(app), true))),
        (&Method::GET, "/metrics") => (Some("api/v1/metrics"), Ok(respond_raw(metrics_body(app)))),
        (&Method::PUT, "/admin/wipe") if app.config.enable_admin_api => {
            let result = super::push::apply_everywhere(app, ChangeRequest::Wipe).await;
            tracing::debug!("wiped the metric store");
            (
                Some("wipe"),
                result.map(|_| text_response(StatusCode::ACCEPTED, "")),
            )
        }
        (_, "/status" | "/metrics") => (None, Err(ApiError::MethodNotAllowed)),
        (_, "/admin/wipe") if app.config.enable_admin_api => {
            (None, Err(ApiError::MethodNotAllowed))
        }
        _ => (None, Err(ApiError::NotFound)),
    }
}

fn respond(data: Json, with_body: bool) -> HttpResponse {
    let body = if with_body {
        json!({"status": "success", "data": data}).to_string()
    } else {
        String::new()
    };
    respond_raw(body)
}

fn status(app: &App) -> Json {
    let flags: Map<String, Json> = app
        .flags
        .iter()
        .map(|(k, v)| (k.clone(), Json::String(v.clone())))
        .collect();
    json!({
        "flags": flags,
        "start_time": rfc3339(app.start_time),
        "build_information": {
            "version": env!("CARGO_PKG_VERSION"),
            "revision": "",
            "branch": "",
            "buildUser": "",
            "buildDate": "",
            "goVersion": "",
        },
        "storage": "memory",
        "persistence": persistence_status(app),
    })
}

fn persistence_status(app: &App) -> Json {
    match &app.persister {
        None => json!({"file": "", "state": "disabled (in memory only)"}),
        Some(persister) => json!({
            "file": persister.file().display().to_string(),
            "state": "write-ahead log, acknowledged pushes are durable",
            "last_snapshot": persister.last_snapshot().map(rfc3339),
            "restored_groups": persister.report().snapshot_groups,
            "replayed_records": persister.report().replayed,
        }),
    }
}

/// `/api/v1/metrics`, serialized straight from borrowed data (no `serde_json::Value`
/// tree: with thousands of groups that costs several times more). Every object is a
/// `BTreeMap`, so no key can appear twice and keys come sorted, as Go's encoder sorts map
/// keys. A family named like one of the group's own keys (`labels`,
/// `last_push_successful`, `expires_at`) is left out of its group's object: upstream lets
/// it overwrite the group's labels, which leaves the group unidentifiable.
fn metrics_body(app: &App) -> String {
    let policy = app.expirer.policy();
    let groups = app.store.groups();
    let data: Vec<BTreeMap<&str, GroupEntry<'_>>> = groups
        .iter()
        .map(|group| {
            let last = if group.push_time > 0.0 {
                group.push_time
            } else {
                group.failure_time
            };
            group_object(group, policy.deadline(&group.key, group.ttl, last))
        })
        .collect();
    let body = MetricsResponse {
        data,
        status: "success",
    };
    // Serializing borrowed strings, maps with string keys and plain structs cannot fail.
    serde_json::to_string(&body).unwrap_or_else(|e| {
        tracing::error!(err = %e, "cannot serialize /api/v1/metrics");
        String::from("{\"data\":[],\"status\":\"success\"}")
    })
}

#[derive(Serialize)]
struct MetricsResponse<'a> {
    data: Vec<BTreeMap<&'a str, GroupEntry<'a>>>,
    status: &'static str,
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
        let family = &**stored;
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
