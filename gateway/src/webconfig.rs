//! `--web.config.file`: TLS, client certificates, basic auth and extra response headers,
//! in the exporter-toolkit format upstream uses. The file is checked when the gateway
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
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use base64::Engine;
use http::{HeaderName, HeaderValue};
use parking_lot::{Mutex, RwLock};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use sha2::{Digest, Sha256};

mod client_sans;
mod file_stamp;
use file_stamp::{load_stamped, FileStamp};

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
struct TlsFormat {
    #[serde(default)]
    cert_file: String,
    #[serde(default)]
    key_file: String,
    #[serde(default)]
    cert: String,
    #[serde(default)]
    key: String,
    #[serde(default)]
    client_auth_type: String,
    #[serde(default)]
    client_ca_file: String,
    #[serde(default)]
    client_ca: String,
    #[serde(default)]
    client_allowed_sans: Vec<String>,
    #[serde(default)]
    min_version: String,
    #[serde(default)]
    max_version: String,
    #[serde(default)]
    cipher_suites: Vec<String>,
    #[serde(default)]
    curve_preferences: Vec<String>,
    #[serde(default)]
    prefer_server_cipher_suites: Option<bool>,
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
    granted: Mutex<HashSet<[u8; 32]>>,
    denied: Mutex<HashSet<[u8; 32]>>,
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
    /// Whether the request may pass: always without configured users; otherwise only with
    /// matching basic-auth credentials.
    pub async fn authorize(&self, authorization: Option<&HeaderValue>) -> Verdict {
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
        // The slot goes with the check: a client that hangs up does not free it early.
        let check = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            bcrypt::verify(&password, &hash)
        });
        let matches = matches!(check.await, Ok(Ok(true))) && known;
        let verdicts = if matches { &self.granted } else { &self.denied };
        let mut verdicts = verdicts.lock();
        if verdicts.len() >= MAX_CACHED_VERDICTS {
            verdicts.clear();
        }
        verdicts.insert(key);
        if matches {
            Verdict::Allowed
        } else {
            Verdict::Denied
        }
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
    if let Some(rate_limit) = &format.rate_limit {
        let interval = rate_limit.interval.as_deref().unwrap_or("0");
        // Interval 0 is exporter-toolkit's "no rate limiter"; anything else is a limit the
        // gateway would not enforce.
        if crate::duration::parse_go_duration(interval).map_err(error)? != Duration::ZERO {
            return Err(error(format!(
                "rate_limit (interval {interval:?}, burst {}) is not supported by this gateway; remove it or set interval to 0",
                rate_limit.burst.unwrap_or(0)
            )));
        }
    }
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
            build_tls(&tls, base).map(Arc::new)
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
        if http.http2 == Some(true) {
            tracing::info!("http_server_config.http2 is ignored: the gateway serves HTTP/1.1");
        }
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
        granted: Mutex::new(HashSet::new()),
        denied: Mutex::new(HashSet::new()),
        files,
    })
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

fn pem_certs(
    base: &Path,
    file: &str,
    inline: &str,
    what: &str,
) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Result<Vec<_>, _> = if !inline.is_empty() {
        CertificateDer::pem_slice_iter(inline.as_bytes()).collect()
    } else {
        CertificateDer::pem_file_iter(resolve(base, file))
            .map_err(|e| format!("{what} {file:?}: {e}"))?
            .collect()
    };
    let certs = certs.map_err(|e| format!("{what} {file:?}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{what} {file:?}: no certificate found"));
    }
    Ok(certs)
}

