//! Recording attempts: a batch of scheduled ones in one statement (attempt rows, destinations,
//! hourly counts, endpoint health and operational events), and a manual one (a resend).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{
    Array, BigInt, Bool, Integer, Nullable, Text, Timestamptz, Uuid as SqlUuid,
};
use diesel_async::{AsyncConnection, RunQueryDsl};
use scoped_futures::ScopedFutureExt;
use uuid::Uuid;

use crate::models::Attempt;
use crate::prepared::prepared;
use crate::schema::attempts;
use crate::{Conn, DbResult};
use octohooks_domain::status::{AttemptStatus, DestinationStatus};

/// What became of a scheduled attempt, for the destination row.
#[derive(Debug, Clone, Copy)]
pub enum ScheduledOutcome {
    /// Delivered.
    Delivered,
    /// Failed; retry at this time.
    RetryAt(DateTime<Utc>),
    /// Failed and the schedule is exhausted.
    Exhausted,
}

/// A scheduled attempt to record: the attempt, how many scheduled attempts preceded it and what
/// becomes of the destination.
#[derive(Debug, Clone)]
pub struct ScheduledRecord {
    /// The attempt row.
    pub attempt: Attempt,
    /// Scheduled attempts recorded before this one (the job's `attempt`).
    pub attempts_before: i32,
    /// The destination's next state.
    pub outcome: ScheduledOutcome,
    /// Trace context carried on to the retry job.
    pub traceparent: Option<String>,
    /// Removes the job's outbox row (`attempt.job_id`) in the same commit: a job of the express
    /// lane keeps its row until it is done, and its record is when it is done, whether or not
    /// another run recorded it first. One commit fewer per delivery than a separate delete.
    pub remove_job: bool,
}

/// Records many scheduled attempts in one statement (one round trip, one commit): for each, the
/// attempt row, the destination's new state and, for a retry, the next job in the outbox. An
/// entry whose attempt another dispatcher already recorded (a duplicate job) records nothing.
/// Returns, per entry, whether it was recorded. Entries must be of distinct destinations.
pub async fn record_scheduled(
    conn: &mut Conn,
    records: &[&ScheduledRecord],
) -> DbResult<Vec<bool>> {
    #[derive(QueryableByName)]
    struct Recorded {
        #[diesel(sql_type = SqlUuid)]
        message_id: Uuid,
        #[diesel(sql_type = SqlUuid)]
        endpoint_id: Uuid,
    }
    if records.is_empty() {
        return Ok(Vec::new());
    }
    let message_ids: Vec<Uuid> = records.iter().map(|r| r.attempt.message_id).collect();
    let endpoint_ids: Vec<Uuid> = records.iter().map(|r| r.attempt.endpoint_id).collect();
    let attempt_ids: Vec<Uuid> = records.iter().map(|r| r.attempt.id).collect();
    let before: Vec<i32> = records.iter().map(|r| r.attempts_before).collect();
    let (statuses, next_attempts): (Vec<&str>, Vec<Option<DateTime<Utc>>>) = records
        .iter()
        .map(|r| match r.outcome {
            ScheduledOutcome::Delivered => (DestinationStatus::Success.as_str(), None),
            ScheduledOutcome::RetryAt(at) => (DestinationStatus::Pending.as_str(), Some(at)),
            ScheduledOutcome::Exhausted => (DestinationStatus::Failed.as_str(), None),
        })
        .unzip();
    let created: Vec<DateTime<Utc>> = records.iter().map(|r| r.attempt.created).collect();
    let urls: Vec<&str> = records.iter().map(|r| r.attempt.url.as_str()).collect();
    let attempt_statuses: Vec<&str> = records.iter().map(|r| r.attempt.status.as_str()).collect();
    let codes: Vec<i32> = records
        .iter()
        .map(|r| r.attempt.response_status_code)
        .collect();
    let responses: Vec<&str> = records
        .iter()
        .map(|r| r.attempt.response.as_str())
        .collect();
    let durations: Vec<i64> = records
        .iter()
        .map(|r| r.attempt.response_duration_ms)
        .collect();
    let traces: Vec<Option<&str>> = records.iter().map(|r| r.traceparent.as_deref()).collect();
    let job_ids: Vec<Option<i64>> = records.iter().map(|r| r.attempt.job_id).collect();
    let removed: Vec<i64> = records
        .iter()
        .filter(|r| r.remove_job)
        .filter_map(|r| r.attempt.job_id)
        .collect();
    let recorded: Vec<Recorded> = prepared(
        diesel::sql_query(RECORD_SCHEDULED)
            .bind::<Array<SqlUuid>, _>(&message_ids)
            .bind::<Array<SqlUuid>, _>(&endpoint_ids)
            .bind::<Array<Integer>, _>(&before)
            .bind::<Array<Text>, _>(&statuses)
            .bind::<Array<Nullable<Timestamptz>>, _>(&next_attempts)
            .bind::<Array<Timestamptz>, _>(&created)
            .bind::<Array<SqlUuid>, _>(&attempt_ids)
            .bind::<Array<Text>, _>(&urls)
            .bind::<Array<Text>, _>(&attempt_statuses)
            .bind::<Array<Integer>, _>(&codes)
            .bind::<Array<Text>, _>(&responses)
            .bind::<Array<BigInt>, _>(&durations)
            .bind::<Array<Nullable<Text>>, _>(&traces)
            .bind::<Array<Nullable<BigInt>>, _>(&job_ids)
            .bind::<Array<BigInt>, _>(&removed),
    )
    .load(conn)
    .await?;
    Ok(records
        .iter()
        .map(|r| {
            recorded.iter().any(|row| {
                row.message_id == r.attempt.message_id && row.endpoint_id == r.attempt.endpoint_id
            })
        })
        .collect())
}

