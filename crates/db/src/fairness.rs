//! Shared limits per endpoint across dispatcher replicas: the delivery slots each dispatcher
//! holds (a concurrency cap), the token buckets of rate-limited endpoints, and jobs put back in
//! the outbox to wait for their turn. The rules live in `proto-docs/fairness.md`; the SQL
//! functions in the migration `endpoint_fairness`.

use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, Double, Integer, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;
use octohooks_domain::job::TriggerType;
use uuid::Uuid;

use crate::prepared::prepared;
use crate::{Conn, DbResult};

/// What [`grant_slots`] answered for one endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// The slots `holder` now holds.
    pub slots: u32,
    /// The slowest pace the other holders of slots reported, in milliseconds: whether a
    /// dispatcher refused slots may wait for its share or should put its jobs back.
    pub others_pace_ms: Option<u32>,
}

/// One endpoint's ask in [`grant_slots`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotAsk {
    /// The endpoint whose slots are asked for.
    pub endpoint: Uuid,
    /// Slots the holder would like to hold.
    pub wanted: u32,
    /// Slots the holder keeps whatever the others hold (those in use).
    pub keep: u32,
    /// The holder's attempt time to the endpoint in milliseconds, if it knows one.
    pub pace_ms: Option<u32>,
}

/// Sets `holder`'s grant of each asked endpoint to as many of `wanted` slots as `cap` leaves
/// beside the other holders' live grants, never fewer than `keep`, and stores the holder's pace;
/// one statement for every endpoint (the first message to many new endpoints asks for all of
/// them at once). A grant lapses after `ttl_ms` unless renewed. Answers in the order asked.
///
/// Each endpoint's change holds an advisory lock until the commit, so the asks are made in the
/// order of their endpoint ids: two holders asking for the same endpoints never wait for each
/// other in a circle.
pub async fn grant_slots(
    conn: &mut Conn,
    holder: Uuid,
    cap: u32,
    ttl_ms: u32,
    asks: &[SlotAsk],
) -> DbResult<Vec<Grant>> {
    #[derive(QueryableByName)]
    struct Granted {
        #[diesel(sql_type = Integer)]
        at: i32,
        #[diesel(sql_type = Integer)]
        granted: i32,
        #[diesel(sql_type = Nullable<Integer>)]
        others_pace_ms: Option<i32>,
    }
    let as_int = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
    let mut order: Vec<usize> = (0..asks.len()).collect();
    order.sort_by_key(|&at| asks[at].endpoint);
    let endpoints: Vec<Uuid> = order.iter().map(|&at| asks[at].endpoint).collect();
    let wanted: Vec<i32> = order.iter().map(|&at| as_int(asks[at].wanted)).collect();
    let keep: Vec<i32> = order.iter().map(|&at| as_int(asks[at].keep)).collect();
    let paces: Vec<i32> = order
        .iter()
        .map(|&at| asks[at].pace_ms.map_or(-1, as_int))
        .collect();
    let positions: Vec<i32> = order
        .iter()
        .map(|&at| i32::try_from(at).unwrap_or(i32::MAX))
        .collect();
    // The lateral calls run in the arrays' order, which is the endpoints' order.
    let rows: Vec<Granted> = prepared(
        diesel::sql_query(
            "SELECT a.at, g.granted, g.others_pace_ms \
             FROM unnest($1::int[], $2::uuid[], $3::int[], $4::int[], $5::int[]) \
               AS a(at, endpoint_id, wanted, keep, pace_ms) \
             CROSS JOIN LATERAL octohooks_grant_slots(a.endpoint_id, $6, a.wanted, a.keep, \
               $7, $8, nullif(a.pace_ms, -1)) g",
        )
        .bind::<Array<Integer>, _>(&positions)
        .bind::<Array<SqlUuid>, _>(&endpoints)
        .bind::<Array<Integer>, _>(&wanted)
        .bind::<Array<Integer>, _>(&keep)
        .bind::<Array<Integer>, _>(&paces)
        .bind::<SqlUuid, _>(holder)
        .bind::<Integer, _>(as_int(cap))
        .bind::<Integer, _>(as_int(ttl_ms)),
    )
    .load(conn)
    .await?;
    let mut grants = vec![
        Grant {
            slots: 0,
            others_pace_ms: None,
        };
        asks.len()
    ];
    for row in rows {
        if let Some(grant) = usize::try_from(row.at)
            .ok()
            .and_then(|at| grants.get_mut(at))
        {
            *grant = Grant {
                slots: u32::try_from(row.granted).unwrap_or(0),
                others_pace_ms: row.others_pace_ms.and_then(|ms| u32::try_from(ms).ok()),
            };
        }
    }
    Ok(grants)
}

