//! Authentication: the admin token for `/api/v1/environments`, API keys for everything else,
//! and consumer portal tokens for one application's pages. API keys are random 32-byte tokens
//! shown once and stored only as SHA-256 hashes; the admin token is compared in constant time;
//! portal tokens are signed (see [`octohooks_domain::portal`]) and their scope is enforced here,
//! in one place, before any handler runs.

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use futures::future::LocalBoxFuture;
use ring::digest;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use octohooks_db::environments::NewKey;
use octohooks_db::Found as _;
use octohooks_domain::portal::{self, PortalClaims};

use crate::error::ApiError;
use crate::lookups::KeyLookup;
use crate::state::AppState;

/// Prefix of every API key, so that leaked keys are easy to recognise and scan for.
pub const API_KEY_PREFIX: &str = "ohk_";

/// How many characters of a key are kept to recognise it by (`ohk_` and four more).
const SHOWN_PREFIX_LEN: usize = API_KEY_PREFIX.len() + 4;

/// A new API key, and what is stored of it (its hash and prefix).
pub fn new_api_key() -> Result<(String, NewKey), ApiError> {
    let bytes = octohooks_domain::signing::random_bytes(32)
        .map_err(|err| ApiError::Internal(err.to_string()))?;
    let key = format!("{API_KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let stored = NewKey {
        hash: hash_key(&key),
        prefix: key[..SHOWN_PREFIX_LEN].to_owned(),
    };
    Ok((key, stored))
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

/// What a tenant's token may reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// An API key: everything in its environment.
    Environment,
    /// A consumer portal token: one application's endpoints, messages and attempts, and the
    /// event type catalog to read.
    Portal {
        /// The application.
        application_id: Uuid,
        /// No changes and no resends.
        read_only: bool,
    },
}

/// The environment a token belongs to, and its scope: every tenant query is scoped by the
/// environment, and a portal token has already been held to its application when a handler
/// sees it.
#[derive(Debug, Clone, Copy)]
pub struct Tenant {
    /// The caller's environment.
    pub environment_id: Uuid,
    /// What the token may reach.
    pub scope: Scope,
}

impl FromRequest for Tenant {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = bearer(req).map(str::to_owned);
        let state = state(req);
        // Only portal tokens need the route (building it allocates): API keys skip it.
        let route = token
            .as_deref()
            .filter(|token| token.starts_with(portal::PREFIX))
            .map(|_| RouteOfRequest::of(req));
        Box::pin(async move {
            let token = token.ok_or(ApiError::Unauthorized)?;
            let state = state?;
            let tenant = if token.starts_with(API_KEY_PREFIX) {
                api_key_tenant(&state, &token).await?
            } else if let Some(route) = route {
                portal_tenant(&state, &token, &route).await?
            } else {
                return Err(ApiError::Unauthorized);
            };
            state
                .rate_limiter
                .check(tenant.environment_id)
                .map_err(|wait| ApiError::RateLimited(wait.as_secs().max(1)))?;
            Ok(tenant)
        })
    }
}

/// Length of every API key: the prefix and 32 bytes in unpadded base64url.
const API_KEY_LEN: usize = API_KEY_PREFIX.len() + 43;

