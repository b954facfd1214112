//! The web UI: three static files embedded in the binary. `index.html` gets the external
//! path prefix and the version filled in; the assets are served with a long cache
//! lifetime, which the version query string in their URLs makes safe.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};

use super::error::ApiError;
use super::response_body::ResponseBody;
use super::{App, HttpResponse};

const INDEX_HTML: &str = include_str!("ui/index.html");
const APP_JS: &str = include_str!("ui/app.js");
const APP_CSS: &str = include_str!("ui/app.css");

/// The page for `/` and `/status`.
pub fn index(app: &App) -> HttpResponse {
    let page = INDEX_HTML
        .replace("__PATH_PREFIX__", &app.config.external_prefix)
        .replace("__VERSION__", env!("CARGO_PKG_VERSION"));
    respond(page.into(), "text/html; charset=utf-8", "no-cache")
}

/// A file under `/static/`.
///
/// # Errors
/// [`ApiError::NotFound`] for anything but the embedded assets.
pub fn asset(path: &str) -> Result<HttpResponse, ApiError> {
    let (body, content_type) = match path {
        "/static/app.js" => (APP_JS, "text/javascript; charset=utf-8"),
        "/static/app.css" => (APP_CSS, "text/css; charset=utf-8"),
        _ => return Err(ApiError::NotFound),
    };
    Ok(respond(
        Bytes::from_static(body.as_bytes()),
        content_type,
        "public, max-age=31536000, immutable",
    ))
}

fn respond(body: Bytes, content_type: &'static str, cache: &'static str) -> HttpResponse {
    let mut response = Response::new(ResponseBody::full(body));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}
