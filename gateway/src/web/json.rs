//! JSON answers of the API under `/api/v1`: upstream's headers (CORS, no caching) on every
//! answer, and times as RFC 3339 can write them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{header, HeaderValue, Response, StatusCode};
use serde::Serialize;

use super::app::HttpResponse;
use super::response_body::ResponseBody;

/// A JSON answer serialized from borrowed data.
pub fn respond_json(body: &impl Serialize) -> HttpResponse {
    // Plain structs of strings, numbers and string-keyed maps always serialize.
    respond_raw(serde_json::to_string(body).unwrap_or_else(|e| {
        tracing::error!(err = %e, "cannot serialize a JSON answer");
        String::from("{\"status\":\"error\"}")
    }))
}

/// A JSON answer from its text, with upstream's API headers (CORS, no caching).
pub fn respond_raw(body: String) -> HttpResponse {
    respond_body(ResponseBody::full(body))
}

/// A JSON answer with upstream's API headers (CORS, no caching).
pub fn respond_body(body: ResponseBody) -> HttpResponse {
    let mut response = Response::new(body);
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

/// The last second RFC 3339 can write, 9999-12-31T23:59:59Z.
const LATEST_RFC3339: f64 = 253_402_300_799.0;

/// A Unix time as a `SystemTime`, clamped to what RFC 3339 can write (an expiry after a
/// very long TTL is shown as the last second of year 9999).
pub fn unix_time(seconds: f64) -> SystemTime {
    Duration::try_from_secs_f64(seconds.clamp(0.0, LATEST_RFC3339))
        .ok()
        .and_then(|since| UNIX_EPOCH.checked_add(since))
        .unwrap_or(UNIX_EPOCH)
}
