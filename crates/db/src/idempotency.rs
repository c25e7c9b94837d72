//! Stored responses of POSTs made with an `Idempotency-Key`.

use chrono::Utc;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use crate::schema::idempotency_keys;
use crate::{Conn, DbResult};

/// A claim on a key: the caller owns it and must run the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    /// The owner's token: only it may complete or release the key.
    pub owner: Uuid,
    /// The id the request gives the object it creates, the same on every try of the key.
    pub object_id: Uuid,
    /// An earlier try held the key and died without an answer: the object may exist already.
    pub resumed: bool,
}

/// What a key holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyState {
    /// The caller now owns the key and must run the request.
    Acquired(Claim),
    /// Another request with this key is still running.
    InProgress {
        /// The request the key was first used for.
        first: FirstUse,
    },
    /// The first request completed; replay its response.
    Completed {
        /// The request the key was first used for.
        first: FirstUse,
        /// Stored status code.
        status_code: u16,
        /// Stored body.
        body: Vec<u8>,
    },
}

/// The request a key was first used for: its path and the SHA-256 of its body (`None` for
/// keys stored before bodies were fingerprinted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirstUse {
    /// Request path.
    pub request_path: String,
    /// SHA-256 of the request body.
    pub fingerprint: Option<Vec<u8>>,
}

/// Claims the key for a request, or reports what it already holds. A claim left behind by a
/// request that died more than `stale_secs` ago is taken over, keeping its object id.
pub async fn acquire(
    conn: &mut Conn,
    environment_id: Uuid,
    key: &str,
    request: &FirstUse,
    stale_secs: i64,
) -> DbResult<KeyState> {
    let owner = Uuid::new_v4();
    let object_id = octohooks_domain::new_id();
    let request_path = request.request_path.as_str();
    let inserted = diesel::insert_into(idempotency_keys::table)
        .values((
            idempotency_keys::environment_id.eq(environment_id),
            idempotency_keys::key.eq(key),
            idempotency_keys::request_path.eq(request_path),
            idempotency_keys::request_fingerprint.eq(request.fingerprint.as_deref()),
            idempotency_keys::owner.eq(owner),
            idempotency_keys::object_id.eq(object_id),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    if inserted == 1 {
        return Ok(KeyState::Acquired(Claim {
            owner,
            object_id,
            resumed: false,
        }));
    }
    // Ages are measured on the database's clock, the one that wrote `created`.
    let stale = diesel::dsl::sql::<diesel::sql_types::Bool>(&format!(
        "created < now() - interval '{} seconds'",
        stale_secs.max(1)
    ));
    // Only the same request may take a claim over: another one answers 409 below.
    let taken_over: Option<Option<Uuid>> =
        diesel::update(idempotency_keys::table.find((environment_id, key)))
            .filter(idempotency_keys::status_code.is_null())
            .filter(idempotency_keys::request_path.eq(request_path))
            .filter(
                idempotency_keys::request_fingerprint
                    .is_null()
                    .or(idempotency_keys::request_fingerprint
                        .is_not_distinct_from(request.fingerprint.as_deref())),
            )
            .filter(stale)
            .set((
                idempotency_keys::created.eq(diesel::dsl::now),
                idempotency_keys::request_fingerprint.eq(request.fingerprint.as_deref()),
                idempotency_keys::owner.eq(owner),
            ))
            .returning(idempotency_keys::object_id)
            .get_result(conn)
            .await
            .optional()?;
    if let Some(kept) = taken_over {
        return Ok(KeyState::Acquired(Claim {
            owner,
            // Keys claimed before object ids were kept have none.
            object_id: kept.unwrap_or(object_id),
            resumed: true,
        }));
    }
    type Row = (String, Option<Vec<u8>>, Option<i32>, Option<Vec<u8>>);
    let row: Option<Row> = idempotency_keys::table
        .find((environment_id, key))
        .select((
            idempotency_keys::request_path,
            idempotency_keys::request_fingerprint,
            idempotency_keys::status_code,
            idempotency_keys::response_body,
        ))
        .first(conn)
        .await
        .optional()?;
    Ok(match row {
        Some((request_path, fingerprint, Some(status), body)) => KeyState::Completed {
            first: FirstUse {
                request_path,
                fingerprint,
            },
            status_code: u16::try_from(status).unwrap_or(200),
            body: body.unwrap_or_default(),
        },
        Some((request_path, fingerprint, None, _)) => KeyState::InProgress {
            first: FirstUse {
                request_path,
                fingerprint,
            },
        },
        // Deleted between our insert and read (the owner failed): try again as new.
        None => KeyState::InProgress {
            first: request.clone(),
        },
    })
}

/// Stores the successful response of the request that owns the key (a request whose claim was
/// taken over stores nothing).
pub async fn complete(
    conn: &mut Conn,
    environment_id: Uuid,
    key: &str,
    owner: Uuid,
    status_code: u16,
    body: &[u8],
) -> DbResult<()> {
    diesel::update(idempotency_keys::table.find((environment_id, key)))
        .filter(idempotency_keys::owner.eq(owner))
        .set((
            idempotency_keys::status_code.eq(i32::from(status_code)),
            idempotency_keys::response_body.eq(body),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Frees the key after a failed request, so that the client's retry runs for real (only the
/// owner may).
pub async fn release(
    conn: &mut Conn,
    environment_id: Uuid,
    key: &str,
    owner: Uuid,
) -> DbResult<()> {
    diesel::delete(idempotency_keys::table.find((environment_id, key)))
        .filter(idempotency_keys::status_code.is_null())
        .filter(idempotency_keys::owner.eq(owner))
        .execute(conn)
        .await?;
    Ok(())
}

/// Forgets keys older than `max_age_secs`; returns how many went.
pub async fn expire(conn: &mut Conn, max_age_secs: i64) -> DbResult<usize> {
    let cutoff = Utc::now() - chrono::Duration::seconds(max_age_secs);
    Ok(
        diesel::delete(idempotency_keys::table.filter(idempotency_keys::created.lt(cutoff)))
            .execute(conn)
            .await?,
    )
}
