//! Removing an endpoint's history (its attempts and destinations) ahead of the endpoint, in
//! statements of a bounded size. Removed with the endpoint, one statement each, two million
//! deliveries took 2.5 s: near eight million a statement would meet the statement timeout every
//! time, and such an endpoint could not be deleted at all. In bounded statements a million
//! deliveries take about twice as long (2.4 s against 1.1 s), whatever the history.

use diesel::sql_types::{BigInt, Uuid as SqlUuid};
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use crate::{Conn, DbResult};

/// Rows a statement removes: a few tenths of a second of work, far inside the statement
/// timeout whatever the endpoint's history.
const ROWS_PER_STATEMENT: i64 = 50_000;

/// Removes the attempts and then the destinations of endpoint `id`, newest attempts first and
/// destinations by message, each statement going on after the last row it removed, so that none
/// walks again over the index entries of those removed before (until vacuum clears them). A
/// statement removes a range of the endpoint's index, bounded by the row [`ROWS_PER_STATEMENT`]
/// away (or the end): one scan of the range, where rows named one by one (`= ANY (ARRAY(…))`)
/// cost a descent of the index each (a million deliveries took 9.0 s that way, 7.6 s by range).
/// Rows made meanwhile inside a range go with it; those after the last go with the endpoint,
/// by its cascade.
pub(super) async fn remove_history(conn: &mut Conn, id: Uuid) -> DbResult<()> {
    #[derive(QueryableByName)]
    struct Removed {
        #[diesel(sql_type = SqlUuid)]
        key: Uuid,
    }
    let mut before = Uuid::max();
    loop {
        let removed: Vec<Removed> = diesel::sql_query(
            "DELETE FROM attempts WHERE endpoint_id = $1 AND id < $2 AND id >= coalesce(( \
               SELECT id FROM attempts WHERE endpoint_id = $1 AND id < $2 \
               ORDER BY endpoint_id, id DESC OFFSET $3 - 1 LIMIT 1), $4) \
             RETURNING id AS key",
        )
        .bind::<SqlUuid, _>(id)
        .bind::<SqlUuid, _>(before)
        .bind::<BigInt, _>(ROWS_PER_STATEMENT)
        .bind::<SqlUuid, _>(Uuid::nil())
        .load(conn)
        .await?;
        match removed.iter().map(|row| row.key).min() {
            Some(oldest) if removed.len() as i64 >= ROWS_PER_STATEMENT => before = oldest,
            _ => break,
        }
    }
    let mut after = Uuid::nil();
    loop {
        let removed: Vec<Removed> = diesel::sql_query(
            "DELETE FROM message_destinations \
             WHERE endpoint_id = $1 AND message_id > $2 AND message_id <= coalesce(( \
               SELECT message_id FROM message_destinations \
               WHERE endpoint_id = $1 AND message_id > $2 \
               ORDER BY endpoint_id, message_id OFFSET $3 - 1 LIMIT 1), $4) \
             RETURNING message_id AS key",
        )
        .bind::<SqlUuid, _>(id)
        .bind::<SqlUuid, _>(after)
        .bind::<BigInt, _>(ROWS_PER_STATEMENT)
        .bind::<SqlUuid, _>(Uuid::max())
        .load(conn)
        .await?;
        match removed.iter().map(|row| row.key).max() {
            Some(last) if removed.len() as i64 >= ROWS_PER_STATEMENT => after = last,
            _ => return Ok(()),
        }
    }
}
