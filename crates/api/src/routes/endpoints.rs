//! Endpoints (seed "Endpoints") and their signing secrets.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use octohooks_db::endpoints::{self as store, EndpointChanges};
use octohooks_db::scope::Scoped;
use octohooks_db::{models, pool, Found as _, IdOrUid, Page};
use octohooks_domain::signing::{EndpointSecret, SecretKind};

mod input;

use input::{check_operational, endpoint_changes, parse_new_endpoint, patch_target};

use super::{conflict_as, find_endpoint, EndpointPath};
use crate::body::JsonBody;
use crate::dto::{EndpointIn, EndpointOut, EndpointPatch, EndpointUpdate};
use crate::error::{ApiError, Problem};
use crate::idempotency::{self, Reply};
use crate::merge_patch::{self, Empty, OnNull};
use crate::paging::{list_response, PageQuery};
use crate::scope::ScopedApp;
use crate::state::AppState;

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    let one = "/applications/{app}/endpoints/{endpoint}";
    cfg.route(
        "/applications/{app}/endpoints",
        web::get().to(list_endpoints),
    )
    .route(
        "/applications/{app}/endpoints",
        web::post().to(create_endpoint),
    )
    .route(one, web::get().to(get_endpoint))
    .route(one, web::put().to(update_endpoint))
    .route(one, web::patch().to(patch_endpoint))
    .route(one, web::delete().to(delete_endpoint));
}

pub(crate) fn generate(kind: SecretKind) -> Result<EndpointSecret, ApiError> {
    EndpointSecret::generate_kind(kind).map_err(|err| ApiError::Internal(err.to_string()))
}

/// Seals a secret for storage in the row of endpoint `endpoint_id`, and only that row.
pub(crate) fn seal(
    state: &AppState,
    secret: &EndpointSecret,
    endpoint_id: uuid::Uuid,
) -> Result<String, ApiError> {
    state
        .settings
        .sealer
        .seal(&secret.to_text(), &endpoint_id.to_string())
        .map_err(|err| ApiError::Internal(err.to_string()))
}

/// A new endpoint's insert failed: its uid is taken, or its application went away meanwhile.
fn insert_error(err: octohooks_db::DbError) -> ApiError {
    if err.is_foreign_key_violation() {
        return ApiError::NotFound("application");
    }
    conflict_as("uid")(err)
}

/// Lists an application's endpoints, oldest first.
#[utoipa::path(get, path = "/api/v1/applications/{app}/endpoints", tag = "endpoints",
    params(("app" = String, Path, description = "Application id or uid"), PageQuery),
    security(("apiKey" = [])),
    responses((status = 200, body = [EndpointOut]), (status = 404, body = Problem)))]
pub async fn list_endpoints(
    scoped: ScopedApp,
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.limit()?;
    let after = query.uuid_iterator()?;
    let mut conn = pool::connection(&state.db).await?;
    let page = Page::from_overfetch(
        store::list(&mut conn, scoped.app, after, limit).await?,
        limit,
    );
    let cursor = page.items.last().map(|endpoint| endpoint.id.to_string());
    let items: Vec<EndpointOut> = page.items.into_iter().map(Into::into).collect();
    Ok(list_response(&req, &items, page.has_more, cursor))
}

/// Creates an endpoint; a signing secret is generated unless one is given.
#[utoipa::path(post, path = "/api/v1/applications/{app}/endpoints", tag = "endpoints",
    request_body = EndpointIn, security(("apiKey" = [])),
    params(("app" = String, Path, description = "Application id or uid"),
        ("Idempotency-Key" = Option<String>, Header, description = "Replays the first successful response")),
    responses((status = 201, body = EndpointOut), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create_endpoint(
    ScopedApp {
        tenant,
        app,
        operational,
    }: ScopedApp,
    req: HttpRequest,
    state: web::Data<AppState>,
    JsonBody(body): JsonBody<EndpointIn>,
) -> Result<HttpResponse, ApiError> {
    let (endpoint, secret) = parse_new_endpoint(&body)?;
    if operational {
        check_operational(&endpoint.event_types, &endpoint.channels)?;
    }
    idempotency::run(
        state.clone(),
        tenant.environment_id,
        &req,
        move |object| async move {
            let mut conn = pool::connection(&state.db).await?;
            if object.resumed {
                let id = IdOrUid::id(object.id);
                if let Some(earlier) = store::find(&mut conn, app, &id).await.found()? {
                    let earlier = EndpointOut::from(earlier.into_inner());
                    return Reply::json(StatusCode::CREATED, &earlier);
                }
            }
            let endpoint = models::Endpoint {
                id: object.id,
                ..endpoint
            };
            let sealed = seal(&state, &secret, endpoint.id)?;
            let stored = store::insert(&mut conn, app, endpoint, sealed)
                .await
                .map_err(insert_error)?;
            Reply::json(StatusCode::CREATED, &EndpointOut::from(stored))
        },
    )
    .await
}

/// Gets an endpoint by id or uid.
#[utoipa::path(get, path = "/api/v1/applications/{app}/endpoints/{endpoint}", tag = "endpoints",
    params(("app" = String, Path, description = "Application id or uid"),
        ("endpoint" = String, Path, description = "Endpoint id or uid")),
    security(("apiKey" = [])),
    responses((status = 200, body = EndpointOut), (status = 404, body = Problem)))]
