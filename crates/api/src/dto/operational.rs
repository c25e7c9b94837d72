//! The bodies of operational webhooks, for the OpenAPI document and the SDK's types. The
//! database writes them (migration 000019 and `octohooks_db::operational`); a test reads what
//! a receiver got against these shapes.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// The body of every operational webhook, signed like any delivery (Standard Webhooks).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OperationalEvent {
    /// `endpoint.created`, `endpoint.updated`, `endpoint.deleted`, `endpoint.enabled`,
    /// `endpoint.disabled`, `message.attempt.failing`, `message.attempt.exhausted` or
    /// `message.attempt.recovered`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// When the change was made (epoch ms).
    pub timestamp: i64,
    /// What it is about.
    pub data: OperationalEventData,
}

/// The endpoint an operational event is about, and for some types more.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OperationalEventData {
    /// The endpoint's application.
    pub app_id: Uuid,
    /// The application's uid, if it has one.
    #[schema(required = true)]
    pub app_uid: Option<String>,
    /// The endpoint.
    pub endpoint_id: Uuid,
    /// The endpoint's uid, if it has one.
    #[schema(required = true)]
    pub endpoint_uid: Option<String>,
    /// `endpoint.disabled` only: `manual` (by a request) or `automatic` (it kept failing, or
    /// answered 410 Gone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<DisableTrigger>,
    /// `endpoint.disabled` only (and there always, null when it was not failing): since when
    /// every delivery to it failed (epoch ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_since: Option<i64>,
    /// `message.attempt.*` only: the message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msg_id: Option<Uuid>,
    /// `message.attempt.*` only (and there always, null when the message has none): the
    /// message's uid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msg_uid: Option<String>,
    /// `message.attempt.*` only: the attempt that raised the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempt: Option<OperationalAttempt>,
}

/// Why an endpoint was disabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum DisableTrigger {
    /// A request set `enabled: false`.
    Manual,
    /// It failed every delivery for `OCTOHOOKS_ENDPOINT_DISABLE_AFTER`, or answered 410 Gone.
    Automatic,
}

/// The attempt of a `message.attempt.*` event.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OperationalAttempt {
    /// The attempt (see the attempt routes).
    pub id: Uuid,
    /// The receiver's status code; 0 when no answer came (timeout, connection refused).
    pub response_status_code: i32,
    /// When it was made (epoch ms).
    pub timestamp: i64,
}
