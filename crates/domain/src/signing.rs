//! Standard Webhooks signing (<https://www.standardwebhooks.com/>) of
//! `"{id}.{timestamp}.{body}"`, with either kind of endpoint secret:
//! - symmetric: `whsec_` + base64 of random bytes; signature `v1,` + base64(HMAC-SHA256);
//! - asymmetric: `whsk_` + base64 of an ed25519 private key (the 32-byte seed, or seed and
//!   public key, 64 bytes, as libsodium writes it); signature `v1a,` + base64(ed25519). The
//!   receiver verifies with the public key (`whpk_` + base64 of its 32 bytes) and so cannot
//!   forge a webhook itself.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{Ed25519KeyPair, KeyPair as _};

use crate::validate::ValidationError;

/// The prefix that marks a Standard Webhooks secret.
pub const SECRET_PREFIX: &str = "whsec_";
/// The prefix of an asymmetric (ed25519) signing key.
pub const ASYMMETRIC_SECRET_PREFIX: &str = "whsk_";
/// The prefix of the public key that verifies `v1a` signatures.
pub const PUBLIC_KEY_PREFIX: &str = "whpk_";
const ED25519_SEED_BYTES: usize = 32;
/// Bytes of entropy in a generated secret.
pub const GENERATED_SECRET_BYTES: usize = 32;
const MIN_SECRET_BYTES: usize = 24;
const MAX_SECRET_BYTES: usize = 64;

/// The two kinds of endpoint secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    /// HMAC-SHA256 with a shared secret (`whsec_`, signatures `v1,`).
    Hmac,
    /// ed25519 with a private key (`whsk_`, signatures `v1a,`); receivers hold the public key.
    Ed25519,
}

/// An endpoint's signing secret. Its `Debug` output hides the key so that it never reaches a log.
#[derive(Clone, PartialEq, Eq)]
pub struct EndpointSecret {
    key: Vec<u8>,
    kind: SecretKind,
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
    /// A fresh HMAC secret from the system's CSPRNG.
    pub fn generate() -> Result<Self, RandomUnavailable> {
        Self::generate_kind(SecretKind::Hmac)
    }

    /// A fresh secret of `kind` from the system's CSPRNG.
    pub fn generate_kind(kind: SecretKind) -> Result<Self, RandomUnavailable> {
        let len = match kind {
            SecretKind::Hmac => GENERATED_SECRET_BYTES,
            SecretKind::Ed25519 => ED25519_SEED_BYTES,
        };
        Ok(Self {
            key: random_bytes(len)?,
            kind,
        })
    }

    /// Parses a secret given by a user: `whsec_…` (24 to 64 bytes once decoded) or `whsk_…`
    /// (an ed25519 seed of 32 bytes, or seed and public key, 64 bytes).
    pub fn parse(field: &str, text: &str) -> Result<Self, ValidationError> {
        if let Some(encoded) = text.strip_prefix(ASYMMETRIC_SECRET_PREFIX) {
            return parse_ed25519(field, encoded);
        }
        let invalid = || {
            ValidationError::new(
                field,
                "must be 'whsec_' followed by the base64 of 24 to 64 bytes, or 'whsk_' followed by the base64 of an ed25519 key",
            )
        };
        let encoded = text.strip_prefix(SECRET_PREFIX).ok_or_else(invalid)?;
        let key = STANDARD.decode(encoded).map_err(|_| invalid())?;
        if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&key.len()) {
            return Err(invalid());
        }
        Ok(Self {
            key,
            kind: SecretKind::Hmac,
        })
    }

    /// Which kind of secret this is.
    pub fn kind(&self) -> SecretKind {
        self.kind
    }

    /// The text shown to the owner of the endpoint and stored (sealed): `whsec_…`, or
    /// `whsk_…` with seed and public key (64 bytes, as libsodium and the reference libraries
    /// write an ed25519 secret key).
    pub fn to_text(&self) -> String {
        match self.kind {
            SecretKind::Hmac => format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.key)),
            SecretKind::Ed25519 => {
                let mut full = self.key.clone();
                full.extend_from_slice(&self.ed25519_public());
                format!("{ASYMMETRIC_SECRET_PREFIX}{}", STANDARD.encode(full))
            }
        }
    }

    /// `whpk_…`, the key receivers verify `v1a` signatures with; `None` for an HMAC secret.
    pub fn public_key(&self) -> Option<String> {
        (self.kind == SecretKind::Ed25519).then(|| {
            format!(
                "{PUBLIC_KEY_PREFIX}{}",
                STANDARD.encode(self.ed25519_public())
            )
        })
    }

    fn ed25519_public(&self) -> Vec<u8> {
        Ed25519KeyPair::from_seed_unchecked(&self.key)
            .map(|pair| pair.public_key().as_ref().to_vec())
            .unwrap_or_default()
    }

    /// `v1,<base64 signature>` (HMAC) or `v1a,<base64 signature>` (ed25519) of one delivery.
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        let timestamp = timestamp.to_string();
        match self.kind {
            SecretKind::Hmac => {
                let key = hmac::Key::new(hmac::HMAC_SHA256, &self.key);
                let mut ctx = hmac::Context::with_key(&key);
                for part in [msg_id.as_bytes(), b".", timestamp.as_bytes(), b".", body] {
                    ctx.update(part);
                }
                format!("v1,{}", STANDARD.encode(ctx.sign().as_ref()))
            }
            SecretKind::Ed25519 => {
                let signed = [msg_id.as_bytes(), b".", timestamp.as_bytes(), b".", body].concat();
                // The seed was checked when the secret was parsed or generated.
                match Ed25519KeyPair::from_seed_unchecked(&self.key) {
                    Ok(pair) => format!("v1a,{}", STANDARD.encode(pair.sign(&signed).as_ref())),
                    Err(_) => String::new(),
                }
            }
        }
    }
}

