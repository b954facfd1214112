//! The HTTP settings (`--web.*` and the push limits the handlers enforce), owned here and
//! filled in by `config`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::expiry::TtlBounds;
use crate::model::NameValidation;
use crate::parse::ParseLimits;
use crate::store::Consistency;

/// One `--web.listen-address`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenAddress {
    /// Every address of the host, IPv6 and IPv4 (`:9091`, `0.0.0.0:9091`, `[::]:9091`): Go
    /// listens dual-stack on each of these spellings.
    Wildcard(u16),
    /// One address.
    Socket(SocketAddr),
}

impl std::fmt::Display for ListenAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListenAddress::Wildcard(port) => write!(f, ":{port}"),
            ListenAddress::Socket(address) => address.fmt(f),
        }
    }
}

/// Where and how the HTTP server listens and routes.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// Addresses to bind, in the order given; unused with `systemd_socket`.
    pub listen: Vec<ListenAddress>,
    /// Whether to serve the sockets systemd passes (`LISTEN_FDS`) instead.
    pub systemd_socket: bool,
    /// Where to write the bound address, if anywhere.
    pub listen_address_file: Option<PathBuf>,
    /// Internal route prefix, `""` or `/something` without trailing slash.
    pub route_prefix: String,
    /// Path prefix as seen from outside (from --web.external-url), for links in the UI.
    pub external_prefix: String,
    /// Scrape path, relative to the route prefix.
    pub telemetry_path: String,
    /// Whether `/-/quit` works.
    pub enable_lifecycle: bool,
    /// Whether `/api/v1/admin/*` exists.
    pub enable_admin_api: bool,
    /// Whether scrapes may negotiate OpenMetrics.
    pub enable_openmetrics: bool,
    /// Largest push body after decompression.
    pub max_body_bytes: usize,
    /// The web config file (TLS, basic auth, headers), if any.
    pub web_config_file: Option<PathBuf>,
    /// Whether the two probe paths skip basic auth.
    pub unauthenticated_probes: bool,
    /// Most clients served at once.
    pub max_connections: usize,
    /// How long a client may take to send request headers.
    pub header_read_timeout: Duration,
    /// How long a response write may stall before the connection is closed (`None`: no limit).
    pub write_timeout: Option<Duration>,
    /// Bounds on each line of a text push.
    pub parse_limits: ParseLimits,
    /// Whether pushes are acknowledged with 202 without a check.
    pub consistency: Consistency,
    /// Name rules for pushes.
    pub validation: NameValidation,
    /// What a push may ask for with the `Pushgateway-TTL` header.
    pub ttl_bounds: TtlBounds,
    /// How OTLP exports are translated; `None` with `--otlp.disable`.
    pub otlp: Option<crate::otlp::Settings>,
}
