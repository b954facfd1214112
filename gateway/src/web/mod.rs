//! HTTP routing and thin handlers: each endpoint extracts what it needs (grouping key,
//! capped body, format), calls the store or the encoder, and maps the result. Status codes
//! are decided in [`error`] only.

mod access;
mod aggregate_rules;
pub mod api;
mod app;
pub mod body;
pub mod error;
mod groups;
mod json;
mod metrics_api;
mod offload;
mod otlp;
mod paging;
pub mod probes;
mod push;
pub mod response_body;
pub mod settings;
pub mod ui;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use percent_encoding::percent_decode_str;

use crate::expose::{negotiate, OpenMetrics, Renderer};
use crate::store::{PushMode, Store, StoreConfig};
use crate::webconfig::Verdict;

pub use access::{AccessRules, Action, ClientCertUser, UserAccess};
pub use aggregate_rules::AggregateRules;
pub use app::{check_access_rules, App, AppParts, FileRules, HttpResponse, ReadRules};
pub use error::ApiError;
pub use response_body::ResponseBody;
pub use settings::{ListenAddress, WebConfig};

/// Serves one request.
pub async fn handle<B>(app: Arc<App>, request: Request<B>, peer: SocketAddr) -> HttpResponse
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let method = request.method().clone();
    let security = app.security.as_ref().map(|s| s.current());
    let probe = probes::is_probe(&app.config, &method, request.uri().path());
    if let Some(security) = security.as_ref().filter(|_| !probe) {
        // Before auth, as upstream: a flood of bad passwords is limited too.
        if let Err(retry_after) = security.admit() {
            let mut response = ApiError::RateLimited { retry_after }.into_response();
            add_headers(&mut response, security);
            if method == Method::PUT || method == Method::POST || method == Method::DELETE {
                close_after(&mut response);
            }
            return response;
        }
    }
    let skips_auth = probe && app.config.unauthenticated_probes;
    // Basic auth names the user when configured, else a verified client certificate.
    let user = security
        .as_ref()
        .filter(|_| !skips_auth)
        .and_then(|s| s.basic_auth_user(request.headers().get(header::AUTHORIZATION)))
        .or_else(|| {
            request
                .extensions()
                .get::<ClientCertUser>()
                .map(|u| u.0.to_string())
        });
    if let Some(security) = security.as_ref().filter(|_| !skips_auth) {
        // Every endpoint is behind basic auth, as upstream (the probes only when opted in).
        let verdict = security
            .authorize(request.headers().get(header::AUTHORIZATION), peer.ip())
            .await;
        let refusal = match verdict {
            Verdict::Allowed => None,
            Verdict::Denied => Some((ApiError::Unauthorized, header::WWW_AUTHENTICATE, "Basic")),
            Verdict::Busy => Some((ApiError::AuthBusy, header::RETRY_AFTER, "1")),
        };
        if let Some((error, name, value)) = refusal {
            let mut response = error.into_response();
            response
                .headers_mut()
                .insert(name, HeaderValue::from_static(value));
            add_headers(&mut response, security);
            close_after(&mut response);
            return response;
        }
    }
    let (handler, result) = route(&app, request, peer, user.as_deref()).await;
    let mut response = match result {
        Ok(response) => response,
        Err(error) => {
            let mut response = error.into_response();
            if method == Method::PUT || method == Method::POST || method == Method::DELETE {
                close_after(&mut response);
            }
            response
        }
    };
    if let Some(handler) = handler {
        app.telemetry
            .observe_request(handler, response.status().as_u16(), method.as_str());
    }
    if let Some(security) = &security {
        add_headers(&mut response, security);
    }
    response
}

/// An error can be answered before the request body was read; the connection then cannot
/// carry another request, so the client is told (instead of finding a closed socket).
fn close_after(response: &mut HttpResponse) {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
}

