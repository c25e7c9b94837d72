//! Request and response shapes, camelCase exactly as the seed API reference shows them.
//! Times are epoch milliseconds; ids are UUIDs.

mod admin;
mod event_types;
mod operational;
mod patches;
mod stored;
mod tasks;

pub use admin::*;
pub use event_types::*;
pub use operational::*;
pub use patches::*;
pub use stored::*;
pub use tasks::*;

use std::collections::BTreeMap;

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

/// `POST /api/v1/applications/{app}/endpoints`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EndpointIn {
    /// Absolute http(s) URL that receives the webhooks.
    pub url: String,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Optional unique identifier within the application.
    #[serde(default)]
    pub uid: Option<String>,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// Disabled endpoints receive nothing (default true).
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Only messages of these event types; empty for all (default).
    #[serde(default)]
    pub event_types: Option<Vec<String>>,
    /// Only messages sharing one of these channels; empty for all (default).
    #[serde(default)]
    pub channels: Option<Vec<String>>,
    /// Extra headers sent with every delivery.
    #[serde(default)]
    pub headers: Option<BTreeMap<String, String>>,
    /// Signing secret (`whsec_…`, or an ed25519 `whsk_…`); generated when absent.
    #[serde(default)]
    pub secret: Option<String>,
    /// Without `secret`: the kind of secret generated (default `hmac`).
    #[serde(default)]
    pub secret_kind: Option<SecretKind>,
    /// Alternative to `secret`: its first element becomes the signing secret.
    #[serde(default)]
    pub secrets: Option<Vec<String>>,
    /// Messages per second this endpoint may receive (1 to 65535); none when absent. Enforced
    /// across all dispatchers; messages over it wait, none is dropped.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 65535)]
    pub rate_limit: Option<i64>,
}

/// `PUT /api/v1/applications/{app}/endpoints/{endpoint}`: fields left out keep their value.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EndpointUpdate {
    /// New URL.
    pub url: String,
    /// New name.
    #[serde(default)]
    pub name: Option<String>,
    /// New uid; `null` removes it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable)]
    pub uid: Option<Option<String>>,
    /// New description.
    #[serde(default)]
    pub description: Option<String>,
    /// Enable or disable.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// New event type filter.
    #[serde(default)]
    pub event_types: Option<Vec<String>>,
    /// New channel filter.
    #[serde(default)]
    pub channels: Option<Vec<String>>,
    /// New custom headers.
    #[serde(default)]
    pub headers: Option<BTreeMap<String, String>>,
    /// Accepted for symmetry with responses and ignored: rotate secrets through
    /// `…/secret/rotate`.
    #[serde(default)]
    pub secrets: Option<Vec<String>>,
    /// New rate limit in messages per second; `null` removes it, absent keeps it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>, nullable, minimum = 1, maximum = 65535)]
    pub rate_limit: Option<Option<i64>>,
}

/// An endpoint. `secrets` is always empty: secrets are read through `…/secret`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointOut {
    /// Channel filter.
    pub channels: Vec<String>,
    /// Whether deliveries are made.
    pub enabled: bool,
    /// Event type filter.
    pub event_types: Vec<String>,
    /// Display name.
    pub name: String,
    /// Never filled; see `GET …/secret`.
    pub secrets: Vec<String>,
    /// Your identifier, if set.
    #[schema(required = true)]
    pub uid: Option<String>,
    /// Destination URL.
    pub url: String,
    /// Free text.
    pub description: String,
    /// Custom headers.
    pub headers: BTreeMap<String, String>,
    /// Why the endpoint was disabled automatically, if it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    /// Messages per second this endpoint may receive; `null`: no limit.
    #[schema(required = true)]
    pub rate_limit: Option<i32>,
    /// Identifier.
    pub id: Uuid,
    /// Creation time (epoch ms).
    pub created: i64,
    /// Last change (epoch ms).
    pub updated: i64,
}

impl From<models::Endpoint> for EndpointOut {
    fn from(row: models::Endpoint) -> Self {
        Self {
            channels: row.channels,
            enabled: row.enabled,
            event_types: row.event_types,
            name: row.name,
            secrets: Vec::new(),
            uid: row.uid,
            url: row.url,
            description: row.description,
            headers: serde_json::from_value(row.headers).unwrap_or_default(),
            disabled_reason: row.disabled_reason,
            rate_limit: row.rate_limit,
            id: row.id,
            created: millis(row.created),
            updated: millis(row.updated),
        }
    }
}

/// The current signing secret of an endpoint.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretOut {
    /// `whsec_…` (HMAC, `v1` signatures) or `whsk_…` (ed25519 private key, `v1a` signatures).
    pub key: String,
    /// With a `whsk_` key: `whpk_…`, the public key receivers verify `v1a` signatures with;
    /// `null` otherwise.
    #[schema(required = true)]
    pub public_key: Option<String>,
}

/// The kind of signing secret to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SecretKind {
    /// A shared HMAC-SHA256 secret (`whsec_`), the Standard Webhooks default.
    Hmac,
    /// An ed25519 key pair (`whsk_` private, `whpk_` public): receivers can verify webhooks
    /// but cannot forge them.
    Ed25519,
}

impl From<SecretKind> for octohooks_domain::signing::SecretKind {
    fn from(kind: SecretKind) -> Self {
        match kind {
            SecretKind::Hmac => Self::Hmac,
            SecretKind::Ed25519 => Self::Ed25519,
        }
    }
}

/// `POST …/secret/rotate`: the new secret, generated when absent.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateIn {
    /// The new secret (`whsec_…` or `whsk_…`).
    #[serde(default)]
    pub key: Option<String>,
    /// Without `key`: the kind of secret generated (default: the kind of the current one).
    #[serde(default)]
    pub kind: Option<SecretKind>,
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
