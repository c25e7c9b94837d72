//! Admin routes: environments and their API keys, guarded by the admin token.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use octohooks_db::{environments, pool, Found as _};
use octohooks_domain::validate::DisplayName;
use uuid::Uuid;

use super::not_found_as;
use crate::auth::{new_api_key, Admin};
use crate::body::JsonBody;
use crate::dto::{ApiKeyInfoOut, ApiKeyOut, EnvironmentIn, EnvironmentOut};
use crate::error::ApiError;
use crate::idempotency::{self, Reply, ADMIN_SCOPE};
use crate::paging::{list_response, PageQuery};
use crate::state::AppState;

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/environments", web::get().to(list_environments))
        .route("/environments", web::post().to(create_environment))
        .route("/environments/{env}", web::delete().to(delete_environment))
        .route(
            "/environments/{env}/api-keys",
            web::post().to(create_api_key),
        )
        .route("/environments/{env}/api-keys", web::get().to(list_api_keys))
        .route(
            "/environments/{env}/api-keys/{key}",
            web::delete().to(revoke_api_key),
        );
}

/// A resumed try of a keyed request that makes an API key: the key of the earlier try (id
/// `lost`), shown in an answer that never arrived, is revoked if it was made, and `stored` added
/// with an id of its own, so the request leaves one live key behind however often it ran.
async fn replace_lost_key(
    conn: &mut octohooks_db::Conn,
    environment_id: Uuid,
    lost: Uuid,
    stored: &environments::NewKey,
) -> Result<(Uuid, chrono::DateTime<chrono::Utc>), ApiError> {
    environments::revoke_key(conn, environment_id, lost)
        .await
        .found()?;
    let id = octohooks_domain::new_id();
    let created = environments::add_key(conn, environment_id, id, stored)
        .await
        .map_err(not_found_as("environment"))?;
    Ok((id, created))
}

fn parse_id(what: &'static str, text: &str) -> Result<Uuid, ApiError> {
    Uuid::try_parse(text).map_err(|_| ApiError::NotFound(what))
}

/// Creates an environment and its first API key (shown once).
#[utoipa::path(post, path = "/api/v1/environments", tag = "admin", request_body = EnvironmentIn,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first successful response")),
    security(("adminToken" = [])),
    responses((status = 201, body = EnvironmentOut), (status = 401, body = crate::error::Problem),
        (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn create_environment(
    _: Admin,
    req: HttpRequest,
    state: web::Data<AppState>,
    JsonBody(body): JsonBody<EnvironmentIn>,
) -> Result<HttpResponse, ApiError> {
    let name = DisplayName::parse("name", &body.name)?.into_inner();
    idempotency::run(state.clone(), ADMIN_SCOPE, &req, move |object| async move {
        let (key, stored) = new_api_key()?;
        let mut conn = pool::connection(&state.db).await?;
        // The environment and its first key share the new object's id. A resumed try that finds
        // the environment replaces the key whose answer was lost: one live key per request.
        let earlier = if object.resumed {
            environments::find(&mut conn, object.id).await.found()?
        } else {
            None
        };
        let environment = match earlier {
            Some(environment) => {
                replace_lost_key(&mut conn, environment.id, object.id, &stored).await?;
                state.lookups.forget();
                environment
            }
            None => environments::create(&mut conn, object.id, &name, object.id, &stored).await?,
        };
        Reply::json_with_secret(
            StatusCode::CREATED,
            &EnvironmentOut::from_row(environment, Some(key)),
        )
    })
    .await
}

/// Lists environments, oldest first.
#[utoipa::path(get, path = "/api/v1/environments", tag = "admin", params(PageQuery),
    security(("adminToken" = [])),
    responses((status = 200, body = [EnvironmentOut]), (status = 401, body = crate::error::Problem)))]
pub async fn list_environments(
    _: Admin,
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.limit()?;
    let mut conn = pool::connection(&state.db).await?;
    let rows = environments::list(&mut conn, query.uuid_iterator()?, limit).await?;
    let page = octohooks_db::Page::from_overfetch(rows, limit);
    let cursor = page.items.last().map(|env| env.id.to_string());
    let items: Vec<EnvironmentOut> = page
        .items
        .into_iter()
        .map(|env| EnvironmentOut::from_row(env, None))
        .collect();
    Ok(list_response(&req, &items, page.has_more, cursor))
}

