//! Background tasks (recover, replay): created by the API, run by any dispatcher in bounded
//! batches. A batch queues its deliveries and moves the task's position in one transaction,
//! under the task row's lock, so a task resumed after a crash (or taken over by another runner
//! whose claim overlapped) goes on where the last commit left it and never queues one message
//! twice to its endpoint.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, RunQueryDsl};
use octohooks_domain::status::{TaskKind, TaskStatus};
use scoped_futures::ScopedFutureExt;
use uuid::Uuid;

use crate::models::BackgroundTask;
use crate::prepared::prepared;
use crate::schema::background_tasks;
use crate::{Conn, DbResult};

/// Message ids are UUIDv7, made when the message is accepted, so their order is the order of
/// creation to within this margin (the time between making the id and stamping `created`). A
/// window of creation times becomes a range of ids, which the `(application_id, id)` index
/// reads directly; `created` itself is then compared exactly. One exception is known and
/// accepted: a keyed POST retried after its first try's claim went stale (5 minutes or more)
/// stores the message under the id of that claim, so a window that begins in between misses it.
const ID_CLOCK_MARGIN_MS: i64 = 60_000;

/// The smallest UUIDv7 of the millisecond `at` (clamped to the epoch).
pub(crate) fn v7_floor(at: DateTime<Utc>) -> Uuid {
    let millis = u128::try_from(at.timestamp_millis().max(0)).unwrap_or(0);
    Uuid::from_u128((millis & 0xFFFF_FFFF_FFFF) << 80)
}

/// Stores a new task, running from the start of its window.
pub async fn create(conn: &mut Conn, task: &BackgroundTask) -> DbResult<BackgroundTask> {
    Ok(diesel::insert_into(background_tasks::table)
        .values(task.clone())
        .returning(BackgroundTask::as_returning())
        .get_result(conn)
        .await?)
}

/// One task of the environment; `NotFound` otherwise.
pub async fn find(conn: &mut Conn, environment_id: Uuid, id: Uuid) -> DbResult<BackgroundTask> {
    Ok(background_tasks::table
        .filter(background_tasks::environment_id.eq(environment_id))
        .filter(background_tasks::id.eq(id))
        .select(BackgroundTask::as_select())
        .first(conn)
        .await?)
}

/// Which tasks to list.
#[derive(Debug, Clone, Default)]
pub struct TaskFilter {
    /// Only the tasks of this application (a portal token sees no others).
    pub application_id: Option<Uuid>,
    /// Only the tasks of this endpoint.
    pub endpoint_id: Option<Uuid>,
    /// Only tasks in this state.
    pub status: Option<TaskStatus>,
}

/// Tasks of the environment, newest first, older than the cursor id.
pub async fn list(
    conn: &mut Conn,
    environment_id: Uuid,
    filter: &TaskFilter,
    older_than: Option<Uuid>,
    limit: i64,
) -> DbResult<Vec<BackgroundTask>> {
    let mut query = background_tasks::table
        .filter(background_tasks::environment_id.eq(environment_id))
        .order(background_tasks::id.desc())
        .select(BackgroundTask::as_select())
        .into_boxed();
    if let Some(app) = filter.application_id {
        query = query.filter(background_tasks::application_id.eq(app));
    }
    if let Some(endpoint) = filter.endpoint_id {
        query = query.filter(background_tasks::endpoint_id.eq(endpoint));
    }
    if let Some(status) = filter.status {
        query = query.filter(background_tasks::status.eq(status.as_str()));
    }
    if let Some(cursor) = older_than {
        query = query.filter(background_tasks::id.lt(cursor));
    }
    Ok(query.limit(limit + 1).load(conn).await?)
}

/// The predicate of the partial index `background_tasks_runnable`.
const RUNNING: &str = "status = 'running'";

