//! Messages (seed "Messages"): accepting one is a single transaction that also fans it out
//! into the outbox; the jobs are then published right away.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use octohooks_db::messages::{self as store, MessageFilter};
use octohooks_db::scope::AppScope;
use octohooks_db::{models, pool, Found as _, IdOrUid, Page};
use octohooks_domain::validate::{parse_name_list, EventTypeName, Uid, ValidationError};
use octohooks_platform::metrics::Stage;
use octohooks_platform::telemetry;
use serde::Deserialize;
use tracing::Instrument as _;

use super::find_message;
use crate::body::JsonBody;
use crate::dto::parse_time;
use crate::dto::{DestinationStatus, MessageIn, MessageOut};
use crate::error::{ApiError, Problem};
use crate::idempotency::{self, NewObject, Reply};
use crate::paging::{list_response, PageQuery};
use crate::schema_gate;
use crate::scope::ScopedApp;
use crate::state::AppState;

/// Largest payload accepted (seed: "up to ~350kb").
pub const MAX_PAYLOAD_BYTES: usize = 350 * 1024;

/// Longest `payloadRetentionPeriod` a message may ask for, in days (ten years).
pub const MAX_PAYLOAD_RETENTION_DAYS: i64 = 3650;

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/applications/{app}/messages",
        web::post().to(create_message),
    )
    .route("/applications/{app}/messages", web::get().to(list_messages))
    .route(
        "/applications/{app}/messages/{message}",
        web::get().to(get_message),
    )
    .route(
        "/applications/{app}/messages/{message}/payload",
        web::get().to(get_message_payload),
    )
    .route(
        "/applications/{app}/messages/{message}/content",
        web::delete().to(expunge_message_content),
    );
}

/// The answer to give again when an earlier try of this idempotent POST (`object`) stored its
/// message already; `None` when it has to be created.
pub(crate) async fn replay_stored(
    state: &AppState,
    app: AppScope,
    object: &NewObject,
) -> Result<Option<Reply>, ApiError> {
    if !object.resumed {
        return Ok(None);
    }
    let mut conn = pool::connection(&state.db).await?;
    let found = store::find(&mut conn, app, &IdOrUid::id(object.id))
        .await
        .found()?;
    found
        .map(|earlier| Reply::json(StatusCode::ACCEPTED, &to_out(earlier.into_inner())?))
        .transpose()
}

pub(crate) fn to_out(row: models::Message) -> Result<MessageOut, ApiError> {
    MessageOut::from_row(row).map_err(|err| ApiError::Internal(err.to_string()))
}

/// Creates a message and sends it to every matching endpoint of the application.
#[utoipa::path(post, path = "/api/v1/applications/{app}/messages", tag = "messages",
    request_body = MessageIn, security(("apiKey" = [])),
    params(("app" = String, Path, description = "Application id or uid"),
        ("Idempotency-Key" = Option<String>, Header, description = "Replays the first successful response")),
    responses((status = 202, body = MessageOut), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 413, body = Problem), (status = 422, body = Problem)))]
