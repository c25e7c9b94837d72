//! Event types of an environment.

use chrono::Utc;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

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
        .values(event_type)
        .returning(EventType::as_returning())
        .get_result(conn)
        .await?)
}

/// Replaces description and archived flag.
pub async fn update(
    conn: &mut Conn,
    environment_id: Uuid,
    name: &str,
    description: &str,
    archived: bool,
) -> DbResult<EventType> {
    Ok(
        diesel::update(event_types::table.find((environment_id, name)))
            .set((
                event_types::description.eq(description),
                event_types::archived.eq(archived),
                event_types::updated.eq(Utc::now()),
            ))
            .returning(EventType::as_returning())
            .get_result(conn)
            .await?,
    )
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
