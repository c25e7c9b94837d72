//! Consumer portal tokens: bearer tokens that open the API for one application of one
//! environment, for a short time. A token is `ohp_<claims>.<signature>`: the claims are
//! base64url JSON, the signature an HMAC-SHA256 over `ohp_<claims>` with the portal signing key,
//! which every API replica shares. Checking one takes no database round trip: the signature, the
//! expiry and the scope are in the token; only "revoked before" comes from the application
//! (cached, and forgotten on every change like the other lookups).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::hmac;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Prefix of every portal token, so that it is told apart from API keys (`ohk_`).
pub const PREFIX: &str = "ohp_";
/// Shortest lifetime a token may be given, in seconds.
pub const MIN_EXPIRY_SECS: i64 = 60;
/// Longest lifetime a token may be given, in seconds (a week).
pub const MAX_EXPIRY_SECS: i64 = 7 * 24 * 3600;
/// Lifetime of a token when none is asked for, in seconds.
pub const DEFAULT_EXPIRY_SECS: i64 = 3600;

/// What a token grants; the JSON inside it. Short names keep tokens short in URLs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortalClaims {
    /// Format version.
    pub v: u8,
    /// The environment.
    pub env: Uuid,
    /// The one application the token opens.
    pub app: Uuid,
    /// Issued at, epoch milliseconds.
    pub iat: i64,
    /// Expires at, epoch milliseconds.
    pub exp: i64,
    /// Read-only: no changes to endpoints, no resends.
    pub ro: bool,
}

/// Why a token is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortalTokenError {
    /// Not a portal token, or damaged.
    #[error("malformed portal token")]
    Malformed,
    /// Not signed with this deployment's key.
    #[error("portal token signature does not match")]
    BadSignature,
    /// Past its expiry.
    #[error("portal token expired")]
    Expired,
}

/// Mints and checks portal tokens with one HMAC key.
pub struct PortalSigner {
    key: hmac::Key,
}

impl std::fmt::Debug for PortalSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PortalSigner(<redacted>)")
    }
}

impl PortalSigner {
    /// A signer with `key` (at least 32 bytes of secret randomness).
    pub fn new(key: &[u8]) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, key),
        }
    }

    /// The token carrying `claims`.
    pub fn mint(&self, claims: &PortalClaims) -> String {
        let json = serde_json::to_vec(claims).unwrap_or_default();
        let signed = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(json));
        let tag = hmac::sign(&self.key, signed.as_bytes());
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    /// The claims of `token` if it is well formed, signed with this key (compared in constant
    /// time) and not expired at `now_ms`.
    pub fn verify(&self, token: &str, now_ms: i64) -> Result<PortalClaims, PortalTokenError> {
        let (signed, tag) = token.rsplit_once('.').ok_or(PortalTokenError::Malformed)?;
        let encoded = signed
            .strip_prefix(PREFIX)
            .ok_or(PortalTokenError::Malformed)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| PortalTokenError::Malformed)?;
        hmac::verify(&self.key, signed.as_bytes(), &tag)
            .map_err(|_| PortalTokenError::BadSignature)?;
        let json = URL_SAFE_NO_PAD
            .decode(encoded)
            .map_err(|_| PortalTokenError::Malformed)?;
        let claims: PortalClaims =
            serde_json::from_slice(&json).map_err(|_| PortalTokenError::Malformed)?;
        if claims.v != 1 {
            return Err(PortalTokenError::Malformed);
        }
        if claims.exp <= now_ms {
            return Err(PortalTokenError::Expired);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> PortalClaims {
        PortalClaims {
            v: 1,
            env: Uuid::from_u128(1),
            app: Uuid::from_u128(2),
            iat: 1_000,
            exp,
            ro: true,
        }
    }

    #[test]
    fn a_minted_token_verifies_until_it_expires() {
        let signer = PortalSigner::new(&[7; 32]);
        let token = signer.mint(&claims(10_000));
        assert!(token.starts_with(PREFIX));
        assert_eq!(signer.verify(&token, 9_999), Ok(claims(10_000)));
        assert_eq!(
            signer.verify(&token, 10_000),
            Err(PortalTokenError::Expired)
        );
    }

    #[test]
    fn another_key_or_changed_claims_are_refused() {
        let signer = PortalSigner::new(&[7; 32]);
        let token = signer.mint(&claims(10_000));
        let other = PortalSigner::new(&[8; 32]);
        assert_eq!(other.verify(&token, 0), Err(PortalTokenError::BadSignature));
        // Claims of another application, with the original signature.
        let (_, tag) = token.rsplit_once('.').unwrap();
        let mut forged = claims(10_000);
        forged.app = Uuid::from_u128(3);
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        assert_eq!(
            signer.verify(&format!("{PREFIX}{body}.{tag}"), 0),
            Err(PortalTokenError::BadSignature)
        );
    }

    #[test]
    fn garbage_is_malformed() {
        let signer = PortalSigner::new(&[7; 32]);
        for token in ["", "ohp_", "ohp_x.y", "ohk_abc.def", "ohp_..."] {
            assert!(signer.verify(token, 0).is_err(), "{token}");
        }
    }
}
