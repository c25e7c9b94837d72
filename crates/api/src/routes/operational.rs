//! Operational webhooks (`/operational-webhooks/endpoints…`): the environment's own endpoints,
//! told when its customers' endpoints are created, changed, disabled or deleted and when
//! deliveries keep failing. They are endpoints of the environment's operational application,
//! so every handler here is the endpoint handler of the same verb, given that application.

use actix_web::{web, HttpRequest, HttpResponse};

use super::{attempts, endpoints, secrets, EndpointPath};
use crate::body::JsonBody;
use crate::dto::{AttemptOut, EndpointIn, EndpointOut, EndpointPatch, EndpointUpdate, SecretOut};
use crate::error::{ApiError, Problem};
use crate::paging::PageQuery;
use crate::scope::OperationalApp;
use crate::state::AppState;

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    let many = "/operational-webhooks/endpoints";
    let one = "/operational-webhooks/endpoints/{endpoint}";
    cfg.route(many, web::get().to(list_operational_endpoints))
        .route(many, web::post().to(create_operational_endpoint))
        .route(one, web::get().to(get_operational_endpoint))
        .route(one, web::put().to(update_operational_endpoint))
        .route(one, web::patch().to(patch_operational_endpoint))
        .route(one, web::delete().to(delete_operational_endpoint))
        .route(
            &format!("{one}/secret"),
            web::get().to(get_operational_endpoint_secret),
        )
        .route(
            &format!("{one}/secret/rotate"),
            web::post().to(rotate_operational_endpoint_secret),
        )
        .route(
            &format!("{one}/attempts"),
            web::get().to(list_operational_endpoint_attempts),
        );
}

/// Lists the environment's operational endpoints, oldest first.
#[utoipa::path(get, path = "/api/v1/operational-webhooks/endpoints", tag = "operational-webhooks",
    params(PageQuery), security(("apiKey" = [])),
    responses((status = 200, body = [EndpointOut])))]
pub async fn list_operational_endpoints(
    OperationalApp(scoped): OperationalApp,
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    endpoints::list_endpoints(scoped, req, state, query).await
}

/// Creates an operational endpoint; `eventTypes` may name operational event types only.
#[utoipa::path(post, path = "/api/v1/operational-webhooks/endpoints", tag = "operational-webhooks",
    request_body = EndpointIn, security(("apiKey" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first successful response")),
    responses((status = 201, body = EndpointOut), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
pub async fn create_operational_endpoint(
    OperationalApp(scoped): OperationalApp,
    req: HttpRequest,
    state: web::Data<AppState>,
    body: JsonBody<EndpointIn>,
) -> Result<HttpResponse, ApiError> {
    endpoints::create_endpoint(scoped, req, state, body).await
}

/// Gets an operational endpoint by id or uid.
#[utoipa::path(get, path = "/api/v1/operational-webhooks/endpoints/{endpoint}",
    tag = "operational-webhooks",
    params(("endpoint" = String, Path, description = "Endpoint id or uid")),
    security(("apiKey" = [])),
    responses((status = 200, body = EndpointOut), (status = 404, body = Problem)))]
pub async fn get_operational_endpoint(
    OperationalApp(scoped): OperationalApp,
    state: web::Data<AppState>,
    path: web::Path<EndpointPath>,
) -> Result<HttpResponse, ApiError> {
    endpoints::get_endpoint(scoped, state, path).await
}

/// Updates an operational endpoint; `url` is required, other fields left out keep their value.
#[utoipa::path(put, path = "/api/v1/operational-webhooks/endpoints/{endpoint}",
    tag = "operational-webhooks", request_body = EndpointUpdate,
    params(("endpoint" = String, Path, description = "Endpoint id or uid")),
    security(("apiKey" = [])),
    responses((status = 200, body = EndpointOut), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn update_operational_endpoint(
    OperationalApp(scoped): OperationalApp,
    state: web::Data<AppState>,
    path: web::Path<EndpointPath>,
    body: JsonBody<EndpointUpdate>,
) -> Result<HttpResponse, ApiError> {
    endpoints::update_endpoint(scoped, state, path, body).await
}

/// Changes an operational endpoint with a JSON Merge Patch (RFC 7396).
#[utoipa::path(patch, path = "/api/v1/operational-webhooks/endpoints/{endpoint}",
    tag = "operational-webhooks",
    request_body(content = EndpointPatch, content_type = "application/merge-patch+json"),
    params(("endpoint" = String, Path, description = "Endpoint id or uid")),
    security(("apiKey" = [])),
    responses((status = 200, body = EndpointOut), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn patch_operational_endpoint(
    OperationalApp(scoped): OperationalApp,
    state: web::Data<AppState>,
    path: web::Path<EndpointPath>,
    patch: JsonBody<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    endpoints::patch_endpoint(scoped, state, path, patch).await
}

/// Deletes an operational endpoint; events waiting for it are dropped.
#[utoipa::path(delete, path = "/api/v1/operational-webhooks/endpoints/{endpoint}",
    tag = "operational-webhooks",
    params(("endpoint" = String, Path, description = "Endpoint id or uid")),
    security(("apiKey" = [])),
    responses((status = 200, body = EndpointOut), (status = 404, body = Problem)))]
pub async fn delete_operational_endpoint(
    OperationalApp(scoped): OperationalApp,
    state: web::Data<AppState>,
    path: web::Path<EndpointPath>,
) -> Result<HttpResponse, ApiError> {
    endpoints::delete_endpoint(scoped, state, path).await
}

/// The operational endpoint's current signing secret.
#[utoipa::path(get, path = "/api/v1/operational-webhooks/endpoints/{endpoint}/secret",
    tag = "operational-webhooks",
    params(("endpoint" = String, Path, description = "Endpoint id or uid")),
    security(("apiKey" = [])),
    responses((status = 200, body = SecretOut), (status = 404, body = Problem)))]
pub async fn get_operational_endpoint_secret(
    OperationalApp(scoped): OperationalApp,
    state: web::Data<AppState>,
    path: web::Path<EndpointPath>,
) -> Result<HttpResponse, ApiError> {
    secrets::get_secret(scoped, state, path).await
}

/// Makes a new secret of the operational endpoint current; the previous one keeps signing for
/// 24 hours.
#[utoipa::path(post, path = "/api/v1/operational-webhooks/endpoints/{endpoint}/secret/rotate",
    tag = "operational-webhooks",
    request_body(content = crate::dto::RotateIn, description = "Optional new secret"),
    params(("endpoint" = String, Path, description = "Endpoint id or uid"),
        ("Idempotency-Key" = Option<String>, Header, description = "Replays the first successful response")),
    security(("apiKey" = [])),
    responses((status = 204, description = "Rotated"), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn rotate_operational_endpoint_secret(
    OperationalApp(scoped): OperationalApp,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<EndpointPath>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    secrets::rotate_secret(scoped, req, state, path, body).await
}

/// Attempts to deliver operational events to the endpoint, newest first.
#[utoipa::path(get, path = "/api/v1/operational-webhooks/endpoints/{endpoint}/attempts",
    tag = "operational-webhooks",
    params(("endpoint" = String, Path, description = "Endpoint id or uid"), PageQuery),
    security(("apiKey" = [])),
    responses((status = 200, body = [AttemptOut]), (status = 404, body = Problem)))]
pub async fn list_operational_endpoint_attempts(
    OperationalApp(scoped): OperationalApp,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<EndpointPath>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    attempts::list_endpoint_attempts(scoped, req, state, path, query).await
}