fn add_headers(response: &mut HttpResponse, security: &crate::webconfig::WebSecurity) {
    for (name, value) in &security.headers {
        response.headers_mut().insert(name.clone(), value.clone());
    }
}

/// Dispatches on method and path; returns the handler name for the request counter (none
/// for scrapes, which upstream does not count).
async fn route<B>(
    app: &Arc<App>,
    request: Request<B>,
    peer: SocketAddr,
    user: Option<&str>,
) -> (Option<&'static str>, Result<HttpResponse, ApiError>)
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let raw_path = request.uri().path();
    if !has_valid_escapes(raw_path) {
        return (None, Err(ApiError::BadPath));
    }
    let Ok(path) = percent_decode_str(raw_path).decode_utf8() else {
        return (None, Err(ApiError::BadPath));
    };
    let path = path.into_owned();
    let method = request.method().clone();
    let is_get = method == Method::GET || method == Method::HEAD;
    if method == Method::OPTIONS {
        if let Some(allow) = allowed_methods(app, &path) {
            return (None, Ok(options(allow)));
        }
    }
    // Upstream registers GET /-/quit outside the route prefix.
    if path == "/-/quit" && is_get {
        return (None, Err(ApiError::QuitNeedsPutOrPost));
    }
    let prefix = app.config.route_prefix.as_str();
    // `/pgw` leads to the page at `/pgw/`, as upstream's router does.
    if !prefix.is_empty() && path == prefix && is_get {
        return (None, Ok(redirect(&format!("{prefix}/"))));
    }
    let Some(rest) = path.strip_prefix(prefix) else {
        return (None, Err(ApiError::NotFound));
    };
    let rest = if rest.is_empty() { "/" } else { rest };
    if let Some(action) = access::needed_for(&app.config.telemetry_path, &method, rest) {
        if let Err(refused) = app.access.check(user, action) {
            return (None, Err(refused));
        }
    }

    if rest == app.config.telemetry_path {
        if !is_get {
            return (None, Err(ApiError::MethodNotAllowed));
        }
        return (None, scrape(app, &request));
    }
    // Upstream's router redirects a trailing slash away.
    if is_get && rest.strip_suffix('/') == Some(app.config.telemetry_path.as_str()) {
        return (
            None,
            Ok(redirect(&format!("{prefix}{}", app.config.telemetry_path))),
        );
    }
    let (aggregate_tree, push_path) = match rest.strip_prefix(AGGREGATE_PREFIX) {
        Some(path) => (true, path),
        None => (false, rest),
    };
    if let Some((job, job_is_base64, labels)) = split_push_path(push_path) {
        if labels.contains("//") {
            // Upstream's router redirects to a path without it, which a PUT does not follow.
            return (
                None,
                Err(ApiError::EmptyPathSegment {
                    path: labels.to_string(),
                }),
            );
        }
        let mode = match method {
            // Under /aggregate both add; neither drops what the push does not name.
            Method::PUT | Method::POST if aggregate_tree => PushMode::Aggregate,
            Method::PUT => PushMode::Replace,
            Method::POST => PushMode::Merge,
            Method::DELETE => {
                return (
                    Some("delete"),
                    push::delete(app, (job, job_is_base64, labels), user).await,
                )
            }
            _ => return (None, Err(ApiError::MethodNotAllowed)),
        };
        let result = push::push(
            app,
            request,
            mode,
            (job, job_is_base64, labels),
            (peer, user),
        )
        .await;
        return (Some("push"), result);
    }
    match rest {
        "/-/healthy" | "/-/ready" => {
            let name = if rest == "/-/healthy" {
                "healthy"
            } else {
                "ready"
            };
            if !is_get {
                return (Some(name), Err(ApiError::MethodNotAllowed));
            }
            let not_ready = app.replicator.as_ref().and_then(|r| r.not_ready_reason());
            if let (Some(reason), "ready") = (not_ready, name) {
                return (
                    Some(name),
                    Ok(error::text_response(
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!("not ready: {reason}"),
                    )),
                );
            }
            (Some(name), Ok(error::text_response(StatusCode::OK, "OK")))
        }
        "/-/quit" => (None, quit(app, &method)),
        "/-/reload" => (Some("reload"), reload(app, &method)),
        "/" | "/status" if is_get => (Some("status"), Ok(ui::index(app))),
        _ if rest.starts_with("/static/") && is_get => (Some("static"), ui::asset(rest)),
        // The OTLP receiver (404 with --otlp.disable, as if it were not there).
        otlp::METRICS_PATH => (
            Some("otlp"),
            Ok(otlp::export(app, request, (peer, user)).await),
        ),
        _ if rest.starts_with("/api/v1/") => {
            let query = request.uri().query();
            api::route(app, &method, &rest["/api/v1".len()..], query).await
        }
        "/api/v1" => (None, Ok(redirect(&format!("{prefix}/api/v1/")))),
        _ => (None, Err(ApiError::NotFound)),
    }
}

