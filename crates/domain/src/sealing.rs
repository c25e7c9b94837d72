//! Encryption at rest of endpoint signing secrets: ChaCha20-Poly1305 (ring) with a 256-bit key
//! from the configuration. A sealed value reads `enc2:<key id>:<base64 nonce‖ciphertext‖tag>`;
//! the key id (first 8 hex digits of the key's SHA-256) tells which key opens it, so the key can
//! be rotated: the new key seals, old keys still open, and `octohooks-api reseal-secrets`
//! rewrites every stored secret under the new key.
//!
//! A value is bound to what it belongs to (an endpoint's id): the associated data of the seal
//! is the prefix, the key id and that binding, so a sealed secret copied into another
//! endpoint's row, or sealed under another key id, does not open. Values of the first format
//! (`enc1:`, bound to the key id only) and plaintext values (written before a key was
//! configured) are still read, and `reseal-secrets` rewrites them in the bound format.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::digest;

use crate::signing::random_bytes;

/// How every value sealed now begins; a stored secret without it needs `reseal-secrets`.
pub const SEALED_PREFIX: &str = "enc2:";
/// The first sealed format, bound to the key id but not to its owner: still opened.
pub const UNBOUND_PREFIX: &str = "enc1:";

/// Why a value could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// A configured key is not base64 of 32 bytes.
    #[error("an encryption key must be the base64 of 32 random bytes")]
    BadKey,
    /// The value was sealed with a key that is not configured.
    #[error("no configured key opens this value (key id {0})")]
    UnknownKey(String),
    /// The value is damaged or was tampered with.
    #[error("a sealed value could not be opened")]
    Corrupt,
    /// The system random source failed.
    #[error("the system random number generator failed")]
    Random,
}

struct Key {
    id: String,
    key: LessSafeKey,
}

impl Key {
    fn parse(text: &str) -> Result<Self, SealError> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| SealError::BadKey)?;
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, &bytes).map_err(|_| SealError::BadKey)?;
        let id = digest::digest(&digest::SHA256, &bytes)
            .as_ref()
            .iter()
            .take(4)
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(Self {
            id,
            key: LessSafeKey::new(unbound),
        })
    }
}

