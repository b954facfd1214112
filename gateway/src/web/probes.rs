//! Which requests `--web.unauthenticated-probes` lets past basic auth: GET or HEAD of
//! exactly `<route prefix>/-/healthy` or `<route prefix>/-/ready`, so that kubelet probes
//! work without a password in the pod spec. The raw path is compared as sent, before
//! percent-decoding, so no other spelling (`//-/ready`, `/-/ready/../metrics`,
//! `/%2D/ready`, a trailing slash) gets in without credentials; a query string is allowed
//! because routing ignores it. Everything else stays behind basic auth. The same probes are
//! exempt from the web config's `rate_limit`.

use http::Method;

use super::settings::WebConfig;

/// The probe paths, relative to the route prefix.
const PROBE_PATHS: [&str; 2] = ["/-/healthy", "/-/ready"];

/// Whether this request may skip basic auth.
pub fn skips_auth(config: &WebConfig, method: &Method, raw_path: &str) -> bool {
    config.unauthenticated_probes && is_probe(config, method, raw_path)
}

/// Whether this request is a probe: GET or HEAD of exactly a probe path. Probes are never
/// rate limited, so that a busy gateway is not restarted by its liveness probe.
pub fn is_probe(config: &WebConfig, method: &Method, raw_path: &str) -> bool {
    if method != Method::GET && method != Method::HEAD {
        return false;
    }
    let Some(rest) = raw_path.strip_prefix(config.route_prefix.as_str()) else {
        return false;
    };
    // The scrape path is routed first: if it is set to a probe path, it is a scrape.
    PROBE_PATHS.contains(&rest) && rest != config.telemetry_path
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::config::Config;

    fn config(extra: &[&str]) -> WebConfig {
        let mut args = vec!["pushgateway", "--web.unauthenticated-probes"];
        args.extend_from_slice(extra);
        Config::from_args(args).unwrap().web
    }

    #[test]
    fn only_the_two_probe_paths_with_get_or_head() {
        let web = config(&[]);
        for path in ["/-/healthy", "/-/ready"] {
            assert!(skips_auth(&web, &Method::GET, path), "{path}");
            assert!(skips_auth(&web, &Method::HEAD, path), "{path}");
            for method in [Method::POST, Method::PUT, Method::DELETE, Method::OPTIONS] {
                assert!(!skips_auth(&web, &method, path), "{method} {path}");
            }
        }
        for path in [
            "/",
            "/metrics",
            "//-/ready",
            "/-/ready/",
            "/-/ready/../metrics",
            "/-/./ready",
            "/%2D/ready",
            "/-%2Fready",
            "/-/ready%00",
            "/-/quit",
            "/-/reload",
            "/-/healthy/x",
            "/api/v1/status",
            "-/ready",
            "",
        ] {
            assert!(!skips_auth(&web, &Method::GET, path), "{path}");
        }
    }

    #[test]
    fn off_without_the_flag() {
        let web = Config::from_args(["pushgateway"]).unwrap().web;
        assert!(!skips_auth(&web, &Method::GET, "/-/ready"));
    }

    #[test]
    fn under_the_route_prefix_only() {
        let web = config(&["--web.route-prefix=/pgw"]);
        assert!(skips_auth(&web, &Method::GET, "/pgw/-/ready"));
        assert!(skips_auth(&web, &Method::GET, "/pgw/-/healthy"));
        for path in [
            "/-/ready",
            "/pgw//-/ready",
            "//pgw/-/ready",
            "/pgwx/-/ready",
            "/PGW/-/ready",
        ] {
            assert!(!skips_auth(&web, &Method::GET, path), "{path}");
        }
    }

    #[test]
    fn never_when_the_scrape_path_is_a_probe_path() {
        let web = config(&["--web.telemetry-path=/-/ready"]);
        assert!(!skips_auth(&web, &Method::GET, "/-/ready"));
        assert!(skips_auth(&web, &Method::GET, "/-/healthy"));
    }
}
