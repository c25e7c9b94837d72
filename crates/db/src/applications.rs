//! Applications, always scoped to one environment.

use chrono::Utc;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use scoped_futures::ScopedFutureExt;
use uuid::Uuid;

use crate::models::Application;
use crate::schema::applications;
use crate::scope::{AppScope, Scoped};
use crate::{Conn, DbResult, IdOrUid};

/// Finds an application of the environment by id or uid; `NotFound` otherwise. With
/// [`crate::operational::application`], the only way to an [`AppScope`]: the operational
/// application is never found here.
pub async fn find(
    conn: &mut Conn,
    environment_id: Uuid,
    app: &IdOrUid,
) -> DbResult<Scoped<Application>> {
    let query = applications::table
        .filter(applications::environment_id.eq(environment_id))
        .filter(applications::operational.eq(false))
        .select(Application::as_select())
        .into_boxed();
    let query = match app {
        IdOrUid::Id { id, text } => query
            .filter(applications::id.eq(*id).or(applications::uid.eq(text)))
            .order(applications::id.eq(*id).desc()),
        IdOrUid::Uid(uid) => query.filter(applications::uid.eq(uid)),
    };
    Ok(Scoped::new(query.first(conn).await?))
}

/// The application of a scope (found earlier, or through a cache of such lookups).
pub async fn get(conn: &mut Conn, app: AppScope) -> DbResult<Application> {
    Ok(applications::table
        .find(app.id())
        .select(Application::as_select())
        .first(conn)
        .await?)
}

/// Applications of the environment, oldest first, after the cursor.
pub async fn list(
    conn: &mut Conn,
    environment_id: Uuid,
    search: Option<&str>,
    after: Option<Uuid>,
    limit: i64,
) -> DbResult<Vec<Application>> {
    let mut query = applications::table
        .filter(applications::environment_id.eq(environment_id))
        .filter(applications::operational.eq(false))
        .order(applications::id.asc())
        .select(Application::as_select())
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(applications::id.gt(after));
    }
    if let Some(search) = search {
        let pattern = format!("%{}%", escape_like(search));
        query = query.filter(
            applications::name
                .ilike(pattern.clone())
                .or(applications::uid.ilike(pattern)),
        );
    }
    Ok(query.limit(limit + 1).load(conn).await?)
}

/// Stores a new application; a uid clash is a unique violation.
pub async fn insert(conn: &mut Conn, app: &Application) -> DbResult<Application> {
    Ok(diesel::insert_into(applications::table)
        .values(app)
        .returning(Application::as_returning())
        .get_result(conn)
        .await?)
}

/// Replaces name and uid.
pub async fn update(
    conn: &mut Conn,
    app: AppScope,
    name: &str,
    uid: Option<&str>,
) -> DbResult<Application> {
    Ok(diesel::update(applications::table.find(app.id()))
        .set((
            applications::name.eq(name),
            applications::uid.eq(uid),
            applications::updated.eq(Utc::now()),
        ))
        .returning(Application::as_returning())
        .get_result(conn)
        .await?)
}

/// Destinations (one per message and endpoint) a statement removes while an application's
/// messages go, as messages between 100 and 10,000: a few tenths of a second of work, far
/// inside the statement timeout whatever the application's history.
const DESTINATIONS_PER_STATEMENT: i64 = 50_000;

/// Deletes the application and everything under it; each of its endpoints raises
/// `endpoint.deleted`. Its messages go first, oldest first, in statements of a bounded size
/// (their destinations and attempts with them, by the messages' trigger, and their fan-out
/// rows): removed in one statement with the application, two million messages took 7.5 s, and
/// near 2.7 million it met the statement timeout, so that such an application could not be
/// deleted at all. Then the application goes in one transaction, with the messages sent
/// meanwhile. A deletion cut short leaves the application with the rest of its messages;
/// deleting it again goes on.
pub async fn delete(conn: &mut Conn, app: AppScope) -> DbResult<Application> {
    let id = app.id();
    remove_messages(conn, id).await?;
    conn.transaction(|conn| {
        async move {
            // Locked first: an endpoint created meanwhile (its insert takes a key-share lock
            // on this row) either committed before and is told of below, or waits and fails.
            applications::table
                .find(id)
                .select(applications::id)
                .for_update()
                .first::<Uuid>(conn)
                .await?;
            crate::operational::application_deleting(conn, id).await?;
            crate::outbox::forget_applications(conn, &[id]).await?;
            Ok(diesel::delete(applications::table.find(id))
                .returning(Application::as_returning())
                .get_result(conn)
                .await?)
        }
        .scope_boxed()
    })
    .await
}

/// Removes the messages of application `id` in statements of a bounded number of
/// destinations each, going on after the last message removed, so that no statement walks
/// again over the index entries of those removed before (until vacuum clears them). The
/// messages are named as an array, found by their key: as `IN (subquery)` Postgres joined the
/// batch with a sequential scan of every message, each statement reading the whole table
/// (2 million messages took 42 s instead of 7.5 s in one statement).
pub(crate) async fn remove_messages(conn: &mut Conn, id: Uuid) -> DbResult<()> {
    use crate::schema::endpoints;
    #[derive(QueryableByName)]
    struct Removed {
        #[diesel(sql_type = diesel::sql_types::Uuid)]
        id: Uuid,
    }
    let endpoint_count: i64 = endpoints::table
        .filter(endpoints::application_id.eq(id))
        .count()
        .get_result(conn)
        .await?;
    let per_statement = (DESTINATIONS_PER_STATEMENT / endpoint_count.max(1)).clamp(100, 10_000);
    let mut after = Uuid::nil();
    loop {
        let removed: Vec<Removed> = diesel::sql_query(
            "WITH removed AS ( \
               DELETE FROM messages WHERE id = ANY (ARRAY( \
                 SELECT id FROM messages WHERE application_id = $1 AND id > $2 \
                 ORDER BY id LIMIT $3)) \
               RETURNING id), \
             fanouts AS ( \
               DELETE FROM outbox_fanouts f USING removed WHERE f.message_id = removed.id) \
             SELECT id FROM removed",
        )
        .bind::<diesel::sql_types::Uuid, _>(id)
        .bind::<diesel::sql_types::Uuid, _>(after)
        .bind::<diesel::sql_types::BigInt, _>(per_statement)
        .load(conn)
        .await?;
        match removed.iter().map(|row| row.id).max() {
            Some(last) if removed.len() as i64 >= per_statement => after = last,
            _ => return Ok(()),
        }
    }
}

/// `text` with the LIKE wildcards (and the escape character) taken literally.
fn escape_like(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// Before when portal tokens of the application were revoked, if ever.
pub async fn portal_revoked_before(
    conn: &mut Conn,
    application_id: Uuid,
) -> DbResult<Option<chrono::DateTime<chrono::Utc>>> {
    Ok(applications::table
        .find(application_id)
        .select(applications::portal_revoked_before)
        .first(conn)
        .await?)
}

/// Revokes every portal token of the application issued until now.
pub async fn revoke_portal_tokens(conn: &mut Conn, app: AppScope) -> DbResult<()> {
    diesel::update(applications::table.find(app.id()))
        .set(applications::portal_revoked_before.eq(diesel::dsl::now))
        .execute(conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn like_wildcards_are_escaped() {
        assert_eq!(super::escape_like(r"50%_a\b"), r"50\%\_a\\b");
    }
}
