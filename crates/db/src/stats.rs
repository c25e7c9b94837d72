//! Numbers per endpoint that cost the same whatever the history: attempt counts come from
//! `endpoint_attempt_counts` (kept per hour by the statements that record attempts, in
//! [`crate::deliveries`]), what is still waiting from the partial index of pending
//! destinations. Neither reads an attempt.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Timestamptz, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;

use crate::models::Endpoint;
use crate::prepared::prepared;
use crate::scope::Scoped;
use crate::{Conn, DbResult};

/// Attempts to one endpoint in a window of whole hours, and its deliveries still waiting.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct EndpointStats {
    /// Attempts answered 2xx in the window.
    #[diesel(sql_type = BigInt)]
    pub successes: i64,
    /// Attempts that failed in the window.
    #[diesel(sql_type = BigInt)]
    pub failures: i64,
    /// The last successful attempt in the window.
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub last_success: Option<DateTime<Utc>>,
    /// The last failed attempt in the window.
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub last_failure: Option<DateTime<Utc>>,
    /// Deliveries waiting for a later attempt (a retry, or a `deliverAt`), now.
    #[diesel(sql_type = BigInt)]
    pub pending: i64,
    /// Deliveries due now: queued for a dispatcher or being sent.
    #[diesel(sql_type = BigInt)]
    pub in_flight: i64,
}

/// The endpoint's figures for attempts made in `[since, until)`, both rounded out to whole
/// hours (the counts are kept per hour).
pub async fn endpoint(
    conn: &mut Conn,
    endpoint: &Scoped<Endpoint>,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> DbResult<EndpointStats> {
    Ok(prepared(
        diesel::sql_query(ENDPOINT_STATS)
            .bind::<SqlUuid, _>(endpoint.id)
            .bind::<Timestamptz, _>(since)
            .bind::<Timestamptz, _>(until),
    )
    .get_result(conn)
    .await?)
}

/// The counts by primary key range; the waiting deliveries by the partial index
/// `message_destinations_pending_by_endpoint` (index-only where the visibility map allows).
const ENDPOINT_STATS: &str = "\
SELECT coalesce(sum(c.successes), 0)::bigint AS successes, \
       coalesce(sum(c.failures), 0)::bigint AS failures, \
       max(c.last_success) AS last_success, max(c.last_failure) AS last_failure, \
       (SELECT count(*) FROM message_destinations d \
        WHERE d.endpoint_id = $1 AND d.status = 'pending' AND d.next_attempt > now()) AS pending, \
       (SELECT count(*) FROM message_destinations d \
        WHERE d.endpoint_id = $1 AND d.status = 'pending' \
          AND (d.next_attempt IS NULL OR d.next_attempt <= now())) AS in_flight \
FROM endpoint_attempt_counts c \
WHERE c.endpoint_id = $1 AND c.hour >= date_trunc('hour', $2::timestamptz, 'UTC') AND c.hour < $3";
