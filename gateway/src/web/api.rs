//! The JSON API under `/api/v1`: `status` (flags, start time, build information) and
//! `metrics` (every group with its families), in upstream's shape, plus the admin wipe
//! behind `--web.enable-admin-api`.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{header, HeaderValue, Method, Response, StatusCode};
use serde_json::{json, Map, Value as Json};

use super::error::{text_response, ApiError};
use super::response_body::ResponseBody;
use super::{App, HttpResponse};
use crate::expose::number::format_float;
use crate::model::{Label, Series, SeriesLabels, Value};
use crate::replicate::ChangeRequest;
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
        (&Method::GET, "/metrics") => (Some("api/v1/metrics"), Ok(respond_raw(metrics_body(app)))),
        (&Method::PUT, "/admin/wipe") if app.config.enable_admin_api => {
            let result = super::push::apply_everywhere(app, ChangeRequest::Wipe).await;
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
    respond_raw(body)
}

fn respond_raw(body: String) -> HttpResponse {
    let mut response = Response::new(ResponseBody::full(body));
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

/// `/api/v1/metrics`, written straight to text: with thousands of groups, building a JSON
/// tree first costs several times more. Keys are sorted, as Go's encoder sorts map keys.
fn metrics_body(app: &App) -> String {
    let policy = app.expirer.policy();
    let groups = app.store.groups();
    let mut out = String::with_capacity(256 * groups.len() + 64);
    out.push_str("{\"data\":[");
    for (i, group) in groups.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let last = if group.push_time > 0.0 {
            group.push_time
        } else {
            group.failure_time
        };
        write_group(&mut out, group, policy.deadline(&group.key, last));
    }
    out.push_str("],\"status\":\"success\"}");
    out
}

fn write_group(out: &mut String, group: &GroupView, expires_at: Option<f64>) {
    let mut entries: Vec<(&str, String)> = Vec::with_capacity(group.families.len() + 5);
    if let Some(deadline) = expires_at {
        entries.push(("expires_at", json_string(&rfc3339(unix_time(deadline)))));
    }
    let mut labels = String::new();
    write_labels(&mut labels, group.key.labels());
    entries.push(("labels", labels));
    let successful = group.push_time >= group.failure_time;
    entries.push(("last_push_successful", successful.to_string()));
    for stored in &group.families {
        let family = &stored.family;
        let mut value = String::from("{");
        if let Some(help) = family.help.as_deref().filter(|h| !h.is_empty()) {
            value.push_str("\"help\":");
            push_json_string(&mut value, help);
            value.push(',');
        }
        value.push_str("\"metrics\":[");
        for (i, series) in stored.series().enumerate() {
            if i > 0 {
                value.push(',');
            }
            write_metric(&mut value, series);
        }
        value.push_str("],\"time_stamp\":");
        push_json_string(&mut value, &rfc3339(unix_time(stored.pushed_at)));
        value.push_str(",\"type\":");
        push_json_string(&mut value, family.metric_type.as_upper_str());
        value.push('}');
        entries.push((&family.name, value));
    }
    let changed = rfc3339(unix_time(group.push_time.max(group.failure_time)));
    for (name, help, time) in [
        (PUSH_TIME_METRIC, PUSH_TIME_HELP, group.push_time),
        (
            PUSH_FAILURE_TIME_METRIC,
            PUSH_FAILURE_TIME_HELP,
            group.failure_time,
        ),
    ] {
        let mut value = String::from("{\"help\":");
        push_json_string(&mut value, help);
        value.push_str(",\"metrics\":[{\"labels\":");
        // The group's own series: its labels, with `instance=""` if unset.
        write_labels(&mut value, SeriesLabels::new(&[], &group.key));
        value.push_str(",\"value\":");
        push_json_string(&mut value, &format_float(time));
        value.push_str("}],\"time_stamp\":");
        push_json_string(&mut value, &changed);
        value.push_str(",\"type\":\"GAUGE\"}");
        entries.push((name, value));
    }
    entries.sort_by(|a, b| a.0.cmp(b.0));
    write_object(out, entries, |out, value| out.push_str(&value));
}

fn write_labels<'a>(out: &mut String, labels: impl IntoIterator<Item = &'a Label>) {
    // Labels are sorted by name already, as the JSON object's keys must be.
    let pairs = labels.into_iter().map(|l| (&*l.name, &*l.value));
    write_object(out, pairs, push_json_string);
}

