//! Messages: acceptance with fan-out into the outbox in one statement (`accept.rs`), and reads.

mod accept;

pub use accept::{
    accept_batch, accept_for_endpoint, AcceptedBatch, ACCEPT_CLAIM, ACCEPT_CLAIM_SECS,
    CARRIED_PAYLOAD_MAX,
};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use crate::models::Message;
use crate::schema::{message_destinations, messages};
use crate::scope::{AppScope, Scoped};
use crate::{Conn, DbResult, IdOrUid};
use octohooks_domain::status::DestinationStatus;

/// Which of `ids` are stored (to tell, after a failed commit, what was committed after all).
pub async fn existing_ids(conn: &mut Conn, ids: &[Uuid]) -> DbResult<Vec<Uuid>> {
    Ok(messages::table
        .filter(messages::id.eq_any(ids))
        .select(messages::id)
        .load(conn)
        .await?)
}

/// Finds a message of the application by id or uid; `NotFound` otherwise.
pub async fn find(conn: &mut Conn, app: AppScope, message: &IdOrUid) -> DbResult<Scoped<Message>> {
    let query = messages::table
        .filter(messages::application_id.eq(app.id()))
        .select(Message::as_select())
        .into_boxed();
    let query = match message {
        IdOrUid::Id { id, text } => query
            .filter(messages::id.eq(*id).or(messages::uid.eq(text)))
            .order(messages::id.eq(*id).desc()),
        IdOrUid::Uid(uid) => query.filter(messages::uid.eq(uid)),
    };
    Ok(Scoped::new(query.first(conn).await?))
}

/// Removes a message's payload now (it then reads `{}`), keeping the message, its destinations
/// and its attempts; deliveries still waiting are marked failed and their jobs (and fan-out
/// row) dropped, since nothing is left to send (a job already in the queue finds its delivery
/// failed and does nothing). One transaction.
pub async fn expunge(conn: &mut Conn, message: &Scoped<Message>) -> DbResult<()> {
    use diesel_async::AsyncConnection;
    use scoped_futures::ScopedFutureExt;
    let id = message.id;
    conn.transaction(|conn| {
        async move {
            diesel::update(messages::table.find(id))
                .set((messages::payload.eq("{}"), messages::expunged.eq(true)))
                .execute(conn)
                .await?;
            diesel::update(
                message_destinations::table
                    .filter(message_destinations::message_id.eq(id))
                    .filter(message_destinations::status.eq(DestinationStatus::Pending.as_str())),
            )
            .set((
                message_destinations::status.eq(DestinationStatus::Failed.as_str()),
                message_destinations::next_attempt.eq(None::<DateTime<Utc>>),
                message_destinations::updated.eq(Utc::now()),
            ))
            .execute(conn)
            .await?;
            diesel::delete(
                crate::schema::outbox::table.filter(crate::schema::outbox::message_id.eq(id)),
            )
            .execute(conn)
            .await?;
            diesel::delete(
                crate::schema::outbox_fanouts::table
                    .filter(crate::schema::outbox_fanouts::message_id.eq(id)),
            )
            .execute(conn)
            .await?;
            Ok(())
        }
        .scope_boxed()
    })
    .await
}

/// Filters of the message list.
#[derive(Debug, Default, Clone)]
pub struct MessageFilter {
    /// Only these event types (any of them); all when empty.
    pub event_types: Vec<String>,
    /// Only messages carrying this channel.
    pub channel: Option<String>,
    /// Only messages created strictly before.
    pub before: Option<DateTime<Utc>>,
    /// Only messages created strictly after.
    pub after: Option<DateTime<Utc>>,
    /// Only messages with a destination in this delivery state (`pending`, `success`, `failed`).
    pub status: Option<String>,
    /// Leave the payloads out (read as `{}`): Postgres then never reads them from storage.
    pub without_content: bool,
}

/// Messages of the application, newest first, older than the cursor id.
pub async fn list(
    conn: &mut Conn,
    app: AppScope,
    filter: &MessageFilter,
    older_than: Option<Uuid>,
    limit: i64,
) -> DbResult<Vec<Message>> {
    // A payload left out is never detoasted: CASE does not read the column it does not return.
    let payload = diesel::dsl::sql::<Text>("CASE WHEN ")
        .bind::<diesel::sql_types::Bool, _>(filter.without_content)
        .sql(" THEN '{}' ELSE messages.payload END");
    let mut query = messages::table
        .filter(messages::application_id.eq(app.id()))
        .order(messages::id.desc())
        .select((
            messages::id,
            messages::application_id,
            messages::uid,
            messages::event_type,
            messages::channels,
            payload,
            messages::created,
            messages::expunged,
            messages::payload_expires,
        ))
        .into_boxed();
    if let Some(cursor) = older_than {
        query = query.filter(messages::id.lt(cursor));
    }
    if !filter.event_types.is_empty() {
        query = query.filter(messages::event_type.eq_any(filter.event_types.clone()));
    }
    if let Some(channel) = &filter.channel {
        query = query.filter(messages::channels.contains(vec![channel.clone()]));
    }
    if let Some(before) = filter.before {
        query = query.filter(messages::created.lt(before));
    }
    if let Some(after) = filter.after {
        query = query.filter(messages::created.gt(after));
    }
    if let Some(status) = &filter.status {
        query = query.filter(diesel::dsl::exists(
            message_destinations::table
                .filter(message_destinations::message_id.eq(messages::id))
                .filter(message_destinations::status.eq(status.clone())),
        ));
    }
    Ok(query.limit(limit + 1).load(conn).await?)
}
