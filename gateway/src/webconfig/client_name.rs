//! The user name a verified client certificate carries: the common name (CN) of its
//! subject, as Kubernetes and most client-certificate schemes use it. SANs name hosts and
//! services, and a certificate may have many, so they are left to `client_allowed_sans`.

use super::client_sans::{tlv, OID, SEQUENCE};

/// `[0] EXPLICIT` version at the start of a TBSCertificate.
const VERSION: u8 = 0xa0;
const SET: u8 = 0x31;
/// id-at-commonName, 2.5.4.3.
const COMMON_NAME_OID: &[u8] = &[0x55, 0x04, 0x03];
/// The string types a CN is written in that are text as they are.
const UTF8_STRING: u8 = 0x0c;
const PRINTABLE_STRING: u8 = 0x13;
const IA5_STRING: u8 = 0x16;

/// The subject's common name of a DER certificate; `None` without exactly one CN in a
/// plain string type, or when the DER is malformed.
pub fn common_name(cert: &[u8]) -> Option<String> {
    let (SEQUENCE, certificate, _) = tlv(cert)? else {
        return None;
    };
    let (SEQUENCE, mut tbs, _) = tlv(certificate)? else {
        return None;
    };
    if let Some((VERSION, _, rest)) = tlv(tbs) {
        tbs = rest;
    }
    // serialNumber, signature, issuer, validity, then the subject.
    for _ in 0..4 {
        tbs = tlv(tbs)?.2;
    }
    let (SEQUENCE, mut subject, _) = tlv(tbs)? else {
        return None;
    };
    let mut found = None;
    while !subject.is_empty() {
        let (SET, mut attributes, rest) = tlv(subject)? else {
            return None;
        };
        subject = rest;
        while !attributes.is_empty() {
            let (SEQUENCE, attribute, rest) = tlv(attributes)? else {
                return None;
            };
            attributes = rest;
            let (OID, oid, value) = tlv(attribute)? else {
                return None;
            };
            if oid != COMMON_NAME_OID {
                continue;
            }
            let (tag, text, _) = tlv(value)?;
            if found.is_some() || ![UTF8_STRING, PRINTABLE_STRING, IA5_STRING].contains(&tag) {
                // Two CNs, or one in an odd encoding: no name rather than a guess.
                return None;
            }
            found = Some(std::str::from_utf8(text).ok()?.to_string());
        }
    }
    found.filter(|name| !name.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn der(tag: u8, contents: &[u8]) -> Vec<u8> {
        let mut out = vec![tag, contents.len() as u8];
        out.extend_from_slice(contents);
        out
    }

    fn attribute(oid: &[u8], tag: u8, value: &str) -> Vec<u8> {
        let mut contents = der(OID, oid);
        contents.extend(der(tag, value.as_bytes()));
        der(SET, &der(SEQUENCE, &contents))
    }

    fn certificate(subject: &[Vec<u8>]) -> Vec<u8> {
        let mut tbs = der(VERSION, &der(0x02, &[2]));
        tbs.extend(der(0x02, &[1, 2, 3]));
        tbs.extend(der(SEQUENCE, &[]));
        tbs.extend(der(
            SEQUENCE,
            &attribute(COMMON_NAME_OID, UTF8_STRING, "ca"),
        ));
        tbs.extend(der(SEQUENCE, &[]));
        tbs.extend(der(SEQUENCE, &subject.concat()));
        tbs.extend(der(SEQUENCE, &[]));
        let mut cert = der(SEQUENCE, &tbs);
        cert.extend(der(SEQUENCE, &[]));
        der(SEQUENCE, &cert)
    }

    #[test]
    fn the_subjects_single_common_name() {
        let organisation = [0x55, 0x04, 0x0a];
        let cert = certificate(&[
            attribute(&organisation, UTF8_STRING, "org"),
            attribute(COMMON_NAME_OID, PRINTABLE_STRING, "team-a"),
        ]);
        assert_eq!(
            common_name(&cert).as_deref(),
            Some("team-a"),
            "not the issuer's"
        );
        let two = certificate(&[
            attribute(COMMON_NAME_OID, UTF8_STRING, "a"),
            attribute(COMMON_NAME_OID, UTF8_STRING, "b"),
        ]);
        assert_eq!(common_name(&two), None);
        assert_eq!(common_name(&certificate(&[])), None);
        let bmp = certificate(&[attribute(COMMON_NAME_OID, 0x1e, "ab")]);
        assert_eq!(common_name(&bmp), None);
        assert_eq!(common_name(&cert[..cert.len() - 3]), None);
        assert_eq!(common_name(&[]), None);
    }
}