/// How a recorded attempt is added to its endpoint's counts of the hour (the statistics, see
/// [`crate::stats`]): one row per endpoint, hour and shard, the shard chosen by the recording
/// connection so that concurrent recorders of one endpoint do not wait on one row lock. Rows
/// are taken in key order, so two statements cannot deadlock over them.
macro_rules! count_conflict {
    () => {
        "ON CONFLICT (endpoint_id, hour, shard) DO UPDATE SET \
    successes = c.successes + excluded.successes, failures = c.failures + excluded.failures, \
    last_success = greatest(c.last_success, excluded.last_success), \
    last_failure = greatest(c.last_failure, excluded.last_failure)"
    };
}

/// The `data` of a `message.attempt.*` operational event, from the attempt `r` (`attempt_id`,
/// `code`, `created`), its endpoint `e`, application `a` and message `m`.
macro_rules! attempt_event_data {
    () => {
        "jsonb_build_object('appId', a.id, 'appUid', a.uid, 'endpointId', e.id, \
      'endpointUid', e.uid, 'msgId', m.id, 'msgUid', m.uid, \
      'lastAttempt', jsonb_build_object('id', r.attempt_id, 'responseStatusCode', r.code, \
        'timestamp', (extract(epoch FROM r.created) * 1000)::bigint))"
    };
}

/// The `ops` step of [`RECORD_SCHEDULED`]: the operational events of the attempts recorded
/// (`upd`, which returns what they need, so that no step joins the batch with itself), one per
/// destination at most; the statement answers how many were queued, which makes it run. The last scheduled attempt failed: `exhausted`; the
/// fourth failure in a row (`FAILING_AFTER_ATTEMPTS`) with retries left: `failing`; a success
/// after at least four failures (so after `failing`): `recovered`. Attempts to operational
/// endpoints raise nothing. Only the rare rows that match reach the joins.
macro_rules! operational_events {
    () => {
        concat!(
            "ops AS ( \
  SELECT r.message_id, r.endpoint_id, octohooks_emit_operational(a.environment_id, \
    CASE WHEN r.new_status = 'failed' THEN 'message.attempt.exhausted' \
         WHEN r.attempt_status = 'success' THEN 'message.attempt.recovered' \
         ELSE 'message.attempt.failing' END, \
    ",
            attempt_event_data!(),
            ") AS queued \
  FROM upd r \
  JOIN endpoints e ON e.id = r.endpoint_id \
  JOIN applications a ON a.id = e.application_id \
  JOIN messages m ON m.id = r.message_id \
  WHERE (r.new_status = 'failed' \
      OR (r.attempt_status = 'success' AND r.attempts_before >= 4) \
      OR (r.attempt_status <> 'success' AND r.attempts_before = 3)) \
    AND NOT a.operational)"
        )
    };
}

