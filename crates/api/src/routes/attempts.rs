//! Delivery attempts (seed "Attempts"), per-endpoint delivery status and manual resends.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use octohooks_db::attempts::{self as store, AttemptsOf};
use octohooks_db::{models, pool, Page};
use uuid::Uuid;

use super::{find_endpoint, find_message, not_found_as, EndpointPath};
use crate::dto::{AttemptOut, DestinationOut, ResendOut, ResendStatus};
use crate::error::{ApiError, Problem, ProblemCode};
use crate::idempotency::{self, Reply};
use crate::paging::{list_response, PageQuery};
use crate::scope::ScopedApp;
use crate::state::AppState;

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    let message = "/applications/{app}/messages/{message}";
    cfg.route(
        &format!("{message}/attempts"),
        web::get().to(list_message_attempts),
    )
    .route(
        &format!("{message}/attempts/{{attempt}}"),
        web::get().to(get_attempt),
    )
    .route(
        &format!("{message}/endpoints"),
        web::get().to(list_destinations),
    )
    .route(
        &format!("{message}/endpoints/{{endpoint}}/resend"),
        web::post().to(resend),
    )
    .route(
        "/applications/{app}/endpoints/{endpoint}/attempts",
        web::get().to(list_endpoint_attempts),
    );
}

fn attempt_page(
    req: &HttpRequest,
    rows: Vec<models::Attempt>,
    limit: i64,
) -> Result<HttpResponse, ApiError> {
    let page = Page::from_overfetch(rows, limit);
    let cursor = page.items.last().map(|attempt| attempt.id.to_string());
    let items = page
        .items
        .into_iter()
        .map(AttemptOut::from)
        .collect::<Vec<_>>();
    Ok(list_response(req, &items, page.has_more, cursor))
}

/// Attempts of a message, newest first.
#[utoipa::path(get, path = "/api/v1/applications/{app}/messages/{message}/attempts", tag = "attempts",
    params(("app" = String, Path, description = "Application id or uid"),
        ("message" = String, Path, description = "Message id or uid"), PageQuery),
    security(("apiKey" = [])),
    responses((status = 200, body = [AttemptOut]), (status = 404, body = Problem)))]
pub async fn list_message_attempts(
    scoped: ScopedApp,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.limit()?;
    let cursor = query.uuid_iterator()?;
    let mut conn = pool::connection(&state.db).await?;
    let message = find_message(&mut conn, scoped.app, &path.1).await?;
    let rows = store::attempts(&mut conn, AttemptsOf::message(&message), cursor, limit).await?;
    attempt_page(&req, rows, limit)
}

/// Attempts made to an endpoint, newest first.
#[utoipa::path(get, path = "/api/v1/applications/{app}/endpoints/{endpoint}/attempts", tag = "attempts",
    params(("app" = String, Path, description = "Application id or uid"),
        ("endpoint" = String, Path, description = "Endpoint id or uid"), PageQuery),
    security(("apiKey" = [])),
    responses((status = 200, body = [AttemptOut]), (status = 404, body = Problem)))]
pub async fn list_endpoint_attempts(
    scoped: ScopedApp,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<EndpointPath>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.limit()?;
    let cursor = query.uuid_iterator()?;
    let mut conn = pool::connection(&state.db).await?;
    let endpoint = find_endpoint(&mut conn, scoped.app, &path.endpoint).await?;
    let rows = store::attempts(&mut conn, AttemptsOf::endpoint(&endpoint), cursor, limit).await?;
    attempt_page(&req, rows, limit)
}

/// One attempt of a message.
#[utoipa::path(get, path = "/api/v1/applications/{app}/messages/{message}/attempts/{attempt}",
    tag = "attempts",
    params(("app" = String, Path, description = "Application id or uid"),
        ("message" = String, Path, description = "Message id or uid"),
        ("attempt" = Uuid, Path, description = "Attempt id")),
    security(("apiKey" = [])),
    responses((status = 200, body = AttemptOut), (status = 404, body = Problem)))]
pub async fn get_attempt(
    scoped: ScopedApp,
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let attempt_id = Uuid::try_parse(&path.2).map_err(|_| ApiError::NotFound("attempt"))?;
    let mut conn = pool::connection(&state.db).await?;
    let message = find_message(&mut conn, scoped.app, &path.1).await?;
    let attempt = store::attempt(&mut conn, &message, attempt_id)
        .await
        .map_err(not_found_as("attempt"))?;
    Ok(HttpResponse::Ok().json(AttemptOut::from(attempt)))
}

/// Where the message's delivery stands for each endpoint it was sent to.
#[utoipa::path(get, path = "/api/v1/applications/{app}/messages/{message}/endpoints", tag = "attempts",
    params(("app" = String, Path, description = "Application id or uid"),
        ("message" = String, Path, description = "Message id or uid"), PageQuery),
    security(("apiKey" = [])),
    responses((status = 200, body = [DestinationOut]), (status = 404, body = Problem)))]
pub async fn list_destinations(
    scoped: ScopedApp,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.limit()?;
    let cursor = query.uuid_iterator()?;
    let mut conn = pool::connection(&state.db).await?;
    let message = find_message(&mut conn, scoped.app, &path.1).await?;
    let rows = store::destinations(&mut conn, &message, cursor, limit).await?;
    let page = Page::from_overfetch(rows, limit);
    let next = page.items.last().map(|row| row.endpoint_id.to_string());
    let items = page
        .items
        .into_iter()
        .map(DestinationOut::from)
        .collect::<Vec<_>>();
    Ok(list_response(&req, &items, page.has_more, next))
}

/// Sends the message to the endpoint once more, now; this attempt is not retried.
#[utoipa::path(post, path = "/api/v1/applications/{app}/messages/{message}/endpoints/{endpoint}/resend",
    tag = "attempts",
    params(("app" = String, Path, description = "Application id or uid"),
        ("message" = String, Path, description = "Message id or uid"),
        ("endpoint" = String, Path, description = "Endpoint id or uid"),
        ("Idempotency-Key" = Option<String>, Header, description = "Replays the first successful response")),
    security(("apiKey" = [])),
    responses((status = 202, body = ResendOut), (status = 404, body = Problem),
        (status = 409, body = Problem)))]
pub async fn resend(
    ScopedApp { tenant, app, .. }: ScopedApp,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    // Read here: the work may run in a task of its own, outside the request's span.
    let traceparent = octohooks_platform::telemetry::current_traceparent();
    idempotency::run(
        state.clone(),
        tenant.environment_id,
        &req,
        move |_| async move {
            let mut conn = pool::connection(&state.db).await?;
            let message = find_message(&mut conn, app, &path.1).await?;
            if message.expunged {
                return Err(ApiError::Conflict {
                    code: ProblemCode::MessageExpunged,
                    detail: "the message's payload was expunged: there is nothing to resend".into(),
                });
            }
            let endpoint = find_endpoint(&mut conn, app, &path.2).await?;
            let job = store::enqueue_manual(&mut conn, &message, &endpoint, traceparent.as_deref())
                .await?;
            drop(conn);
            state.publisher.enqueue(vec![job], None);
            Reply::json(
                StatusCode::ACCEPTED,
                &ResendOut {
                    message_id: message.id,
                    endpoint_id: endpoint.id,
                    status: ResendStatus::Queued,
                },
            )
        },
    )
    .await
}
