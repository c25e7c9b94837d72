//! `POST …/endpoints/{endpoint}/send-example`: the event type's example, sent to one endpoint
//! as a real message (stored, signed, retried and recorded like any other), so that a consumer
//! can try their receiver before real traffic exists.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use octohooks_db::{event_types, messages, models, pool};
use octohooks_domain::schema::EventSchemas;
use octohooks_domain::validate::EventTypeName;
use serde::Deserialize;
use utoipa::ToSchema;

use super::messages::{replay_stored, to_out};
use super::{conflict_as, find_endpoint, not_found_as};
use crate::body::JsonBody;
use crate::dto::MessageOut;
use crate::error::{ApiError, Problem, ProblemCode};
use crate::idempotency::{self, Reply};
use crate::schema_gate;
use crate::scope::ScopedApp;
use crate::state::AppState;

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/applications/{app}/endpoints/{endpoint}/send-example",
        web::post().to(send_example),
    );
}

/// `POST …/send-example`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SendExampleIn {
    /// The event type whose example (`schemas["1"].examples[0]`) is sent.
    pub event_type: String,
}

/// Sends the event type's example to this endpoint only, whatever its filters, as a new
/// message.
#[utoipa::path(post, path = "/api/v1/applications/{app}/endpoints/{endpoint}/send-example",
    tag = "endpoints", request_body = SendExampleIn, security(("apiKey" = [])),
    params(("app" = String, Path, description = "Application id or uid"),
        ("endpoint" = String, Path, description = "Endpoint id or uid"),
        ("Idempotency-Key" = Option<String>, Header, description = "Replays the first successful response")),
    responses((status = 202, body = MessageOut), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn send_example(
    ScopedApp { tenant, app, .. }: ScopedApp,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    JsonBody(body): JsonBody<SendExampleIn>,
) -> Result<HttpResponse, ApiError> {
    let event_type = EventTypeName::parse("eventType", &body.event_type)?.into_inner();
    let mut conn = pool::connection(&state.db).await?;
    let declared = event_types::find(&mut conn, tenant.environment_id, &event_type)
        .await
        .map_err(not_found_as("event type"))?;
    let endpoint = find_endpoint(&mut conn, app, &path.1).await?;
    drop(conn);
    if !endpoint.enabled {
        return Err(ApiError::Conflict {
            code: ProblemCode::Conflict,
            detail: "the endpoint is disabled; enable it to send an example".into(),
        });
    }
    let payload = example_of(&declared)?;
    schema_gate::check(&state, tenant.environment_id, &event_type, &payload).await?;
    let traceparent = octohooks_platform::telemetry::current_traceparent();
    let endpoint_id = endpoint.id;
    idempotency::run(
        state.clone(),
        tenant.environment_id,
        &req,
        move |object| async move {
            if let Some(reply) = replay_stored(&state, app, &object).await? {
                return Ok(reply);
            }
            let message = models::Message {
                id: object.id,
                application_id: app.id(),
                uid: None,
                event_type,
                channels: Vec::new(),
                payload,
                created: Utc::now(),
                expunged: false,
                payload_expires: None,
            };
            let mut conn = pool::connection(&state.db).await?;
            let job = messages::accept_for_endpoint(
                &mut conn,
                &message,
                endpoint_id,
                traceparent.as_deref(),
            )
            .await
            .map_err(conflict_as("message id"))?;
            drop(conn);
            state.publisher.enqueue(vec![job], None);
            state.metrics.messages_accepted.inc();
            Reply::json(StatusCode::ACCEPTED, &to_out(message)?)
        },
    )
    .await
}

/// The example payload of an event type as JSON text, or why it has none.
fn example_of(event_type: &models::EventType) -> Result<String, ApiError> {
    let example = event_type
        .schemas
        .as_ref()
        .map(EventSchemas::from_stored)
        .transpose()
        .map_err(|err| ApiError::Internal(format!("stored schemas: {err}")))?
        .and_then(|schemas| schemas.example().map(ToString::to_string));
    example.ok_or_else(|| {
        ApiError::invalid(
            "eventType",
            format!(
                "event type {} has no example: add one as schemas[\"1\"].examples[0]",
                event_type.name
            ),
        )
    })
}
