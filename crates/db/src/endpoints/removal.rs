//! Removing an endpoint's history (its attempts and destinations) ahead of the endpoint, in
//! statements of a bounded size. Removed with the endpoint, one statement each, two million
//! deliveries took 2.5 s: near eight million a statement would meet the statement timeout every
//! time, and such an endpoint could not be deleted at all. In bounded statements a million
//! deliveries take about twice as long (2.4 s against 1.1 s), and no statement grows with the
//! history.

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
/// Rows made meanwhile go with a range that covers them, or else with the endpoint (its
/// cascade, and its transaction's own removal of attempts).
pub(super) async fn remove_history(conn: &mut Conn, id: Uuid) -> DbResult<()> {
    remove_in_ranges(conn, id, REMOVE_ATTEMPTS, Direction::NewestFirst).await?;
    remove_in_ranges(conn, id, REMOVE_DESTINATIONS, Direction::OldestFirst).await
}

/// Which way a removal walks its index, and so where it starts and ends.
#[derive(Clone, Copy)]
enum Direction {
    NewestFirst,
    OldestFirst,
}

/// Runs `statement` (`$1` the endpoint, `$2` where the range starts, excluded, `$3` its rows at
/// most, `$4` where the index ends) until a statement removes less than a whole range.
async fn remove_in_ranges(
    conn: &mut Conn,
    id: Uuid,
    statement: &'static str,
    direction: Direction,
) -> DbResult<()> {
    #[derive(QueryableByName)]
    struct Removed {
        #[diesel(sql_type = SqlUuid)]
        key: Uuid,
    }
    let (mut from, end) = match direction {
        Direction::NewestFirst => (Uuid::max(), Uuid::nil()),
        Direction::OldestFirst => (Uuid::nil(), Uuid::max()),
    };
    loop {
        let removed: Vec<Removed> = diesel::sql_query(statement)
            .bind::<SqlUuid, _>(id)
            .bind::<SqlUuid, _>(from)
            .bind::<BigInt, _>(ROWS_PER_STATEMENT)
            .bind::<SqlUuid, _>(end)
            .load(conn)
            .await?;
        let keys = removed.iter().map(|row| row.key);
        let last = match direction {
            Direction::NewestFirst => keys.min(),
            Direction::OldestFirst => keys.max(),
        };
        match last {
            Some(last) if removed.len() as i64 >= ROWS_PER_STATEMENT => from = last,
            _ => return Ok(()),
        }
    }
}

/// The endpoint's attempts, newest first, through `attempts_by_endpoint`.
const REMOVE_ATTEMPTS: &str = "\
DELETE FROM attempts WHERE endpoint_id = $1 AND id < $2 AND id >= coalesce(( \
  SELECT id FROM attempts WHERE endpoint_id = $1 AND id < $2 \
  ORDER BY endpoint_id, id DESC OFFSET $3 - 1 LIMIT 1), $4) \
RETURNING id AS key";

/// The endpoint's destinations, by message, through `message_destinations_by_endpoint`.
const REMOVE_DESTINATIONS: &str = "\
DELETE FROM message_destinations \
WHERE endpoint_id = $1 AND message_id > $2 AND message_id <= coalesce(( \
  SELECT message_id FROM message_destinations WHERE endpoint_id = $1 AND message_id > $2 \
  ORDER BY endpoint_id, message_id OFFSET $3 - 1 LIMIT 1), $4) \
RETURNING message_id AS key";
