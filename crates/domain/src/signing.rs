//! Standard Webhooks signing (<https://www.standardwebhooks.com/>): an endpoint secret is
//! `whsec_` + base64 of random bytes, and a signature is
//! `v1,` + base64(HMAC-SHA256(secret, "{id}.{timestamp}.{body}")).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use crate::validate::ValidationError;

/// The prefix that marks a Standard Webhooks secret.
pub const SECRET_PREFIX: &str = "whsec_";
/// Bytes of entropy in a generated secret.
pub const GENERATED_SECRET_BYTES: usize = 32;
const MIN_SECRET_BYTES: usize = 24;
const MAX_SECRET_BYTES: usize = 64;

/// An endpoint's signing secret. Its `Debug` output hides the key so that it never reaches a log.
#[derive(Clone, PartialEq, Eq)]
pub struct EndpointSecret {
    key: Vec<u8>,
}

impl std::fmt::Debug for EndpointSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EndpointSecret(<redacted>)")
    }
}

/// The secret could not be generated because the system random source failed.
#[derive(Debug, thiserror::Error)]
#[error("the system random number generator failed")]
pub struct RandomUnavailable;

impl EndpointSecret {
    /// A fresh secret from the system's CSPRNG.
    pub fn generate() -> Result<Self, RandomUnavailable> {
        Ok(Self {
            key: random_bytes(GENERATED_SECRET_BYTES)?,
        })
    }

    /// Parses a `whsec_…` secret given by a user (24 to 64 bytes once decoded).
    pub fn parse(field: &str, text: &str) -> Result<Self, ValidationError> {
        let invalid = || {
            ValidationError::new(
                field,
                "must be 'whsec_' followed by the base64 of 24 to 64 bytes",
            )
        };
        let encoded = text.strip_prefix(SECRET_PREFIX).ok_or_else(invalid)?;
        let key = STANDARD.decode(encoded).map_err(|_| invalid())?;
        if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&key.len()) {
            return Err(invalid());
        }
        Ok(Self { key })
    }

    /// The `whsec_…` text shown to the owner of the endpoint.
    pub fn to_whsec(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.key))
    }

    /// `v1,<base64 signature>` of one delivery.
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &self.key);
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(msg_id.as_bytes());
        ctx.update(b".");
        ctx.update(timestamp.to_string().as_bytes());
        ctx.update(b".");
        ctx.update(body);
        format!("v1,{}", STANDARD.encode(ctx.sign().as_ref()))
    }
}

/// The `webhook-signature` header value: one signature per active secret, space-separated.
pub fn signature_header(
    secrets: &[EndpointSecret],
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .iter()
        .map(|secret| secret.sign(msg_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `len` bytes from the system CSPRNG.
pub fn random_bytes(len: usize) -> Result<Vec<u8>, RandomUnavailable> {
    let mut bytes = vec![0u8; len];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| RandomUnavailable)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Vectors from the Standard Webhooks specification's reference libraries.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const MSG_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: i64 = 1614265330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;

    #[test]
    fn signs_the_standard_webhooks_vector() {
        let secret = EndpointSecret::parse("key", SECRET).unwrap();
        assert_eq!(
            secret.sign(MSG_ID, TIMESTAMP, BODY),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn a_changed_byte_changes_the_signature() {
        let secret = EndpointSecret::parse("key", SECRET).unwrap();
        let good = secret.sign(MSG_ID, TIMESTAMP, BODY);
        assert_ne!(secret.sign(MSG_ID, TIMESTAMP + 1, BODY), good);
        assert_ne!(
            secret.sign(MSG_ID, TIMESTAMP, br#"{"test": 2432232315}"#),
            good
        );
    }

    #[test]
    fn header_carries_one_signature_per_secret() {
        let first = EndpointSecret::parse("key", SECRET).unwrap();
        let second = EndpointSecret::generate().unwrap();
        let header = signature_header(&[first.clone(), second.clone()], MSG_ID, TIMESTAMP, BODY);
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(
            parts,
            [
                first.sign(MSG_ID, TIMESTAMP, BODY),
                second.sign(MSG_ID, TIMESTAMP, BODY)
            ]
        );
    }

    #[test]
    fn generated_secrets_round_trip_and_differ() {
        let a = EndpointSecret::generate().unwrap();
        let b = EndpointSecret::generate().unwrap();
        assert_ne!(a, b);
        assert_eq!(EndpointSecret::parse("key", &a.to_whsec()).unwrap(), a);
        assert!(format!("{a:?}").contains("redacted"));
    }

    #[test]
    fn parse_refuses_bad_secrets() {
        for bad in [
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "whsec_short",
            "whsec_!!!",
            "whsec_",
        ] {
            assert!(EndpointSecret::parse("key", bad).is_err(), "{bad}");
        }
    }
}
