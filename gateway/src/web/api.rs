//! The JSON API under `/api/v1`: `status` (flags, start time, build information) and
//! `metrics` (every group with its families), in upstream's shape, plus the admin wipe
//! behind `--web.enable-admin-api`.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{header, HeaderValue, Method, Response, StatusCode};
use http_body_util::Full;
use serde_json::{json, Map, Value as Json};

use super::error::{text_response, ApiError};
use super::{App, HttpResponse};
use crate::expose::number::format_float;
use crate::model::{Label, Metric, MetricType, Value};
use crate::store::{
    GroupView, PUSH_FAILURE_TIME_HELP, PUSH_FAILURE_TIME_METRIC, PUSH_TIME_HELP, PUSH_TIME_METRIC,
};

/// Dispatches `/api/v1/<rest>`; returns the handler name for the request counter.
pub async fn route(
    app: &Arc<App>,
    method: &Method,
    rest: &str,
) -> (Option<&'static str>, Result<HttpResponse, ApiError>) {
    match (method, rest) {
        (&Method::OPTIONS, _) => (Some("api/v1/options"), Ok(respond(Json::Null, false))),
        (&Method::GET, "/status") => (Some("api/v1/status"), Ok(respond(status(app), true))),
        (&Method::GET, "/metrics") => (Some("api/v1/metrics"), Ok(respond(metrics(app), true))),
        (&Method::PUT, "/admin/wipe") if app.config.enable_admin_api => {
            let result = match app.store.wipe() {
                Ok(seq) => super::push::wait_durable(app, seq).await,
                Err(e) => Err(ApiError::from_push_error(e)),
            };
            tracing::debug!("wiped the metric store");
            (
                Some("wipe"),
                result.map(|()| text_response(StatusCode::ACCEPTED, "")),
            )
        }
        (_, "/status" | "/metrics") => (None, Err(ApiError::MethodNotAllowed)),
        _ => (None, Err(ApiError::NotFound)),
    }
}

