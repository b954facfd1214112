//! `--web.config.file`: TLS, client certificates, basic auth, extra response headers and a
//! rate limit, in the exporter-toolkit format upstream uses. The file is checked when the gateway
//! starts (an invalid file stops it with the reason; so does any setting the gateway does
//! not implement, rather than being ignored) and re-read whenever it or a file it names
//! (certificate, key, client CA; see [`file_stamp`]) changes. A new version that is
//! invalid, or that would turn off TLS, client certificates or basic auth, is logged and
//! refused: the previous one stays in force, and turning security off takes a restart.
//!
//! Password checks use bcrypt, whose cost would make every authenticated request expensive
//! (and the gateway easy to overload), so verdicts are cached by a SHA-256 of user,
//! password and hash: only the first request with a given password pays. The checks run
//! on the blocking pool, a few at a time with a bounded queue, so that guessing passwords
//! slows the guesser, while clients whose verdict is cached are answered at once.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine;
use http::{HeaderName, HeaderValue};
use parking_lot::{Mutex, RwLock};
use rustls::ServerConfig;
use serde::Deserialize;
use sha2::{Digest, Sha256};

mod client_name;
mod client_sans;
mod file_stamp;
mod guesses;
pub mod rate_limit;
mod tls;
pub use client_name::common_name;
use file_stamp::{load_stamped, FileStamp};
use rate_limit::{RateLimit, RateLimiter};
use tls::{build_tls, TlsFormat};

/// A web config file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("web config file {path}: {reason}")]
pub struct WebConfigError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong.
    pub reason: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileFormat {
    #[serde(default)]
    tls_server_config: Option<TlsFormat>,
    #[serde(default)]
    http_server_config: Option<HttpFormat>,
    #[serde(default)]
    basic_auth_users: HashMap<String, String>,
    #[serde(default)]
    rate_limit: Option<RateLimitFormat>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RateLimitFormat {
    #[serde(default)]
    interval: Option<String>,
    #[serde(default)]
    burst: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpFormat {
    #[serde(default)]
    http2: Option<bool>,
    #[serde(default)]
    headers: HashMap<String, String>,
}

/// The protections a web config turns on; a reload may add to them, never take away.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Protections {
    tls: bool,
    client_certs: bool,
    client_certs_required: bool,
    allowed_sans: bool,
    basic_auth: bool,
}

impl Protections {
    /// The names of those on in `self` and off in `new`.
    fn dropped_by(self, new: Protections) -> Vec<&'static str> {
        [
            (self.tls && !new.tls, "TLS"),
            (
                self.client_certs && !new.client_certs,
                "client certificate verification",
            ),
            (
                self.client_certs_required && !new.client_certs_required,
                "required client certificates",
            ),
            (
                self.allowed_sans && !new.allowed_sans,
                "client_allowed_sans",
            ),
            (self.basic_auth && !new.basic_auth, "basic auth"),
        ]
        .into_iter()
        .filter_map(|(dropped, name)| dropped.then_some(name))
        .collect()
    }
}

/// One loaded version of the web config.
pub struct WebSecurity {
    /// TLS settings, when the gateway serves HTTPS.
    pub tls: Option<Arc<ServerConfig>>,
    protections: Protections,
    users: HashMap<String, String>,
    /// Headers added to every response.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Credentials that passed, apart from those that failed, so that a guesser filling
    /// the cache with failures never evicts the clients that know their password.
    granted: Arc<Mutex<HashSet<[u8; 32]>>>,
    denied: Arc<Mutex<HashSet<[u8; 32]>>>,
    /// `rate_limit`: one bucket for every request to the server.
    rate_limiter: Option<Arc<RateLimiter>>,
    /// The files read besides the config file itself, watched for changes.
    files: Vec<PathBuf>,
}

/// What basic auth says about a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// No users configured, or the credentials match.
    Allowed,
    /// Missing or wrong credentials.
    Denied,
    /// The credentials are not cached and too many password checks are waiting already.
    Busy,
}

/// Verdicts kept at most per kind; a full cache starts over.
const MAX_CACHED_VERDICTS: usize = 10_000;
/// Password checks waiting for a slot at most; further uncached requests get
/// [`Verdict::Busy`] at once instead of queueing without end.
const MAX_WAITING_CHECKS: usize = 64;

/// Slots for bcrypt checks: half the CPUs (at least one), so that a storm of wrong
/// passwords leaves the other half to everyone else.
static PASSWORD_CHECKS: LazyLock<tokio::sync::Semaphore> = LazyLock::new(|| {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    tokio::sync::Semaphore::new((cpus / 2).max(1))
});
static WAITING_CHECKS: AtomicUsize = AtomicUsize::new(0);

