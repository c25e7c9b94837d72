//! Applications (seed "Applications").

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use octohooks_db::{applications as store, models, pool, Found as _, IdOrUid, Page};
use octohooks_domain::validate::{DisplayName, Uid};
use serde::Deserialize;

use super::{conflict_as, not_found_as};
use crate::auth::Tenant;
use crate::body::JsonBody;
use crate::dto::{ApplicationIn, ApplicationOut, ApplicationPatch};
use crate::error::{ApiError, Problem};
use crate::idempotency::{self, Reply};
use crate::merge_patch::{self, OnNull};
use crate::paging::{list_response, PageQuery};
use crate::scope::ScopedApp;
use crate::state::AppState;

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/applications", web::get().to(list_applications))
        .route("/applications", web::post().to(create_application))
        .route("/applications/{app}", web::get().to(get_application))
        .route("/applications/{app}", web::put().to(update_application))
        .route("/applications/{app}", web::patch().to(patch_application))
        .route("/applications/{app}", web::delete().to(delete_application));
}

/// The name and the uid of `body`; the uid is `None` when left out, `Some(None)` for `null`.
fn parse_input(body: &ApplicationIn) -> Result<(String, Option<Option<String>>), ApiError> {
    let name = DisplayName::parse("name", &body.name)?.into_inner();
    let uid = body
        .uid
        .as_ref()
        .map(|uid| {
            uid.as_deref()
                .map(|uid| Uid::parse("uid", uid).map(Uid::into_inner))
                .transpose()
        })
        .transpose()?;
    Ok((name, uid))
}

/// What `null` means in a `PATCH` of an application.
const APPLICATION_NULLS: &[(&str, OnNull)] = &[("uid", OnNull::Clears)];

/// `search` of the application list, beside paging.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ApplicationQuery {
    /// Only applications whose name or uid contains this text (any case).
    pub search: Option<String>,
}

/// Lists the environment's applications, oldest first.
#[utoipa::path(get, path = "/api/v1/applications", tag = "applications",
    params(PageQuery, ApplicationQuery), security(("apiKey" = [])),
    responses((status = 200, body = [ApplicationOut]), (status = 401, body = Problem)))]
pub async fn list_applications(
    tenant: Tenant,
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
    filter: web::Query<ApplicationQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.limit()?;
    let search = filter.search.as_deref().filter(|text| !text.is_empty());
    if search.is_some_and(|text| text.len() > 256 || text.contains('\0')) {
        return Err(ApiError::invalid(
            "search",
            "must be at most 256 characters, without NUL",
        ));
    }
    let mut conn = pool::connection(&state.db).await?;
    let rows = store::list(
        &mut conn,
        tenant.environment_id,
        search,
        query.uuid_iterator()?,
        limit,
    )
    .await?;
    let page = Page::from_overfetch(rows, limit);
    let cursor = page.items.last().map(|app| app.id.to_string());
    let items: Vec<ApplicationOut> = page.items.into_iter().map(Into::into).collect();
    Ok(list_response(&req, &items, page.has_more, cursor))
}

