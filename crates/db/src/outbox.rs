//! The outbox: claiming due jobs for publication and forgetting them once RabbitMQ confirmed.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer};
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use uuid::Uuid;

use crate::models::OutboxJob;
use crate::prepared::prepared;
use crate::{Conn, DbResult};

/// Claims up to `batch` jobs that are due and unclaimed (or whose claim lapsed) for
/// `claim_secs` seconds, oldest availability first (index `outbox_available`), then up to a
/// tenth as many fan-out rows, each as the jobs of the destinations of its message still
/// waiting for their first attempt, and no more rows once their jobs reach `batch`
/// ([`claim_fanouts`]). `SKIP LOCKED` lets many relays work side by side without waiting.
pub async fn claim_due(conn: &mut Conn, batch: i64, claim_secs: i32) -> DbResult<Vec<OutboxJob>> {
    let mut jobs: Vec<OutboxJob> = prepared(
        diesel::sql_query(
            "UPDATE outbox SET claimed_until = now() + make_interval(secs => $2) \
         WHERE id IN ( \
           SELECT id FROM outbox \
           WHERE greatest(due, claimed_until) <= now() \
           ORDER BY greatest(due, claimed_until) LIMIT $1 FOR UPDATE SKIP LOCKED) \
         RETURNING id, message_id, endpoint_id, attempt, trigger_type, traceparent, claimed_until, \
           deferrals, NULL::bigint AS fanout_id",
        )
        .bind::<BigInt, _>(batch)
        .bind::<Integer, _>(claim_secs),
    )
    .load(conn)
    .await?;
    jobs.extend(claim_fanouts(conn, (batch / 10).max(1), batch, claim_secs).await?);
    Ok(jobs)
}

/// Claims up to `rows` due fan-out rows and returns their jobs: one per destination of the
/// message that is still pending with no scheduled attempt made, its id drawn from the
/// outbox's sequence. Rows are taken in order while the jobs of those before stay under
/// `most_jobs`, so that a pass over messages to thousands of endpoints each holds and publishes
/// a bounded number of jobs (the first row always goes, whatever its size, and the rows left
/// are the next pass's). Destinations are found through their message (the primary key's
/// leading column) whatever the statistics say: "still pending" is `octohooks_still_pending`,
/// as in the dispatcher's record, so that no plan reads every pending destination instead. A
/// row whose message has no such destination left (its jobs were published and done, but the
/// row's removal was lost; or the message is gone) is deleted. A job published twice this way
/// is dropped by the dispatcher as a duplicate, as any is.
async fn claim_fanouts(
    conn: &mut Conn,
    rows: i64,
    most_jobs: i64,
    claim_secs: i32,
) -> DbResult<Vec<OutboxJob>> {
    Ok(prepared(
        diesel::sql_query(
            "WITH picked AS MATERIALIZED ( \
           SELECT id, message_id, greatest(due, claimed_until) AS since FROM outbox_fanouts \
           WHERE greatest(due, claimed_until) <= now() \
           ORDER BY greatest(due, claimed_until) LIMIT $1 FOR UPDATE SKIP LOCKED), \
         sized AS MATERIALIZED ( \
           SELECT p.id, w.jobs, sum(w.jobs) OVER (ORDER BY p.since, p.id) - w.jobs AS before \
           FROM picked p CROSS JOIN LATERAL ( \
             SELECT count(*) AS jobs FROM message_destinations d \
             WHERE d.message_id = p.message_id \
               AND octohooks_still_pending(d.status) AND d.scheduled_attempts = 0) w), \
         done AS ( \
           DELETE FROM outbox_fanouts WHERE id IN (SELECT id FROM sized WHERE jobs = 0)), \
         claimed AS ( \
           UPDATE outbox_fanouts SET claimed_until = now() + make_interval(secs => $2) \
           WHERE id IN (SELECT id FROM sized WHERE jobs > 0 AND before < $3) \
           RETURNING id, message_id, traceparent, claimed_until) \
         SELECT nextval('outbox_id_seq') AS id, c.message_id, d.endpoint_id, 0 AS attempt, \
           'scheduled' AS trigger_type, c.traceparent, c.claimed_until, 0 AS deferrals, \
           c.id AS fanout_id \
         FROM claimed c CROSS JOIN LATERAL ( \
           SELECT d.endpoint_id FROM message_destinations d WHERE d.message_id = c.message_id \
             AND octohooks_still_pending(d.status) AND d.scheduled_attempts = 0) d",
        )
        .bind::<BigInt, _>(rows)
        .bind::<Integer, _>(claim_secs)
        .bind::<BigInt, _>(most_jobs),
    )
    .load(conn)
    .await?)
}

