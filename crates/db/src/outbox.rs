//! The outbox: claiming due jobs for publication and forgetting them once RabbitMQ confirmed.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer};
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use uuid::Uuid;

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
         RETURNING id, message_id, endpoint_id, attempt, trigger_type, traceparent, claimed_until, \
           deferrals",
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
/// Sent as one simple query with the ids written out, on purpose: planned on every call and
/// answered in one round trip. The outbox's live rows are always few, so a plan kept from a
/// quiet moment reads the table sequentially; between two autovacuum runs the table then holds
/// tens of thousands of dead rows, and that kept plan visited all their pages on every delete:
/// under load it was most of Postgres's CPU. A fresh plan sees the table's real size and takes
/// the primary key. (An unnamed prepared statement would also plan afresh, at the cost of a
/// second round trip per call.)
pub async fn remove(conn: &mut Conn, ids: &[i64]) -> DbResult<()> {
    if ids.is_empty() {
        return Ok(());
    }
    conn.batch_execute(&format!(
        "DELETE FROM outbox WHERE id IN ({})",
        id_list(ids)
    ))
    .await?;
    Ok(())
}

/// Gives up the caller's claims so that the next relay pass retries at once (used when a
/// publish failed). A job whose claim is no longer the one the caller holds (it lapsed and
/// another relay claimed it) is left alone. Sent like [`remove`].
pub async fn release(conn: &mut Conn, jobs: &[OutboxJob]) -> DbResult<()> {
    let claims: Vec<String> = jobs
        .iter()
        .filter_map(|job| {
            let until = job.claimed_until?;
            let until = until.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
            Some(format!("({},'{until}'::timestamptz)", job.id))
        })
        .collect();
    if claims.is_empty() {
        return Ok(());
    }
    conn.batch_execute(&format!(
        "UPDATE outbox SET claimed_until = NULL WHERE (id, claimed_until) IN ({})",
        claims.join(",")
    ))
    .await?;
    Ok(())
}

/// `1,2,3`: integers written into SQL cannot inject anything.
fn id_list(ids: &[i64]) -> String {
    ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}

/// Deletes the waiting jobs of every endpoint of the given applications. Jobs have no foreign
/// key to their endpoint (migration 000008), so a deleted application's retries would wait out
/// their schedule in the outbox; its deletion calls this in the same transaction.
pub async fn forget_applications(conn: &mut Conn, application_ids: &[Uuid]) -> DbResult<usize> {
    use crate::schema::{endpoints, outbox};
    let endpoints_of_them = endpoints::table
        .filter(endpoints::application_id.eq_any(application_ids))
        .select(endpoints::id);
    Ok(
        diesel::delete(outbox::table.filter(outbox::endpoint_id.eq_any(endpoints_of_them)))
            .execute(conn)
            .await?,
    )
}

/// Jobs waiting for a relay (due, and unclaimed or with a lapsed claim), and how long in seconds
/// the oldest has waited. Jobs a process has claimed to publish right now are not counted. Read
/// through the `outbox_available` index, like the relay's claim.
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
         coalesce(extract(epoch FROM now() - min(greatest(due, claimed_until)))::float8, 0) \
           AS oldest \
         FROM outbox WHERE greatest(due, claimed_until) <= now()",
    )
    .get_result(conn)
    .await?;
    Ok((row.count, row.oldest))
}

#[cfg(test)]
mod tests {
    use super::id_list;

    #[test]
    fn ids_are_written_comma_separated() {
        assert_eq!(id_list(&[1, -2, 30]), "1,-2,30");
        assert_eq!(id_list(&[7]), "7");
    }
}
