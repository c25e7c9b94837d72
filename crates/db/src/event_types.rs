//! Event types of an environment.

use chrono::Utc;
use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::{AsyncConnection, RunQueryDsl};
use scoped_futures::ScopedFutureExt;
use uuid::Uuid;

use octohooks_domain::schema::SchemaValidation;

use crate::models::EventType;
use crate::schema::event_types;
use crate::{Conn, DbResult};

/// One event type by name; `NotFound` otherwise.
pub async fn find(conn: &mut Conn, environment_id: Uuid, name: &str) -> DbResult<EventType> {
    Ok(event_types::table
        .find((environment_id, name))
        .select(EventType::as_select())
        .first(conn)
        .await?)
}

/// Event types in name order after the cursor name.
pub async fn list(
    conn: &mut Conn,
    environment_id: Uuid,
    after: Option<&str>,
    limit: i64,
) -> DbResult<Vec<EventType>> {
    let mut query = event_types::table
        .filter(event_types::environment_id.eq(environment_id))
        .order(event_types::name.asc())
        .select(EventType::as_select())
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(event_types::name.gt(after));
    }
    Ok(query.limit(limit + 1).load(conn).await?)
}

/// Stores a new event type; an existing name is a unique violation.
pub async fn insert(conn: &mut Conn, event_type: &EventType) -> DbResult<EventType> {
    Ok(diesel::insert_into(event_types::table)
        .values(event_type.clone())
        .returning(EventType::as_returning())
        .get_result(conn)
        .await?)
}

/// Replaces every field a client may change (all but the keys and `created`) with those of
/// `changed`, stamping `updated`.
pub async fn update(conn: &mut Conn, changed: &EventType) -> DbResult<EventType> {
    Ok(
        diesel::update(event_types::table.find((changed.environment_id, &changed.name)))
            .set((
                event_types::description.eq(&changed.description),
                event_types::archived.eq(changed.archived),
                event_types::deprecated.eq(changed.deprecated),
                event_types::group_name.eq(&changed.group_name),
                event_types::schemas.eq(&changed.schemas),
                event_types::schema_validation.eq(changed.schema_validation.as_str()),
                event_types::updated.eq(Utc::now()),
            ))
            .returning(EventType::as_returning())
            .get_result(conn)
            .await?,
    )
}

/// The stored schemas of the event type when it enforces them; `None` when the type does not
/// exist or does not enforce (which is what the message hot path asks, and caches).
pub async fn enforced_schemas(
    conn: &mut Conn,
    environment_id: Uuid,
    name: &str,
) -> DbResult<Option<serde_json::Value>> {
    Ok(event_types::table
        .find((environment_id, name))
        .filter(event_types::schema_validation.eq(SchemaValidation::Enforce.as_str()))
        .select(event_types::schemas)
        .first::<Option<serde_json::Value>>(conn)
        .await
        .optional()?
        .flatten())
}

/// Creates each event type, or updates the one of that name (description; schemas unless the
/// row brings none; archived cleared), all in one transaction; returns them as stored, in name
/// order.
pub async fn import(conn: &mut Conn, rows: Vec<EventType>) -> DbResult<Vec<EventType>> {
    conn.transaction(|conn| {
        async move {
            let mut stored = Vec::with_capacity(rows.len());
            for row in rows {
                stored.push(
                    diesel::insert_into(event_types::table)
                        .values(row)
                        .on_conflict((event_types::environment_id, event_types::name))
                        .do_update()
                        .set((
                            event_types::description.eq(excluded(event_types::description)),
                            event_types::schemas.eq(diesel::dsl::sql::<
                                diesel::sql_types::Nullable<diesel::sql_types::Jsonb>,
                            >(
                                "coalesce(excluded.schemas, event_types.schemas)",
                            )),
                            event_types::archived.eq(false),
                            event_types::updated.eq(excluded(event_types::updated)),
                        ))
                        .returning(EventType::as_returning())
                        .get_result(conn)
                        .await?,
                );
            }
            stored.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(stored)
        }
        .scope_boxed()
    })
    .await
}

/// Deletes an event type. Messages keep their event type text.
pub async fn delete(conn: &mut Conn, environment_id: Uuid, name: &str) -> DbResult<EventType> {
    Ok(
        diesel::delete(event_types::table.find((environment_id, name)))
            .returning(EventType::as_returning())
            .get_result(conn)
            .await?,
    )
}