/// Re-enqueues deliveries that are pending, overdue by more than `overdue_secs` and have no job
/// in the outbox (neither a row of their own nor their message's fan-out row): their job was
/// published but never came back (a broker that lost its data, a queue deleted by hand). A job
/// that is merely slow and still in the queue becomes a duplicate, which the dispatcher drops.
/// Returns how many were re-enqueued.
pub async fn requeue_stranded(conn: &mut Conn, overdue_secs: i32) -> DbResult<usize> {
    Ok(diesel::sql_query(
        "WITH stranded AS ( \
           UPDATE message_destinations d SET next_attempt = now() \
           WHERE (d.message_id, d.endpoint_id) IN ( \
             SELECT p.message_id, p.endpoint_id FROM message_destinations p \
             WHERE p.status = 'pending' AND p.next_attempt < now() - make_interval(secs => $1) \
               AND NOT EXISTS (SELECT 1 FROM outbox o \
                               WHERE o.message_id = p.message_id AND o.endpoint_id = p.endpoint_id) \
               AND p.message_id NOT IN (SELECT message_id FROM outbox_fanouts) \
             LIMIT 1000 FOR UPDATE SKIP LOCKED) \
           RETURNING d.message_id, d.endpoint_id, d.scheduled_attempts) \
         INSERT INTO outbox (message_id, endpoint_id, attempt, trigger_type, due) \
         SELECT message_id, endpoint_id, scheduled_attempts, 'scheduled', now() FROM stranded",
    )
    .bind::<Integer, _>(overdue_secs)
    .execute(conn)
    .await?)
}

/// Forgets jobs that RabbitMQ has confirmed: outbox rows by `jobs`, fan-out rows by
/// `fanouts`.
///
/// Sent as one simple query with the ids written out, on purpose: planned on every call and
/// answered in one round trip. The outbox's live rows are always few, so a plan kept from a
/// quiet moment reads the table sequentially; between two autovacuum runs the table then holds
/// tens of thousands of dead rows, and that kept plan visited all their pages on every delete:
/// under load it was most of Postgres's CPU. A fresh plan sees the table's real size and takes
/// the primary key. (An unnamed prepared statement would also plan afresh, at the cost of a
/// second round trip per call.)
pub async fn remove(conn: &mut Conn, jobs: &[i64], fanouts: &[i64]) -> DbResult<()> {
    let mut statements = String::new();
    if !jobs.is_empty() {
        statements += &format!("DELETE FROM outbox WHERE id IN ({});", id_list(jobs));
    }
    if !fanouts.is_empty() {
        statements += &format!(
            "DELETE FROM outbox_fanouts WHERE id IN ({});",
            id_list(fanouts)
        );
    }
    if statements.is_empty() {
        return Ok(());
    }
    conn.batch_execute(&statements).await?;
    Ok(())
}

/// What removing the published `jobs` deletes: the outbox rows of the jobs that have one, and
/// the fan-out rows that stand for the others (each once).
pub fn rows_of(jobs: &[OutboxJob]) -> (Vec<i64>, Vec<i64>) {
    let mut own = Vec::new();
    let mut fanouts = Vec::new();
    for job in jobs {
        match job.fanout_id {
            Some(fanout) => fanouts.push(fanout),
            None => own.push(job.id),
        }
    }
    fanouts.sort_unstable();
    fanouts.dedup();
    (own, fanouts)
}

