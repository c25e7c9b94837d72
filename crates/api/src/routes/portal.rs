//! Consumer portal links: short-lived tokens for one application, made with an API key, and
//! their revocation. The token itself is checked in [`crate::auth`].

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use octohooks_db::{applications as store, pool};
use octohooks_domain::portal::{
    PortalClaims, DEFAULT_EXPIRY_SECS, MAX_EXPIRY_SECS, MIN_EXPIRY_SECS,
};

use crate::auth::{Scope, Tenant};
use crate::dto::{PortalAccessIn, PortalAccessOut};
use crate::error::{ApiError, Problem};
use crate::idempotency::{self, Reply};
use crate::scope::ScopedApp;
use crate::state::AppState;

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/applications/{app}/portal-access",
        web::post().to(create_portal_access),
    )
    .route(
        "/applications/{app}/portal-access/expire-all",
        web::post().to(expire_all),
    );
}

/// Portal tokens are made and revoked with an API key only, never with a portal token.
fn require_api_key(tenant: &Tenant) -> Result<(), ApiError> {
    match tenant.scope {
        Scope::Environment => Ok(()),
        Scope::Portal { .. } => Err(ApiError::Forbidden("portal links are made with an API key")),
    }
}

/// Makes a consumer portal link for the application.
#[utoipa::path(post, path = "/api/v1/applications/{app}/portal-access", tag = "portal",
    request_body(content = PortalAccessIn, description = "Optional lifetime and read-only flag"),
    params(("app" = String, Path, description = "Application id or uid"),
        ("Idempotency-Key" = Option<String>, Header, description = "Replays the first successful response")),
    security(("apiKey" = [])),
    responses((status = 201, body = PortalAccessOut), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create_portal_access(
    ScopedApp { tenant, app, .. }: ScopedApp,
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    require_api_key(&tenant)?;
    let input: PortalAccessIn = if body.iter().all(u8::is_ascii_whitespace) {
        PortalAccessIn::default()
    } else {
        crate::body::parse(&body)?
    };
    let expiry = input.expiry.unwrap_or(DEFAULT_EXPIRY_SECS);
    if !(MIN_EXPIRY_SECS..=MAX_EXPIRY_SECS).contains(&expiry) {
        return Err(ApiError::invalid(
            "expiry",
            format!("must be {MIN_EXPIRY_SECS} to {MAX_EXPIRY_SECS} seconds"),
        ));
    }
    let read_only = input.read_only.unwrap_or(false);
    idempotency::run(
        state.clone(),
        tenant.environment_id,
        &req,
        move |_| async move {
            let now = Utc::now().timestamp_millis();
            let claims = PortalClaims {
                v: 1,
                env: tenant.environment_id,
                app: app.id(),
                iat: now,
                exp: now + expiry * 1000,
                ro: read_only,
            };
            let token = state.settings.portal_signer.mint(&claims);
            let out = PortalAccessOut {
                url: format!("{}/portal/#token={token}", state.public_url),
                token,
                expires_at: claims.exp,
            };
            Reply::json_with_secret(StatusCode::CREATED, &out)
        },
    )
    .await
}

/// Revokes every portal link of the application made until now, on every replica.
#[utoipa::path(post, path = "/api/v1/applications/{app}/portal-access/expire-all", tag = "portal",
    params(("app" = String, Path, description = "Application id or uid"),
        ("Idempotency-Key" = Option<String>, Header, description = "Replays the first successful response")),
    security(("apiKey" = [])),
    responses((status = 204, description = "Revoked"), (status = 404, body = Problem)))]
pub async fn expire_all(
    ScopedApp { tenant, app, .. }: ScopedApp,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    require_api_key(&tenant)?;
    idempotency::run(
        state.clone(),
        tenant.environment_id,
        &req,
        move |_| async move {
            let mut conn = pool::connection(&state.db).await?;
            store::revoke_portal_tokens(&mut conn, app).await?;
            state.lookups.forget();
            Ok(Reply::empty(StatusCode::NO_CONTENT))
        },
    )
    .await
}
