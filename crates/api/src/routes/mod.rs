//! HTTP handlers, one module per resource. Handlers stay thin: they authenticate, validate
//! through the domain types, call the storage layer and shape the answer.

pub mod admin;
pub mod applications;
pub mod attempts;
pub mod endpoints;
pub mod event_types;
pub mod health;
pub mod messages;
pub mod portal;

use actix_web::web;
use octohooks_db::models::{Application, Endpoint};
use octohooks_db::{
    applications as app_store, endpoints as endpoint_store, Conn, DbError, IdOrUid,
};
use uuid::Uuid;

use crate::error::{ApiError, ProblemCode};

/// Registers every route. The router tries routes in this order, running one regex (and one
/// allocation) per route with a path parameter, so the hot route, creating a message, is first.
pub fn configure(cfg: &mut web::ServiceConfig) {
    health::configure(cfg);
    cfg.service(
        web::scope("/api/v1")
            .configure(messages::configure)
            .configure(admin::configure)
            .configure(applications::configure)
            .configure(endpoints::configure)
            .configure(event_types::configure)
            .configure(attempts::configure)
            .configure(portal::configure),
    );
    // After the API: the console's asset route has a path parameter.
    crate::console::configure(cfg);
}

/// The id of the caller's application named by id or uid, through the process's lookup cache
/// (the message hot path needs nothing else of it).
pub(crate) async fn find_app_id(
    state: &crate::state::AppState,
    environment_id: Uuid,
    app: &str,
) -> Result<Uuid, ApiError> {
    let load = async {
        let mut conn = octohooks_db::pool::connection(&state.db).await?;
        match app_store::find(&mut conn, environment_id, &IdOrUid::parse(app)).await {
            Ok(found) => Ok(Some(found.id)),
            Err(DbError::Query(diesel::result::Error::NotFound)) => Ok(None),
            Err(err) => Err(err),
        }
    };
    state
        .lookups
        .application(environment_id, app, load)
        .await?
        .ok_or(ApiError::NotFound("application"))
}

/// Maps a storage `NotFound` onto a 404 naming `what`.
pub(crate) fn not_found_as(what: &'static str) -> impl Fn(DbError) -> ApiError {
    move |err| match err {
        DbError::Query(diesel::result::Error::NotFound) => ApiError::NotFound(what),
        other => other.into(),
    }
}

/// Maps a unique violation onto a 409 that names the clashing `field`.
pub(crate) fn conflict_as(field: &'static str) -> impl Fn(DbError) -> ApiError {
    move |err| {
        if err.is_unique_violation() {
            ApiError::Conflict {
                code: ProblemCode::Conflict,
                detail: format!("{field} is already taken"),
            }
        } else {
            err.into()
        }
    }
}

/// The caller's application named by id or uid.
pub(crate) async fn find_app(
    conn: &mut Conn,
    environment_id: Uuid,
    app: &str,
) -> Result<Application, ApiError> {
    app_store::find(conn, environment_id, &IdOrUid::parse(app))
        .await
        .map_err(not_found_as("application"))
}

/// The caller's message named by id or uid, within the application named by id or uid.
pub(crate) async fn find_message(
    conn: &mut Conn,
    environment_id: Uuid,
    app: &str,
    message: &str,
) -> Result<octohooks_db::models::Message, ApiError> {
    let app = find_app(conn, environment_id, app).await?;
    octohooks_db::messages::find(conn, app.id, &IdOrUid::parse(message))
        .await
        .map_err(not_found_as("message"))
}

/// The caller's endpoint named by id or uid, within the application named by id or uid.
pub(crate) async fn find_endpoint(
    conn: &mut Conn,
    environment_id: Uuid,
    app: &str,
    endpoint: &str,
) -> Result<(Application, Endpoint), ApiError> {
    let app = find_app(conn, environment_id, app).await?;
    let endpoint = endpoint_store::find(conn, app.id, &IdOrUid::parse(endpoint))
        .await
        .map_err(not_found_as("endpoint"))?;
    Ok((app, endpoint))
}