/// Counts a waiting check for as long as it lives.
struct Waiting;

impl Waiting {
    fn enter() -> Option<Waiting> {
        let before = WAITING_CHECKS.fetch_add(1, Ordering::SeqCst);
        if before >= MAX_WAITING_CHECKS {
            WAITING_CHECKS.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(Waiting)
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        WAITING_CHECKS.fetch_sub(1, Ordering::SeqCst);
    }
}
/// A valid bcrypt hash that no password matches, checked for unknown users so that they
/// take as long as known ones.
const DUMMY_HASH: &str = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi";

impl WebSecurity {
    /// Takes a token from the `rate_limit` bucket; without one, how long until there is one.
    ///
    /// # Errors
    /// The wait, when the bucket is empty (the request gets 429).
    pub fn admit(&self) -> Result<(), Duration> {
        self.rate_limiter.as_ref().map_or(Ok(()), |l| l.acquire())
    }

    /// Whether the request from `peer` may pass: always without configured users; otherwise
    /// only with matching basic-auth credentials.
    pub async fn authorize(&self, authorization: Option<&HeaderValue>, peer: IpAddr) -> Verdict {
        if self.users.is_empty() {
            return Verdict::Allowed;
        }
        let Some((user, password)) = authorization.and_then(parse_basic) else {
            return Verdict::Denied;
        };
        let hash = self.users.get(&user);
        let mut digest = Sha256::new();
        for part in [
            user.as_bytes(),
            password.as_bytes(),
            hash.map_or(&[][..], |h| h.as_bytes()),
        ] {
            digest.update((part.len() as u64).to_le_bytes());
            digest.update(part);
        }
        let key: [u8; 32] = digest.finalize().into();
        if let Some(verdict) = self.cached(&key) {
            return verdict;
        }
        if !guesses::may_check(peer) {
            return Verdict::Busy;
        }
        let Some(waiting) = Waiting::enter() else {
            return Verdict::Busy;
        };
        let Ok(slot) = PASSWORD_CHECKS.acquire().await else {
            return Verdict::Busy;
        };
        drop(waiting);
        // Another request with the same credentials may have checked them meanwhile.
        if let Some(verdict) = self.cached(&key) {
            return verdict;
        }
        let known = hash.is_some();
        let hash = hash.cloned().unwrap_or_else(|| DUMMY_HASH.to_string());
        // The slot, the verdict and the failure count go with the check: a client that hangs
        // up neither frees the slot early nor wastes the check (on a busy machine a check can
        // outlast a client's timeout, and its retry must find the verdict cached).
        let (granted, denied) = (self.granted.clone(), self.denied.clone());
        let check = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            let matches = matches!(bcrypt::verify(&password, &hash), Ok(true)) && known;
            let verdicts = if matches { granted } else { denied };
            let mut verdicts = verdicts.lock();
            if verdicts.len() >= MAX_CACHED_VERDICTS {
                verdicts.clear();
            }
            verdicts.insert(key);
            drop(verdicts);
            if !matches {
                guesses::record_failure(peer);
            }
            matches
        });
        if matches!(check.await, Ok(true)) {
            Verdict::Allowed
        } else {
            Verdict::Denied
        }
    }

    /// The user names of `basic_auth_users`.
    pub fn basic_auth_users(&self) -> impl Iterator<Item = &str> {
        self.users.keys().map(String::as_str)
    }

    /// Whether client certificates are verified against the client CAs (only then can
    /// their common name name a user).
    pub fn verifies_client_certs(&self) -> bool {
        self.protections.client_certs || self.protections.allowed_sans
    }

    /// The user of a request that [`WebSecurity::authorize`] let pass: its basic-auth user
    /// name, when basic auth is configured.
    pub fn basic_auth_user(&self, authorization: Option<&HeaderValue>) -> Option<String> {
        if self.users.is_empty() {
            return None;
        }
        authorization
            .and_then(parse_basic)
            .map(|(user, _)| user)
            .filter(|user| self.users.contains_key(user))
    }

    fn cached(&self, key: &[u8; 32]) -> Option<Verdict> {
        if self.granted.lock().contains(key) {
            Some(Verdict::Allowed)
        } else if self.denied.lock().contains(key) {
            Some(Verdict::Denied)
        } else {
            None
        }
    }
}