/// Seals with the current key and opens with it or any older one. Without a current key it
/// passes values through unchanged.
pub struct Sealer {
    current: Option<Key>,
    older: Vec<Key>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("current", &self.current.as_ref().map(|k| &k.id))
            .field(
                "older",
                &self.older.iter().map(|k| &k.id).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Sealer {
    /// Builds from the base64 current key (empty: none) and comma-separated older keys.
    pub fn new(current: &str, older: &str) -> Result<Self, SealError> {
        let current = Some(current.trim())
            .filter(|text| !text.is_empty())
            .map(Key::parse)
            .transpose()?;
        let older = older
            .split(',')
            .map(str::trim)
            .filter(|text| !text.is_empty())
            .map(Key::parse)
            .collect::<Result<_, _>>()?;
        Ok(Self { current, older })
    }

    /// A sealer that stores plaintext (no key configured).
    pub fn plaintext() -> Self {
        Self {
            current: None,
            older: Vec::new(),
        }
    }

    /// True when new values are encrypted.
    pub fn is_sealing(&self) -> bool {
        self.current.is_some()
    }

    /// Seals `plain` with the current key, bound to `owner` (or returns it unchanged without a
    /// key).
    pub fn seal(&self, plain: &str, owner: &str) -> Result<String, SealError> {
        let Some(key) = &self.current else {
            return Ok(plain.to_owned());
        };
        let nonce_bytes = random_bytes(NONCE_LEN).map_err(|_| SealError::Random)?;
        let nonce =
            Nonce::try_assume_unique_for_key(&nonce_bytes).map_err(|_| SealError::Random)?;
        let mut buffer = plain.as_bytes().to_vec();
        key.key
            .seal_in_place_append_tag(nonce, Aad::from(bound_data(&key.id, owner)), &mut buffer)
            .map_err(|_| SealError::Corrupt)?;
        let mut packed = nonce_bytes;
        packed.extend_from_slice(&buffer);
        Ok(format!(
            "{SEALED_PREFIX}{}:{}",
            key.id,
            STANDARD.encode(packed)
        ))
    }

    /// Opens a stored value sealed for `owner` (plaintext values come back as they are, and
    /// values of the unbound format open for any owner).
    pub fn open(&self, stored: &str, owner: &str) -> Result<String, SealError> {
        let (rest, bound) = if let Some(rest) = stored.strip_prefix(SEALED_PREFIX) {
            (rest, true)
        } else if let Some(rest) = stored.strip_prefix(UNBOUND_PREFIX) {
            (rest, false)
        } else {
            return Ok(stored.to_owned());
        };
        let (id, encoded) = rest.split_once(':').ok_or(SealError::Corrupt)?;
        let key = self
            .current
            .iter()
            .chain(&self.older)
            .find(|key| key.id == id)
            .ok_or_else(|| SealError::UnknownKey(id.to_owned()))?;
        let packed = STANDARD.decode(encoded).map_err(|_| SealError::Corrupt)?;
        if packed.len() < NONCE_LEN {
            return Err(SealError::Corrupt);
        }
        let (nonce_bytes, sealed) = packed.split_at(NONCE_LEN);
        let nonce =
            Nonce::try_assume_unique_for_key(nonce_bytes).map_err(|_| SealError::Corrupt)?;
        let data = if bound {
            bound_data(&key.id, owner)
        } else {
            key.id.as_bytes().to_vec()
        };
        let mut buffer = sealed.to_vec();
        let plain = key
            .key
            .open_in_place(nonce, Aad::from(data), &mut buffer)
            .map_err(|_| SealError::Corrupt)?;
        String::from_utf8(plain.to_vec()).map_err(|_| SealError::Corrupt)
    }

    /// True when `stored` is not sealed with the current key in the bound format (a reseal
    /// would rewrite it).
    pub fn needs_reseal(&self, stored: &str) -> bool {
        match &self.current {
            None => false,
            Some(key) => !stored.starts_with(&format!("{SEALED_PREFIX}{}:", key.id)),
        }
    }
}

/// The associated data of a bound seal: format, key id and owner, each unambiguous (the key
/// id is fixed-length hex, the owner comes last).
fn bound_data(key_id: &str, owner: &str) -> Vec<u8> {
    format!("{SEALED_PREFIX}{key_id}:{owner}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
    const KEY_B: &str = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";
    const OWNER: &str = "0193c1f0-0000-7000-8000-000000000001";
    const OTHER: &str = "0193c1f0-0000-7000-8000-000000000002";

    /// Seals as the first format did: bound to the key id only.
    fn seal_unbound(sealer: &Sealer, plain: &str) -> String {
        let key = sealer.current.as_ref().unwrap();
        let nonce_bytes = random_bytes(NONCE_LEN).unwrap();
        let nonce = Nonce::try_assume_unique_for_key(&nonce_bytes).unwrap();
        let mut buffer = plain.as_bytes().to_vec();
        key.key
            .seal_in_place_append_tag(nonce, Aad::from(key.id.as_bytes()), &mut buffer)
            .unwrap();
        let mut packed = nonce_bytes;
        packed.extend_from_slice(&buffer);
        format!("{UNBOUND_PREFIX}{}:{}", key.id, STANDARD.encode(packed))
    }

    #[test]
    fn seals_and_opens() {
        let sealer = Sealer::new(KEY_A, "").unwrap();
        let sealed = sealer.seal("whsec_secret", OWNER).unwrap();
        assert!(sealed.starts_with("enc2:"));
        assert!(!sealed.contains("whsec_secret"));
        assert_ne!(
            sealer.seal("whsec_secret", OWNER).unwrap(),
            sealed,
            "fresh nonce each time"
        );
        assert_eq!(sealer.open(&sealed, OWNER).unwrap(), "whsec_secret");
    }

    #[test]
    fn a_sealed_value_opens_only_for_its_owner() {
        let sealer = Sealer::new(KEY_A, "").unwrap();
        let sealed = sealer.seal("whsec_secret", OWNER).unwrap();
        assert!(matches!(
            sealer.open(&sealed, OTHER),
            Err(SealError::Corrupt)
        ));
        assert!(matches!(sealer.open(&sealed, ""), Err(SealError::Corrupt)));
        // Relabelled as the unbound format, it does not open either.
        let relabelled = sealed.replacen(SEALED_PREFIX, UNBOUND_PREFIX, 1);
        assert!(sealer.open(&relabelled, OWNER).is_err());
    }

    #[test]
    fn values_of_the_first_format_still_open_and_are_flagged() {
        let sealer = Sealer::new(KEY_A, "").unwrap();
        let old = seal_unbound(&sealer, "whsec_old");
        assert_eq!(sealer.open(&old, OWNER).unwrap(), "whsec_old");
        assert!(sealer.needs_reseal(&old));
        assert!(sealer.needs_reseal("whsec_plain"));
        assert!(!sealer.needs_reseal(&sealer.seal("whsec_old", OWNER).unwrap()));
    }

    #[test]
    fn rotation_opens_old_values_and_flags_them() {
        let old = Sealer::new(KEY_A, "").unwrap();
        let sealed = old.seal("whsec_x", OWNER).unwrap();
        let rotated = Sealer::new(KEY_B, KEY_A).unwrap();
        assert_eq!(rotated.open(&sealed, OWNER).unwrap(), "whsec_x");
        assert!(rotated.needs_reseal(&sealed));
        assert!(!rotated.needs_reseal(&rotated.seal("whsec_x", OWNER).unwrap()));
        let without_old = Sealer::new(KEY_B, "").unwrap();
        assert!(matches!(
            without_old.open(&sealed, OWNER),
            Err(SealError::UnknownKey(_))
        ));
    }

    #[test]
    fn tampering_and_bad_keys_are_refused() {
        let sealer = Sealer::new(KEY_A, "").unwrap();
        let mut sealed = sealer.seal("whsec_x", OWNER).unwrap();
        let last = sealed.pop().unwrap();
        sealed.push(if last == 'A' { 'B' } else { 'A' });
        assert!(sealer.open(&sealed, OWNER).is_err());
        assert!(Sealer::new("short", "").is_err());
        assert_eq!(Sealer::plaintext().seal("p", OWNER).unwrap(), "p");
        assert_eq!(sealer.open("whsec_plain", OWNER).unwrap(), "whsec_plain");
        assert!(!format!("{sealer:?}").contains(KEY_A));
    }
}
