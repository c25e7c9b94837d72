//! Client certificates for mutual TLS: an endpoint whose receiver asks for a client certificate
//! gets this one presented by every delivery. Parsed and checked once when it is stored (a chain
//! of PEM certificates and the private key of the first), so that a delivery never meets one
//! that cannot be used.

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

use crate::validate::ValidationError;

/// Most bytes of the PEM text of a certificate chain, and of a key.
pub const MAX_PEM_BYTES: usize = 32 * 1024;

/// A certificate chain and its private key, checked to belong together.
pub struct ClientIdentity {
    certificates: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl std::fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientIdentity")
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

impl ClientIdentity {
    /// Reads `certificate` (PEM, the client's certificate first, then any intermediates) and
    /// `private_key` (PEM: PKCS#8, PKCS#1 or SEC1), and checks that the key is of a supported
    /// kind and belongs to the first certificate.
    pub fn parse(certificate: &str, private_key: &str) -> Result<Self, ValidationError> {
        let invalid = |field: &str, message: &str| ValidationError::new(field, message);
        if certificate.len() > MAX_PEM_BYTES || private_key.len() > MAX_PEM_BYTES {
            return Err(invalid(
                "certificate",
                "is too large (at most 32 KiB of PEM each)",
            ));
        }
        let certificates: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(certificate.as_bytes())
                .collect::<Result<_, _>>()
                .map_err(|_| invalid("certificate", "must be PEM certificates"))?;
        if certificates.is_empty() {
            return Err(invalid(
                "certificate",
                "must hold at least one PEM certificate (-----BEGIN CERTIFICATE-----)",
            ));
        }
        let key = PrivateKeyDer::from_pem_slice(private_key.as_bytes()).map_err(|_| {
            invalid(
                "privateKey",
                "must be a PEM private key (PKCS#8, PKCS#1 or SEC1)",
            )
        })?;
        let signing = rustls::crypto::ring::sign::any_supported_type(&key).map_err(|_| {
            invalid(
                "privateKey",
                "is of an unsupported kind (RSA, ECDSA P-256/P-384 or ed25519)",
            )
        })?;
        CertifiedKey::new(certificates.clone(), signing)
            .keys_match()
            .map_err(|err| match err {
                rustls::Error::InvalidCertificate(_) => invalid(
                    "certificate",
                    "the first certificate is not a valid X.509 certificate",
                ),
                _ => invalid("privateKey", "does not belong to the first certificate"),
            })?;
        Ok(Self { certificates, key })
    }

    /// The chain, as rustls presents it.
    pub fn certificates(&self) -> Vec<CertificateDer<'static>> {
        self.certificates.clone()
    }

    /// The private key, as rustls signs with it.
    pub fn key(&self) -> PrivateKeyDer<'static> {
        self.key.clone_key()
    }

    /// SHA-256 of the first certificate, as colon-separated hex (how tools show it).
    pub fn fingerprint(&self) -> String {
        self.certificates
            .first()
            .map_or_else(String::new, |leaf| fingerprint(leaf.as_ref()))
    }
}

/// The fingerprint of the first certificate of a PEM chain stored earlier, if it reads.
pub fn leaf_fingerprint(certificate: &str) -> Option<String> {
    CertificateDer::pem_slice_iter(certificate.as_bytes())
        .next()
        .and_then(Result::ok)
        .map(|leaf| fingerprint(leaf.as_ref()))
}

fn fingerprint(der: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, der)
        .as_ref()
        .iter()
        .map(|byte| format!("{byte:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The owner a client key is sealed for: its endpoint, and only as a client key (a sealed
/// signing secret of the same endpoint does not open as one, nor the other way round).
pub fn key_owner(endpoint_id: uuid::Uuid) -> String {
    format!("client-key:{endpoint_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["client.example".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn a_certificate_and_its_own_key_are_taken() {
        let (cert, key) = identity();
        let parsed = ClientIdentity::parse(&cert, &key).unwrap();
        assert_eq!(parsed.fingerprint().len(), 32 * 3 - 1);
        assert_eq!(parsed.certificates().len(), 1);
        assert_eq!(leaf_fingerprint(&cert), Some(parsed.fingerprint()));
    }

    #[test]
    fn what_cannot_be_presented_is_refused_with_the_field() {
        let (cert, key) = identity();
        let (_, other_key) = identity();
        let cases = [
            ("not pem", key.as_str(), "certificate"),
            (cert.as_str(), "not pem", "privateKey"),
            (cert.as_str(), other_key.as_str(), "privateKey"),
            ("", key.as_str(), "certificate"),
            (
                "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n",
                key.as_str(),
                "certificate",
            ),
        ];
        for (certificate, private_key, field) in cases {
            let refused = ClientIdentity::parse(certificate, private_key).unwrap_err();
            assert_eq!(refused.field, field, "{}", refused.message);
        }
    }
}
