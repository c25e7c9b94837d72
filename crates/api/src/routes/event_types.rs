//! Event types of the environment.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use octohooks_db::{event_types as store, pool, Page};

use super::{conflict_as, not_found_as};
use crate::auth::Tenant;
use crate::body::JsonBody;
use crate::dto::{
    EventTypeIn, EventTypeOut, EventTypePatch, EventTypeUpdate, ImportOpenApiIn, ImportOpenApiOut,
    SchemaValidation,
};
use crate::error::{ApiError, Problem};
use crate::event_catalog;
use crate::idempotency::{self, Reply};
use crate::merge_patch::{self, Empty, OnNull};
use crate::paging::{list_response, PageQuery};
use crate::state::AppState;

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/event-types", web::get().to(list_event_types))
        .route("/event-types", web::post().to(create_event_type))
        // Before `{name}`: the first resource whose path matches takes the request.
        .route(
            "/event-types/import-openapi",
            web::post().to(import_openapi),
        )
        .route("/event-types/{name}", web::get().to(get_event_type))
        .route("/event-types/{name}", web::put().to(update_event_type))
        .route("/event-types/{name}", web::patch().to(patch_event_type))
        .route("/event-types/{name}", web::delete().to(delete_event_type));
}

/// Lists event types in name order.
#[utoipa::path(get, path = "/api/v1/event-types", tag = "event-types", params(PageQuery),
    security(("apiKey" = [])), responses((status = 200, body = [EventTypeOut])))]
pub async fn list_event_types(
    tenant: Tenant,
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.limit()?;
    let mut conn = pool::connection(&state.db).await?;
    let rows = store::list(
        &mut conn,
        tenant.environment_id,
        query.iterator.as_deref(),
        limit,
    )
    .await?;
    let page = Page::from_overfetch(rows, limit);
    let cursor = page.items.last().map(|event_type| event_type.name.clone());
    let items: Vec<EventTypeOut> = page.items.into_iter().map(Into::into).collect();
    Ok(list_response(&req, &items, page.has_more, cursor))
}

/// Creates an event type.
#[utoipa::path(post, path = "/api/v1/event-types", tag = "event-types", request_body = EventTypeIn,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first successful response")),
    security(("apiKey" = [])),
    responses((status = 201, body = EventTypeOut), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
pub async fn create_event_type(
    tenant: Tenant,
    req: HttpRequest,
    state: web::Data<AppState>,
    JsonBody(body): JsonBody<EventTypeIn>,
) -> Result<HttpResponse, ApiError> {
    let row = event_catalog::new_event_type(tenant.environment_id, body, Utc::now())?;
    idempotency::run(
        state.clone(),
        tenant.environment_id,
        &req,
        move |_| async move {
            let mut conn = pool::connection(&state.db).await?;
            let stored = store::insert(&mut conn, &row)
                .await
                .map_err(conflict_as("name"))?;
            state.lookups.forget();
            Reply::json(StatusCode::CREATED, &EventTypeOut::from(stored))
        },
    )
    .await
}

/// Creates or updates event types from the `webhooks` of an OpenAPI 3.1 document: name,
/// description, the JSON body's schema as version 1 (with its example). All or nothing.
#[utoipa::path(post, path = "/api/v1/event-types/import-openapi", tag = "event-types",
    request_body = ImportOpenApiIn, security(("apiKey" = [])),
    responses((status = 200, body = ImportOpenApiOut), (status = 422, body = Problem)))]
pub async fn import_openapi(
    tenant: Tenant,
    state: web::Data<AppState>,
    JsonBody(body): JsonBody<ImportOpenApiIn>,
) -> Result<HttpResponse, ApiError> {
    let document = body.document()?;
    let rows = event_catalog::imported_event_types(tenant.environment_id, &document, Utc::now())?;
    let mut conn = pool::connection(&state.db).await?;
    let stored = store::import(&mut conn, rows).await?;
    state.lookups.forget();
    Ok(HttpResponse::Ok().json(ImportOpenApiOut {
        modified: stored.into_iter().map(EventTypeOut::from).collect(),
    }))
}

