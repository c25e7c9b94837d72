//! Messages: acceptance with fan-out into the outbox in one transaction, and reads.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, RunQueryDsl};
use scoped_futures::ScopedFutureExt;
use uuid::Uuid;

use crate::models::{Message, OutboxJob};
use crate::schema::messages;
use crate::{Conn, DbResult, IdOrUid};

/// How long the accepting API process holds its claim on the jobs it publishes itself. If it
/// dies before publishing, any relay takes the jobs once the claim lapses.
pub const ACCEPT_CLAIM_SECS: i64 = 10;

/// Stores the message, one destination per matching endpoint and one outbox job per
/// destination, all in one transaction: once this returns the message cannot be lost.
///
/// Two statements whatever the number of endpoints. The jobs come back already claimed by the
/// caller, which publishes them right away.
pub async fn accept(
    conn: &mut Conn,
    message: &Message,
    traceparent: Option<&str>,
) -> DbResult<Vec<OutboxJob>> {
    conn.transaction(|conn| {
        async move {
            diesel::insert_into(messages::table)
                .values(message)
                .execute(conn)
                .await?;
            let claim_until = message.created + chrono::Duration::seconds(ACCEPT_CLAIM_SECS);
            let jobs = diesel::sql_query(
                "WITH dest AS ( \
                   INSERT INTO message_destinations (message_id, endpoint_id, status, next_attempt, updated) \
                   SELECT $1, e.id, 'pending', $4, $4 FROM endpoints e \
                   WHERE e.application_id = $2 AND e.enabled \
                     AND (cardinality(e.event_types) = 0 OR $3 = ANY(e.event_types)) \
                     AND (cardinality(e.channels) = 0 OR e.channels && $5) \
                   RETURNING endpoint_id) \
                 INSERT INTO outbox (message_id, endpoint_id, attempt, trigger_type, due, claimed_until, traceparent) \
                 SELECT $1, endpoint_id, 0, 'scheduled', $4, $6, $7 FROM dest \
                 RETURNING id, message_id, endpoint_id, attempt, trigger_type, traceparent",
            )
            .bind::<SqlUuid, _>(message.id)
            .bind::<SqlUuid, _>(message.application_id)
            .bind::<Text, _>(&message.event_type)
            .bind::<Timestamptz, _>(message.created)
            .bind::<Array<Text>, _>(&message.channels)
            .bind::<Timestamptz, _>(claim_until)
            .bind::<diesel::sql_types::Nullable<Text>, _>(traceparent)
            .load::<OutboxJob>(conn)
            .await?;
            Ok(jobs)
        }
        .scope_boxed()
    })
    .await
}

/// Finds a message of the application by id or uid; `NotFound` otherwise.
pub async fn find(conn: &mut Conn, application_id: Uuid, message: &IdOrUid) -> DbResult<Message> {
    let query = messages::table
        .filter(messages::application_id.eq(application_id))
        .select(Message::as_select())
        .into_boxed();
    let query = match message {
        IdOrUid::Id { id, text } => query
            .filter(messages::id.eq(*id).or(messages::uid.eq(text)))
            .order(messages::id.eq(*id).desc()),
        IdOrUid::Uid(uid) => query.filter(messages::uid.eq(uid)),
    };
    Ok(query.first(conn).await?)
}

/// Filters of the message list.
#[derive(Debug, Default, Clone)]
pub struct MessageFilter {
    /// Only this event type.
    pub event_type: Option<String>,
    /// Only messages carrying this channel.
    pub channel: Option<String>,
    /// Only messages created strictly before.
    pub before: Option<DateTime<Utc>>,
    /// Only messages created strictly after.
    pub after: Option<DateTime<Utc>>,
}

/// Messages of the application, newest first, older than the cursor id.
pub async fn list(
    conn: &mut Conn,
    application_id: Uuid,
    filter: &MessageFilter,
    older_than: Option<Uuid>,
    limit: i64,
) -> DbResult<Vec<Message>> {
    let mut query = messages::table
        .filter(messages::application_id.eq(application_id))
        .order(messages::id.desc())
        .select(Message::as_select())
        .into_boxed();
    if let Some(cursor) = older_than {
        query = query.filter(messages::id.lt(cursor));
    }
    if let Some(event_type) = &filter.event_type {
        query = query.filter(messages::event_type.eq(event_type.clone()));
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
    Ok(query.limit(limit + 1).load(conn).await?)
}