fn build_tls(tls: &TlsFormat, base: &Path) -> Result<ServerConfig, String> {
    if (tls.cert_file.is_empty() && tls.cert.is_empty())
        || (tls.key_file.is_empty() && tls.key.is_empty())
    {
        return Err("tls_server_config needs cert_file and key_file (or cert and key)".into());
    }
    let certs = pem_certs(base, &tls.cert_file, &tls.cert, "cert_file")?;
    let key = if !tls.key.is_empty() {
        PrivateKeyDer::from_pem_slice(tls.key.as_bytes())
    } else {
        PrivateKeyDer::from_pem_file(resolve(base, &tls.key_file))
    }
    .map_err(|e| format!("key_file {:?}: {e}", tls.key_file))?;

    let mut provider = rustls::crypto::ring::default_provider();
    if !tls.curve_preferences.is_empty() {
        provider.kx_groups = tls
            .curve_preferences
            .iter()
            .map(|name| key_exchange_group(name))
            .collect::<Result<_, _>>()?;
    }
    if !tls.cipher_suites.is_empty() {
        for name in &tls.cipher_suites {
            if !provider
                .cipher_suites
                .iter()
                .any(|s| format!("{:?}", s.suite()) == *name)
            {
                return Err(format!("cipher suite {name:?} is not supported"));
            }
        }
        // The list only restricts TLS 1.2, as in Go; TLS 1.3 suites stay.
        provider.cipher_suites.retain(|s| {
            s.version() == &rustls::version::TLS13
                || tls.cipher_suites.contains(&format!("{:?}", s.suite()))
        });
    }
    let versions: &[&rustls::SupportedProtocolVersion] =
        match (tls.min_version.as_str(), tls.max_version.as_str()) {
            ("TLS13", _) => &[&rustls::version::TLS13],
            (_, "TLS12") => &[&rustls::version::TLS12],
            ("" | "TLS10" | "TLS11" | "TLS12", "" | "TLS13") => {
                &[&rustls::version::TLS13, &rustls::version::TLS12]
            }
            (min, max) => {
                return Err(format!(
                    "unsupported TLS version range min_version={min:?} max_version={max:?}"
                ))
            }
        };
    let builder = ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(versions)
        .map_err(|e| e.to_string())?;
    let client_roots = || -> Result<Arc<RootCertStore>, String> {
        let mut roots = RootCertStore::empty();
        for cert in pem_certs(base, &tls.client_ca_file, &tls.client_ca, "client_ca_file")? {
            roots
                .add(cert)
                .map_err(|e| format!("client_ca_file: {e}"))?;
        }
        Ok(Arc::new(roots))
    };
    let has_client_ca = !tls.client_ca_file.is_empty() || !tls.client_ca.is_empty();
    let verifier = match tls.client_auth_type.as_str() {
        "" | "NoClientCert" | "RequestClientCert" => {
            if has_client_ca {
                // The CA would check nobody (exporter-toolkit refuses this without a
                // client_auth_type; RequestClientCert does not verify either).
                return Err(format!(
                    "client_ca_file is set but client_auth_type {:?} does not verify client certificates",
                    tls.client_auth_type
                ));
            }
            None
        }
        "VerifyClientCertIfGiven" => Some(
            WebPkiClientVerifier::builder(client_roots()?)
                .allow_unauthenticated()
                .build()
                .map_err(|e| e.to_string())?,
        ),
        "RequireAndVerifyClientCert" => Some(
            WebPkiClientVerifier::builder(client_roots()?)
                .build()
                .map_err(|e| e.to_string())?,
        ),
        other => return Err(format!("client_auth_type {other:?} is not supported")),
    };
    let builder = match (verifier, tls.client_allowed_sans.is_empty()) {
        (None, true) => builder.with_no_client_auth(),
        (None, false) => {
            return Err(format!(
                "client_allowed_sans needs client_auth_type VerifyClientCertIfGiven or RequireAndVerifyClientCert (it is {:?})",
                tls.client_auth_type
            ))
        }
        (Some(verifier), true) => builder.with_client_cert_verifier(verifier),
        // With allowed SANs a certificate is always required: no certificate, no SAN.
        (Some(verifier), false) => builder.with_client_cert_verifier(Arc::new(
            client_sans::AllowedSans::new(verifier, tls.client_allowed_sans.clone()),
        )),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("cert_file/key_file: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // exporter-toolkit's default is true; Go itself no longer lets the client choose.
    config.ignore_client_order = tls.prefer_server_cipher_suites.unwrap_or(true);
    Ok(config)
}

/// exporter-toolkit's curve names; P-521 has no implementation in the TLS library.
fn key_exchange_group(name: &str) -> Result<&'static dyn rustls::crypto::SupportedKxGroup, String> {
    use rustls::crypto::ring::kx_group;
    match name {
        "X25519" => Ok(kx_group::X25519),
        "CurveP256" => Ok(kx_group::SECP256R1),
        "CurveP384" => Ok(kx_group::SECP384R1),
        "CurveP521" => Err("curve_preferences: CurveP521 is not supported by this gateway".into()),
        other => Err(format!("curve_preferences: unknown curve {other:?}")),
    }
}

/// The web config file, re-read when it changes.
pub struct WebConfigSource {
    path: PathBuf,
    current: RwLock<(FileStamp, Arc<WebSecurity>)>,
    last_check: Mutex<Instant>,
    last_reload_successful: AtomicBool,
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
        Ok(WebConfigSource {
            path: path.to_path_buf(),
            current: RwLock::new((stamp, Arc::new(security))),
            last_check: Mutex::new(Instant::now()),
            last_reload_successful: AtomicBool::new(true),
        })
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
                    Ok((stamp, security))
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
            Ok((stamp, security)) => {
                tracing::info!(file = %self.path.display(), "reloaded the web config file");
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
