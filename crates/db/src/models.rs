//! Row types. They mirror the tables; the API turns them into its camelCase shapes.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use octohooks_domain::job::TriggerType;
use octohooks_domain::schema::SchemaValidation;
use octohooks_domain::status::{AttemptStatus, DestinationStatus, TaskKind, TaskStatus};
use uuid::Uuid;

use crate::schema::*;

/// An isolated tenant.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = environments)]
pub struct Environment {
    /// Identifier.
    pub id: Uuid,
    /// Display name.
    pub name: String,
    /// Creation time.
    pub created: DateTime<Utc>,
}

/// An API key as the console lists it: never the key, only a short prefix of it.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = api_keys)]
pub struct ApiKeyInfo {
    /// Identifier (used to revoke it).
    pub id: Uuid,
    /// The environment it opens.
    pub environment_id: Uuid,
    /// The first characters of the key (`ohk_` and four more); unknown for keys made before.
    pub prefix: Option<String>,
    /// Creation time.
    pub created: DateTime<Utc>,
    /// When it was last used, to the minute.
    pub last_used: Option<DateTime<Utc>>,
}

/// A consumer application: where messages are sent to.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = applications)]
pub struct Application {
    /// Identifier.
    pub id: Uuid,
    /// Owning environment.
    pub environment_id: Uuid,
    /// Optional user identifier, unique per environment.
    pub uid: Option<String>,
    /// Display name.
    pub name: String,
    /// Creation time.
    pub created: DateTime<Utc>,
    /// Last change.
    pub updated: DateTime<Utc>,
}

/// A URL that receives an application's messages.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = endpoints)]
pub struct Endpoint {
    /// Identifier.
    pub id: Uuid,
    /// Owning application.
    pub application_id: Uuid,
    /// Optional user identifier, unique per application.
    pub uid: Option<String>,
    /// Display name (may be empty).
    pub name: String,
    /// Free text.
    pub description: String,
    /// Where deliveries go.
    pub url: String,
    /// Disabled endpoints receive nothing.
    pub enabled: bool,
    /// Why the endpoint was disabled automatically, if it was.
    pub disabled_reason: Option<String>,
    /// Channel filter; empty means every channel.
    pub channels: Vec<String>,
    /// Event type filter; empty means every event type.
    pub event_types: Vec<String>,
    /// Extra headers sent with each delivery, as a JSON object of strings.
    pub headers: serde_json::Value,
    /// Creation time.
    pub created: DateTime<Utc>,
    /// Last change.
    pub updated: DateTime<Utc>,
    /// Start of the current run of failed deliveries, if one is going on.
    pub failing_since: Option<DateTime<Utc>>,
    /// Messages per second this endpoint may receive, across all dispatchers.
    pub rate_limit: Option<i32>,
}

/// A signing secret of an endpoint.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = endpoint_secrets)]
pub struct EndpointSecretRow {
    /// Identifier.
    pub id: Uuid,
    /// Owning endpoint.
    pub endpoint_id: Uuid,
    /// The `whsec_…` text.
    pub secret: String,
    /// Creation time.
    pub created: DateTime<Utc>,
    /// When a rotated-out secret stops signing; `None` for the current one.
    pub expires: Option<DateTime<Utc>>,
}

/// A declared event type of an environment.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = event_types)]
pub struct EventType {
    /// Owning environment.
    pub environment_id: Uuid,
    /// The name, e.g. `invoice.paid`.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Archived types stay valid for messages but are hidden from pickers.
    pub archived: bool,
    /// Creation time.
    pub created: DateTime<Utc>,
    /// Last change.
    pub updated: DateTime<Utc>,
    /// Deprecated types stay valid; catalogs mark them so that consumers move on.
    pub deprecated: bool,
    /// Groups types in catalogs (e.g. `billing`).
    pub group_name: Option<String>,
    /// Version → JSON Schema, as checked by `octohooks_domain::schema::EventSchemas`.
    pub schemas: Option<serde_json::Value>,
    /// Whether the latest schema gates messages of this type.
    #[diesel(deserialize_as = String, serialize_as = String)]
    pub schema_validation: SchemaValidation,
}

/// An accepted message with its payload exactly as received.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = messages)]
pub struct Message {
    /// Identifier, also the `webhook-id` of every delivery.
    pub id: Uuid,
    /// Target application.
    pub application_id: Uuid,
    /// Optional user identifier, unique per application.
    pub uid: Option<String>,
    /// The event type.
    pub event_type: String,
    /// Channels of the message.
    pub channels: Vec<String>,
    /// Raw JSON text of the payload (`{}` once expunged).
    pub payload: String,
    /// Acceptance time.
    pub created: DateTime<Utc>,
    /// The payload was removed (by request or by retention); the rest is kept.
    pub expunged: bool,
    /// When the payload is to be removed, if the message asked for it sooner than retention.
    pub payload_expires: Option<DateTime<Utc>>,
}

