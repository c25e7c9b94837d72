//! Accepting messages: a batch of them with their destinations and first jobs in one statement
//! (the group commit), and one sent to a single endpoint on purpose.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{
    Array, BigInt, Integer, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid,
};
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use crate::models::{Message, OutboxJob};
use crate::prepared::prepared;
use crate::{Conn, DbResult};
use octohooks_domain::job::CarriedContext;

/// How long the accepting API process holds its claim on the jobs it publishes itself. If it
/// dies before publishing, any relay takes the jobs once the claim lapses.
pub const ACCEPT_CLAIM_SECS: i64 = 10;
/// [`ACCEPT_CLAIM_SECS`] as a duration, the claim of [`accept_batch`] outside the express lane.
pub const ACCEPT_CLAIM: std::time::Duration =
    std::time::Duration::from_secs(ACCEPT_CLAIM_SECS as u64);

/// Payloads up to this size travel with their job on the express lane (see [`AcceptedBatch`]);
/// a larger one is read by the dispatcher, so that the lane's messages stay small.
pub const CARRIED_PAYLOAD_MAX: usize = 64 * 1024;

/// What [`accept_batch`] stored.
#[derive(Debug, Default)]
pub struct AcceptedBatch {
    /// The ids stored, sorted.
    pub stored: Vec<Uuid>,
    /// Their jobs, already claimed by the caller.
    pub jobs: Vec<OutboxJob>,
    /// When asked (`carry`), what the first attempt of each single-destination message needs,
    /// by job id, read in the same statement: the express lane carries it so that the
    /// dispatcher starts the attempt without reading Postgres. None for an endpoint with a
    /// client certificate (its key stays in Postgres) or a payload over
    /// [`CARRIED_PAYLOAD_MAX`].
    pub contexts: HashMap<i64, CarriedContext>,
}

/// Accepts many messages in one statement (group commit): the messages whose uid is free are
/// stored with their destinations and outbox jobs; the others are left out. One prepared
/// statement and one commit per batch, whatever the number of messages or endpoints.
pub async fn accept_batch(
    conn: &mut Conn,
    batch: &[&Message],
    traceparents: &[Option<&str>],
    deliver_at: &[Option<DateTime<Utc>>],
    claim: std::time::Duration,
    carry: bool,
) -> DbResult<AcceptedBatch> {
    #[derive(QueryableByName)]
    struct Accepted {
        #[diesel(sql_type = SqlUuid)]
        message_id: Uuid,
        #[diesel(sql_type = Nullable<BigInt>)]
        job_id: Option<i64>,
        #[diesel(sql_type = Nullable<SqlUuid>)]
        endpoint_id: Option<Uuid>,
        #[diesel(sql_type = Nullable<Text>)]
        traceparent: Option<String>,
        #[diesel(sql_type = Nullable<BigInt>)]
        fanout_id: Option<i64>,
        #[diesel(sql_type = Nullable<Text>)]
        url: Option<String>,
        #[diesel(sql_type = Nullable<Jsonb>)]
        headers: Option<serde_json::Value>,
        #[diesel(sql_type = Nullable<Timestamptz>)]
        failing_since: Option<DateTime<Utc>>,
        #[diesel(sql_type = Nullable<Integer>)]
        rate_limit: Option<i32>,
        #[diesel(sql_type = Nullable<Array<Text>>)]
        secrets: Option<Vec<String>>,
    }
    if batch.is_empty() {
        return Ok(AcceptedBatch::default());
    }
    let ids: Vec<Uuid> = batch.iter().map(|m| m.id).collect();
    let apps: Vec<Uuid> = batch.iter().map(|m| m.application_id).collect();
    let uids: Vec<Option<&str>> = batch.iter().map(|m| m.uid.as_deref()).collect();
    let event_types: Vec<&str> = batch.iter().map(|m| m.event_type.as_str()).collect();
    // A text[] per message would make a two-dimensional array, which unnest flattens.
    let channels: Vec<serde_json::Value> = batch
        .iter()
        .map(|m| serde_json::json!(m.channels))
        .collect();
    let payloads: Vec<&str> = batch.iter().map(|m| m.payload.as_str()).collect();
    let created: Vec<DateTime<Utc>> = batch.iter().map(|m| m.created).collect();
    let payload_expires: Vec<Option<DateTime<Utc>>> =
        batch.iter().map(|m| m.payload_expires).collect();
    let now = crate::stored_now();
    let claimed_until = now
        + chrono::Duration::from_std(claim)
            .unwrap_or_else(|_| chrono::Duration::seconds(ACCEPT_CLAIM_SECS));
    let rows: Vec<Accepted> = prepared(
        diesel::sql_query(ACCEPT_BATCH)
            .bind::<Array<SqlUuid>, _>(&ids)
            .bind::<Array<SqlUuid>, _>(&apps)
            .bind::<Array<Nullable<Text>>, _>(&uids)
            .bind::<Array<Text>, _>(&event_types)
            .bind::<Array<Jsonb>, _>(&channels)
            .bind::<Array<Text>, _>(&payloads)
            .bind::<Array<Timestamptz>, _>(&created)
            .bind::<Array<Nullable<Text>>, _>(traceparents)
            .bind::<Timestamptz, _>(now)
            .bind::<Timestamptz, _>(claimed_until)
            .bind::<Array<Nullable<Timestamptz>>, _>(deliver_at)
            .bind::<Array<Nullable<Timestamptz>>, _>(&payload_expires)
            .bind::<diesel::sql_types::Bool, _>(carry),
    )
    .load(conn)
    .await?;
    let by_id: HashMap<Uuid, &Message> = batch.iter().map(|m| (m.id, *m)).collect();
    let mut stored = Vec::with_capacity(batch.len());
    let mut jobs = Vec::with_capacity(rows.len());
    let mut contexts = HashMap::new();
    for row in rows {
        if let Some(url) = row.url {
            // A context row: its job has a row of its own.
            let message = by_id.get(&row.message_id);
            if let (Some(id), Some(headers), Some(secrets), Some(message)) =
                (row.job_id, row.headers, row.secrets, message)
            {
                if message.payload.len() <= CARRIED_PAYLOAD_MAX {
                    contexts.insert(
                        id,
                        CarriedContext {
                            payload: message.payload.clone(),
                            accepted_us: message.created.timestamp_micros(),
                            url,
                            headers,
                            failing_since_us: row.failing_since.map(|at| at.timestamp_micros()),
                            rate_limit: row.rate_limit,
                            secrets,
                        },
                    );
                }
            }
            continue;
        }
        stored.push(row.message_id);
        if let (Some(id), Some(endpoint_id)) = (row.job_id, row.endpoint_id) {
            jobs.push(OutboxJob {
                id,
                message_id: row.message_id,
                endpoint_id,
                attempt: 0,
                trigger_type: octohooks_domain::job::TriggerType::Scheduled,
                traceparent: row.traceparent,
                claimed_until: Some(claimed_until),
                deferrals: 0,
                fanout_id: row.fanout_id,
            });
        }
    }
    // Sorted, so callers can binary-search it.
    stored.sort_unstable();
    stored.dedup();
    Ok(AcceptedBatch {
        stored,
        jobs,
        contexts,
    })
}

