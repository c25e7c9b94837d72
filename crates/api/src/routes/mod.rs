//! HTTP handlers, one module per resource. Handlers stay thin: they authenticate, validate
//! through the domain types, call the storage layer and shape the answer.

pub mod admin;
pub mod applications;
pub mod attempts;
pub mod client_certificates;
pub mod endpoints;
pub mod event_types;
pub mod examples;
pub mod health;
pub mod messages;
pub mod operational;
pub mod portal;
pub mod recovery;
pub mod secrets;

use actix_web::web;
use octohooks_db::models::{Endpoint, Message};
use octohooks_db::scope::{AppScope, Scoped};
use octohooks_db::{endpoints as endpoint_store, Conn, DbError, IdOrUid};

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
            .configure(secrets::configure)
            .configure(client_certificates::configure)
            .configure(event_types::configure)
            .configure(examples::configure)
            .configure(recovery::configure)
            .configure(attempts::configure)
            .configure(operational::configure)
            .configure(portal::configure),
    );
    // After the API: the console's asset route has a path parameter.
    crate::console::configure(cfg);
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

/// The caller's message named by id or uid, within the application.
pub(crate) async fn find_message(
    conn: &mut Conn,
    app: AppScope,
    message: &str,
) -> Result<Scoped<Message>, ApiError> {
    octohooks_db::messages::find(conn, app, &IdOrUid::parse(message))
        .await
        .map_err(not_found_as("message"))
}

/// The `{endpoint}` segment of a route, whether under an application or under
/// `/operational-webhooks`.
#[derive(Debug, serde::Deserialize)]
pub struct EndpointPath {
    /// Endpoint id or uid.
    pub endpoint: String,
}

/// The caller's endpoint named by id or uid, within the application.
pub(crate) async fn find_endpoint(
    conn: &mut Conn,
    app: AppScope,
    endpoint: &str,
) -> Result<Scoped<Endpoint>, ApiError> {
    endpoint_store::find(conn, app, &IdOrUid::parse(endpoint))
        .await
        .map_err(not_found_as("endpoint"))
}
