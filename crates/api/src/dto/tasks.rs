//! Shapes of recovery (background tasks) and of endpoint statistics.

use octohooks_db::{models, stats};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{millis, TaskKind, TaskStatus, TimeInput};

/// `POST …/endpoints/{endpoint}/recover` and `…/replay-missing`: a window of message creation
/// times.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecoverIn {
    /// Messages created at or after this time (RFC 3339 or epoch milliseconds).
    #[schema(value_type = TimeInput)]
    pub since: TimeInput,
    /// ...and before this time; now when left out.
    #[serde(default)]
    #[schema(value_type = Option<TimeInput>)]
    pub until: Option<TimeInput>,
}

/// A background task and how far it got.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackgroundTaskOut {
    /// Identifier.
    pub id: Uuid,
    /// What it does.
    pub task: TaskKind,
    /// Where it stands.
    pub status: TaskStatus,
    /// The application.
    pub app_id: Uuid,
    /// The endpoint it sends to.
    pub endpoint_id: Uuid,
    /// Start of the window of message creation times (epoch ms, inclusive).
    pub since: i64,
    /// End of the window (epoch ms, exclusive).
    pub until: i64,
    /// Messages of the window examined so far.
    pub messages_scanned: i64,
    /// Deliveries queued so far: failed messages resent (recover) or missing ones sent
    /// (replay).
    pub messages_queued: i64,
    /// Why it failed, when it did.
    #[schema(required = true)]
    pub failure: Option<String>,
    /// Creation time (epoch ms).
    pub created: i64,
    /// Last progress (epoch ms).
    pub updated: i64,
}

impl From<models::BackgroundTask> for BackgroundTaskOut {
    fn from(row: models::BackgroundTask) -> Self {
        Self {
            id: row.id,
            task: row.kind.into(),
            status: row.status.into(),
            app_id: row.application_id,
            endpoint_id: row.endpoint_id,
            since: millis(row.since),
            until: millis(row.until),
            messages_scanned: row.messages_scanned,
            messages_queued: row.messages_queued,
            failure: row.failure,
            created: millis(row.created),
            updated: millis(row.updated),
        }
    }
}

/// An endpoint's figures: attempts in a window of whole hours, and what waits now.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointStatsOut {
    /// Attempts answered 2xx in the window.
    pub success: i64,
    /// Attempts that failed in the window.
    pub failure: i64,
    /// Deliveries waiting for a later attempt (a retry or a `deliverAt`), now.
    pub pending: i64,
    /// Deliveries due now: queued for a dispatcher or being sent.
    pub in_flight: i64,
    /// The last successful attempt in the window (epoch ms).
    #[schema(required = true)]
    pub last_success: Option<i64>,
    /// The last failed attempt in the window (epoch ms).
    #[schema(required = true)]
    pub last_failure: Option<i64>,
    /// Start of the window as counted: `since` rounded down to the hour (epoch ms).
    pub since: i64,
    /// End of the window as counted: `until` rounded up to the hour (epoch ms).
    pub until: i64,
}

impl EndpointStatsOut {
    /// The figures of the window `[since, until)` as counted (whole hours).
    pub fn new(row: stats::EndpointStats, since: i64, until: i64) -> Self {
        Self {
            success: row.successes,
            failure: row.failures,
            pending: row.pending,
            in_flight: row.in_flight,
            last_success: row.last_success.map(millis),
            last_failure: row.last_failure.map(millis),
            since,
            until,
        }
    }
}
