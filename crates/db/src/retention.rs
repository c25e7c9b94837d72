//! Retention: history older than the retention period is removed, and payloads can go sooner.
//! Every dispatcher runs the sweep; one sweeps at a time (a transaction-level advisory lock),
//! in passes of at most [`BATCH`] rows per step, each pass one short transaction that gives way
//! (a 200 ms lock timeout) rather than make ingest, deliveries or deletions wait behind it.
//! Messages are found by id, which follows creation time (UUIDv7): a range of the primary key,
//! from where the last pass stopped, never a scan of the table.
//!
//! Nothing still waiting to be delivered is touched: a message with a pending delivery (a
//! retry under way, a `deliverAt` far ahead) keeps its payload and its place until it is done.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, RunQueryDsl};
use scoped_futures::ScopedFutureExt;

use crate::tasks::v7_floor;
use crate::{Conn, DbResult};

/// Rows one step of a sweep handles per transaction.
pub const BATCH: i64 = 1000;

/// The advisory lock that makes one sweeper at a time ("octoret").
const SWEEP_LOCK: i64 = 0x006f_6374_6f72_6574;

/// What is kept, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Messages (with their destinations and attempts), hourly counts and finished background
    /// tasks older than this are removed; `None` keeps everything.
    pub retention: Option<Duration>,
    /// Payloads older than this are expunged, the rest kept; `None`: they go with their message.
    pub payload_retention: Option<Duration>,
}

/// What one pass removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Payloads expunged (asked for by the message, or by age).
    pub payloads: i64,
    /// Messages removed with their destinations and attempts.
    pub messages: i64,
    /// Hourly attempt counts and finished tasks removed.
    pub other: i64,
}

impl Swept {
    /// True when a whole batch was found somewhere: there may be more right away.
    pub fn more_waiting(&self) -> bool {
        self.payloads >= BATCH || self.messages >= BATCH || self.other >= BATCH
    }
}

/// One pass of every step, a batch each, in one transaction; `None` when another process holds
/// the sweep.
pub async fn sweep(
    conn: &mut Conn,
    policy: RetentionPolicy,
    now: DateTime<Utc>,
) -> DbResult<Option<Swept>> {
    conn.transaction(|conn| {
        async move {
            #[derive(QueryableByName)]
            struct Locked {
                #[diesel(sql_type = Bool)]
                locked: bool,
            }
            let lock: Locked = diesel::sql_query("SELECT pg_try_advisory_xact_lock($1) AS locked")
                .bind::<BigInt, _>(SWEEP_LOCK)
                .get_result(conn)
                .await?;
            if !lock.locked {
                return Ok(None);
            }
            // Below Postgres's deadlock_timeout (1 s): the sweep is the side that gives way.
            diesel::sql_query("SET LOCAL lock_timeout = '200ms'")
                .execute(conn)
                .await?;
            let handled = diesel::sql_query(EXPUNGE_DUE)
                .bind::<Timestamptz, _>(now)
                .get_result::<Handled>(conn)
                .await?;
            let mut swept = Swept {
                payloads: handled.n,
                ..Swept::default()
            };
            if let Some(keep) = age(policy.payload_retention) {
                let handled = diesel::sql_query(EXPUNGE_OLD)
                    .bind::<SqlUuid, _>(v7_floor(now - keep))
                    .get_result::<Handled>(conn)
                    .await?;
                swept.payloads += handled.n;
            }
            if let Some(keep) = age(policy.retention) {
                #[derive(QueryableByName)]
                struct Old {
                    #[diesel(sql_type = SqlUuid)]
                    id: uuid::Uuid,
                }
                let after = progress(conn, MESSAGES_SWEEP).await?;
                let old: Vec<uuid::Uuid> = diesel::sql_query(LOCK_OLD)
                    .bind::<SqlUuid, _>(v7_floor(now - keep))
                    .bind::<SqlUuid, _>(after)
                    .load::<Old>(conn)
                    .await?
                    .into_iter()
                    .map(|row| row.id)
                    .collect();
                save_progress(conn, MESSAGES_SWEEP, next_start(&old)).await?;
                let removed = diesel::sql_query(REMOVE_OLD)
                    .bind::<Array<SqlUuid>, _>(&old)
                    .get_result::<Handled>(conn)
                    .await?;
                swept.messages = removed.n;
                let removed = diesel::sql_query(REMOVE_OLD_COUNTS)
                    .bind::<Timestamptz, _>(now - keep)
                    .get_result::<Handled>(conn)
                    .await?;
                swept.other = removed.n;
            }
            Ok(Some(swept))
        }
        .scope_boxed()
    })
    .await
}