pub async fn create_message(
    ScopedApp { tenant, app, .. }: ScopedApp,
    req: HttpRequest,
    state: web::Data<AppState>,
    JsonBody(body): JsonBody<MessageIn>,
) -> Result<HttpResponse, ApiError> {
    if body.payload.get().len() > MAX_PAYLOAD_BYTES {
        return Err(ApiError::PayloadTooLarge(format!(
            "payload exceeds {MAX_PAYLOAD_BYTES} bytes"
        )));
    }
    let event_type = EventTypeName::parse("eventType", &body.event_type)?.into_inner();
    let channels = parse_name_list("channels", body.channels.as_deref().unwrap_or_default())?;
    let uid = body
        .uid
        .as_deref()
        .map(|uid| Uid::parse("uid", uid).map(Uid::into_inner))
        .transpose()?;
    let deliver_at = body
        .deliver_at
        .as_ref()
        .map(|at| parse_deliver_at(&at.as_text()))
        .transpose()?;
    let payload_days = body
        .payload_retention_period
        .map(|days| {
            if (1..=MAX_PAYLOAD_RETENTION_DAYS).contains(&days) {
                Ok(days)
            } else {
                Err(ValidationError::new(
                    "payloadRetentionPeriod",
                    format!("must be a number of days from 1 to {MAX_PAYLOAD_RETENTION_DAYS}"),
                ))
            }
        })
        .transpose()?;
    schema_gate::check(
        &state,
        tenant.environment_id,
        &event_type,
        body.payload.get(),
    )
    .await?;
    let payload = String::from(Box::<str>::from(body.payload));
    let traceparent = telemetry::current_traceparent();
    idempotency::run(
        state.clone(),
        tenant.environment_id,
        &req,
        move |object| async move {
            if let Some(reply) = replay_stored(&state, app, &object).await? {
                return Ok(reply);
            }
            let created = Utc::now();
            let message = models::Message {
                id: object.id,
                application_id: app.id(),
                uid,
                event_type,
                channels,
                payload,
                created,
                expunged: false,
                payload_expires: payload_days.map(|days| created + chrono::Duration::days(days)),
            };
            let reply = Reply::json(StatusCode::ACCEPTED, &to_out(message.clone())?)?;
            let handed = std::time::Instant::now();
            state
                .ingest
                .accept(message, traceparent, deliver_at)
                .instrument(tracing::info_span!("message.commit"))
                .await?;
            state.metrics.messages_accepted.inc();
            state.metrics.observe_stage(Stage::Commit, handed.elapsed());
            Ok(reply)
        },
    )
    .await
}

/// Filters of the message list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct MessageQuery {
    /// Items per page, 1 to 250 (default 50).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 250)]
    pub limit: Option<String>,
    /// Cursor from the previous page's `Link` header.
    pub iterator: Option<String>,
    /// Only these event types: one name, or several separated by commas (at most 20).
    pub event_type: Option<String>,
    /// Only messages with this channel.
    pub channel: Option<String>,
    /// Only messages created before this time (epoch ms or RFC 3339).
    pub before: Option<String>,
    /// Only messages created after this time (epoch ms or RFC 3339).
    pub after: Option<String>,
    /// Only messages with a destination in this delivery state: `pending`, `success` or
    /// `failed`.
    #[param(value_type = Option<DestinationStatus>)]
    pub status: Option<String>,
    /// `false` leaves the payloads out (each reads `{}`), for a cheap list of what was sent.
    #[param(value_type = Option<bool>)]
    pub with_content: Option<String>,
}

/// Most event types one list may filter by.
const MAX_EVENT_TYPE_FILTERS: usize = 20;

fn parse_filter(query: &MessageQuery) -> Result<MessageFilter, ApiError> {
    let event_types = match query.event_type.as_deref() {
        None | Some("") => Vec::new(),
        Some(list) => {
            let names = list
                .split(',')
                .map(|name| EventTypeName::parse("eventType", name.trim()).map(|n| n.into_inner()))
                .collect::<Result<Vec<_>, _>>()?;
            if names.len() > MAX_EVENT_TYPE_FILTERS {
                return Err(ApiError::invalid(
                    "eventType",
                    format!("at most {MAX_EVENT_TYPE_FILTERS} event types"),
                ));
            }
            names
        }
    };
    let without_content = match query.with_content.as_deref() {
        None | Some("true") => false,
        Some("false") => true,
        Some(_) => return Err(ApiError::invalid("withContent", "must be true or false")),
    };
    Ok(MessageFilter {
        event_types,
        channel: query.channel.clone(),
        before: query
            .before
            .as_deref()
            .map(|t| parse_time("before", t))
            .transpose()?,
        after: query
            .after
            .as_deref()
            .map(|t| parse_time("after", t))
            .transpose()?,
        status: query
            .status
            .as_deref()
            .map(|text| {
                octohooks_domain::status::DestinationStatus::parse(text)
                    .map(|status| status.as_str().to_owned())
                    .map_err(|_| ApiError::invalid("status", "must be pending, success or failed"))
            })
            .transpose()?,
        without_content,
    })
}

