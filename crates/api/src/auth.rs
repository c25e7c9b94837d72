//! Authentication: the admin token for `/api/v1/environments`, API keys for everything else.
//! API keys are random 32-byte tokens shown once and stored only as SHA-256 hashes; the admin
//! token is compared in constant time.

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use futures::future::LocalBoxFuture;
use ring::digest;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;

/// Prefix of every API key, so that leaked keys are easy to recognise and scan for.
pub const API_KEY_PREFIX: &str = "ohk_";

/// A new API key and the hash to store.
pub fn new_api_key() -> Result<(String, Vec<u8>), ApiError> {
    let bytes = octohooks_domain::signing::random_bytes(32)
        .map_err(|err| ApiError::Internal(err.to_string()))?;
    let key = format!("{API_KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let hash = hash_key(&key);
    Ok((key, hash))
}

/// SHA-256 of a key: keys carry 256 bits of entropy, so a fast hash is enough.
pub fn hash_key(key: &str) -> Vec<u8> {
    digest::digest(&digest::SHA256, key.as_bytes())
        .as_ref()
        .to_vec()
}

fn bearer(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get(actix_web::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|token| !token.is_empty())
}

fn state(req: &HttpRequest) -> Result<web::Data<AppState>, ApiError> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::Internal("application state missing".into()))
}

/// The environment an API key belongs to: every tenant query is scoped by it.
#[derive(Debug, Clone, Copy)]
pub struct Tenant {
    /// The caller's environment.
    pub environment_id: Uuid,
}

impl FromRequest for Tenant {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = bearer(req).map(str::to_owned);
        let state = state(req);
        Box::pin(async move {
            let token = token.ok_or(ApiError::Unauthorized)?;
            if !token.starts_with(API_KEY_PREFIX) {
                return Err(ApiError::Unauthorized);
            }
            let state = state?;
            let hash = hash_key(&token);
            let load = async {
                let mut conn = octohooks_db::pool::connection(&state.db).await?;
                octohooks_db::environments::environment_for_key(&mut conn, &hash).await
            };
            let environment_id = state
                .lookups
                .environment(&hash, load)
                .await?
                .ok_or(ApiError::Unauthorized)?;
            state
                .rate_limiter
                .check(environment_id)
                .map_err(|wait| ApiError::RateLimited(wait.as_secs().max(1)))?;
            Ok(Tenant { environment_id })
        })
    }
}

/// Proof that the request carries the admin token.
#[derive(Debug, Clone, Copy)]
pub struct Admin;

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(check_admin(req))
    }
}

fn check_admin(req: &HttpRequest) -> Result<Admin, ApiError> {
    let state = state(req)?;
    let expected = state
        .settings
        .admin_token
        .as_deref()
        .ok_or(ApiError::Unauthorized)?;
    let given = bearer(req).ok_or(ApiError::Unauthorized)?;
    // Compare digests so that neither content nor length leaks through timing.
    let equal = hash_key(given).ct_eq(&hash_key(expected));
    if bool::from(equal) {
        Ok(Admin)
    } else {
        Err(ApiError::Unauthorized)
    }
}