/// A period as a chrono duration (periods beyond its range keep everything).
fn age(period: Option<Duration>) -> Option<chrono::Duration> {
    period.and_then(|period| chrono::Duration::from_std(period).ok())
}

/// The `retention_progress` row of the removal of old messages.
const MESSAGES_SWEEP: &str = "messages";

/// Where the next pass of `sweep` starts: after the last message this pass locked when it
/// found a whole batch, so that no pass walks again over the index entries of messages that
/// earlier passes removed (until vacuum clears them, each costs a visit of the table); from the
/// start again when it found less, so that messages passed over while they still waited (or
/// were locked) are looked at once more.
fn next_start(locked: &[uuid::Uuid]) -> uuid::Uuid {
    match locked.last() {
        Some(last) if locked.len() >= BATCH as usize => *last,
        _ => uuid::Uuid::nil(),
    }
}

/// The id a sweep goes on after (nil when it starts from the beginning).
async fn progress(conn: &mut Conn, sweep: &str) -> DbResult<uuid::Uuid> {
    use crate::schema::retention_progress::dsl;
    Ok(dsl::retention_progress
        .filter(dsl::sweep.eq(sweep))
        .select(dsl::after)
        .first(conn)
        .await
        .optional()?
        .unwrap_or_else(uuid::Uuid::nil))
}

/// Stores where a sweep goes on.
async fn save_progress(conn: &mut Conn, sweep: &str, after: uuid::Uuid) -> DbResult<()> {
    use crate::schema::retention_progress::dsl;
    diesel::insert_into(dsl::retention_progress)
        .values((dsl::sweep.eq(sweep), dsl::after.eq(after)))
        .on_conflict(dsl::sweep)
        .do_update()
        .set(dsl::after.eq(after))
        .execute(conn)
        .await?;
    Ok(())
}