pub async fn get_endpoint(
    scoped: ScopedApp,
    state: web::Data<AppState>,
    path: web::Path<EndpointPath>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = pool::connection(&state.db).await?;
    let endpoint = find_endpoint(&mut conn, scoped.app, &path.endpoint).await?;
    Ok(HttpResponse::Ok().json(EndpointOut::from(endpoint.into_inner())))
}

/// Updates an endpoint; `url` is required, other fields left out keep their value.
#[utoipa::path(put, path = "/api/v1/applications/{app}/endpoints/{endpoint}", tag = "endpoints",
    request_body = EndpointUpdate,
    params(("app" = String, Path, description = "Application id or uid"),
        ("endpoint" = String, Path, description = "Endpoint id or uid")),
    security(("apiKey" = [])),
    responses((status = 200, body = EndpointOut), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn update_endpoint(
    scoped: ScopedApp,
    state: web::Data<AppState>,
    path: web::Path<EndpointPath>,
    JsonBody(body): JsonBody<EndpointUpdate>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = pool::connection(&state.db).await?;
    let endpoint = find_endpoint(&mut conn, scoped.app, &path.endpoint).await?;
    let build = |stored| endpoint_changes(&body, stored, scoped.operational);
    store_update(&mut conn, &endpoint, build).await
}

/// What `null` means in a `PATCH` of an endpoint.
const ENDPOINT_NULLS: &[(&str, OnNull)] = &[
    ("uid", OnNull::Clears),
    ("description", OnNull::Empties(Empty::Text)),
    ("eventTypes", OnNull::Empties(Empty::List)),
    ("channels", OnNull::Empties(Empty::List)),
    ("headers", OnNull::Empties(Empty::Map)),
    ("rateLimit", OnNull::Clears),
];

/// Changes an endpoint with a JSON Merge Patch (RFC 7396): only the fields given change,
/// `headers` merge key by key, `null` clears.
#[utoipa::path(patch, path = "/api/v1/applications/{app}/endpoints/{endpoint}", tag = "endpoints",
    request_body(content = EndpointPatch, content_type = "application/merge-patch+json"),
    params(("app" = String, Path, description = "Application id or uid"),
        ("endpoint" = String, Path, description = "Endpoint id or uid")),
    security(("apiKey" = [])),
    responses((status = 200, body = EndpointOut), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn patch_endpoint(
    scoped: ScopedApp,
    state: web::Data<AppState>,
    path: web::Path<EndpointPath>,
    JsonBody(mut patch): JsonBody<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    // Header names are stored in lower case; `X-Trace: null` removes `x-trace`.
    if let Some(serde_json::Value::Object(headers)) = patch.get_mut("headers") {
        *headers = std::mem::take(headers)
            .into_iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value))
            .collect();
    }
    let mut conn = pool::connection(&state.db).await?;
    let endpoint = find_endpoint(&mut conn, scoped.app, &path.endpoint).await?;
    // The patch applies to the endpoint as stored when the change is made, under its lock.
    let build = |stored: models::Endpoint| {
        let body = merge_patch::apply(patch_target(&stored), patch, ENDPOINT_NULLS)?;
        endpoint_changes(&body, stored, scoped.operational)
    };
    store_update(&mut conn, &endpoint, build).await
}

async fn store_update(
    conn: &mut octohooks_db::Conn,
    endpoint: &Scoped<models::Endpoint>,
    build: impl FnOnce(models::Endpoint) -> Result<EndpointChanges, ApiError> + Send,
) -> Result<HttpResponse, ApiError> {
    let updated = store::update(conn, endpoint, build)
        .await
        .map_err(|refused| match refused {
            store::UpdateRefused::Db(err) => conflict_as("uid")(err),
            store::UpdateRefused::Rejected(err) => err,
        })?;
    Ok(HttpResponse::Ok().json(EndpointOut::from(updated)))
}

/// Deletes an endpoint; pending deliveries to it are dropped.
#[utoipa::path(delete, path = "/api/v1/applications/{app}/endpoints/{endpoint}", tag = "endpoints",
    params(("app" = String, Path, description = "Application id or uid"),
        ("endpoint" = String, Path, description = "Endpoint id or uid")),
    security(("apiKey" = [])),
    responses((status = 200, body = EndpointOut), (status = 404, body = Problem)))]
pub async fn delete_endpoint(
    scoped: ScopedApp,
    state: web::Data<AppState>,
    path: web::Path<EndpointPath>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = pool::connection(&state.db).await?;
    let endpoint = find_endpoint(&mut conn, scoped.app, &path.endpoint).await?;
    let deleted = store::delete(&mut conn, &endpoint).await?;
    Ok(HttpResponse::Ok().json(EndpointOut::from(deleted)))
}
