//! The dispatcher's side of delivery state: what it needs to make an attempt ([`job_contexts`])
//! and how it records one ([`record`]). The API's reads of attempts and destinations, and its
//! resends, are in [`crate::attempts`].

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{
    Array, BigInt, Bool, Integer, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid,
};
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use crate::prepared::prepared;
use crate::schema::message_destinations;
use crate::{Conn, DbResult};
use octohooks_domain::status::DestinationStatus;

mod record;

pub use record::{record_manual, record_scheduled, ScheduledOutcome, ScheduledRecord};

/// Everything one attempt needs.
#[derive(Debug, QueryableByName)]
pub struct JobContext {
    /// Raw payload text.
    #[diesel(sql_type = Text)]
    pub payload: String,
    /// When the message was accepted.
    #[diesel(sql_type = Timestamptz)]
    pub accepted: DateTime<Utc>,
    /// Endpoint URL.
    #[diesel(sql_type = Text)]
    pub url: String,
    /// Custom headers (JSON object of strings).
    #[diesel(sql_type = Jsonb)]
    pub headers: serde_json::Value,
    /// Whether the endpoint is enabled.
    #[diesel(sql_type = Bool)]
    pub enabled: bool,
    /// Since when the endpoint has failed every delivery, if it is in such a run.
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub failing_since: Option<DateTime<Utc>>,
    /// Messages per second the endpoint may receive, if limited.
    #[diesel(sql_type = Nullable<Integer>)]
    pub rate_limit: Option<i32>,
    /// Destination status, `None` when no destination row exists.
    #[diesel(sql_type = Nullable<Text>)]
    pub status: Option<String>,
    /// Scheduled attempts recorded so far.
    #[diesel(sql_type = Nullable<Integer>)]
    pub scheduled_attempts: Option<i32>,
    /// Active secrets, current first.
    #[diesel(sql_type = Array<Text>)]
    pub secrets: Vec<String>,
    /// True when an attempt of this very job is already recorded; looked up for a manual job
    /// only (false for a scheduled one, whose destination's status and count tell whether it
    /// ran, and which the recording statement checks again).
    #[diesel(sql_type = Bool)]
    pub handled: bool,
    /// The client certificate chain (PEM) presented to the receiver, if the endpoint has one.
    #[diesel(sql_type = Nullable<Text>)]
    pub client_certificate: Option<String>,
    /// Its private key, sealed.
    #[diesel(sql_type = Nullable<Text>)]
    pub client_key: Option<String>,
    /// The message's payload was expunged: there is nothing to send.
    #[diesel(sql_type = Bool)]
    pub expunged: bool,
}

impl JobContext {
    /// Where the job's delivery stands; `None` without a destination row (or with a state this
    /// version does not know, which it then leaves alone).
    pub fn destination_status(&self) -> Option<DestinationStatus> {
        self.status
            .as_deref()
            .and_then(|text| DestinationStatus::parse(text).ok())
    }
}

/// Which job to load the context of.
#[derive(Debug, Clone, Copy)]
pub struct JobKey {
    /// The message.
    pub message_id: Uuid,
    /// The endpoint.
    pub endpoint_id: Uuid,
    /// The job (its outbox id).
    pub job_id: i64,
    /// The job is a manual attempt: only such a job is looked up among the recorded attempts
    /// (see [`JobContext::handled`]).
    pub manual: bool,
}

