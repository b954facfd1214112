//! The JSON API under `/api/v1`: `status` (flags, start time, build information) in
//! upstream's shape, plus the admin wipe behind `--web.enable-admin-api`; `metrics` (every
//! group with its families) is in [`super::metrics_api`], `groups` (by selector) in
//! [`super::groups`].

use std::sync::Arc;

use http::{Method, StatusCode};
use serde_json::{json, Map, Value as Json};

use super::app::{App, HttpResponse};
use super::error::{text_response, ApiError};
use super::json::respond_raw;
use super::{groups, metrics_api};
use crate::clock::rfc3339;
use crate::replicate::ChangeRequest;

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
        (&Method::GET, "/metrics") => (Some("api/v1/metrics"), metrics_api::list(app, query)),
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