/// Takes the oldest running task that no runner holds (or whose holder's claim lapsed) for
/// `claim_secs`; `None` when there is none.
pub async fn claim_next(conn: &mut Conn, claim_secs: i32) -> DbResult<Option<BackgroundTask>> {
    conn.transaction(|conn| {
        async move {
            let now = Utc::now();
            // The status as a literal, not a bound value, so that every plan of this query can
            // use the partial index `background_tasks_runnable`, one made without the values
            // too, instead of reading every task, finished ones included, twice a second.
            let free: Option<Uuid> = background_tasks::table
                .filter(diesel::dsl::sql::<diesel::sql_types::Bool>(RUNNING))
                .filter(
                    background_tasks::claimed_until
                        .is_null()
                        .or(background_tasks::claimed_until.lt(now)),
                )
                .order(background_tasks::created.asc())
                .select(background_tasks::id)
                .for_update()
                .skip_locked()
                .first(conn)
                .await
                .optional()?;
            let Some(id) = free else {
                return Ok(None);
            };
            Ok(Some(
                diesel::update(background_tasks::table.find(id))
                    .set(
                        background_tasks::claimed_until
                            .eq(now + chrono::Duration::seconds(i64::from(claim_secs))),
                    )
                    .returning(BackgroundTask::as_returning())
                    .get_result(conn)
                    .await?,
            ))
        }
        .scope_boxed()
    })
    .await
}

/// What one batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchOutcome {
    /// The window has more messages: run another batch.
    More,
    /// The window is done; the task is finished.
    Finished,
    /// The task is no longer running (finished, failed or deleted meanwhile).
    Gone,
}

/// Examines the next `batch` messages of the task's window (by id, after its position), queues
/// a delivery to its endpoint for each that the task's kind chooses, moves its position and
/// counts, and renews its claim for `claim_secs`, all in one transaction.
pub async fn run_batch(
    conn: &mut Conn,
    task_id: Uuid,
    batch: i64,
    claim_secs: i32,
) -> DbResult<BatchOutcome> {
    conn.transaction(|conn| {
        async move {
            let task: Option<BackgroundTask> = background_tasks::table
                .filter(background_tasks::id.eq(task_id))
                .filter(background_tasks::status.eq(TaskStatus::Running.as_str()))
                .select(BackgroundTask::as_select())
                .for_update()
                .first(conn)
                .await
                .optional()?;
            let Some(task) = task else {
                return Ok(BatchOutcome::Gone);
            };
            let progress = examine(conn, &task, batch).await?;
            let finished = progress.scanned < batch;
            let status = if finished {
                TaskStatus::Finished
            } else {
                TaskStatus::Running
            };
            diesel::update(background_tasks::table.find(task_id))
                .set((
                    background_tasks::position.eq(progress.last.or(task.position)),
                    background_tasks::messages_scanned
                        .eq(background_tasks::messages_scanned + progress.in_window),
                    background_tasks::messages_queued
                        .eq(background_tasks::messages_queued + progress.queued),
                    background_tasks::status.eq(status.as_str()),
                    background_tasks::claimed_until
                        .eq(Utc::now() + chrono::Duration::seconds(i64::from(claim_secs))),
                    background_tasks::updated.eq(Utc::now()),
                ))
                .execute(conn)
                .await?;
            Ok(if finished {
                BatchOutcome::Finished
            } else {
                BatchOutcome::More
            })
        }
        .scope_boxed()
    })
    .await
}

/// Marks a task failed with the reason, so that no runner takes it again.
pub async fn fail(conn: &mut Conn, task_id: Uuid, failure: &str) -> DbResult<()> {
    diesel::update(
        background_tasks::table
            .filter(background_tasks::id.eq(task_id))
            .filter(background_tasks::status.eq(TaskStatus::Running.as_str())),
    )
    .set((
        background_tasks::status.eq(TaskStatus::Failed.as_str()),
        background_tasks::failure.eq(failure),
        background_tasks::updated.eq(Utc::now()),
    ))
    .execute(conn)
    .await?;
    Ok(())
}

/// What one batch's statement saw and queued.
#[derive(Debug, QueryableByName)]
struct Progress {
    /// Messages read (in the id range; fewer than the batch: the range is done).
    #[diesel(sql_type = BigInt)]
    scanned: i64,
    /// Of those, created within the window.
    #[diesel(sql_type = BigInt)]
    in_window: i64,
    /// Deliveries queued.
    #[diesel(sql_type = BigInt)]
    queued: i64,
    /// The last message read.
    #[diesel(sql_type = Nullable<SqlUuid>)]
    last: Option<Uuid>,
}

async fn examine(conn: &mut Conn, task: &BackgroundTask, batch: i64) -> DbResult<Progress> {
    let margin = chrono::Duration::milliseconds(ID_CLOCK_MARGIN_MS);
    let start = task
        .position
        .unwrap_or_else(|| v7_floor(task.since - margin));
    let end = v7_floor(task.until + margin);
    let statement = match task.kind {
        TaskKind::Recover => RECOVER_BATCH,
        TaskKind::Replay => REPLAY_BATCH,
    };
    Ok(prepared(
        diesel::sql_query(statement)
            .bind::<SqlUuid, _>(task.application_id)
            .bind::<SqlUuid, _>(start)
            .bind::<SqlUuid, _>(end)
            .bind::<BigInt, _>(batch)
            .bind::<SqlUuid, _>(task.endpoint_id)
            .bind::<Timestamptz, _>(task.since)
            .bind::<Timestamptz, _>(task.until),
    )
    .get_result(conn)
    .await?)
}

