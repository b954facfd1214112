//! `client_allowed_sans`: a client certificate passes only if one of its subject
//! alternative names equals an allowed value exactly, as exporter-toolkit checks them (DNS
//! names, e-mail addresses, IP addresses and URIs, compared as text). The check wraps the
//! usual chain verification, so the certificate is first verified against the client CAs.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, Error, SignatureScheme};

/// A client verifier that also requires an allowed SAN.
#[derive(Debug)]
pub struct AllowedSans {
    inner: Arc<dyn ClientCertVerifier>,
    allowed: Vec<String>,
}

impl AllowedSans {
    /// Wraps `inner`, which verifies the chain.
    pub fn new(inner: Arc<dyn ClientCertVerifier>, allowed: Vec<String>) -> AllowedSans {
        AllowedSans { inner, allowed }
    }
}

impl ClientCertVerifier for AllowedSans {
    fn offer_client_auth(&self) -> bool {
        true
    }

    /// Without a certificate there is no SAN to allow, so one is always required.
    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        let names = subject_alt_names(end_entity.as_ref())
            .ok_or(Error::InvalidCertificate(CertificateError::BadEncoding))?;
        if names.iter().any(|name| self.allowed.contains(name)) {
            Ok(verified)
        } else {
            tracing::debug!(sans = ?names, "client certificate has no allowed SAN");
            Err(Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

// === DER, just enough to reach the SAN extension ===

pub(super) const SEQUENCE: u8 = 0x30;
const OCTET_STRING: u8 = 0x04;
const BOOLEAN: u8 = 0x01;
pub(super) const OID: u8 = 0x06;
/// `[3] EXPLICIT` around the extensions in a TBSCertificate.
const EXTENSIONS: u8 = 0xa3;
/// id-ce-subjectAltName, 2.5.29.17.
const SAN_OID: &[u8] = &[0x55, 0x1d, 0x11];
/// GeneralName choices (context-specific, primitive).
const RFC822_NAME: u8 = 0x81;
const DNS_NAME: u8 = 0x82;
const URI: u8 = 0x86;
const IP_ADDRESS: u8 = 0x87;

/// Splits one TLV off `data`: (tag, contents, rest). `None` on anything malformed.
pub(super) fn tlv(data: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = data.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let len = rest[..count]
            .iter()
            .fold(0usize, |len, &b| (len << 8) | usize::from(b));
        (len, &rest[count..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// Every SAN of a DER certificate as exporter-toolkit writes it (Go's `net.IP.String` for
/// addresses); an empty list without the extension, `None` if the DER is malformed.
pub fn subject_alt_names(cert: &[u8]) -> Option<Vec<String>> {
    let (SEQUENCE, certificate, _) = tlv(cert)? else {
        return None;
    };
    let (SEQUENCE, mut tbs, _) = tlv(certificate)? else {
        return None;
    };
    let mut extensions = None;
    while !tbs.is_empty() {
        let (tag, contents, rest) = tlv(tbs)?;
        if tag == EXTENSIONS {
            extensions = Some(contents);
        }
        tbs = rest;
    }
    let Some(extensions) = extensions else {
        return Some(Vec::new());
    };
    let (SEQUENCE, mut list, _) = tlv(extensions)? else {
        return None;
    };
    let mut names = Vec::new();
    while !list.is_empty() {
        let (SEQUENCE, extension, rest) = tlv(list)? else {
            return None;
        };
        list = rest;
        let (OID, oid, mut fields) = tlv(extension)? else {
            return None;
        };
        if oid != SAN_OID {
            continue;
        }
        if let Some((BOOLEAN, _, rest)) = tlv(fields) {
            fields = rest;
        }
        let (OCTET_STRING, value, _) = tlv(fields)? else {
            return None;
        };
        let (SEQUENCE, mut general_names, _) = tlv(value)? else {
            return None;
        };
        while !general_names.is_empty() {
            let (tag, contents, rest) = tlv(general_names)?;
            general_names = rest;
            match tag {
                RFC822_NAME | DNS_NAME | URI => {
                    names.push(std::str::from_utf8(contents).ok()?.to_string())
                }
                IP_ADDRESS => names.push(ip_text(contents)?),
                _ => {}
            }
        }
    }
    Some(names)
}

/// An address as Go prints it: IPv4 dotted, IPv4-mapped IPv6 as IPv4, IPv6 compressed.
fn ip_text(bytes: &[u8]) -> Option<String> {
    let ip = match bytes.len() {
        4 => IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(bytes).ok()?)),
        16 => {
            let v6 = Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?);
            v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)
        }
        _ => return None,
    };
    Some(ip.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn der(tag: u8, contents: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        if contents.len() < 0x80 {
            out.push(contents.len() as u8);
        } else {
            out.push(0x82);
            out.extend_from_slice(&(contents.len() as u16).to_be_bytes());
        }
        out.extend_from_slice(contents);
        out
    }

    /// A certificate skeleton: only the parts the parser walks are real.
    fn certificate(extensions: &[Vec<u8>]) -> Vec<u8> {
        let mut tbs = der(0xa0, &der(0x02, &[2]));
        tbs.extend(der(0x02, &[1, 2, 3]));
        tbs.extend(der(SEQUENCE, &[]));
        tbs.extend(der(SEQUENCE, &[0x31, 0]));
        if !extensions.is_empty() {
            tbs.extend(der(EXTENSIONS, &der(SEQUENCE, &extensions.concat())));
        }
        let mut cert = der(SEQUENCE, &tbs);
        cert.extend(der(SEQUENCE, &[]));
        cert.extend(der(0x03, &[0]));
        der(SEQUENCE, &cert)
    }

    fn extension(oid: &[u8], critical: bool, value: &[u8]) -> Vec<u8> {
        let mut body = der(OID, oid);
        if critical {
            body.extend(der(BOOLEAN, &[0xff]));
        }
        body.extend(der(OCTET_STRING, value));
        der(SEQUENCE, &body)
    }

    #[test]
    fn every_kind_of_name_is_read_as_go_prints_it() {
        let mut v4_mapped = [0u8; 16];
        v4_mapped[10..12].copy_from_slice(&[0xff, 0xff]);
        v4_mapped[12..].copy_from_slice(&[10, 0, 0, 1]);
        let v6: [u8; 16] = "2001:db8::1".parse::<Ipv6Addr>().unwrap().octets();
        let names = [
            der(DNS_NAME, b"allowed.example"),
            der(RFC822_NAME, b"ops@example.org"),
            der(URI, b"spiffe://example.org/job"),
            der(IP_ADDRESS, &[192, 0, 2, 7]),
            der(IP_ADDRESS, &v4_mapped),
            der(IP_ADDRESS, &v6),
            der(0xa4, &der(SEQUENCE, &[])), // directoryName: not compared
        ]
        .concat();
        for critical in [false, true] {
            let cert = certificate(&[
                extension(&[0x55, 0x1d, 0x13], true, &der(SEQUENCE, &[])),
                extension(SAN_OID, critical, &der(SEQUENCE, &names)),
            ]);
            assert_eq!(
                subject_alt_names(&cert),
                Some(vec![
                    "allowed.example".to_string(),
                    "ops@example.org".into(),
                    "spiffe://example.org/job".into(),
                    "192.0.2.7".into(),
                    "10.0.0.1".into(),
                    "2001:db8::1".into(),
                ])
            );
        }
    }

    #[test]
    fn missing_extensions_give_no_names_and_broken_der_none() {
        assert_eq!(subject_alt_names(&certificate(&[])), Some(vec![]));
        let cert = certificate(&[extension(
            SAN_OID,
            false,
            &der(SEQUENCE, &der(DNS_NAME, b"a.example")),
        )]);
        for cut in 0..cert.len() {
            // Never a panic; a cut certificate is never read as having the name.
            let names = subject_alt_names(&cert[..cut]);
            assert!(
                names.as_ref().is_none_or(|n| n.is_empty()),
                "{cut}: {names:?}"
            );
        }
        let bad_ip = certificate(&[extension(
            SAN_OID,
            false,
            &der(SEQUENCE, &der(IP_ADDRESS, &[1, 2, 3])),
        )]);
        assert_eq!(subject_alt_names(&bad_ip), None);
    }
}
