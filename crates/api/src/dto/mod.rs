//! Request and response shapes, camelCase exactly as the seed API reference shows them.
//! Times are epoch milliseconds; ids are UUIDs.

mod admin;
mod endpoints;
mod event_types;
mod operational;
mod patches;
mod stored;
mod tasks;

pub use admin::*;
pub use endpoints::*;
pub use event_types::*;
pub use operational::*;
pub use patches::*;
pub use stored::*;
pub use tasks::*;

use chrono::{DateTime, TimeZone as _, Utc};
use octohooks_db::models;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;

use crate::error::ApiError;
use uuid::Uuid;

/// For a field of a `PUT` that may be left out (keep), set, or `null` (clear): `None` when
/// absent, `Some(None)` for `null`.
pub(crate) fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

pub(crate) fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

/// `POST` and `PUT /api/v1/applications`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplicationIn {
    /// Display name.
    pub name: String,
    /// Optional unique identifier of your choice (`[a-zA-Z0-9_.-]{1,256}`). In a `PUT`, left
    /// out keeps it and `null` removes it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable)]
    pub uid: Option<Option<String>>,
}

/// An application.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApplicationOut {
    /// Display name.
    pub name: String,
    /// Your identifier, if set.
    #[schema(required = true)]
    pub uid: Option<String>,
    /// Identifier.
    pub id: Uuid,
    /// Creation time (epoch ms).
    pub created: i64,
    /// Last change (epoch ms).
    pub updated: i64,
}

impl From<models::Application> for ApplicationOut {
    fn from(row: models::Application) -> Self {
        Self {
            name: row.name,
            uid: row.uid,
            id: row.id,
            created: millis(row.created),
            updated: millis(row.updated),
        }
    }
}

/// `POST /api/v1/applications/{app}/messages`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MessageIn {
    /// The event type, e.g. `invoice.paid`.
    pub event_type: String,
    /// The webhook body: any JSON value, delivered byte for byte.
    #[schema(value_type = serde_json::Value)]
    pub payload: Box<RawValue>,
    /// Channels of the message.
    #[serde(default)]
    pub channels: Option<Vec<String>>,
    /// Optional unique identifier within the application.
    #[serde(default)]
    pub uid: Option<String>,
    /// Deliver at this time instead of now (RFC 3339 or epoch milliseconds, at most 90 days
    /// ahead): the message is stored at once and its first attempt waits until then.
    #[serde(default)]
    #[schema(value_type = Option<TimeInput>)]
    pub deliver_at: Option<TimeInput>,
    /// Days to keep the payload (1 to 3650), when it should go sooner than the server's
    /// retention; the message and its attempts stay, the payload then reads `{}`.
    #[serde(default)]
    pub payload_retention_period: Option<i64>,
}

/// A time in a request: an RFC 3339 string or epoch milliseconds.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum TimeInput {
    /// Epoch milliseconds.
    Millis(i64),
    /// RFC 3339, e.g. `2026-12-24T18:00:00Z`.
    Text(String),
}

impl TimeInput {
    /// The time as the query parameters spell it, for the one parser of times.
    pub fn as_text(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Self::Millis(millis) => millis.to_string().into(),
            Self::Text(text) => text.as_str().into(),
        }
    }
}

/// The one parser of times in requests (bodies and query parameters): epoch milliseconds or
/// RFC 3339, between the years 1 and 9999; a 422 naming `field` otherwise.
pub(crate) fn parse_time(field: &str, text: &str) -> Result<DateTime<Utc>, ApiError> {
    use chrono::Datelike as _;
    let invalid = || {
        ApiError::invalid(
            field,
            "must be epoch milliseconds or an RFC 3339 time between the years 1 and 9999",
        )
    };
    let at = match text.parse::<i64>() {
        Ok(millis) => Utc
            .timestamp_millis_opt(millis)
            .single()
            .ok_or_else(invalid)?,
        Err(_) => DateTime::parse_from_rfc3339(text)
            .map(|at| at.with_timezone(&Utc))
            .map_err(|_| invalid())?,
    };
    if !(1..=9999).contains(&at.year()) {
        return Err(invalid());
    }
    Ok(at)
}