/// The first part of both batch statements: the next messages of the id range ($1
/// application, after $2, before $3, at most $4), and those of them created in [$6, $7) whose
/// payload is still there (an expunged message has nothing to send).
macro_rules! scanned {
    () => {
        "WITH scanned AS ( \
  SELECT m.id, m.created, m.event_type, m.channels, m.example, m.expunged FROM messages m \
  WHERE m.application_id = $1 AND m.id > $2 AND m.id < $3 ORDER BY m.id LIMIT $4), \
in_window AS (SELECT * FROM scanned s \
  WHERE s.created >= $6 AND s.created < $7 AND NOT s.expunged), "
    };
}

/// The last part of both: what the batch saw and queued.
macro_rules! progress {
    () => {
        "SELECT (SELECT count(*) FROM scanned) AS scanned, \
  (SELECT count(*) FROM in_window) AS in_window, (SELECT count(*) FROM queued) AS queued, \
  (SELECT id FROM scanned ORDER BY id DESC LIMIT 1) AS last"
    };
}

/// Recover: a manual attempt now for each message whose delivery to endpoint $5 failed for
/// good, as `resend` queues it (a success marks the delivery delivered).
const RECOVER_BATCH: &str = concat!(
    scanned!(),
    "chosen AS ( \
  SELECT w.id FROM in_window w JOIN message_destinations d \
    ON d.message_id = w.id AND d.endpoint_id = $5 WHERE d.status = 'failed'), \
queued AS ( \
  INSERT INTO outbox (message_id, endpoint_id, attempt, trigger_type, due) \
  SELECT id, $5, 0, 'manual', now() FROM chosen RETURNING 1) \
",
    progress!()
);

/// Replay: for each message that endpoint $5 has no delivery of, whose event type and channels
/// its filters take, and that is not another endpoint's example (send-example), a new pending
/// delivery and its first scheduled job, as the fan-out at acceptance makes them (so it is
/// retried like any other). The chosen messages are locked (`KEY SHARE`) before their
/// deliveries are inserted: one the retention sweep deletes meanwhile is left out, and none
/// gets a delivery after its message went (destinations have no foreign key to their message,
/// migration 000024).
const REPLAY_BATCH: &str = concat!(
    scanned!(),
    "chosen AS ( \
  SELECT m.id FROM messages m WHERE m.id IN ( \
    SELECT w.id FROM in_window w JOIN endpoints e ON e.id = $5 \
    WHERE NOT w.example \
      AND (cardinality(e.event_types) = 0 OR w.event_type = ANY(e.event_types)) \
      AND (cardinality(e.channels) = 0 OR e.channels && w.channels) \
      AND NOT EXISTS (SELECT 1 FROM message_destinations d \
                      WHERE d.message_id = w.id AND d.endpoint_id = $5)) \
  FOR KEY SHARE OF m), \
dest AS ( \
  INSERT INTO message_destinations (message_id, endpoint_id, status, next_attempt, updated) \
  SELECT id, $5, 'pending', now(), now() FROM chosen \
  ON CONFLICT DO NOTHING RETURNING message_id), \
queued AS ( \
  INSERT INTO outbox (message_id, endpoint_id, attempt, trigger_type, due) \
  SELECT message_id, $5, 0, 'scheduled', now() FROM dest RETURNING 1) \
",
    progress!()
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_of_a_millisecond_orders_below_its_ids_and_above_the_previous_ones() {
        let at = Utc::now();
        let id = Uuid::now_v7();
        let floor = v7_floor(at - chrono::Duration::milliseconds(1));
        assert!(floor < id);
        assert!(v7_floor(at + chrono::Duration::seconds(1)) > id);
        assert_eq!(v7_floor(DateTime::<Utc>::UNIX_EPOCH), Uuid::nil());
    }

    #[test]
    fn the_running_literal_is_the_running_status() {
        assert_eq!(
            super::RUNNING,
            format!("status = '{}'", super::TaskStatus::Running.as_str())
        );
    }
}