/// Loads the contexts of many jobs in one statement, in the order asked; `None` where the
/// message or the endpoint is gone.
pub async fn job_contexts(conn: &mut Conn, jobs: &[JobKey]) -> DbResult<Vec<Option<JobContext>>> {
    #[derive(QueryableByName)]
    struct Numbered {
        #[diesel(sql_type = BigInt)]
        ord: i64,
        #[diesel(embed)]
        context: JobContext,
    }
    let message_ids: Vec<Uuid> = jobs.iter().map(|j| j.message_id).collect();
    let endpoint_ids: Vec<Uuid> = jobs.iter().map(|j| j.endpoint_id).collect();
    let job_ids: Vec<i64> = jobs.iter().map(|j| j.job_id).collect();
    let manual: Vec<bool> = jobs.iter().map(|j| j.manual).collect();
    let rows: Vec<Numbered> = prepared(
        diesel::sql_query(JOB_CONTEXTS)
            .bind::<Array<SqlUuid>, _>(&message_ids)
            .bind::<Array<SqlUuid>, _>(&endpoint_ids)
            .bind::<Array<BigInt>, _>(&job_ids)
            .bind::<Array<Bool>, _>(&manual),
    )
    .load(conn)
    .await?;
    let mut contexts: Vec<Option<JobContext>> = jobs.iter().map(|_| None).collect();
    for row in rows {
        let slot = usize::try_from(row.ord - 1)
            .ok()
            .and_then(|at| contexts.get_mut(at));
        if let Some(slot) = slot {
            *slot = Some(row.context);
        }
    }
    Ok(contexts)
}

/// Every table is reached by its key from the job, whatever the tables' size or statistics:
/// the rows of one job are read in a subquery fenced off by `OFFSET 0`, where the job's ids are
/// values known when it runs, so each table is a lookup of one row by a unique key. Joined
/// freely, the plan that Postgres made and kept on a young table (the batch connections plan
/// once, see [`crate::pool`]) read the messages and endpoints whole and joined them by hash;
/// found a destination through its message alone, reading every destination of a fan-out for
/// each of its jobs; and checked whether the job was attempted against a hash of every attempt.
/// The destination is named by its whole key, which each of its indexes that leads with a key
/// column holds (migration 000026). The application is compared as text on purpose: as a plain
/// equality the planner may use it to scan every message of the application through the
/// `(application_id, …)` indexes. Only a manual job is looked up among the attempts (`j.manual`
/// gates the lookup): a scheduled one is known to have run by its destination, read anyway.
const JOB_CONTEXTS: &str = concat!(
    "SELECT j.ord, c.* \
FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::bool[]) WITH ORDINALITY \
  AS j(message_id, endpoint_id, job_id, manual, ord) \
CROSS JOIN LATERAL ( \
  SELECT m.payload, m.created AS accepted, m.expunged, e.url, e.headers, e.enabled, \
    e.failing_since, e.rate_limit, e.client_certificate, e.client_key, d.status, \
    d.scheduled_attempts, h.job_id IS NOT NULL AS handled, ",
    active_secrets!("e.id"),
    " AS secrets \
  FROM messages m JOIN endpoints e ON e.id = j.endpoint_id \
  LEFT JOIN message_destinations d \
    ON d.message_id = j.message_id AND d.endpoint_id = j.endpoint_id \
  LEFT JOIN LATERAL ( \
    SELECT a.job_id FROM attempts a WHERE j.manual AND a.job_id = j.job_id LIMIT 1) h ON true \
  WHERE m.id = j.message_id AND e.application_id::text = m.application_id::text \
  OFFSET 0) c"
);

/// Marks a pending destination failed without an attempt (its endpoint was disabled meanwhile).
pub async fn mark_failed(conn: &mut Conn, message_id: Uuid, endpoint_id: Uuid) -> DbResult<()> {
    diesel::update(
        message_destinations::table
            .filter(message_destinations::message_id.eq(message_id))
            .filter(message_destinations::endpoint_id.eq(endpoint_id))
            .filter(message_destinations::status.eq(DestinationStatus::Pending.as_str())),
    )
    .set((
        message_destinations::status.eq(DestinationStatus::Failed.as_str()),
        message_destinations::next_attempt.eq(None::<DateTime<Utc>>),
        message_destinations::updated.eq(Utc::now()),
    ))
    .execute(conn)
    .await?;
    Ok(())
}