/// True for what [`new_api_key`] makes: anything else is refused before any lookup.
fn well_formed_api_key(token: &str) -> bool {
    token.len() == API_KEY_LEN
        && token[API_KEY_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

async fn api_key_tenant(state: &AppState, token: &str) -> Result<Tenant, ApiError> {
    if !well_formed_api_key(token) {
        return Err(ApiError::Unauthorized);
    }
    let hash = hash_key(token);
    let load = async {
        let mut conn = octohooks_db::pool::connection(&state.db).await?;
        octohooks_db::environments::environment_for_key(&mut conn, &hash).await
    };
    let environment_id = match state.lookups.environment(&hash, load).await? {
        KeyLookup::Found(environment_id) => environment_id,
        KeyLookup::Unknown => return Err(ApiError::Unauthorized),
        KeyLookup::Busy => {
            return Err(ApiError::Unavailable(
                "too many API keys are being checked at once; retry".into(),
            ))
        }
    };
    state.key_usage.note(&hash);
    Ok(Tenant {
        environment_id,
        scope: Scope::Environment,
    })
}

/// The route a request matched, as the portal scope check needs it.
struct RouteOfRequest {
    method: actix_web::http::Method,
    /// The pattern below `/api/v1`, e.g. `/applications/{app}/endpoints`.
    pattern: String,
    /// The `{app}` path segment, if the route has one.
    app: Option<String>,
}

impl RouteOfRequest {
    fn of(req: &HttpRequest) -> Self {
        let pattern = req.match_pattern().unwrap_or_default();
        Self {
            method: req.method().clone(),
            pattern: pattern
                .strip_prefix("/api/v1")
                .unwrap_or(&pattern)
                .to_owned(),
            app: req.match_info().get("app").map(str::to_owned),
        }
    }
}

/// The routes a portal token opens: `(method, pattern, changes something)`.
const PORTAL_ROUTES: &[(&str, &str, bool)] = &[
    ("GET", "/applications/{app}", false),
    ("GET", "/applications/{app}/endpoints", false),
    ("POST", "/applications/{app}/endpoints", true),
    ("GET", "/applications/{app}/endpoints/{endpoint}", false),
    ("PUT", "/applications/{app}/endpoints/{endpoint}", true),
    ("PATCH", "/applications/{app}/endpoints/{endpoint}", true),
    ("DELETE", "/applications/{app}/endpoints/{endpoint}", true),
    (
        "GET",
        "/applications/{app}/endpoints/{endpoint}/secret",
        false,
    ),
    (
        "POST",
        "/applications/{app}/endpoints/{endpoint}/secret/rotate",
        true,
    ),
    (
        "GET",
        "/applications/{app}/endpoints/{endpoint}/attempts",
        false,
    ),
    (
        "POST",
        "/applications/{app}/endpoints/{endpoint}/send-example",
        true,
    ),
    (
        "GET",
        "/applications/{app}/endpoints/{endpoint}/stats",
        false,
    ),
    (
        "GET",
        "/applications/{app}/endpoints/{endpoint}/client-certificate",
        false,
    ),
    (
        "PUT",
        "/applications/{app}/endpoints/{endpoint}/client-certificate",
        true,
    ),
    (
        "DELETE",
        "/applications/{app}/endpoints/{endpoint}/client-certificate",
        true,
    ),
    (
        "POST",
        "/applications/{app}/endpoints/{endpoint}/recover",
        true,
    ),
    (
        "POST",
        "/applications/{app}/endpoints/{endpoint}/replay-missing",
        true,
    ),
    ("GET", "/background-tasks", false),
    ("GET", "/background-tasks/{task}", false),
    ("GET", "/applications/{app}/messages", false),
    ("GET", "/applications/{app}/messages/{message}", false),
    (
        "GET",
        "/applications/{app}/messages/{message}/payload",
        false,
    ),
    (
        "GET",
        "/applications/{app}/messages/{message}/attempts",
        false,
    ),
    (
        "GET",
        "/applications/{app}/messages/{message}/attempts/{attempt}",
        false,
    ),
    (
        "GET",
        "/applications/{app}/messages/{message}/endpoints",
        false,
    ),
    (
        "POST",
        "/applications/{app}/messages/{message}/endpoints/{endpoint}/resend",
        true,
    ),
    ("GET", "/event-types", false),
    ("GET", "/event-types/{name}", false),
];

/// Whether a portal token with `read_only` may call `route` (its application aside).
fn portal_allows(route: &RouteOfRequest, read_only: bool) -> bool {
    PORTAL_ROUTES.iter().any(|(method, pattern, writes)| {
        route.method.as_str() == *method && route.pattern == *pattern && !(read_only && *writes)
    })
}

async fn portal_tenant(
    state: &AppState,
    token: &str,
    route: &RouteOfRequest,
) -> Result<Tenant, ApiError> {
    let now = chrono::Utc::now().timestamp_millis();
    let claims: PortalClaims = state
        .settings
        .portal_signer
        .verify(token, now)
        .map_err(|_| ApiError::Unauthorized)?;
    let load = async {
        let mut conn = octohooks_db::pool::connection(&state.db).await?;
        let revoked = octohooks_db::applications::portal_revoked_before(&mut conn, claims.app);
        let revoked = revoked.await.found()?;
        Ok::<_, ApiError>(revoked.map(|at| at.map_or(i64::MIN, |at| at.timestamp_millis())))
    };
    let revoked_before = state
        .lookups
        .portal_revoked_before(claims.app, load)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    if claims.iat <= revoked_before {
        return Err(ApiError::Unauthorized);
    }
    if !portal_allows(route, claims.ro) {
        return Err(ApiError::Forbidden(
            "this portal token does not open this route",
        ));
    }
    if let Some(app) = &route.app {
        match crate::scope::resolve(state, claims.env, app).await {
            Ok(scope) if scope.id() == claims.app => {}
            Ok(_) | Err(ApiError::NotFound(_)) => {
                return Err(ApiError::Forbidden(
                    "this portal token opens another application",
                ))
            }
            Err(other) => return Err(other),
        }
    }
    Ok(Tenant {
        environment_id: claims.env,
        scope: Scope::Portal {
            application_id: claims.app,
            read_only: claims.ro,
        },
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_keys_of_the_issued_shape_are_looked_up() {
        let (key, stored) = new_api_key().unwrap();
        assert!(well_formed_api_key(&key), "{key}");
        assert_eq!(stored.hash, hash_key(&key));
        assert!(!well_formed_api_key("ohk_short"));
        assert!(!well_formed_api_key(&format!("{key}x")));
        let mut wrong_alphabet = key.clone();
        wrong_alphabet.replace_range(10..11, "+");
        assert!(!well_formed_api_key(&wrong_alphabet));
    }
}
