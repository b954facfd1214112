//! The web UI: static files embedded in the binary. `index.html` gets the external path
//! prefix and the version filled in; the assets are served with a long cache lifetime,
//! which the version query string in their URLs makes safe. The script is a set of ES
//! modules (no build step): `app.js` imports the others with `?v=__VERSION__` in each URL,
//! filled in here too, so that a cached module of another version is never used.

use std::sync::LazyLock;

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};

use super::error::ApiError;
use super::response_body::ResponseBody;
use super::{App, HttpResponse};

const INDEX_HTML: &str = include_str!("ui/index.html");
const APP_CSS: &str = include_str!("ui/app.css");
const VERSION: &str = env!("CARGO_PKG_VERSION");
const JS_CONTENT_TYPE: &str = "text/javascript; charset=utf-8";

/// The script's modules under `/static/`, by file name; `app.js` is the entry point.
const MODULES: [(&str, &str); 12] = [
    ("app.js", include_str!("ui/app.js")),
    ("api.js", include_str!("ui/api.js")),
    ("controls.js", include_str!("ui/controls.js")),
    ("dom.js", include_str!("ui/dom.js")),
    ("format.js", include_str!("ui/format.js")),
    ("groups.js", include_str!("ui/groups.js")),
    ("load.js", include_str!("ui/load.js")),
    ("matcher.js", include_str!("ui/matcher.js")),
    ("navigation.js", include_str!("ui/navigation.js")),
    ("render.js", include_str!("ui/render.js")),
    ("state.js", include_str!("ui/state.js")),
    ("status.js", include_str!("ui/status.js")),
];

/// [`MODULES`] with the version in their import URLs, built on first use.
static VERSIONED_MODULES: LazyLock<Vec<(&str, Bytes)>> = LazyLock::new(|| {
    MODULES
        .iter()
        .map(|(name, source)| (*name, Bytes::from(source.replace("__VERSION__", VERSION))))
        .collect()
});

/// The page for `/` and `/status`.
pub fn index(app: &App) -> HttpResponse {
    let page = INDEX_HTML
        .replace("__PATH_PREFIX__", &app.config.external_prefix)
        .replace("__VERSION__", VERSION);
    respond(page.into(), "text/html; charset=utf-8", "no-cache")
}

/// A file under `/static/`.
///
/// # Errors
/// [`ApiError::NotFound`] for anything but the embedded assets.
pub fn asset(path: &str) -> Result<HttpResponse, ApiError> {
    let name = path.strip_prefix("/static/").ok_or(ApiError::NotFound)?;
    let (body, content_type) = if name == "app.css" {
        (
            Bytes::from_static(APP_CSS.as_bytes()),
            "text/css; charset=utf-8",
        )
    } else {
        let (_, body) = VERSIONED_MODULES
            .iter()
            .find(|(module, _)| *module == name)
            .ok_or(ApiError::NotFound)?;
        (body.clone(), JS_CONTENT_TYPE)
    };
    Ok(respond(
        body,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The import specifiers of a module: `import { a } from './b.js?v=__VERSION__';`.
    fn imports(source: &str) -> Vec<&str> {
        source
            .lines()
            .filter(|line| line.starts_with("import "))
            .filter_map(|line| line.split(" from '").nth(1)?.split('\'').next())
            .collect()
    }

    #[test]
    fn every_script_file_is_served_and_imported_with_the_version() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/web/ui");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .expect("ui directory")
            .map(|entry| {
                entry
                    .expect("entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .filter(|name| name.ends_with(".js"))
            .collect();
        on_disk.sort();
        let mut served: Vec<String> = MODULES.iter().map(|(name, _)| name.to_string()).collect();
        served.sort();
        assert_eq!(served, on_disk, "MODULES must list every script in ui/");

        let mut imported = vec!["app.js"];
        for (name, source) in MODULES {
            for spec in imports(source) {
                let file = spec
                    .strip_prefix("./")
                    .and_then(|rest| rest.strip_suffix("?v=__VERSION__"))
                    .unwrap_or_else(|| panic!("{name}: import {spec:?} lacks ./ or the version"));
                assert!(MODULES.iter().any(|(m, _)| *m == file), "{name}: {file}");
                imported.push(file);
            }
        }
        for (name, _) in MODULES {
            assert!(
                imported.contains(&name),
                "{name} is served but imported nowhere"
            );
        }
    }

    #[test]
    fn served_modules_carry_the_version_in_their_imports() {
        let (_, app) = VERSIONED_MODULES
            .iter()
            .find(|(name, _)| *name == "app.js")
            .expect("app.js");
        let app = std::str::from_utf8(app).expect("utf-8");
        assert!(!app.contains("__VERSION__"));
        assert!(app.contains(&format!("./state.js?v={VERSION}'")), "{app}");
    }
}