fn respond(data: Json, with_body: bool) -> HttpResponse {
    let body = if with_body {
        json!({"status": "success", "data": data}).to_string()
    } else {
        String::new()
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    for (name, value) in [
        (
            "access-control-allow-headers",
            "Accept, Authorization, Content-Type, Origin",
        ),
        ("access-control-allow-methods", "GET, POST, DELETE, OPTIONS"),
        ("access-control-allow-origin", "*"),
        ("access-control-expose-headers", "Date"),
        ("cache-control", "no-cache, no-store, must-revalidate"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
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

fn metrics(app: &App) -> Json {
    let policy = app.expirer.policy();
    Json::Array(
        app.store
            .groups()
            .iter()
            .map(|group| {
                let last = if group.push_time > 0.0 {
                    group.push_time
                } else {
                    group.failure_time
                };
                let expires_at = policy.deadline(&group.key, last);
                group_json(group, expires_at)
            })
            .collect(),
    )
}

fn group_json(group: &GroupView, expires_at: Option<f64>) -> Json {
    let mut object = Map::new();
    if let Some(deadline) = expires_at {
        object.insert(
            "expires_at".into(),
            Json::String(rfc3339(unix_time(deadline))),
        );
    }
    let labels: Map<String, Json> = group
        .key
        .labels()
        .iter()
        .map(|l| (l.name.to_string(), Json::String(l.value.to_string())))
        .collect();
    object.insert("labels".into(), Json::Object(labels));
    object.insert(
        "last_push_successful".into(),
        Json::Bool(group.push_time >= group.failure_time),
    );
    for stored in &group.families {
        let family = &stored.family;
        let mut entry = Map::new();
        entry.insert(
            "time_stamp".into(),
            Json::String(rfc3339(unix_time(stored.pushed_at))),
        );
        entry.insert(
            "type".into(),
            Json::String(family.metric_type.as_upper_str().into()),
        );
        if let Some(help) = family.help.as_deref().filter(|h| !h.is_empty()) {
            entry.insert("help".into(), Json::String(help.into()));
        }
        let metrics = family
            .metrics
            .iter()
            .map(|m| metric_json(m, family.metric_type))
            .collect();
        entry.insert("metrics".into(), Json::Array(metrics));
        object.insert(family.name.to_string(), Json::Object(entry));
    }
    let mut grouping_labels = group.key.labels().to_vec();
    if !grouping_labels
        .iter()
        .any(|l| &*l.name == crate::model::INSTANCE_LABEL)
    {
        grouping_labels.push(Label::new(crate::model::INSTANCE_LABEL, ""));
    }
    for (name, help, value) in [
        (PUSH_TIME_METRIC, PUSH_TIME_HELP, group.push_time),
        (
            PUSH_FAILURE_TIME_METRIC,
            PUSH_FAILURE_TIME_HELP,
            group.failure_time,
        ),
    ] {
        let labels: Map<String, Json> = grouping_labels
            .iter()
            .map(|l| (l.name.to_string(), Json::String(l.value.to_string())))
            .collect();
        object.insert(
            name.into(),
            json!({
                "time_stamp": rfc3339(unix_time(group.push_time.max(group.failure_time))),
                "type": "GAUGE",
                "help": help,
                "metrics": [{"labels": labels, "value": format_float(value)}],
            }),
        );
    }
    Json::Object(object)
}

fn metric_json(metric: &Metric, metric_type: MetricType) -> Json {
    let labels: Map<String, Json> = metric
        .labels
        .iter()
        .map(|l| (l.name.to_string(), Json::String(l.value.to_string())))
        .collect();
    let mut object = Map::new();
    object.insert("labels".into(), Json::Object(labels));
    match (&metric.value, metric_type) {
        (Value::Summary(summary), _) => {
            let quantiles: Map<String, Json> = summary
                .quantiles
                .iter()
                .map(|q| {
                    (
                        format_float(q.quantile),
                        Json::String(format_float(q.value)),
                    )
                })
                .collect();
            object.insert("quantiles".into(), Json::Object(quantiles));
            object.insert("count".into(), Json::String(summary.count.to_string()));
            object.insert("sum".into(), Json::String(format_float(summary.sum)));
        }
        (Value::Histogram(histogram), _) => {
            let buckets: Map<String, Json> = histogram
                .buckets
                .iter()
                .map(|b| {
                    (
                        format_float(b.upper_bound),
                        Json::String(format_float(b.count)),
                    )
                })
                .collect();
            object.insert("buckets".into(), Json::Object(buckets));
            object.insert("count".into(), Json::String(format_float(histogram.count)));
            object.insert("sum".into(), Json::String(format_float(histogram.sum)));
        }
        (Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v), _) => {
            object.insert("value".into(), Json::String(format_float(*v)));
        }
    }
    Json::Object(object)
}

fn unix_time(seconds: f64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs_f64(seconds.max(0.0))
}

/// RFC 3339 with nanoseconds in UTC, as Go marshals a `time.Time`.
pub fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs() as i64;
    let nanos = since.subsec_nanos();
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let mut text = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    );
    if nanos > 0 {
        let fraction = format!("{nanos:09}");
        text.push('.');
        text.push_str(fraction.trim_end_matches('0'));
    }
    text.push('Z');
    text
}

/// RFC 3339 with milliseconds in UTC, for log lines.
pub fn rfc3339_millis(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let whole = UNIX_EPOCH + Duration::from_secs(since.as_secs());
    let text = rfc3339(whole);
    format!(
        "{}.{:03}Z",
        text.trim_end_matches('Z'),
        since.subsec_millis()
    )
}

/// Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_like_go() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::new(1_700_000_000, 120_000_000)),
            "2023-11-14T22:13:20.12Z"
        );
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
    }
}
