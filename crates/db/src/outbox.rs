//! The outbox: claiming due jobs for publication and forgetting them once RabbitMQ confirmed.

use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Integer};
use diesel_async::RunQueryDsl;

use crate::models::OutboxJob;
use crate::prepared::prepared;
use crate::{Conn, DbResult};

/// Claims up to `batch` jobs that are due and unclaimed (or whose claim lapsed) for
/// `claim_secs` seconds, oldest availability first (index `outbox_available`). `SKIP LOCKED` lets many relays work side by side without waiting.
pub async fn claim_due(conn: &mut Conn, batch: i64, claim_secs: i32) -> DbResult<Vec<OutboxJob>> {
    Ok(prepared(
        diesel::sql_query(
            "UPDATE outbox SET claimed_until = now() + make_interval(secs => $2) \
         WHERE id IN ( \
           SELECT id FROM outbox \
           WHERE greatest(due, claimed_until) <= now() \
           ORDER BY greatest(due, claimed_until) LIMIT $1 FOR UPDATE SKIP LOCKED) \
         RETURNING id, message_id, endpoint_id, attempt, trigger_type, traceparent",
        )
        .bind::<BigInt, _>(batch)
        .bind::<Integer, _>(claim_secs),
    )
    .load(conn)
    .await?)
}

/// Re-enqueues deliveries that are pending, overdue by more than `overdue_secs` and have no job
/// in the outbox: their job was published but never came back (a broker that lost its data, a
/// queue deleted by hand). A job that is merely slow and still in the queue becomes a
/// duplicate, which the dispatcher drops. Returns how many were re-enqueued.
pub async fn requeue_stranded(conn: &mut Conn, overdue_secs: i32) -> DbResult<usize> {
    Ok(diesel::sql_query(
        "WITH stranded AS ( \
           UPDATE message_destinations d SET next_attempt = now() \
           WHERE (d.message_id, d.endpoint_id) IN ( \
             SELECT p.message_id, p.endpoint_id FROM message_destinations p \
             WHERE p.status = 'pending' AND p.next_attempt < now() - make_interval(secs => $1) \
               AND NOT EXISTS (SELECT 1 FROM outbox o \
                               WHERE o.message_id = p.message_id AND o.endpoint_id = p.endpoint_id) \
             LIMIT 1000 FOR UPDATE SKIP LOCKED) \
           RETURNING d.message_id, d.endpoint_id, d.scheduled_attempts) \
         INSERT INTO outbox (message_id, endpoint_id, attempt, trigger_type, due) \
         SELECT message_id, endpoint_id, scheduled_attempts, 'scheduled', now() FROM stranded",
    )
    .bind::<Integer, _>(overdue_secs)
    .execute(conn)
    .await?)
}

/// Forgets jobs that RabbitMQ has confirmed.
///
/// Planned on every call, on purpose (a `sql_query` is never kept as a prepared statement).
/// The outbox's live rows are always few, so a plan kept from a quiet moment reads the table
/// sequentially; between two autovacuum runs the table then holds tens of thousands of dead
/// rows, and that kept plan visited all their pages on every delete: under load it was most of
/// Postgres's CPU. A fresh plan sees the table's real size and takes the primary key.
pub async fn remove(conn: &mut Conn, ids: &[i64]) -> DbResult<()> {
    diesel::sql_query("DELETE FROM outbox WHERE id = ANY($1)")
        .bind::<Array<BigInt>, _>(ids)
        .execute(conn)
        .await?;
    Ok(())
}

/// Gives up a claim so that the next relay pass retries at once (used when a publish failed).
/// Planned on every call, like [`remove`].
pub async fn release(conn: &mut Conn, ids: &[i64]) -> DbResult<()> {
    diesel::sql_query("UPDATE outbox SET claimed_until = NULL WHERE id = ANY($1)")
        .bind::<Array<BigInt>, _>(ids)
        .execute(conn)
        .await?;
    Ok(())
}

/// Jobs waiting to be published that are due now, and the age in seconds of the oldest.
pub async fn backlog(conn: &mut Conn) -> DbResult<(i64, f64)> {
    #[derive(QueryableByName)]
    struct Backlog {
        #[diesel(sql_type = BigInt)]
        count: i64,
        #[diesel(sql_type = diesel::sql_types::Double)]
        oldest: f64,
    }
    let row: Backlog = diesel::sql_query(
        "SELECT count(*) AS count, \
         coalesce(extract(epoch FROM now() - min(due))::float8, 0) AS oldest \
         FROM outbox WHERE due <= now()",
    )
    .get_result(conn)
    .await?;
    Ok((row.count, row.oldest))
}
