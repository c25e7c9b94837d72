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

/// Accepts many messages in one transaction (group commit): the messages whose uid is free are
/// stored with their destinations and outbox jobs; the others are left out. Returns the ids
/// stored and their jobs (already claimed by the caller). Three statements per batch, whatever
/// the number of messages or endpoints.
pub async fn accept_batch(
    conn: &mut Conn,
    batch: &[Message],
    traceparents: &[Option<String>],
) -> DbResult<(Vec<Uuid>, Vec<OutboxJob>)> {
    conn.transaction(|conn| {
        async move {
            let stored: Vec<Uuid> = diesel::insert_into(messages::table)
                .values(batch)
                .on_conflict_do_nothing()
                .returning(messages::id)
                .get_results(conn)
                .await?;
            let mut ids = Vec::with_capacity(stored.len());
            let mut apps = Vec::with_capacity(stored.len());
            let mut event_types = Vec::with_capacity(stored.len());
            let mut channels = Vec::with_capacity(stored.len());
            let mut traces = Vec::with_capacity(stored.len());
            for (message, trace) in batch.iter().zip(traceparents) {
                if stored.contains(&message.id) {
                    ids.push(message.id);
                    apps.push(message.application_id);
                    event_types.push(message.event_type.clone());
                    channels.push(serde_json::json!(message.channels));
                    traces.push(trace.clone());
                }
            }
            if ids.is_empty() {
                return Ok((stored, Vec::new()));
            }
            let now = chrono::Utc::now();
            let jobs = diesel::sql_query(
                "WITH m AS ( \
                   SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::jsonb[], $5::text[]) \
                     AS m(id, application_id, event_type, channels, traceparent)), \
                 dest AS ( \
                   INSERT INTO message_destinations (message_id, endpoint_id, status, next_attempt, updated) \
                   SELECT m.id, e.id, 'pending', $6, $6 FROM m JOIN endpoints e ON e.application_id = m.application_id \
                   WHERE e.enabled \
                     AND (cardinality(e.event_types) = 0 OR m.event_type = ANY(e.event_types)) \
                     AND (cardinality(e.channels) = 0 OR e.channels && \
                          ARRAY(SELECT jsonb_array_elements_text(m.channels))) \
                   RETURNING message_id, endpoint_id) \
                 INSERT INTO outbox (message_id, endpoint_id, attempt, trigger_type, due, claimed_until, traceparent) \
                 SELECT dest.message_id, dest.endpoint_id, 0, 'scheduled', $6, $7, m.traceparent \
                 FROM dest JOIN m ON m.id = dest.message_id \
                 RETURNING id, message_id, endpoint_id, attempt, trigger_type, traceparent",
            )
            .bind::<Array<SqlUuid>, _>(&ids)
            .bind::<Array<SqlUuid>, _>(&apps)
            .bind::<Array<Text>, _>(&event_types)
            .bind::<Array<diesel::sql_types::Jsonb>, _>(&channels)
            .bind::<Array<diesel::sql_types::Nullable<Text>>, _>(&traces)
            .bind::<Timestamptz, _>(now)
            .bind::<Timestamptz, _>(now + chrono::Duration::seconds(ACCEPT_CLAIM_SECS))
            .load::<OutboxJob>(conn)
            .await?;
            Ok((stored, jobs))
        }
        .scope_boxed()
    })
    .await
}

/// Which of `ids` are stored (to tell, after a failed commit, what was committed after all).
pub async fn existing_ids(conn: &mut Conn, ids: &[Uuid]) -> DbResult<Vec<Uuid>> {
    Ok(messages::table
        .filter(messages::id.eq_any(ids))
        .select(messages::id)
        .load(conn)
        .await?)
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