/// The answer of every step: rows handled.
#[derive(QueryableByName)]
struct Handled {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// "Not waiting to be delivered anywhere", for a message `m`: a lookup of its destinations by
/// the primary key, message by message. Written as `NOT EXISTS`, Postgres turns it into an
/// anti-join against every pending destination, planned on an estimate of how many there are;
/// with a backlog of deliveries (an endpoint held to its cap) that compared each of a batch's
/// messages with tens of thousands of rows and ran into the statement timeout.
macro_rules! settled {
    () => {
        "coalesce((SELECT bool_and(d.status IN ('success', 'failed')) \
           FROM message_destinations d WHERE d.message_id = m.id), true)"
    };
}

/// Payloads whose message asked them to go ($1 now), through the partial index of such messages.
const EXPUNGE_DUE: &str = concat!(
    "WITH due AS ( \
  SELECT m.id FROM messages m WHERE m.payload_expires < $1 AND NOT m.expunged AND ",
    settled!(),
    " ORDER BY m.payload_expires LIMIT 1000), \
done AS (UPDATE messages m SET payload = '{}', expunged = true FROM due WHERE m.id = due.id \
  RETURNING 1) \
SELECT count(*) AS n FROM done"
);

/// Payloads of messages older than the payload retention ($1: the id floor of that age), from
/// where the last pass stopped. A message still waiting when the pass reaches it is passed over
/// for good: its payload then goes with its message (with retention off, never).
const EXPUNGE_OLD: &str = concat!(
    "WITH since AS ( \
  SELECT coalesce((SELECT after FROM retention_progress WHERE sweep = 'payloads'), \
                  '00000000-0000-0000-0000-000000000000'::uuid) AS after), \
batch AS (SELECT m.id FROM messages m, since WHERE m.id > since.after AND m.id < $1 \
  ORDER BY m.id LIMIT 1000), \
done AS (UPDATE messages m SET payload = '{}', expunged = true FROM batch \
  WHERE m.id = batch.id AND NOT m.expunged AND ",
    settled!(),
    " RETURNING 1), \
moved AS (INSERT INTO retention_progress (sweep, after) \
  SELECT 'payloads', id FROM batch ORDER BY id DESC LIMIT 1 \
  ON CONFLICT (sweep) DO UPDATE SET after = excluded.after RETURNING 1) \
SELECT (SELECT count(*) FROM done) + 0 * (SELECT count(*) FROM moved) AS n"
);

/// Messages older than the retention ($1: the id floor of that age) after where the last pass
/// stopped ($2) that wait for nothing, locked (skipping any another transaction holds): from
/// here until the pass commits, no new delivery of them can be made (its insert waits on the
/// lock and then finds them gone).
const LOCK_OLD: &str = concat!(
    "SELECT m.id FROM messages m WHERE m.id > $2 AND m.id < $1 AND ",
    settled!(),
    " ORDER BY m.id LIMIT 1000 FOR UPDATE SKIP LOCKED"
);

/// The locked messages ($1) that still wait for nothing, seen afresh (a delivery made just
/// before the lock was taken keeps its message), removed with their destinations and attempts
/// (by the trigger of migration 000024) and any job left for them.
const REMOVE_OLD: &str = concat!(
    "WITH removed AS (DELETE FROM messages m WHERE m.id = ANY($1) AND ",
    settled!(),
    " RETURNING m.id), \
jobs AS (DELETE FROM outbox o USING removed WHERE o.message_id = removed.id RETURNING 1) \
SELECT count(*) AS n FROM removed"
);

/// Hourly attempt counts and finished background tasks older than the retention ($1).
const REMOVE_OLD_COUNTS: &str = "\
WITH counts AS ( \
  DELETE FROM endpoint_attempt_counts WHERE ctid = ANY (ARRAY( \
    SELECT ctid FROM endpoint_attempt_counts WHERE hour < $1 LIMIT 1000)) RETURNING 1), \
tasks AS ( \
  DELETE FROM background_tasks WHERE id = ANY (ARRAY( \
    SELECT id FROM background_tasks WHERE status <> 'running' AND updated < $1 LIMIT 1000)) \
  RETURNING 1) \
SELECT (SELECT count(*) FROM counts) + (SELECT count(*) FROM tasks) AS n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_in_sql_are_the_documented_size() {
        for statement in [EXPUNGE_DUE, EXPUNGE_OLD, LOCK_OLD, REMOVE_OLD_COUNTS] {
            assert!(statement.contains(&format!("LIMIT {BATCH}")), "{statement}");
        }
        let full = Swept {
            messages: BATCH,
            ..Swept::default()
        };
        assert!(full.more_waiting());
        assert!(!Swept::default().more_waiting());
    }

    #[test]
    fn a_whole_batch_moves_the_start_and_a_short_one_starts_over() {
        let batch: Vec<uuid::Uuid> = (1..=BATCH as u128).map(uuid::Uuid::from_u128).collect();
        assert_eq!(next_start(&batch), uuid::Uuid::from_u128(BATCH as u128));
        assert_eq!(next_start(&batch[..10]), uuid::Uuid::nil());
        assert_eq!(next_start(&[]), uuid::Uuid::nil());
    }
}
