//! The outbox: claiming due jobs for publication and forgetting them once RabbitMQ confirmed.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer};
use diesel_async::RunQueryDsl;

use crate::models::OutboxJob;
use crate::schema::outbox;
use crate::{Conn, DbResult};

/// Claims up to `batch` jobs that are due and unclaimed (or whose claim lapsed) for
/// `claim_secs` seconds. `SKIP LOCKED` lets many relays work side by side without waiting.
pub async fn claim_due(conn: &mut Conn, batch: i64, claim_secs: i32) -> DbResult<Vec<OutboxJob>> {
    Ok(diesel::sql_query(
        "UPDATE outbox SET claimed_until = now() + make_interval(secs => $2) \
         WHERE id IN ( \
           SELECT id FROM outbox \
           WHERE due <= now() AND (claimed_until IS NULL OR claimed_until < now()) \
           ORDER BY due LIMIT $1 FOR UPDATE SKIP LOCKED) \
         RETURNING id, message_id, endpoint_id, attempt, trigger_type",
    )
    .bind::<BigInt, _>(batch)
    .bind::<Integer, _>(claim_secs)
    .load(conn)
    .await?)
}

/// Forgets jobs that RabbitMQ has confirmed.
pub async fn remove(conn: &mut Conn, ids: &[i64]) -> DbResult<()> {
    diesel::delete(outbox::table.filter(outbox::id.eq_any(ids)))
        .execute(conn)
        .await?;
    Ok(())
}

/// Gives up a claim so that the next relay pass retries at once (used when a publish failed).
pub async fn release(conn: &mut Conn, ids: &[i64]) -> DbResult<()> {
    diesel::update(outbox::table.filter(outbox::id.eq_any(ids)))
        .set(outbox::claimed_until.eq(None::<chrono::DateTime<chrono::Utc>>))
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