/// Gets an event type.
#[utoipa::path(get, path = "/api/v1/event-types/{name}", tag = "event-types",
    params(("name" = String, Path, description = "Event type name")), security(("apiKey" = [])),
    responses((status = 200, body = EventTypeOut), (status = 404, body = Problem)))]
pub async fn get_event_type(
    tenant: Tenant,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = pool::connection(&state.db).await?;
    let row = store::find(&mut conn, tenant.environment_id, &path)
        .await
        .map_err(not_found_as("event type"))?;
    Ok(HttpResponse::Ok().json(EventTypeOut::from(row)))
}

/// Updates an event type: fields left out keep their value, `null` clears an optional one.
#[utoipa::path(put, path = "/api/v1/event-types/{name}", tag = "event-types",
    request_body = EventTypeUpdate,
    params(("name" = String, Path, description = "Event type name")), security(("apiKey" = [])),
    responses((status = 200, body = EventTypeOut), (status = 404, body = Problem),
        (status = 422, body = Problem)))]
pub async fn update_event_type(
    tenant: Tenant,
    state: web::Data<AppState>,
    path: web::Path<String>,
    JsonBody(body): JsonBody<EventTypeUpdate>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = pool::connection(&state.db).await?;
    let current = store::find(&mut conn, tenant.environment_id, &path)
        .await
        .map_err(not_found_as("event type"))?;
    let changed = event_catalog::updated_event_type(current, body)?;
    let row = store::update(&mut conn, &changed).await?;
    state.lookups.forget();
    Ok(HttpResponse::Ok().json(EventTypeOut::from(row)))
}

/// What `null` means in a `PATCH` of an event type.
const EVENT_TYPE_NULLS: &[(&str, OnNull)] = &[
    ("description", OnNull::Empties(Empty::Text)),
    ("groupName", OnNull::Clears),
    ("schemas", OnNull::Clears),
];

/// Changes an event type with a JSON Merge Patch (RFC 7396): only the fields given change,
/// `schemas` merge by version (`{"1": null}` removes version 1), `null` clears.
#[utoipa::path(patch, path = "/api/v1/event-types/{name}", tag = "event-types",
    request_body(content = EventTypePatch, content_type = "application/merge-patch+json"),
    params(("name" = String, Path, description = "Event type name")), security(("apiKey" = [])),
    responses((status = 200, body = EventTypeOut), (status = 404, body = Problem),
        (status = 422, body = Problem)))]
pub async fn patch_event_type(
    tenant: Tenant,
    state: web::Data<AppState>,
    path: web::Path<String>,
    JsonBody(patch): JsonBody<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = pool::connection(&state.db).await?;
    let current = store::find(&mut conn, tenant.environment_id, &path)
        .await
        .map_err(not_found_as("event type"))?;
    let fields = serde_json::json!({
        "description": current.description,
        "archived": current.archived,
        "deprecated": current.deprecated,
        "groupName": current.group_name,
        "schemas": current.schemas,
        "schemaValidation": SchemaValidation::from(current.schema_validation),
    });
    let update = merge_patch::apply(fields, patch, EVENT_TYPE_NULLS)?;
    let changed = event_catalog::updated_event_type(current, update)?;
    let row = store::update(&mut conn, &changed).await?;
    state.lookups.forget();
    Ok(HttpResponse::Ok().json(EventTypeOut::from(row)))
}

/// Deletes an event type.
#[utoipa::path(delete, path = "/api/v1/event-types/{name}", tag = "event-types",
    params(("name" = String, Path, description = "Event type name")), security(("apiKey" = [])),
    responses((status = 200, body = EventTypeOut), (status = 404, body = Problem)))]
pub async fn delete_event_type(
    tenant: Tenant,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = pool::connection(&state.db).await?;
    let row = store::delete(&mut conn, tenant.environment_id, &path)
        .await
        .map_err(not_found_as("event type"))?;
    state.lookups.forget();
    Ok(HttpResponse::Ok().json(EventTypeOut::from(row)))
}
