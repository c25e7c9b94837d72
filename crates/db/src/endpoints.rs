//! Endpoints and their signing secrets, always reached through their application.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use scoped_futures::ScopedFutureExt;
use uuid::Uuid;

use crate::models::{Endpoint, EndpointSecretRow};
use crate::schema::{endpoint_secrets, endpoints};
use crate::{Conn, DbResult, IdOrUid};

/// Finds an endpoint of the application by id or uid; `NotFound` otherwise.
pub async fn find(conn: &mut Conn, application_id: Uuid, endpoint: &IdOrUid) -> DbResult<Endpoint> {
    let query = endpoints::table
        .filter(endpoints::application_id.eq(application_id))
        .select(Endpoint::as_select())
        .into_boxed();
    let query = match endpoint {
        IdOrUid::Id { id, text } => query
            .filter(endpoints::id.eq(*id).or(endpoints::uid.eq(text)))
            .order(endpoints::id.eq(*id).desc()),
        IdOrUid::Uid(uid) => query.filter(endpoints::uid.eq(uid)),
    };
    Ok(query.first(conn).await?)
}

/// Endpoints of the application, oldest first, after the cursor.
pub async fn list(
    conn: &mut Conn,
    application_id: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> DbResult<Vec<Endpoint>> {
    let mut query = endpoints::table
        .filter(endpoints::application_id.eq(application_id))
        .order(endpoints::id.asc())
        .select(Endpoint::as_select())
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(endpoints::id.gt(after));
    }
    Ok(query.limit(limit + 1).load(conn).await?)
}

/// Stores a new endpoint with its first secret, in one transaction.
pub async fn insert(conn: &mut Conn, endpoint: &Endpoint, secret: String) -> DbResult<Endpoint> {
    conn.transaction(|conn| {
        async move {
            let stored = diesel::insert_into(endpoints::table)
                .values(endpoint)
                .returning(Endpoint::as_returning())
                .get_result(conn)
                .await?;
            diesel::insert_into(endpoint_secrets::table)
                .values(&EndpointSecretRow {
                    id: octohooks_domain::new_id(),
                    endpoint_id: stored.id,
                    secret,
                    created: stored.created,
                    expires: None,
                })
                .execute(conn)
                .await?;
            Ok(stored)
        }
        .scope_boxed()
    })
    .await
}

/// The fields a `PUT` replaces.
#[derive(Debug, Clone, AsChangeset)]
#[diesel(table_name = endpoints, treat_none_as_null = true)]
pub struct EndpointChanges {
    /// New uid.
    pub uid: Option<String>,
    /// New name.
    pub name: String,
    /// New description.
    pub description: String,
    /// New URL.
    pub url: String,
    /// Enabled or not.
    pub enabled: bool,
    /// Cleared when the endpoint is enabled again.
    pub disabled_reason: Option<String>,
    /// New channel filter.
    pub channels: Vec<String>,
    /// New event type filter.
    pub event_types: Vec<String>,
    /// New custom headers.
    pub headers: serde_json::Value,
    /// Now.
    pub updated: DateTime<Utc>,
}

/// Replaces an endpoint's fields.
pub async fn update(conn: &mut Conn, id: Uuid, changes: &EndpointChanges) -> DbResult<Endpoint> {
    Ok(diesel::update(endpoints::table.find(id))
        .set(changes)
        .returning(Endpoint::as_returning())
        .get_result(conn)
        .await?)
}

/// Deletes an endpoint, its secrets, destinations and attempts.
pub async fn delete(conn: &mut Conn, id: Uuid) -> DbResult<Endpoint> {
    Ok(diesel::delete(endpoints::table.find(id))
        .returning(Endpoint::as_returning())
        .get_result(conn)
        .await?)
}

/// The secrets that sign right now: the current one first, then rotated ones not yet expired.
pub async fn active_secrets(conn: &mut Conn, endpoint_id: Uuid) -> DbResult<Vec<String>> {
    Ok(endpoint_secrets::table
        .filter(endpoint_secrets::endpoint_id.eq(endpoint_id))
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

/// Makes `secret` current; the previous current secret keeps signing until `old_expires`.
/// Secrets that have already expired are removed.
pub async fn rotate_secret(
    conn: &mut Conn,
    endpoint_id: Uuid,
    secret: String,
    old_expires: DateTime<Utc>,
) -> DbResult<()> {
    conn.transaction(|conn| {
        async move {
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
            diesel::insert_into(endpoint_secrets::table)
                .values(&EndpointSecretRow {
                    id: octohooks_domain::new_id(),
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