/// Deletes an environment and all its data.
#[utoipa::path(delete, path = "/api/v1/environments/{env}", tag = "admin",
    params(("env" = Uuid, Path, description = "Environment id")), security(("adminToken" = [])),
    responses((status = 200, body = EnvironmentOut), (status = 404, body = crate::error::Problem)))]
pub async fn delete_environment(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id("environment", &path)?;
    let mut conn = pool::connection(&state.db).await?;
    let environment = environments::delete(&mut conn, id)
        .await
        .map_err(not_found_as("environment"))?;
    state.lookups.forget();
    Ok(HttpResponse::Ok().json(EnvironmentOut::from_row(environment, None)))
}

/// Adds an API key to an environment (shown once).
#[utoipa::path(post, path = "/api/v1/environments/{env}/api-keys", tag = "admin",
    params(("env" = Uuid, Path, description = "Environment id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Replays the first successful response")),
    security(("adminToken" = [])),
    responses((status = 201, body = ApiKeyOut), (status = 404, body = crate::error::Problem),
        (status = 409, body = crate::error::Problem)))]
pub async fn create_api_key(
    _: Admin,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let environment_id = parse_id("environment", &path)?;
    idempotency::run(state.clone(), ADMIN_SCOPE, &req, move |object| async move {
        let (key, stored) = new_api_key()?;
        let mut conn = pool::connection(&state.db).await?;
        let (id, created) = if object.resumed {
            let replaced = replace_lost_key(&mut conn, environment_id, object.id, &stored).await?;
            state.lookups.forget();
            replaced
        } else {
            let created = environments::add_key(&mut conn, environment_id, object.id, &stored)
                .await
                .map_err(not_found_as("environment"))?;
            (object.id, created)
        };
        Reply::json_with_secret(
            StatusCode::CREATED,
            &ApiKeyOut {
                id,
                environment_id,
                api_key: Some(key),
                created: Some(created.timestamp_millis()),
            },
        )
    })
    .await
}

/// Lists an environment's API keys, oldest first: never the keys, only a prefix of each.
#[utoipa::path(get, path = "/api/v1/environments/{env}/api-keys", tag = "admin",
    params(("env" = Uuid, Path, description = "Environment id"), PageQuery),
    security(("adminToken" = [])),
    responses((status = 200, body = [ApiKeyInfoOut]), (status = 404, body = crate::error::Problem)))]
pub async fn list_api_keys(
    _: Admin,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let environment_id = parse_id("environment", &path)?;
    let limit = query.limit()?;
    let mut conn = pool::connection(&state.db).await?;
    let rows = environments::list_keys(&mut conn, environment_id, query.uuid_iterator()?, limit)
        .await
        .map_err(not_found_as("environment"))?;
    let page = octohooks_db::Page::from_overfetch(rows, limit);
    let cursor = page.items.last().map(|key| key.id.to_string());
    let items: Vec<ApiKeyInfoOut> = page.items.into_iter().map(Into::into).collect();
    Ok(list_response(&req, &items, page.has_more, cursor))
}

/// Revokes an API key at once.
#[utoipa::path(delete, path = "/api/v1/environments/{env}/api-keys/{key}", tag = "admin",
    params(("env" = Uuid, Path, description = "Environment id"), ("key" = Uuid, Path, description = "API key id")),
    security(("adminToken" = [])),
    responses((status = 200, body = ApiKeyOut), (status = 404, body = crate::error::Problem)))]
pub async fn revoke_api_key(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let environment_id = parse_id("environment", &path.0)?;
    let key_id = parse_id("API key", &path.1)?;
    let mut conn = pool::connection(&state.db).await?;
    environments::revoke_key(&mut conn, environment_id, key_id)
        .await
        .map_err(not_found_as("API key"))?;
    state.lookups.forget();
    Ok(HttpResponse::Ok().json(ApiKeyOut {
        id: key_id,
        environment_id,
        api_key: None,
        created: None,
    }))
}