/// Where the delivery of one message to one endpoint stands.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = message_destinations)]
pub struct Destination {
    /// The message.
    pub message_id: Uuid,
    /// The endpoint.
    pub endpoint_id: Uuid,
    /// Where it stands.
    #[diesel(deserialize_as = String)]
    pub status: DestinationStatus,
    /// Scheduled attempts made so far; orders retries and drops duplicate jobs.
    pub scheduled_attempts: i32,
    /// All attempts made so far, manual ones included.
    pub attempt_count: i32,
    /// When the next scheduled attempt is due, while pending.
    pub next_attempt: Option<DateTime<Utc>>,
    /// Last change.
    pub updated: DateTime<Utc>,
}

/// One recorded delivery attempt.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = attempts)]
pub struct Attempt {
    /// Identifier.
    pub id: Uuid,
    /// The message.
    pub message_id: Uuid,
    /// The endpoint.
    pub endpoint_id: Uuid,
    /// The URL the attempt went to.
    pub url: String,
    /// How it ended.
    #[diesel(deserialize_as = String, serialize_as = String)]
    pub status: AttemptStatus,
    /// HTTP status, 0 when no response came.
    pub response_status_code: i32,
    /// Truncated response body, or the error.
    pub response: String,
    /// Time from sending to the end of the response.
    pub response_duration_ms: i64,
    /// What made it.
    #[diesel(deserialize_as = String, serialize_as = String)]
    pub trigger_type: TriggerType,
    /// When the attempt was made.
    pub created: DateTime<Utc>,
    /// The job it came from (unique), so that a job delivered twice is recorded once.
    pub job_id: Option<i64>,
}

/// A delivery job waiting in the outbox: a row of its own, or one of the first attempts a
/// fan-out row stands for (`fanout_id`).
#[derive(Debug, Clone, QueryableByName)]
#[diesel(table_name = outbox)]
pub struct OutboxJob {
    /// Identifier, carried in the job as `jobId`: the row's, or for a job of a fan-out row one
    /// drawn from the same sequence, so that it is unique either way.
    pub id: i64,
    /// The message.
    pub message_id: Uuid,
    /// The endpoint.
    pub endpoint_id: Uuid,
    /// Scheduled attempts made before this job.
    pub attempt: i32,
    /// What makes the attempt.
    #[diesel(deserialize_as = LenientTrigger)]
    pub trigger_type: TriggerType,
    /// Trace context of the request that caused the job.
    pub traceparent: Option<String>,
    /// End of the claim under which the holder publishes it, to the microsecond as stored: a
    /// release names it, so that it never clears a claim another relay took meanwhile.
    pub claimed_until: Option<chrono::DateTime<chrono::Utc>>,
    /// Times the job was put back to wait for its endpoint's turn.
    pub deferrals: i32,
    /// The `outbox_fanouts` row that stands for this job and the message's other first
    /// attempts, when the job has no row of its own: publishing it removes (or releasing it
    /// frees) that row instead, and its `claimed_until` is that row's.
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    pub fanout_id: Option<i64>,
}

/// An outbox row's trigger, read leniently: a name this version does not know (written by a
/// newer one during a rolling upgrade) reads as scheduled, so that one row cannot make every
/// relay pass that claims it fail.
#[derive(Debug, diesel::deserialize::FromSqlRow)]
pub struct LenientTrigger(TriggerType);

impl diesel::deserialize::FromSql<diesel::sql_types::Text, diesel::pg::Pg> for LenientTrigger {
    fn from_sql(bytes: diesel::pg::PgValue<'_>) -> diesel::deserialize::Result<Self> {
        let text = <String as diesel::deserialize::FromSql<
            diesel::sql_types::Text,
            diesel::pg::Pg,
        >>::from_sql(bytes)?;
        Ok(Self(
            TriggerType::parse(&text).unwrap_or(TriggerType::Scheduled),
        ))
    }
}

impl From<LenientTrigger> for TriggerType {
    fn from(read: LenientTrigger) -> Self {
        read.0
    }
}

/// Work on one endpoint's history that runs in the background (recover, replay), in batches.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = background_tasks)]
pub struct BackgroundTask {
    /// Identifier.
    pub id: Uuid,
    /// The environment it belongs to.
    pub environment_id: Uuid,
    /// The application of its endpoint.
    pub application_id: Uuid,
    /// The endpoint it sends to.
    pub endpoint_id: Uuid,
    /// What it does.
    #[diesel(deserialize_as = String, serialize_as = String)]
    pub kind: TaskKind,
    /// Where it stands.
    #[diesel(deserialize_as = String, serialize_as = String)]
    pub status: TaskStatus,
    /// Messages created at or after this time are examined...
    pub since: DateTime<Utc>,
    /// ...and before this one.
    pub until: DateTime<Utc>,
    /// The last message examined, in id order.
    pub position: Option<Uuid>,
    /// Messages of the window examined so far.
    pub messages_scanned: i64,
    /// Deliveries queued so far.
    pub messages_queued: i64,
    /// Why it failed, when it did.
    pub failure: Option<String>,
    /// A runner holds it until then.
    pub claimed_until: Option<DateTime<Utc>>,
    /// When it was asked for.
    pub created: DateTime<Utc>,
    /// Last progress.
    pub updated: DateTime<Utc>,
}
