//! The TLS side of `--web.config.file`: `tls_server_config` as exporter-toolkit spells it,
//! turned into a rustls server configuration (certificates, versions, cipher suites,
//! curves, client certificate verification and allowed SANs).

use std::path::Path;
use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;

use super::resolve;

/// `tls_server_config`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TlsFormat {
    #[serde(default)]
    pub(super) cert_file: String,
    #[serde(default)]
    pub(super) key_file: String,
    #[serde(default)]
    pub(super) cert: String,
    #[serde(default)]
    pub(super) key: String,
    #[serde(default)]
    pub(super) client_auth_type: String,
    #[serde(default)]
    pub(super) client_ca_file: String,
    #[serde(default)]
    pub(super) client_ca: String,
    #[serde(default)]
    pub(super) client_allowed_sans: Vec<String>,
    #[serde(default)]
    pub(super) min_version: String,
    #[serde(default)]
    pub(super) max_version: String,
    #[serde(default)]
    pub(super) cipher_suites: Vec<String>,
    #[serde(default)]
    pub(super) curve_preferences: Vec<String>,
    #[serde(default)]
    pub(super) prefer_server_cipher_suites: Option<bool>,
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

pub(super) fn build_tls(tls: &TlsFormat, base: &Path, http2: bool) -> Result<ServerConfig, String> {
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
            super::client_sans::AllowedSans::new(verifier, tls.client_allowed_sans.clone()),
        )),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("cert_file/key_file: {e}"))?;
    config.alpn_protocols = if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
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