/// The destination moves on only if nobody recorded this attempt yet (status and count still
/// as the job expects), and the attempt and the retry exist only where it did. Each destination
/// must be found by its key, at any size of the table and with or without statistics: "still
/// pending" is `octohooks_still_pending`, whose declared cost per row makes a plan that reads
/// the whole table (which the prepared statement kept, once made on a young table, while the
/// table grew) or every pending destination (partial index `message_destinations_pending`) the
/// dearer one; and the key is named whole, which both indexes leading with a key column hold
/// (migration 000026), so neither reads the other destinations of its message or endpoint.
const RECORD_SCHEDULED: &str = concat!(
    "WITH r AS ( \
  SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::int[], $4::text[], $5::timestamptz[], \
    $6::timestamptz[], $7::uuid[], $8::text[], $9::text[], $10::int[], $11::text[], \
    $12::bigint[], $13::text[], $14::bigint[]) \
  AS r(message_id, endpoint_id, attempts_before, new_status, next_attempt, created, attempt_id, \
       url, attempt_status, code, response, duration_ms, traceparent, job_id)), \
upd AS ( \
  UPDATE message_destinations d SET scheduled_attempts = r.attempts_before + 1, \
    attempt_count = d.attempt_count + 1, status = r.new_status, next_attempt = r.next_attempt, \
    updated = r.created \
  FROM r \
  WHERE d.message_id = r.message_id AND d.endpoint_id = r.endpoint_id \
    AND octohooks_still_pending(d.status) \
    AND d.scheduled_attempts = r.attempts_before \
  RETURNING d.message_id, d.endpoint_id, r.attempt_id, r.code, r.created, r.new_status, \
    r.attempt_status, r.attempts_before), \
ins AS ( \
  INSERT INTO attempts (id, message_id, endpoint_id, url, status, response_status_code, \
    response, response_duration_ms, trigger_type, created, job_id) \
  SELECT r.attempt_id, r.message_id, r.endpoint_id, r.url, r.attempt_status, r.code, \
    r.response, r.duration_ms, 'scheduled', r.created, r.job_id \
  FROM r JOIN upd USING (message_id, endpoint_id) \
  ON CONFLICT DO NOTHING \
  RETURNING endpoint_id, created, status), \
counted AS ( \
  INSERT INTO endpoint_attempt_counts AS c \
    (endpoint_id, hour, shard, successes, failures, last_success, last_failure) \
  SELECT endpoint_id, date_trunc('hour', created, 'UTC'), pg_backend_pid() % 8, \
    count(*) FILTER (WHERE status = 'success'), count(*) FILTER (WHERE status <> 'success'), \
    max(created) FILTER (WHERE status = 'success'), max(created) FILTER (WHERE status <> 'success') \
  FROM ins GROUP BY 1, 2 ORDER BY 1, 2 \
  ",
    count_conflict!(),
    "), \
retry AS ( \
  INSERT INTO outbox (message_id, endpoint_id, attempt, trigger_type, due, traceparent) \
  SELECT r.message_id, r.endpoint_id, r.attempts_before + 1, 'scheduled', r.next_attempt, \
    r.traceparent \
  FROM r JOIN upd USING (message_id, endpoint_id) WHERE r.next_attempt IS NOT NULL), \
done AS (DELETE FROM outbox WHERE id = ANY($15::bigint[])), \
",
    operational_events!(),
    " \
SELECT message_id, endpoint_id, (SELECT count(*) FROM ops WHERE queued > 0) AS operational_events \
FROM upd"
);

/// Records a manual attempt. A success marks the destination delivered (pending retries are
/// then dropped as duplicates); a failure leaves its schedule alone. True when the attempt was
/// stored; false when its message is gone or the same job's attempt was already recorded, so
/// that the caller counts nothing for it.
pub async fn record_manual(conn: &mut Conn, attempt: &Attempt) -> DbResult<bool> {
    let success = attempt.status == AttemptStatus::Success;
    conn.transaction(|conn| {
        async move {
            // The message's row is locked as a foreign key would (migration 000024): a message
            // deleted meanwhile leaves no attempt or destination behind, and one deleted before
            // gets none.
            let message_kept = diesel::sql_query(LOCK_MESSAGE)
                .bind::<SqlUuid, _>(attempt.message_id)
                .execute(conn)
                .await?;
            if message_kept == 0 {
                return Ok(false);
            }
            let inserted = diesel::insert_into(attempts::table)
                .values(attempt.clone())
                .on_conflict_do_nothing()
                .execute(conn)
                .await?;
            if inserted == 0 {
                // This job's attempt is already recorded (the job came twice).
                return Ok(false);
            }
            if success {
                diesel::sql_query(RECOVERED_BY_HAND)
                    .bind::<SqlUuid, _>(attempt.message_id)
                    .bind::<SqlUuid, _>(attempt.endpoint_id)
                    .bind::<SqlUuid, _>(attempt.id)
                    .bind::<Integer, _>(attempt.response_status_code)
                    .bind::<Timestamptz, _>(attempt.created)
                    .execute(conn)
                    .await?;
            }
            diesel::sql_query(
                "INSERT INTO message_destinations \
                   (message_id, endpoint_id, status, attempt_count, updated) \
                 VALUES ($1, $2, CASE WHEN $3 THEN 'success' ELSE 'failed' END, 1, $4) \
                 ON CONFLICT (message_id, endpoint_id) DO UPDATE SET \
                   attempt_count = message_destinations.attempt_count + 1, \
                   status = CASE WHEN $3 THEN 'success' ELSE message_destinations.status END, \
                   next_attempt = CASE WHEN $3 THEN NULL ELSE message_destinations.next_attempt END, \
                   updated = $4",
            )
            .bind::<SqlUuid, _>(attempt.message_id)
            .bind::<SqlUuid, _>(attempt.endpoint_id)
            .bind::<Bool, _>(success)
            .bind::<Timestamptz, _>(attempt.created)
            .execute(conn)
            .await?;
            // After the destination, as the scheduled record takes its locks (destination,
            // then counts), so that the two cannot wait on each other.
            diesel::sql_query(COUNT_MANUAL)
                .bind::<SqlUuid, _>(attempt.endpoint_id)
                .bind::<Timestamptz, _>(attempt.created)
                .bind::<Bool, _>(success)
                .execute(conn)
                .await?;
            Ok(true)
        }
        .scope_boxed()
    })
    .await
}