fn parse_basic(value: &HeaderValue) -> Option<(String, String)> {
    let text = value.to_str().ok()?;
    let (scheme, encoded) = text.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// Loads and checks a web config file.
///
/// # Errors
/// [`WebConfigError`] with the reason.
pub fn load(path: &Path) -> Result<WebSecurity, WebConfigError> {
    let error = |reason: String| WebConfigError {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
    let format: FileFormat = if text.trim().is_empty() {
        FileFormat::default()
    } else {
        serde_yaml_ng::from_str(&text).map_err(|e| error(e.to_string()))?
    };
    let rate_limit = format
        .rate_limit
        .as_ref()
        .map(rate_limit_of)
        .transpose()
        .map_err(error)?
        .flatten();
    let base = path.parent().unwrap_or(Path::new("."));
    let files = format
        .tls_server_config
        .as_ref()
        .map(|tls| {
            [&tls.cert_file, &tls.key_file, &tls.client_ca_file]
                .into_iter()
                .filter(|file| !file.is_empty())
                .map(|file| resolve(base, file))
                .collect()
        })
        .unwrap_or_default();
    let mut protections = Protections {
        basic_auth: !format.basic_auth_users.is_empty(),
        ..Protections::default()
    };
    // exporter-toolkit's default: HTTP/2 is offered to TLS clients unless turned off.
    let http2 = format
        .http_server_config
        .as_ref()
        .and_then(|http| http.http2)
        .unwrap_or(true);
    let tls = format
        .tls_server_config
        .map(|tls| {
            protections.tls = true;
            protections.client_certs = matches!(
                tls.client_auth_type.as_str(),
                "VerifyClientCertIfGiven" | "RequireAndVerifyClientCert"
            );
            protections.allowed_sans = !tls.client_allowed_sans.is_empty();
            protections.client_certs_required =
                protections.allowed_sans || tls.client_auth_type == "RequireAndVerifyClientCert";
            build_tls(&tls, base, http2).map(Arc::new)
        })
        .transpose()
        .map_err(error)?;
    for (user, hash) in &format.basic_auth_users {
        if bcrypt::verify("", hash).is_err() {
            return Err(error(format!(
                "basic_auth_users: the hash of {user:?} is not a bcrypt hash"
            )));
        }
    }
    let mut headers = Vec::new();
    if let Some(http) = format.http_server_config {
        for (name, value) in http.headers {
            check_header(&name, &value).map_err(error)?;
            let header = HeaderName::try_from(name.as_str())
                .map_err(|_| error(format!("invalid header name {name:?}")))?;
            let value = HeaderValue::try_from(value.as_str())
                .map_err(|_| error(format!("invalid value for header {name:?}")))?;
            headers.push((header, value));
        }
    }
    Ok(WebSecurity {
        tls,
        protections,
        users: format.basic_auth_users,
        headers,
        granted: Arc::default(),
        denied: Arc::default(),
        rate_limiter: rate_limit.map(|limit| Arc::new(RateLimiter::new(limit))),
        files,
    })
}

/// exporter-toolkit's reading of `rate_limit`: interval 0 (or none) is no limiter.
fn rate_limit_of(format: &RateLimitFormat) -> Result<Option<RateLimit>, String> {
    let interval = format.interval.as_deref().unwrap_or("0");
    let interval = crate::duration::parse_go_duration(interval)
        .map_err(|e| format!("rate_limit.interval: {e}"))?;
    if interval.is_zero() {
        return Ok(None);
    }
    let burst = format.burst.unwrap_or(0);
    // Upstream would take burst 0 and then refuse every request; say so at the start instead.
    let burst = u32::try_from(burst)
        .ok()
        .filter(|&burst| burst > 0)
        .ok_or_else(|| {
            format!("rate_limit.burst must be between 1 and {} when an interval is set (it is {burst}); with 0 every request would be refused", u32::MAX)
        })?;
    Ok(Some(RateLimit { interval, burst }))
}

/// exporter-toolkit's rule: only these security headers may be set, some only to
/// well-known values.
fn check_header(name: &str, value: &str) -> Result<(), String> {
    let allowed: &[&str] = match name {
        "Strict-Transport-Security" | "X-XSS-Protection" | "Content-Security-Policy" => &[],
        "X-Content-Type-Options" => &["nosniff"],
        "X-Frame-Options" => &["deny", "sameorigin"],
        _ => return Err(format!("HTTP header {name:?} can not be configured")),
    };
    if !allowed.is_empty() && !allowed.contains(&value) {
        return Err(format!(
            "invalid value for {name}: expected one of {allowed:?}, got {value:?}"
        ));
    }
    Ok(())
}

/// Relative file names in the config are relative to the config file, as upstream.
fn resolve(base: &Path, file: &str) -> PathBuf {
    let path = Path::new(file);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

fn log_rate_limit(security: &WebSecurity) {
    if let Some(limiter) = &security.rate_limiter {
        let RateLimit { interval, burst } = limiter.limit();
        tracing::info!(burst, interval = ?interval, "rate limiter is enabled");
    }
}

/// What a new version of the file must also satisfy, set by whoever depends on it (the
/// access rules need the users they name); a version it refuses is not taken.
pub type ReloadGuard = Box<dyn Fn(&WebSecurity) -> Result<(), String> + Send + Sync>;

/// The web config file, re-read when it changes.
pub struct WebConfigSource {
    path: PathBuf,
    current: RwLock<(FileStamp, Arc<WebSecurity>)>,
    last_check: Mutex<Instant>,
    last_reload_successful: AtomicBool,
    guard: OnceLock<ReloadGuard>,
}

/// How often the file's modification time is looked at.
const RECHECK: Duration = Duration::from_secs(1);

impl WebConfigSource {
    /// Loads the file; an invalid file is an error.
    ///
    /// # Errors
    /// [`WebConfigError`] with the reason.
    pub fn open(path: &Path) -> Result<WebConfigSource, WebConfigError> {
        let (stamp, security) = load_stamped(path, &[], || load(path), |s| &s.files)?;
        log_rate_limit(&security);
        Ok(WebConfigSource {
            path: path.to_path_buf(),
            current: RwLock::new((stamp, Arc::new(security))),
            last_check: Mutex::new(Instant::now()),
            last_reload_successful: AtomicBool::new(true),
            guard: OnceLock::new(),
        })
    }

    /// Installs the check every later version must pass too (once; later calls are
    /// ignored). It must not call [`WebConfigSource::current`].
    pub fn set_reload_guard(&self, guard: ReloadGuard) {
        let _ = self.guard.set(guard);
    }

    /// Whether the last change of the file was taken (true until one was refused).
    pub fn last_reload_successful(&self) -> bool {
        self.last_reload_successful.load(Ordering::Relaxed)
    }

    /// The configuration in force, re-read first if the file changed.
    pub fn current(&self) -> Arc<WebSecurity> {
        let due = {
            let mut last = self.last_check.lock();
            let due = last.elapsed() >= RECHECK;
            if due {
                *last = Instant::now();
            }
            due
        };
        if due {
            let files = self.current.read().1.files.clone();
            let stamp = FileStamp::of(&self.path, &files);
            if stamp != self.current.read().0 {
                self.reload(&files, stamp);
            }
        }
        self.current.read().1.clone()
    }
}

impl WebConfigSource {
    /// Loads the changed files; `stamp` is what the check saw, kept when the load fails so
    /// that a broken version is reported once, not on every check.
    fn reload(&self, files: &[PathBuf], stamp: FileStamp) {
        let loaded = load_stamped(&self.path, files, || load(&self.path), |s| &s.files).and_then(
            |(stamp, security)| {
                let dropped = self
                    .current
                    .read()
                    .1
                    .protections
                    .dropped_by(security.protections);
                if dropped.is_empty() {
                    match self.guard.get().map_or(Ok(()), |guard| guard(&security)) {
                        Ok(()) => Ok((stamp, security)),
                        Err(reason) => Err(WebConfigError {
                            path: self.path.clone(),
                            reason,
                        }),
                    }
                } else {
                    // A truncated or half-copied file must not open the gateway up.
                    Err(WebConfigError {
                        path: self.path.clone(),
                        reason: format!(
                            "the new version would turn off {}; restart the gateway to do that",
                            dropped.join(", ")
                        ),
                    })
                }
            },
        );
        let mut current = self.current.write();
        match loaded {
            Ok((stamp, mut security)) => {
                tracing::info!(file = %self.path.display(), "reloaded the web config file");
                // An unchanged limit keeps its bucket: a reload must not hand out a new burst.
                if let (Some(old), Some(new)) = (&current.1.rate_limiter, &security.rate_limiter) {
                    if old.limit() == new.limit() {
                        security.rate_limiter = Some(old.clone());
                    }
                }
                log_rate_limit(&security);
                *current = (stamp, Arc::new(security));
                self.last_reload_successful.store(true, Ordering::Relaxed);
            }
            Err(e) => {
                tracing::error!(err = %e, "keeping the previous web config");
                current.0 = stamp;
                self.last_reload_successful.store(false, Ordering::Relaxed);
            }
        }
    }
}