/// The group commit statement: messages, then the destinations the endpoints' filters choose,
/// then their first jobs: one outbox row for a message with one destination, one
/// `outbox_fanouts` row for a message with several (a job per destination is then drawn from the
/// outbox's sequence without a row of its own). Jobs are claimed by the caller unless the message
/// asked to be delivered later (`deliverAt`: the row is then due at that time, and the relay
/// publishes it). One row per claimed job (or one with no job for a message that no endpoint
/// takes, that waits, or that fans out). With $13, the job of a message that has only one also
/// gets a second row, with what its attempt needs of its endpoint (its `url` is set), read as
/// this statement sees it: the context the dispatcher would otherwise read a moment later. A
/// row of its own, not a join with the first: the planner joined such a step anew for every job
/// of a batch, reading every endpoint and its secrets each time (a batch of 16 messages to 20
/// endpoints took 3.5 times as long), or compared every job with every context.
const ACCEPT_BATCH: &str = concat!(
    "WITH m AS ( \
  SELECT id, application_id, uid, event_type, channels, payload, created, traceparent, \
         greatest(coalesce(deliver_at, $9), $9) AS due, payload_expires \
  FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::jsonb[], $6::text[], \
              $7::timestamptz[], $8::text[], $11::timestamptz[], $12::timestamptz[]) \
    AS m(id, application_id, uid, event_type, channels, payload, created, traceparent, deliver_at, \
         payload_expires)), \
stored AS ( \
  INSERT INTO messages (id, application_id, uid, event_type, channels, payload, created, \
                        payload_expires) \
  SELECT id, application_id, uid, event_type, ARRAY(SELECT jsonb_array_elements_text(channels)), \
         payload, created, payload_expires FROM m \
  ON CONFLICT DO NOTHING \
  RETURNING id), \
dest AS ( \
  INSERT INTO message_destinations (message_id, endpoint_id, status, next_attempt, updated) \
  SELECT m.id, e.id, 'pending', m.due, $9 \
  FROM m JOIN stored ON stored.id = m.id JOIN endpoints e ON e.application_id = m.application_id \
  WHERE e.enabled \
    AND (cardinality(e.event_types) = 0 OR m.event_type = ANY(e.event_types)) \
    AND (cardinality(e.channels) = 0 OR e.channels && \
         ARRAY(SELECT jsonb_array_elements_text(m.channels))) \
  RETURNING message_id, endpoint_id), \
fanned AS MATERIALIZED ( \
  SELECT message_id FROM dest GROUP BY message_id HAVING count(*) > 1), \
fanouts AS ( \
  INSERT INTO outbox_fanouts (message_id, due, claimed_until, traceparent) \
  SELECT m.id, m.due, CASE WHEN m.due > $9 THEN NULL ELSE $10 END, m.traceparent \
  FROM fanned JOIN m ON m.id = fanned.message_id \
  RETURNING id, message_id, traceparent, claimed_until), \
jobs AS ( \
  INSERT INTO outbox (message_id, endpoint_id, attempt, trigger_type, due, claimed_until, traceparent) \
  SELECT dest.message_id, dest.endpoint_id, 0, 'scheduled', m.due, \
         CASE WHEN m.due > $9 THEN NULL ELSE $10 END, m.traceparent \
  FROM dest JOIN m ON m.id = dest.message_id \
  WHERE dest.message_id NOT IN (SELECT message_id FROM fanned) \
  RETURNING id, message_id, endpoint_id, traceparent, claimed_until), \
single AS MATERIALIZED ( \
  SELECT jobs.message_id, jobs.id, jobs.endpoint_id \
  FROM jobs WHERE $13 AND jobs.claimed_until IS NOT NULL) \
SELECT stored.id AS message_id, jobs.id AS job_id, jobs.endpoint_id, jobs.traceparent, \
  NULL::bigint AS fanout_id, NULL::text AS url, NULL::jsonb AS headers, \
  NULL::timestamptz AS failing_since, NULL::int AS rate_limit, NULL::text[] AS secrets \
FROM stored LEFT JOIN jobs ON jobs.message_id = stored.id AND jobs.claimed_until IS NOT NULL \
UNION ALL \
SELECT f.message_id, nextval('outbox_id_seq'), dest.endpoint_id, f.traceparent, f.id, NULL, \
  NULL, NULL, NULL, NULL \
FROM fanouts f JOIN dest ON dest.message_id = f.message_id WHERE f.claimed_until IS NOT NULL \
UNION ALL \
SELECT single.message_id, single.id, e.id, NULL, NULL, e.url, e.headers, e.failing_since, \
  e.rate_limit, ",
    active_secrets!("e.id"),
    " \
FROM single JOIN endpoints e ON e.id = single.endpoint_id \
WHERE e.client_certificate IS NULL"
);

