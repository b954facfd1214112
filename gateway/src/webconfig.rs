//! `--web.config.file`: TLS, client certificates, basic auth and extra response headers,
//! in the exporter-toolkit format upstream uses. The file is checked when the gateway
//! starts (an invalid file stops it with the reason) and re-read whenever it changes; an
//! invalid new version is logged and the previous one stays in force.
//!
//! Password checks use bcrypt, whose cost would make every authenticated request expensive
//! (and the gateway easy to overload), so verdicts are cached by a SHA-256 of user,
//! password and hash: only the first request with a given password pays. The checks run
//! on the blocking pool, a few at a time with a bounded queue, so that guessing passwords
//! slows the guesser, while clients whose verdict is cached are answered at once.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine;
use http::{HeaderName, HeaderValue};
use parking_lot::{Mutex, RwLock};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use sha2::{Digest, Sha256};

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

/// One loaded version of the web config.
pub struct WebSecurity {
    /// TLS settings, when the gateway serves HTTPS.
    pub tls: Option<Arc<ServerConfig>>,
    users: HashMap<String, String>,
    /// Headers added to every response.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Credentials that passed, apart from those that failed, so that a guesser filling
    /// the cache with failures never evicts the clients that know their password.
    granted: Mutex<HashSet<[u8; 32]>>,
    denied: Mutex<HashSet<[u8; 32]>>,
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
    let base = path.parent().unwrap_or(Path::new("."));
    let tls = format
        .tls_server_config
        .map(|tls| build_tls(&tls, base).map(Arc::new))
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
            let header = HeaderName::try_from(name.as_str())
                .map_err(|_| error(format!("invalid header name {name:?}")))?;
            let value = HeaderValue::try_from(value.as_str())
                .map_err(|_| error(format!("invalid value for header {name:?}")))?;
            headers.push((header, value));
        }
    }
    Ok(WebSecurity {
        tls,
        users: format.basic_auth_users,
        headers,
        granted: Mutex::new(HashSet::new()),
        denied: Mutex::new(HashSet::new()),
    })
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
    if !tls.client_allowed_sans.is_empty() || !tls.curve_preferences.is_empty() {
        tracing::warn!(
            "client_allowed_sans and curve_preferences are not supported and are ignored"
        );
    }
    let _ = tls.prefer_server_cipher_suites;
    let certs = pem_certs(base, &tls.cert_file, &tls.cert, "cert_file")?;
    let key = if !tls.key.is_empty() {
        PrivateKeyDer::from_pem_slice(tls.key.as_bytes())
    } else {
        PrivateKeyDer::from_pem_file(resolve(base, &tls.key_file))
    }
    .map_err(|e| format!("key_file {:?}: {e}", tls.key_file))?;

    let mut provider = rustls::crypto::ring::default_provider();
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
    let builder = match tls.client_auth_type.as_str() {
        "" | "NoClientCert" | "RequestClientCert" => builder.with_no_client_auth(),
        "VerifyClientCertIfGiven" => builder.with_client_cert_verifier(
            WebPkiClientVerifier::builder(client_roots()?)
                .allow_unauthenticated()
                .build()
                .map_err(|e| e.to_string())?,
        ),
        "RequireAndVerifyClientCert" => builder.with_client_cert_verifier(
            WebPkiClientVerifier::builder(client_roots()?)
                .build()
                .map_err(|e| e.to_string())?,
        ),
        other => return Err(format!("client_auth_type {other:?} is not supported")),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("cert_file/key_file: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The web config file, re-read when it changes.
pub struct WebConfigSource {
    path: PathBuf,
    current: RwLock<(Option<SystemTime>, Arc<WebSecurity>)>,
    last_check: Mutex<Instant>,
}

/// How often the file's modification time is looked at.
const RECHECK: Duration = Duration::from_secs(1);

impl WebConfigSource {
    /// Loads the file; an invalid file is an error.
    ///
    /// # Errors
    /// [`WebConfigError`] with the reason.
    pub fn open(path: &Path) -> Result<WebConfigSource, WebConfigError> {
        let modified = modified(path);
        let security = load(path)?;
        Ok(WebConfigSource {
            path: path.to_path_buf(),
            current: RwLock::new((modified, Arc::new(security))),
            last_check: Mutex::new(Instant::now()),
        })
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
            let modified = modified(&self.path);
            if modified != self.current.read().0 {
                match load(&self.path) {
                    Ok(security) => {
                        tracing::info!(file = %self.path.display(), "reloaded the web config file");
                        *self.current.write() = (modified, Arc::new(security));
                    }
                    Err(e) => {
                        tracing::error!(err = %e, "keeping the previous web config");
                        self.current.write().0 = modified;
                    }
                }
            }
        }
        self.current.read().1.clone()
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}