/// Whether every `%` in a raw path starts an escape of two hex digits (Go's URL parser
/// refuses the request otherwise, and so does upstream).
fn has_valid_escapes(raw_path: &str) -> bool {
    let bytes = raw_path.as_bytes();
    bytes.iter().enumerate().all(|(i, &b)| {
        b != b'%'
            || bytes
                .get(i + 1..i + 3)
                .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit))
    })
}

/// The methods upstream's router lists for `OPTIONS` on a path (it answers every `OPTIONS`
/// on a known path with 200 and `Allow`, which CORS preflights need); `None` for paths it
/// does not know, and for the JSON API, which answers `OPTIONS` itself.
fn allowed_methods(app: &App, path: &str) -> Option<&'static str> {
    const READ_ONLY: &str = "GET, OPTIONS";
    const QUIT: &str = "GET, OPTIONS, POST, PUT";
    // Its GET is registered outside the route prefix, as upstream.
    if path == "/-/quit" {
        return Some(QUIT);
    }
    let rest = path.strip_prefix(app.config.route_prefix.as_str())?;
    let rest = if rest.is_empty() { "/" } else { rest };
    if rest == app.config.telemetry_path {
        return Some(READ_ONLY);
    }
    let push_path = rest.strip_prefix(AGGREGATE_PREFIX).unwrap_or(rest);
    if split_push_path(push_path).is_some() {
        return Some("DELETE, OPTIONS, POST, PUT");
    }
    match rest {
        "/-/quit" => Some(QUIT),
        "/-/healthy" | "/-/ready" | "/" | "/status" => Some(READ_ONLY),
        otlp::METRICS_PATH if app.config.otlp.is_some() => Some("OPTIONS, POST"),
        _ if rest.starts_with("/static/") => Some(READ_ONLY),
        _ => None,
    }
}