/// Locks a message ($1) against deletion until the transaction ends; no row if it is gone.
const LOCK_MESSAGE: &str = "SELECT 1 FROM messages WHERE id = $1 FOR KEY SHARE";

/// A manual attempt that succeeded ($1 message, $2 endpoint, $3 attempt, $4 status code, $5
/// time) of a delivery for which `message.attempt.failing` was raised (its fourth scheduled
/// attempt failed with retries left: four and still pending, or more than four) and that was not
/// delivered yet raises `message.attempt.recovered`, as a scheduled success would. The destination is locked
/// here, before the upsert that marks it delivered, so two resends cannot both raise it.
const RECOVERED_BY_HAND: &str = concat!(
    "WITH r AS (SELECT $3::uuid AS attempt_id, $4::int AS code, $5::timestamptz AS created), \
d AS (SELECT message_id, endpoint_id FROM message_destinations \
  WHERE message_id = $1 AND endpoint_id = $2 AND status <> 'success' \
    AND (scheduled_attempts > 4 OR (scheduled_attempts = 4 AND status = 'pending')) \
  FOR NO KEY UPDATE) \
SELECT octohooks_emit_operational(a.environment_id, 'message.attempt.recovered', ",
    attempt_event_data!(),
    ") FROM d CROSS JOIN r JOIN endpoints e ON e.id = d.endpoint_id \
JOIN applications a ON a.id = e.application_id JOIN messages m ON m.id = d.message_id \
WHERE NOT a.operational"
);

/// Counts one manual attempt ($1 endpoint, $2 time, $3 success) as [`RECORD_SCHEDULED`] counts
/// scheduled ones.
const COUNT_MANUAL: &str = concat!(
    "INSERT INTO endpoint_attempt_counts AS c \
  (endpoint_id, hour, shard, successes, failures, last_success, last_failure) \
VALUES ($1, date_trunc('hour', $2::timestamptz, 'UTC'), pg_backend_pid() % 8, \
  CASE WHEN $3 THEN 1 ELSE 0 END, CASE WHEN $3 THEN 0 ELSE 1 END, \
  CASE WHEN $3 THEN $2::timestamptz END, CASE WHEN $3 THEN NULL ELSE $2::timestamptz END) ",
    count_conflict!()
);

#[cfg(test)]
mod tests {
    use octohooks_domain::operational::FAILING_AFTER_ATTEMPTS;

    #[test]
    fn the_failing_threshold_in_sql_is_the_documented_one() {
        let failing = format!("attempts_before = {}", FAILING_AFTER_ATTEMPTS - 1);
        let recovered = format!("attempts_before >= {FAILING_AFTER_ATTEMPTS}");
        assert!(super::RECORD_SCHEDULED.contains(&failing));
        assert!(super::RECORD_SCHEDULED.contains(&recovered));
        assert!(super::RECOVERED_BY_HAND.contains(&format!(
            "scheduled_attempts > {FAILING_AFTER_ATTEMPTS} OR (scheduled_attempts = {FAILING_AFTER_ATTEMPTS}"
        )));
    }
}