/// Renews `holder`'s grants in one statement: each endpoint's grant becomes its new size (never
/// above what it was) with the holder's pace to it (`pace_ms`, -1 when unknown), a size of 0
/// gives the grant back. Returns the endpoints whose grant was
/// still there to renew, each with its number of live holders (this one included: a holder that
/// was refused slots keeps an empty grant, which counts); the others had lapsed. Grants of any holder that lapsed long ago are
/// swept on the way, and so are buckets untouched for long (full again, so a new one is the
/// same; this also clears those of deleted endpoints).
pub async fn renew_grants(
    conn: &mut Conn,
    holder: Uuid,
    endpoints: &[Uuid],
    slots: &[i32],
    pace_ms: &[i32],
    ttl_ms: u32,
) -> DbResult<Vec<(Uuid, i64)>> {
    #[derive(QueryableByName)]
    struct Renewed {
        #[diesel(sql_type = SqlUuid)]
        endpoint_id: Uuid,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        holders: i64,
    }
    let rows: Vec<Renewed> = prepared(
        diesel::sql_query(
            "WITH v AS (SELECT * FROM unnest($2::uuid[], $3::int[], $5::int[]) \
               AS v(endpoint_id, slots, pace_ms)), \
             gone AS (DELETE FROM endpoint_slot_grants g USING v \
               WHERE g.holder = $1 AND g.endpoint_id = v.endpoint_id AND v.slots = 0), \
             swept AS (DELETE FROM endpoint_slot_grants \
               WHERE expires < now() - interval '10 minutes'), \
             full_buckets AS (DELETE FROM endpoint_rate_buckets \
               WHERE updated < now() - interval '10 minutes'), \
             kept AS (UPDATE endpoint_slot_grants g \
               SET slots = least(g.slots, v.slots), \
                 pace_ms = nullif(v.pace_ms, -1), \
                 expires = now() + $4 * interval '1 millisecond' \
               FROM v WHERE g.holder = $1 AND g.endpoint_id = v.endpoint_id AND v.slots > 0 \
                 AND g.expires >= now() \
               RETURNING g.endpoint_id) \
             SELECT k.endpoint_id, (SELECT count(*) FROM endpoint_slot_grants o \
               WHERE o.endpoint_id = k.endpoint_id AND o.expires >= now()) AS holders \
             FROM kept k",
        )
        .bind::<SqlUuid, _>(holder)
        .bind::<Array<SqlUuid>, _>(endpoints)
        .bind::<Array<Integer>, _>(slots)
        .bind::<Integer, _>(i32::try_from(ttl_ms).unwrap_or(i32::MAX))
        .bind::<Array<Integer>, _>(pace_ms),
    )
    .load(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| (row.endpoint_id, row.holders))
        .collect())
}

/// Gives back every grant of `holder` (a dispatcher that drained).
pub async fn release_grants(conn: &mut Conn, holder: Uuid) -> DbResult<usize> {
    Ok(prepared(
        diesel::sql_query("DELETE FROM endpoint_slot_grants WHERE holder = $1")
            .bind::<SqlUuid, _>(holder),
    )
    .execute(conn)
    .await?)
}

/// Takes one token from `endpoint`'s bucket at `rate` per second: `None` when taken, otherwise
/// how long until the next one.
pub async fn take_token(
    conn: &mut Conn,
    endpoint: Uuid,
    rate: i32,
) -> DbResult<Option<std::time::Duration>> {
    #[derive(QueryableByName)]
    struct Wait {
        #[diesel(sql_type = Double)]
        wait: f64,
    }
    let row: Wait = prepared(
        diesel::sql_query("SELECT octohooks_take_token($1, $2) AS wait")
            .bind::<SqlUuid, _>(endpoint)
            .bind::<Integer, _>(rate),
    )
    .get_result(conn)
    .await?;
    Ok((row.wait > 0.0).then(|| std::time::Duration::from_secs_f64(row.wait.min(3600.0))))
}

/// A job that waits for its endpoint's turn: the same attempt, queued again for later.
#[derive(Debug, Clone)]
pub struct Deferral {
    /// The message.
    pub message_id: Uuid,
    /// The endpoint.
    pub endpoint_id: Uuid,
    /// The job's attempt number, unchanged: waiting is not an attempt.
    pub attempt: i32,
    /// The job's trigger.
    pub trigger: TriggerType,
    /// When it may run again.
    pub due: DateTime<Utc>,
    /// Trace context carried on.
    pub traceparent: Option<String>,
    /// Times it was put back, this time included.
    pub deferrals: i32,
}

/// Puts many waiting jobs back in the outbox in one statement; the relay publishes each when
/// due, as it does retries.
pub async fn defer(conn: &mut Conn, jobs: &[&Deferral]) -> DbResult<()> {
    if jobs.is_empty() {
        return Ok(());
    }
    let messages: Vec<Uuid> = jobs.iter().map(|j| j.message_id).collect();
    let endpoints: Vec<Uuid> = jobs.iter().map(|j| j.endpoint_id).collect();
    let attempts: Vec<i32> = jobs.iter().map(|j| j.attempt).collect();
    let triggers: Vec<&str> = jobs.iter().map(|j| j.trigger.as_str()).collect();
    let due: Vec<DateTime<Utc>> = jobs.iter().map(|j| j.due).collect();
    let traces: Vec<Option<&str>> = jobs.iter().map(|j| j.traceparent.as_deref()).collect();
    let deferrals: Vec<i32> = jobs.iter().map(|j| j.deferrals).collect();
    prepared(
        diesel::sql_query(
            "INSERT INTO outbox (message_id, endpoint_id, attempt, trigger_type, due, traceparent, \
               deferrals) \
             SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::int[], $4::text[], \
               $5::timestamptz[], $6::text[], $7::int[])",
        )
        .bind::<Array<SqlUuid>, _>(&messages)
        .bind::<Array<SqlUuid>, _>(&endpoints)
        .bind::<Array<Integer>, _>(&attempts)
        .bind::<Array<Text>, _>(&triggers)
        .bind::<Array<Timestamptz>, _>(&due)
        .bind::<Array<Nullable<Text>>, _>(&traces)
        .bind::<Array<Integer>, _>(&deferrals),
    )
    .execute(conn)
    .await?;
    Ok(())
}