fn options(allow: &'static str) -> HttpResponse {
    let mut response = Response::new(ResponseBody::full(Bytes::new()));
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

/// The second push tree: `/aggregate/metrics/job/...` adds to a group instead of
/// replacing (a client pointed at `http://host:9091/aggregate` uses it unchanged).
const AGGREGATE_PREFIX: &str = "/aggregate";

/// Splits `/metrics/job/<job>/<labels...>` or `/metrics/job@base64/<job>/...`.
fn split_push_path(path: &str) -> Option<(&str, bool, &str)> {
    let (rest, job_is_base64) = if let Some(rest) = path.strip_prefix("/metrics/job/") {
        (rest, false)
    } else {
        (path.strip_prefix("/metrics/job@base64/")?, true)
    };
    let (job, labels) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    Some((job, job_is_base64, labels))
}

fn redirect(location: &str) -> HttpResponse {
    let mut response = error::text_response(StatusCode::MOVED_PERMANENTLY, "");
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

fn reload(app: &App, method: &Method) -> Result<HttpResponse, ApiError> {
    if method != Method::PUT && method != Method::POST {
        return Err(ApiError::MethodNotAllowed);
    }
    if !app.config.enable_lifecycle {
        return Err(ApiError::LifecycleDisabled);
    }
    app.reload().map_err(ApiError::ReloadFailed)?;
    Ok(error::text_response(StatusCode::OK, ""))
}

fn quit(app: &App, method: &Method) -> Result<HttpResponse, ApiError> {
    if method != Method::PUT && method != Method::POST {
        return Err(ApiError::MethodNotAllowed);
    }
    if !app.config.enable_lifecycle {
        return Err(ApiError::LifecycleDisabled);
    }
    app.quit.notify_one();
    Ok(error::text_response(
        StatusCode::OK,
        "Requesting termination... Goodbye!",
    ))
}

fn scrape<B>(app: &App, request: &Request<B>) -> Result<HttpResponse, ApiError> {
    let accept = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    let openmetrics = if app.config.enable_openmetrics {
        OpenMetrics::Enabled
    } else {
        OpenMetrics::Disabled
    };
    let format = negotiate(accept, openmetrics)?;
    let exposes_pushed = app
        .replicator
        .as_ref()
        .is_none_or(|r| r.exposes_pushed_metrics());
    let render = || {
        let mut own = app
            .telemetry
            .families(app.store.stats(), app.expirer.expired_total());
        if let Some(replicator) = &app.replicator {
            own.extend(replicator.families());
        }
        own.extend(crate::telemetry::access_families(&app.access.denied()));
        own.extend(crate::telemetry::quota_families(&app.store.quota_usage()));
        own.extend(crate::telemetry::reload_families(
            app.config_file
                .as_ref()
                .map(|_| app.config_reload_ok.load(Ordering::Relaxed)),
            app.security
                .as_ref()
                .map(|security| security.last_reload_successful()),
        ));
        if exposes_pushed {
            app.renderer.render_chunks(&app.store, &own, format)
        } else {
            // Own metrics only, from an empty store and a renderer of its own (the shared
            // one caches the pushed families by version).
            let nothing_pushed = Store::new(StoreConfig::default());
            Renderer::new().render_chunks(&nothing_pushed, &own, format)
        }
    };
    let mut rendered = render();
    if rendered.dropped_series > 0 {
        tracing::warn!(
            dropped = rendered.dropped_series,
            "left inconsistent series out of the scrape; they were pushed with the consistency check disabled"
        );
        // Count first and render again, so that this very scrape shows the drop.
        app.telemetry
            .observe_dropped_series(rendered.dropped_series);
        rendered = render();
    }
    let gzip = accepts_gzip(request.headers());
    let body = if gzip {
        // The shared renderer caches the members; the own-metrics-only one has nothing
        // worth keeping.
        let members = if exposes_pushed {
            app.renderer.gzip(&rendered)
        } else {
            Renderer::new().gzip(&rendered)
        };
        ResponseBody::chunks(members)
    } else {
        ResponseBody::chunks(rendered.into_chunks())
    };
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    if let Ok(content_type) = HeaderValue::from_str(&format.content_type()) {
        headers.insert(header::CONTENT_TYPE, content_type);
    }
    if gzip {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    Ok(response)
}

fn accepts_gzip(headers: &http::HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|part| {
            let mut pieces = part.split(';');
            let coding = pieces.next().unwrap_or("").trim();
            let refused = pieces.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f64>().ok())
                    == Some(0.0)
            });
            coding.eq_ignore_ascii_case("gzip") && !refused
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_paths() {
        assert_eq!(split_push_path("/metrics/job/a"), Some(("a", false, "")));
        assert_eq!(
            split_push_path("/metrics/job/a/b/c"),
            Some(("a", false, "/b/c"))
        );
        assert_eq!(
            split_push_path("/metrics/job@base64/YQ/"),
            Some(("YQ", true, "/"))
        );
        assert_eq!(split_push_path("/metrics/job"), None);
        assert_eq!(split_push_path("/metrics"), None);
    }
}