/// Furthest ahead a message may be scheduled.
pub const MAX_DELIVER_AHEAD_DAYS: i64 = 90;

/// `deliverAt`: a time up to [`MAX_DELIVER_AHEAD_DAYS`] ahead; one in the past means now.
fn parse_deliver_at(text: &str) -> Result<DateTime<Utc>, ApiError> {
    let at = parse_time("deliverAt", text)?;
    if at > Utc::now() + chrono::Duration::days(MAX_DELIVER_AHEAD_DAYS) {
        return Err(ApiError::invalid(
            "deliverAt",
            format!("must be at most {MAX_DELIVER_AHEAD_DAYS} days ahead"),
        ));
    }
    Ok(at)
}

/// Lists an application's messages, newest first.
#[utoipa::path(get, path = "/api/v1/applications/{app}/messages", tag = "messages",
    params(("app" = String, Path, description = "Application id or uid"), MessageQuery),
    security(("apiKey" = [])),
    responses((status = 200, body = [MessageOut]), (status = 404, body = Problem),
        (status = 422, body = Problem)))]
pub async fn list_messages(
    scoped: ScopedApp,
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<MessageQuery>,
) -> Result<HttpResponse, ApiError> {
    let paging = PageQuery {
        limit: query.limit.clone(),
        iterator: query.iterator.clone(),
    };
    let limit = paging.limit()?;
    let cursor = paging.uuid_iterator()?;
    let filter = parse_filter(&query)?;
    let mut conn = pool::connection(&state.db).await?;
    let rows = store::list(&mut conn, scoped.app, &filter, cursor, limit).await?;
    let page = Page::from_overfetch(rows, limit);
    let next = page.items.last().map(|message| message.id.to_string());
    let items = page
        .items
        .into_iter()
        .map(to_out)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(list_response(&req, &items, page.has_more, next))
}

/// Gets a message by id or uid.
#[utoipa::path(get, path = "/api/v1/applications/{app}/messages/{message}", tag = "messages",
    params(("app" = String, Path, description = "Application id or uid"),
        ("message" = String, Path, description = "Message id or uid")),
    security(("apiKey" = [])),
    responses((status = 200, body = MessageOut), (status = 404, body = Problem)))]
pub async fn get_message(
    scoped: ScopedApp,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = pool::connection(&state.db).await?;
    let message = find_message(&mut conn, scoped.app, &path.1)
        .await?
        .into_inner();
    Ok(HttpResponse::Ok().json(to_out(message)?))
}

/// The message's payload alone, byte for byte as it was sent and is delivered (a JSON client
/// that parses the message re-serialises its payload, which can change numbers and spacing).
#[utoipa::path(get, path = "/api/v1/applications/{app}/messages/{message}/payload",
    tag = "messages",
    params(("app" = String, Path, description = "Application id or uid"),
        ("message" = String, Path, description = "Message id or uid")),
    security(("apiKey" = [])),
    responses((status = 200, description = "The payload as sent", content_type = "application/json",
        body = serde_json::Value), (status = 404, body = Problem)))]
pub async fn get_message_payload(
    scoped: ScopedApp,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = pool::connection(&state.db).await?;
    let message = find_message(&mut conn, scoped.app, &path.1)
        .await?
        .into_inner();
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(message.payload))
}

/// Removes the message's payload now; the message, its destinations and attempts stay. It then
/// reads `payload: {}` and `expunged: true` and can no longer be resent; deliveries of it still
/// waiting are marked failed, since nothing is left to send.
#[utoipa::path(delete, path = "/api/v1/applications/{app}/messages/{message}/content",
    tag = "messages",
    params(("app" = String, Path, description = "Application id or uid"),
        ("message" = String, Path, description = "Message id or uid")),
    security(("apiKey" = [])),
    responses((status = 204, description = "Expunged"), (status = 404, body = Problem)))]
pub async fn expunge_message_content(
    scoped: ScopedApp,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = pool::connection(&state.db).await?;
    let message = find_message(&mut conn, scoped.app, &path.1).await?;
    store::expunge(&mut conn, &message).await?;
    Ok(HttpResponse::NoContent().finish())
}