fn parse_ed25519(field: &str, encoded: &str) -> Result<EndpointSecret, ValidationError> {
    let invalid = |why: &str| {
        ValidationError::new(
            field,
            format!("must be 'whsk_' followed by the base64 of an ed25519 key: {why}"),
        )
    };
    let bytes = STANDARD
        .decode(encoded)
        .map_err(|_| invalid("not base64"))?;
    let seed = match bytes.len() {
        ED25519_SEED_BYTES => bytes,
        64 => {
            let (seed, public) = bytes.split_at(ED25519_SEED_BYTES);
            Ed25519KeyPair::from_seed_and_public_key(seed, public)
                .map_err(|_| invalid("its public half does not belong to its seed"))?;
            seed.to_vec()
        }
        _ => return Err(invalid("32 bytes (seed) or 64 bytes (seed and public key)")),
    };
    Ed25519KeyPair::from_seed_unchecked(&seed).map_err(|_| invalid("not an ed25519 seed"))?;
    Ok(EndpointSecret {
        key: seed,
        kind: SecretKind::Ed25519,
    })
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
        assert_eq!(EndpointSecret::parse("key", &a.to_text()).unwrap(), a);
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

    /// RFC 8032, section 7.1, test 1.
    const RFC_SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
    const RFC_PUBLIC: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn ed25519_keys_read_as_seed_or_seed_and_public_and_show_the_public_key() {
        let seed = hex(RFC_SEED);
        let public = hex(RFC_PUBLIC);
        let from_seed =
            EndpointSecret::parse("key", &format!("whsk_{}", STANDARD.encode(&seed))).unwrap();
        let full = [seed.clone(), public.clone()].concat();
        let from_full =
            EndpointSecret::parse("key", &format!("whsk_{}", STANDARD.encode(&full))).unwrap();
        assert_eq!(from_seed, from_full);
        assert_eq!(from_seed.kind(), SecretKind::Ed25519);
        assert_eq!(
            from_seed.public_key().unwrap(),
            format!("whpk_{}", STANDARD.encode(&public))
        );
        assert_eq!(
            from_seed.to_text(),
            format!("whsk_{}", STANDARD.encode(&full))
        );
        let mut wrong_public = full.clone();
        wrong_public[40] ^= 1;
        assert!(
            EndpointSecret::parse("key", &format!("whsk_{}", STANDARD.encode(&wrong_public)))
                .is_err()
        );
        assert!(EndpointSecret::parse("key", "whsk_AAAA").is_err());
        assert_eq!(
            EndpointSecret::parse("key", SECRET).unwrap().public_key(),
            None
        );
    }

    #[test]
    fn v1a_signatures_verify_with_an_independent_ed25519_implementation() {
        use ed25519_dalek::{Signature, Verifier as _, VerifyingKey};
        let secret = EndpointSecret::generate_kind(SecretKind::Ed25519).unwrap();
        let signed = secret.sign(MSG_ID, TIMESTAMP, BODY);
        let encoded = signed.strip_prefix("v1a,").expect("a v1a signature");
        let signature = Signature::from_slice(&STANDARD.decode(encoded).unwrap()).unwrap();
        let public = secret.public_key().unwrap();
        let public: [u8; 32] = STANDARD
            .decode(public.strip_prefix("whpk_").unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        let key = VerifyingKey::from_bytes(&public).unwrap();
        let message = format!(
            "{MSG_ID}.{TIMESTAMP}.{}",
            std::str::from_utf8(BODY).unwrap()
        );
        key.verify(message.as_bytes(), &signature).unwrap();
        assert!(key.verify(b"something else", &signature).is_err());
        // The same key, read back from its text, signs the same (ed25519 is deterministic).
        let again = EndpointSecret::parse("key", &secret.to_text()).unwrap();
        assert_eq!(again.sign(MSG_ID, TIMESTAMP, BODY), signed);
    }
}