/// Creates an application.
#[utoipa::path(post, path = "/api/v1/applications", tag = "applications",
    request_body = ApplicationIn, security(("apiKey" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first successful response")),
    responses((status = 201, body = ApplicationOut), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
pub async fn create_application(
    tenant: Tenant,
    req: HttpRequest,
    state: web::Data<AppState>,
    JsonBody(body): JsonBody<ApplicationIn>,
) -> Result<HttpResponse, ApiError> {
    let (name, uid) = parse_input(&body)?;
    idempotency::run(
        state.clone(),
        tenant.environment_id,
        &req,
        move |object| async move {
            let mut conn = pool::connection(&state.db).await?;
            if object.resumed {
                let id = IdOrUid::id(object.id);
                let earlier = store::find(&mut conn, tenant.environment_id, &id).await;
                if let Some(earlier) = earlier.found()? {
                    let earlier = ApplicationOut::from(earlier.into_inner());
                    return Reply::json(StatusCode::CREATED, &earlier);
                }
            }
            let now = Utc::now();
            let app = models::Application {
                id: object.id,
                environment_id: tenant.environment_id,
                uid: uid.flatten(),
                name,
                created: now,
                updated: now,
            };
            let stored = store::insert(&mut conn, &app)
                .await
                .map_err(conflict_as("uid"))?;
            Reply::json(StatusCode::CREATED, &ApplicationOut::from(stored))
        },
    )
    .await
}

/// Gets an application by id or uid.
#[utoipa::path(get, path = "/api/v1/applications/{app}", tag = "applications",
    params(("app" = String, Path, description = "Application id or uid")), security(("apiKey" = [])),
    responses((status = 200, body = ApplicationOut), (status = 404, body = Problem)))]
pub async fn get_application(
    scoped: ScopedApp,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = pool::connection(&state.db).await?;
    let app = store::get(&mut conn, scoped.app)
        .await
        .map_err(not_found_as("application"))?;
    Ok(HttpResponse::Ok().json(ApplicationOut::from(app)))
}

/// Updates an application's name and uid (a uid left out is kept).
#[utoipa::path(put, path = "/api/v1/applications/{app}", tag = "applications",
    request_body = ApplicationIn,
    params(("app" = String, Path, description = "Application id or uid")), security(("apiKey" = [])),
    responses((status = 200, body = ApplicationOut), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn update_application(
    scoped: ScopedApp,
    state: web::Data<AppState>,
    JsonBody(body): JsonBody<ApplicationIn>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = pool::connection(&state.db).await?;
    let app = store::get(&mut conn, scoped.app)
        .await
        .map_err(not_found_as("application"))?;
    store_update(&state, &mut conn, scoped, app, body).await
}

/// Changes an application with a JSON Merge Patch (RFC 7396): `uid: null` removes the uid.
#[utoipa::path(patch, path = "/api/v1/applications/{app}", tag = "applications",
    request_body(content = ApplicationPatch, content_type = "application/merge-patch+json"),
    params(("app" = String, Path, description = "Application id or uid")), security(("apiKey" = [])),
    responses((status = 200, body = ApplicationOut), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn patch_application(
    scoped: ScopedApp,
    state: web::Data<AppState>,
    JsonBody(patch): JsonBody<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = pool::connection(&state.db).await?;
    let app = store::get(&mut conn, scoped.app)
        .await
        .map_err(not_found_as("application"))?;
    let current = serde_json::json!({"name": app.name, "uid": app.uid});
    let body = merge_patch::apply(current, patch, APPLICATION_NULLS)?;
    store_update(&state, &mut conn, scoped, app, body).await
}

async fn store_update(
    state: &AppState,
    conn: &mut octohooks_db::Conn,
    scoped: ScopedApp,
    app: octohooks_db::models::Application,
    body: ApplicationIn,
) -> Result<HttpResponse, ApiError> {
    let (name, uid) = parse_input(&body)?;
    let uid = uid.unwrap_or(app.uid);
    let updated = store::update(conn, scoped.app, &name, uid.as_deref())
        .await
        .map_err(conflict_as("uid"))?;
    state.lookups.forget();
    Ok(HttpResponse::Ok().json(ApplicationOut::from(updated)))
}

/// Deletes an application with its endpoints, messages and attempts.
#[utoipa::path(delete, path = "/api/v1/applications/{app}", tag = "applications",
    params(("app" = String, Path, description = "Application id or uid")), security(("apiKey" = [])),
    responses((status = 200, body = ApplicationOut), (status = 404, body = Problem)))]
pub async fn delete_application(
    scoped: ScopedApp,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = pool::connection(&state.db).await?;
    let deleted = store::delete(&mut conn, scoped.app)
        .await
        .map_err(not_found_as("application"))?;
    state.lookups.forget();
    Ok(HttpResponse::Ok().json(ApplicationOut::from(deleted)))
}