/// Writes `{"bound": "count", ...}` with keys sorted as strings.
fn write_float_map(out: &mut String, pairs: impl Iterator<Item = (f64, String)>) {
    let mut entries: Vec<(String, String)> = pairs.map(|(k, v)| (format_float(k), v)).collect();
    entries.sort();
    entries.dedup_by(|a, b| a.0 == b.0);
    write_object(out, entries, |out, value| push_json_string(out, &value));
}

/// Writes a JSON object of `entries` in the given order, each value by `write_value`.
fn write_object<K: AsRef<str>, V>(
    out: &mut String,
    entries: impl IntoIterator<Item = (K, V)>,
    mut write_value: impl FnMut(&mut String, V),
) {
    out.push('{');
    for (i, (key, value)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_string(out, key.as_ref());
        out.push(':');
        write_value(out, value);
    }
    out.push('}');
}

fn write_metric(out: &mut String, series: Series<'_>) {
    let metric = series.metric;
    out.push('{');
    match &metric.value {
        Value::Summary(summary) => {
            out.push_str("\"count\":");
            push_json_string(out, &summary.count.to_string());
            out.push_str(",\"labels\":");
            write_labels(out, series.labels());
            out.push_str(",\"quantiles\":");
            write_float_map(
                out,
                summary
                    .quantiles
                    .iter()
                    .map(|q| (q.quantile, format_float(q.value))),
            );
            out.push_str(",\"sum\":");
            push_json_string(out, &format_float(summary.sum));
        }
        Value::Histogram(histogram) => {
            out.push_str("\"buckets\":");
            let native = metric.extras.as_ref().and_then(|e| e.native.as_ref());
            match native.filter(|native| native.has_spans()) {
                Some(native) => write_native_buckets(out, native),
                None => write_float_map(
                    out,
                    histogram
                        .buckets
                        .iter()
                        .map(|b| (b.upper_bound, format_float(b.count))),
                ),
            }
            out.push_str(",\"count\":");
            push_json_string(out, &format_float(histogram.count));
            out.push_str(",\"labels\":");
            write_labels(out, series.labels());
            out.push_str(",\"sum\":");
            push_json_string(out, &format_float(histogram.sum));
        }
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => {
            out.push_str("\"labels\":");
            write_labels(out, series.labels());
            out.push_str(",\"value\":");
            push_json_string(out, &format_float(*v));
        }
    }
    out.push('}');
}

/// A native histogram's buckets as upstream 1.8 writes them: an array of
/// `[boundaries, "lower", "upper", "count"]`, `boundaries` 0 for `(]`, 1 for `[)`, 3 for `[]`.
fn write_native_buckets(out: &mut String, native: &crate::model::NativeHistogram) {
    out.push('[');
    for (i, bucket) in native.intervals().iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!("[{},", bucket.boundaries as u8));
        for (j, number) in [bucket.lower, bucket.upper, bucket.count]
            .into_iter()
            .enumerate()
        {
            if j > 0 {
                out.push(',');
            }
            push_json_string(out, &format_float(number));
        }
        out.push(']');
    }
    out.push(']');
}

fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    push_json_string(&mut out, text);
    out
}

/// Appends `text` as a JSON string literal.
fn push_json_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The last second RFC 3339 can write, 9999-12-31T23:59:59Z.
const LATEST_RFC3339: f64 = 253_402_300_799.0;

/// A Unix time as a `SystemTime`, clamped to what RFC 3339 can write (an expiry after a
/// very long TTL is shown as the last second of year 9999).
fn unix_time(seconds: f64) -> SystemTime {
    Duration::try_from_secs_f64(seconds.clamp(0.0, LATEST_RFC3339))
        .ok()
        .and_then(|since| UNIX_EPOCH.checked_add(since))
        .unwrap_or(UNIX_EPOCH)
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
    fn json_strings_parse_back() {
        for text in [
            "plain",
            "quote \" and \\ back",
            "new\nline\ttab\u{1}",
            "ünïcode ✓",
        ] {
            let literal = json_string(text);
            let back: String = serde_json::from_str(&literal).expect("valid JSON");
            assert_eq!(back, text);
        }
    }

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
