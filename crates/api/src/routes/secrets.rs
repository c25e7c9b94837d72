//! The signing secret of an endpoint: read it (with the public key of an ed25519 secret) and
//! rotate it, the old one signing on for a grace period so that receivers can switch over.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use octohooks_db::endpoints as store;
use octohooks_db::models::Endpoint;
use octohooks_db::scope::Scoped;
use octohooks_db::{pool, Conn};
use octohooks_domain::signing::EndpointSecret;

use super::endpoints::{generate, seal};
use super::{find_endpoint, EndpointPath};
use crate::dto::{RotateIn, SecretOut};
use crate::error::{ApiError, Problem};
use crate::idempotency::{self, Reply};
use crate::scope::ScopedApp;
use crate::state::AppState;

/// How long a rotated-out secret keeps signing.
pub const ROTATION_GRACE_HOURS: i64 = 24;

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    let one = "/applications/{app}/endpoints/{endpoint}";
    cfg.route(&format!("{one}/secret"), web::get().to(get_secret))
        .route(
            &format!("{one}/secret/rotate"),
            web::post().to(rotate_secret),
        );
}

/// The endpoint's current secret, opened.
async fn open_current(
    state: &AppState,
    conn: &mut Conn,
    endpoint: &Scoped<Endpoint>,
) -> Result<EndpointSecret, ApiError> {
    let stored = store::active_secrets(conn, endpoint)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::Internal("endpoint without a secret".into()))?;
    let text = state
        .settings
        .sealer
        .open(&stored, &endpoint.id.to_string())
        .map_err(|err| ApiError::Internal(err.to_string()))?;
    EndpointSecret::parse("secret", &text).map_err(|err| ApiError::Internal(err.to_string()))
}

/// The endpoint's current signing secret.
#[utoipa::path(get, path = "/api/v1/applications/{app}/endpoints/{endpoint}/secret", tag = "endpoints",
    params(("app" = String, Path, description = "Application id or uid"),
        ("endpoint" = String, Path, description = "Endpoint id or uid")),
    security(("apiKey" = [])),
    responses((status = 200, body = SecretOut), (status = 404, body = Problem)))]
pub async fn get_secret(
    scoped: ScopedApp,
    state: web::Data<AppState>,
    path: web::Path<EndpointPath>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = pool::connection(&state.db).await?;
    let endpoint = find_endpoint(&mut conn, scoped.app, &path.endpoint).await?;
    let secret = open_current(&state, &mut conn, &endpoint).await?;
    Ok(HttpResponse::Ok().json(SecretOut {
        key: secret.to_text(),
        public_key: secret.public_key(),
    }))
}

/// Makes a new secret current; the previous one keeps signing for 24 hours.
#[utoipa::path(post, path = "/api/v1/applications/{app}/endpoints/{endpoint}/secret/rotate",
    tag = "endpoints", request_body(content = RotateIn, description = "Optional new secret"),
    params(("app" = String, Path, description = "Application id or uid"),
        ("endpoint" = String, Path, description = "Endpoint id or uid"),
        ("Idempotency-Key" = Option<String>, Header, description = "Replays the first successful response")),
    security(("apiKey" = [])),
    responses((status = 204, description = "Rotated"), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn rotate_secret(
    ScopedApp { tenant, app, .. }: ScopedApp,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<EndpointPath>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let input: RotateIn = if body.iter().all(u8::is_ascii_whitespace) {
        RotateIn::default()
    } else {
        crate::body::parse(&body)?
    };
    let given = input
        .key
        .as_deref()
        .map(|text| EndpointSecret::parse("key", text))
        .transpose()?;
    idempotency::run(
        state.clone(),
        tenant.environment_id,
        &req,
        move |object| async move {
            let mut conn = pool::connection(&state.db).await?;
            let endpoint = find_endpoint(&mut conn, app, &path.endpoint).await?;
            let secret = match (given, input.kind) {
                (Some(secret), _) => secret,
                (None, Some(kind)) => generate(kind.into())?,
                (None, None) => {
                    let current = open_current(&state, &mut conn, &endpoint).await?;
                    generate(current.kind())?
                }
            };
            let old_expires = Utc::now() + chrono::Duration::hours(ROTATION_GRACE_HOURS);
            let sealed = seal(&state, &secret, endpoint.id)?;
            // A resumed rotation whose secret is in place already is not done twice.
            let done = object.resumed && store::has_secret(&mut conn, &endpoint, object.id).await?;
            if !done {
                store::rotate_secret(&mut conn, &endpoint, object.id, sealed, old_expires).await?;
            }
            Ok(Reply::empty(StatusCode::NO_CONTENT))
        },
    )
    .await
}