/// A message; `payload` is the JSON text exactly as it was sent.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageOut {
    /// Channels.
    pub channels: Vec<String>,
    /// Event type.
    pub event_type: String,
    /// The payload as received.
    #[schema(value_type = serde_json::Value)]
    pub payload: Box<RawValue>,
    /// Your identifier, if set.
    #[schema(required = true)]
    pub uid: Option<String>,
    /// Identifier; also the `webhook-id` of its deliveries.
    pub id: Uuid,
    /// Acceptance time (epoch ms).
    pub created: i64,
    /// Same as `created`: messages are immutable.
    pub updated: i64,
    /// The payload was removed (`DELETE …/content` or retention): it reads `{}`, and the
    /// message can no longer be resent.
    pub expunged: bool,
}

impl MessageOut {
    /// Shape of a stored message.
    pub fn from_row(row: models::Message) -> Result<Self, serde_json::Error> {
        Ok(Self {
            channels: row.channels,
            event_type: row.event_type,
            payload: RawValue::from_string(row.payload)?,
            uid: row.uid,
            id: row.id,
            created: millis(row.created),
            updated: millis(row.created),
            expunged: row.expunged,
        })
    }
}

/// One delivery attempt (seed "Attempts").
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttemptOut {
    /// Identifier.
    pub id: Uuid,
    /// The message.
    pub message_id: Uuid,
    /// The endpoint.
    pub endpoint_id: Uuid,
    /// The URL it went to.
    pub url: String,
    /// How the attempt ended.
    pub status: AttemptStatus,
    /// HTTP status; 0 when no response came.
    pub response_status_code: i32,
    /// Response body (truncated to 64 KiB) or the error.
    pub response: String,
    /// Duration of the attempt.
    pub response_duration_ms: i64,
    /// What made the attempt.
    pub trigger_type: TriggerType,
    /// When it was made (epoch ms).
    pub created: i64,
}

impl From<models::Attempt> for AttemptOut {
    fn from(row: models::Attempt) -> Self {
        Self {
            id: row.id,
            message_id: row.message_id,
            endpoint_id: row.endpoint_id,
            url: row.url,
            status: row.status.into(),
            response_status_code: row.response_status_code,
            response: row.response,
            response_duration_ms: row.response_duration_ms,
            trigger_type: row.trigger_type.into(),
            created: millis(row.created),
        }
    }
}

/// Where the delivery of a message to one endpoint stands.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DestinationOut {
    /// The endpoint.
    pub endpoint_id: Uuid,
    /// Where the delivery stands.
    pub status: DestinationStatus,
    /// Attempts made so far (manual ones included).
    pub attempts: i32,
    /// When the next scheduled attempt is due (epoch ms), while pending.
    #[schema(required = true)]
    pub next_attempt: Option<i64>,
    /// Last change (epoch ms).
    pub updated: i64,
}

impl From<models::Destination> for DestinationOut {
    fn from(row: models::Destination) -> Self {
        Self {
            endpoint_id: row.endpoint_id,
            status: row.status.into(),
            attempts: row.attempt_count,
            next_attempt: row.next_attempt.map(millis),
            updated: millis(row.updated),
        }
    }
}

/// `202` answer of a resend.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResendOut {
    /// The message.
    pub message_id: Uuid,
    /// The endpoint.
    pub endpoint_id: Uuid,
    /// Always `queued`.
    pub status: ResendStatus,
}

/// The state of a resend: it is queued, and its attempt appears among the message's attempts.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ResendStatus {
    /// The manual attempt is queued.
    Queued,
}

/// Health probe answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthOut {
    /// Whether the process is fit.
    pub status: HealthStatus,
    /// Whether Postgres answers (readiness only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postgres: Option<bool>,
    /// Whether RabbitMQ is connected (readiness only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rabbitmq: Option<bool>,
}
