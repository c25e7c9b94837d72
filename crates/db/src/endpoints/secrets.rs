//! An endpoint's signing secrets: the ones that sign now, rotation with a bounded grace list,
//! and the rewrite of every stored secret when the encryption key changes.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use scoped_futures::ScopedFutureExt;
use uuid::Uuid;

use crate::models::{Endpoint, EndpointSecretRow};
use crate::schema::{endpoint_secrets, endpoints};
use crate::scope::Scoped;
use crate::{Conn, DbResult};

/// Stored secrets that do not begin with `sealed_prefix`: written in plaintext, before an
/// encryption key was configured.
pub async fn count_unsealed_secrets(conn: &mut Conn, sealed_prefix: &str) -> DbResult<i64> {
    Ok(endpoint_secrets::table
        .filter(endpoint_secrets::secret.not_like(format!("{sealed_prefix}%")))
        .count()
        .get_result(conn)
        .await?)
}

/// Rewrites every stored secret for which `rewrite(endpoint id, stored)` returns a new value
/// (used to re-encrypt under a new key, bound to the endpoint); returns how many changed. Works
/// in pages so that memory stays flat.
pub async fn rewrite_secrets<F>(conn: &mut Conn, mut rewrite: F) -> DbResult<usize>
where
    F: FnMut(Uuid, &str) -> Option<String>,
{
    let mut changed = 0;
    let mut after = Uuid::nil();
    loop {
        let page: Vec<(Uuid, Uuid, String)> = endpoint_secrets::table
            .filter(endpoint_secrets::id.gt(after))
            .order(endpoint_secrets::id.asc())
            .select((
                endpoint_secrets::id,
                endpoint_secrets::endpoint_id,
                endpoint_secrets::secret,
            ))
            .limit(500)
            .load(conn)
            .await?;
        let Some((last, _, _)) = page.last() else {
            return Ok(changed);
        };
        after = *last;
        for (id, endpoint_id, stored) in page {
            if let Some(new) = rewrite(endpoint_id, &stored) {
                diesel::update(endpoint_secrets::table.find(id))
                    .set(endpoint_secrets::secret.eq(new))
                    .execute(conn)
                    .await?;
                changed += 1;
            }
        }
    }
}

/// The secrets that sign right now: the current one first, then rotated ones not yet expired.
pub async fn active_secrets(conn: &mut Conn, endpoint: &Scoped<Endpoint>) -> DbResult<Vec<String>> {
    Ok(endpoint_secrets::table
        .filter(endpoint_secrets::endpoint_id.eq(endpoint.id))
        .filter(
            endpoint_secrets::expires
                .is_null()
                .or(endpoint_secrets::expires.gt(Utc::now())),
        )
        .order((
            endpoint_secrets::expires.is_not_null(),
            endpoint_secrets::created.desc(),
        ))
        .select(endpoint_secrets::secret)
        .load(conn)
        .await?)
}

/// True when the endpoint holds the secret with this id: a rotation whose answer was lost is not
/// made twice.
pub async fn has_secret(
    conn: &mut Conn,
    endpoint: &Scoped<Endpoint>,
    secret_id: Uuid,
) -> DbResult<bool> {
    Ok(diesel::select(diesel::dsl::exists(
        endpoint_secrets::table
            .filter(endpoint_secrets::endpoint_id.eq(endpoint.id))
            .filter(endpoint_secrets::id.eq(secret_id)),
    ))
    .get_result(conn)
    .await?)
}

/// Former secrets that may still sign beside the current one: every one is a signature on
/// every delivery, so rotating in a loop must not grow the header (and the signing work) without
/// bound. A rotation beyond this retires the oldest at once.
pub const MAX_SECRETS_IN_GRACE: i64 = 4;

/// Makes `secret` current; the previous current secret keeps signing until `old_expires`.
/// Secrets that have already expired are removed, and so are the oldest former ones beyond
/// [`MAX_SECRETS_IN_GRACE`]. Rotations of one endpoint run one after the other (the endpoint's
/// row is locked, `NO KEY UPDATE`, which deliveries' key-share locks do not wait for), so that
/// there is only ever one current secret.
pub async fn rotate_secret(
    conn: &mut Conn,
    endpoint: &Scoped<Endpoint>,
    secret_id: Uuid,
    secret: String,
    old_expires: DateTime<Utc>,
) -> DbResult<()> {
    let endpoint_id = endpoint.id;
    conn.transaction(|conn| {
        async move {
            endpoints::table
                .find(endpoint_id)
                .select(endpoints::id)
                .for_no_key_update()
                .first::<Uuid>(conn)
                .await?;
            let now = Utc::now();
            diesel::delete(
                endpoint_secrets::table
                    .filter(endpoint_secrets::endpoint_id.eq(endpoint_id))
                    .filter(endpoint_secrets::expires.le(now)),
            )
            .execute(conn)
            .await?;
            diesel::update(
                endpoint_secrets::table
                    .filter(endpoint_secrets::endpoint_id.eq(endpoint_id))
                    .filter(endpoint_secrets::expires.is_null()),
            )
            .set(endpoint_secrets::expires.eq(old_expires))
            .execute(conn)
            .await?;
            let kept: Vec<Uuid> = endpoint_secrets::table
                .filter(endpoint_secrets::endpoint_id.eq(endpoint_id))
                .filter(endpoint_secrets::expires.is_not_null())
                .order((
                    endpoint_secrets::created.desc(),
                    endpoint_secrets::id.desc(),
                ))
                .limit(MAX_SECRETS_IN_GRACE)
                .select(endpoint_secrets::id)
                .load(conn)
                .await?;
            diesel::delete(
                endpoint_secrets::table
                    .filter(endpoint_secrets::endpoint_id.eq(endpoint_id))
                    .filter(endpoint_secrets::expires.is_not_null())
                    .filter(endpoint_secrets::id.ne_all(kept)),
            )
            .execute(conn)
            .await?;
            diesel::insert_into(endpoint_secrets::table)
                .values(&EndpointSecretRow {
                    id: secret_id,
                    endpoint_id,
                    secret,
                    created: now,
                    expires: None,
                })
                .execute(conn)
                .await?;
            Ok(())
        }
        .scope_boxed()
    })
    .await
}