/// Stores `message` for `endpoint` alone, whatever the endpoint's filters (an example sent on
/// purpose): the message, marked as an example (replay never sends it elsewhere), its one
/// destination and its first job, claimed by the caller, in one statement. A uid that is taken
/// is a unique violation.
pub async fn accept_for_endpoint(
    conn: &mut Conn,
    message: &Message,
    endpoint_id: Uuid,
    traceparent: Option<&str>,
) -> DbResult<OutboxJob> {
    #[derive(QueryableByName)]
    struct Queued {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    let now = crate::stored_now();
    let claimed_until = now + chrono::Duration::seconds(ACCEPT_CLAIM_SECS);
    let queued: Queued = diesel::sql_query(ACCEPT_FOR_ENDPOINT)
        .bind::<SqlUuid, _>(message.id)
        .bind::<SqlUuid, _>(message.application_id)
        .bind::<Nullable<Text>, _>(message.uid.as_deref())
        .bind::<Text, _>(&message.event_type)
        .bind::<Array<Text>, _>(&message.channels)
        .bind::<Text, _>(&message.payload)
        .bind::<Timestamptz, _>(message.created)
        .bind::<SqlUuid, _>(endpoint_id)
        .bind::<Timestamptz, _>(now)
        .bind::<Timestamptz, _>(claimed_until)
        .bind::<Nullable<Text>, _>(traceparent)
        .get_result(conn)
        .await?;
    Ok(OutboxJob {
        id: queued.id,
        message_id: message.id,
        endpoint_id,
        attempt: 0,
        trigger_type: octohooks_domain::job::TriggerType::Scheduled,
        traceparent: traceparent.map(str::to_owned),
        claimed_until: Some(claimed_until),
        deferrals: 0,
        fanout_id: None,
    })
}

const ACCEPT_FOR_ENDPOINT: &str = "\
WITH stored AS ( \
  INSERT INTO messages (id, application_id, uid, event_type, channels, payload, created, example) \
  VALUES ($1, $2, $3, $4, $5, $6, $7, true) RETURNING id), \
dest AS ( \
  INSERT INTO message_destinations (message_id, endpoint_id, status, next_attempt, updated) \
  SELECT stored.id, $8, 'pending', $9, $9 FROM stored RETURNING message_id) \
INSERT INTO outbox (message_id, endpoint_id, attempt, trigger_type, due, claimed_until, traceparent) \
SELECT message_id, $8, 0, 'scheduled', $9, $10, $11 FROM dest \
RETURNING id";
