//! Environments and their API keys (admin side), and the API key lookup every request makes.

use chrono::Utc;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use scoped_futures::ScopedFutureExt;
use uuid::Uuid;

use crate::models::{ApiKeyInfo, Environment};
use crate::schema::{api_keys, applications, environments, idempotency_keys};
use crate::{Conn, DbResult};

/// What is stored of a new API key: its hash and a short prefix to recognise it by.
pub struct NewKey {
    /// SHA-256 of the key.
    pub hash: Vec<u8>,
    /// Its first characters.
    pub prefix: String,
}

/// Creates an environment together with its first API key (stored as `key_hash`).
pub async fn create(
    conn: &mut Conn,
    id: Uuid,
    name: &str,
    key_id: Uuid,
    key: &NewKey,
) -> DbResult<Environment> {
    let environment = Environment {
        id,
        name: name.to_owned(),
        created: Utc::now(),
    };
    conn.transaction(|conn| {
        async move {
            diesel::insert_into(environments::table)
                .values(&environment)
                .execute(conn)
                .await?;
            diesel::insert_into(api_keys::table)
                .values((
                    api_keys::id.eq(key_id),
                    api_keys::environment_id.eq(environment.id),
                    api_keys::key_hash.eq(&key.hash),
                    api_keys::prefix.eq(&key.prefix),
                ))
                .execute(conn)
                .await?;
            Ok(environment)
        }
        .scope_boxed()
    })
    .await
}

/// One environment; `NotFound` when absent.
pub async fn find(conn: &mut Conn, id: Uuid) -> DbResult<Environment> {
    Ok(environments::table
        .find(id)
        .select(Environment::as_select())
        .first(conn)
        .await?)
}

/// Every environment, oldest first, paged by id.
pub async fn list(conn: &mut Conn, after: Option<Uuid>, limit: i64) -> DbResult<Vec<Environment>> {
    let mut query = environments::table
        .into_boxed()
        .order(environments::id.asc());
    if let Some(after) = after {
        query = query.filter(environments::id.gt(after));
    }
    Ok(query
        .limit(limit + 1)
        .select(Environment::as_select())
        .load(conn)
        .await?)
}

/// Deletes an environment and everything in it; `NotFound` when absent. The messages of its
/// applications go first, in statements of a bounded size, as when an application is deleted
/// ([`crate::applications::delete`]).
pub async fn delete(conn: &mut Conn, id: Uuid) -> DbResult<Environment> {
    let applications_of_it: Vec<Uuid> = applications::table
        .filter(applications::environment_id.eq(id))
        .select(applications::id)
        .load(conn)
        .await?;
    for application in applications_of_it {
        crate::applications::remove_messages(conn, application).await?;
    }
    conn.transaction(|conn| {
        async move {
            // Idempotency keys name their environment without a foreign key (admin requests
            // have none), so they are deleted here.
            diesel::delete(idempotency_keys::table.filter(idempotency_keys::environment_id.eq(id)))
                .execute(conn)
                .await?;
            let applications_of_it: Vec<Uuid> = applications::table
                .filter(applications::environment_id.eq(id))
                .select(applications::id)
                .load(conn)
                .await?;
            crate::outbox::forget_applications(conn, &applications_of_it).await?;
            Ok(diesel::delete(environments::table.find(id))
                .returning(Environment::as_returning())
                .get_result(conn)
                .await?)
        }
        .scope_boxed()
    })
    .await
}

/// Adds an API key to an existing environment; `NotFound` when the environment is absent.
pub async fn add_key(
    conn: &mut Conn,
    environment_id: Uuid,
    key_id: Uuid,
    key: &NewKey,
) -> DbResult<chrono::DateTime<Utc>> {
    environments::table
        .find(environment_id)
        .select(environments::id)
        .first::<Uuid>(conn)
        .await?;
    Ok(diesel::insert_into(api_keys::table)
        .values((
            api_keys::id.eq(key_id),
            api_keys::environment_id.eq(environment_id),
            api_keys::key_hash.eq(&key.hash),
            api_keys::prefix.eq(&key.prefix),
        ))
        .returning(api_keys::created)
        .get_result(conn)
        .await?)
}

/// Revokes a key at once; `NotFound` when it does not belong to the environment.
pub async fn revoke_key(conn: &mut Conn, environment_id: Uuid, key_id: Uuid) -> DbResult<()> {
    let deleted = diesel::delete(
        api_keys::table
            .filter(api_keys::id.eq(key_id))
            .filter(api_keys::environment_id.eq(environment_id)),
    )
    .execute(conn)
    .await?;
    if deleted == 0 {
        return Err(diesel::result::Error::NotFound.into());
    }
    Ok(())
}

/// The environment an API key (by hash) belongs to, if the key exists.
pub async fn environment_for_key(conn: &mut Conn, key_hash: &[u8]) -> DbResult<Option<Uuid>> {
    Ok(api_keys::table
        .filter(api_keys::key_hash.eq(key_hash))
        .select(api_keys::environment_id)
        .first(conn)
        .await
        .optional()?)
}

/// The environment's API keys, oldest first, paged by id; `NotFound` when it does not exist.
pub async fn list_keys(
    conn: &mut Conn,
    environment_id: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> DbResult<Vec<ApiKeyInfo>> {
    environments::table
        .find(environment_id)
        .select(environments::id)
        .first::<Uuid>(conn)
        .await?;
    let mut query = api_keys::table
        .filter(api_keys::environment_id.eq(environment_id))
        .order(api_keys::id.asc())
        .select(ApiKeyInfo::as_select())
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(api_keys::id.gt(after));
    }
    Ok(query.limit(limit + 1).load(conn).await?)
}

/// Records that the keys with these hashes were used at `at` (never moving a time back).
pub async fn record_key_use(
    conn: &mut Conn,
    key_hashes: &[Vec<u8>],
    at: chrono::DateTime<Utc>,
) -> DbResult<usize> {
    Ok(diesel::update(
        api_keys::table
            .filter(api_keys::key_hash.eq_any(key_hashes))
            .filter(api_keys::last_used.is_null().or(api_keys::last_used.lt(at))),
    )
    .set(api_keys::last_used.eq(at))
    .execute(conn)
    .await?)
}