/// Gives up the caller's claims so that the next relay pass retries at once (used when a
/// publish failed): of the jobs' own rows, and of the fan-out rows that stand for the others.
/// A row whose claim is no longer the one the caller holds (it lapsed and another relay
/// claimed it) is left alone. Sent like [`remove`].
pub async fn release(conn: &mut Conn, jobs: &[OutboxJob]) -> DbResult<()> {
    let claim = |job: &OutboxJob, id: i64| {
        let until = job.claimed_until?;
        let until = until.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        Some(format!("({id},'{until}'::timestamptz)"))
    };
    let own: Vec<String> = jobs
        .iter()
        .filter(|job| job.fanout_id.is_none())
        .filter_map(|job| claim(job, job.id))
        .collect();
    let mut fanouts: Vec<String> = jobs
        .iter()
        .filter_map(|job| claim(job, job.fanout_id?))
        .collect();
    fanouts.sort_unstable();
    fanouts.dedup();
    let mut statements = String::new();
    for (table, claims) in [("outbox", own), ("outbox_fanouts", fanouts)] {
        if !claims.is_empty() {
            statements += &format!(
                "UPDATE {table} SET claimed_until = NULL WHERE (id, claimed_until) IN ({});",
                claims.join(",")
            );
        }
    }
    if statements.is_empty() {
        return Ok(());
    }
    conn.batch_execute(&statements).await?;
    Ok(())
}

/// `1,2,3`: integers written into SQL cannot inject anything.
fn id_list(ids: &[i64]) -> String {
    ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}

/// Deletes the waiting jobs of every endpoint of the given applications, and the fan-out rows
/// of their messages. Jobs have no foreign key to their endpoint (migration 000008), nor
/// fan-out rows to their message (000025), so a deleted application's retries, and its
/// messages sent for later, would wait out their time; its deletion calls this in the same
/// transaction, before its messages go. Returns how many rows went.
pub async fn forget_applications(conn: &mut Conn, application_ids: &[Uuid]) -> DbResult<usize> {
    use crate::schema::{endpoints, messages, outbox, outbox_fanouts};
    let endpoints_of_them = endpoints::table
        .filter(endpoints::application_id.eq_any(application_ids))
        .select(endpoints::id);
    let jobs = diesel::delete(outbox::table.filter(outbox::endpoint_id.eq_any(endpoints_of_them)))
        .execute(conn)
        .await?;
    let messages_of_them = messages::table
        .filter(messages::application_id.eq_any(application_ids))
        .select(messages::id);
    let fanouts = diesel::delete(
        outbox_fanouts::table.filter(outbox_fanouts::message_id.eq_any(messages_of_them)),
    )
    .execute(conn)
    .await?;
    Ok(jobs + fanouts)
}

/// Jobs waiting for a relay (due, and unclaimed or with a lapsed claim), a fan-out row counted
/// once, and how long in seconds the oldest has waited. Jobs a process has claimed to publish
/// right now are not counted. Read through the `available` indexes, like the relay's claim.
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
         coalesce(extract(epoch FROM now() - min(available))::float8, 0) AS oldest \
         FROM (SELECT greatest(due, claimed_until) AS available FROM outbox \
               WHERE greatest(due, claimed_until) <= now() \
               UNION ALL \
               SELECT greatest(due, claimed_until) FROM outbox_fanouts \
               WHERE greatest(due, claimed_until) <= now()) waiting",
    )
    .get_result(conn)
    .await?;
    Ok((row.count, row.oldest))
}

#[cfg(test)]
mod tests {
    use super::{id_list, rows_of};
    use crate::models::OutboxJob;
    use octohooks_domain::job::TriggerType;
    use uuid::Uuid;

    fn job(id: i64, fanout_id: Option<i64>) -> OutboxJob {
        OutboxJob {
            id,
            message_id: Uuid::nil(),
            endpoint_id: Uuid::nil(),
            attempt: 0,
            trigger_type: TriggerType::Scheduled,
            traceparent: None,
            claimed_until: None,
            deferrals: 0,
            fanout_id,
        }
    }

    #[test]
    fn published_jobs_remove_their_own_rows_and_each_fan_out_row_once() {
        let jobs = [
            job(1, None),
            job(2, Some(7)),
            job(3, Some(7)),
            job(4, None),
            job(5, Some(6)),
        ];
        assert_eq!(rows_of(&jobs), (vec![1, 4], vec![6, 7]));
        assert_eq!(rows_of(&[]), (vec![], vec![]));
    }

    #[test]
    fn ids_are_written_comma_separated() {
        assert_eq!(id_list(&[1, -2, 30]), "1,-2,30");
        assert_eq!(id_list(&[7]), "7");
    }
}
