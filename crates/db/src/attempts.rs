//! The API's side of delivery state: listing attempts and destinations, and queueing a
//! manual resend. What the dispatcher reads and records is in [`crate::deliveries`].

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use crate::models::{Attempt, Destination, Endpoint, Message, OutboxJob};
use crate::schema::{attempts, message_destinations, outbox};
use crate::scope::Scoped;
use crate::{Conn, DbResult};
use octohooks_domain::job::TriggerType;

/// Queues one manual attempt, claimed by the caller who publishes it at once.
pub async fn enqueue_manual(
    conn: &mut Conn,
    message: &Scoped<Message>,
    endpoint: &Scoped<Endpoint>,
    traceparent: Option<&str>,
) -> DbResult<OutboxJob> {
    let now = crate::stored_now();
    let claimed_until = now + chrono::Duration::seconds(crate::messages::ACCEPT_CLAIM_SECS);
    let id: i64 = diesel::insert_into(outbox::table)
        .values((
            outbox::message_id.eq(message.id),
            outbox::endpoint_id.eq(endpoint.id),
            outbox::attempt.eq(0),
            outbox::trigger_type.eq(TriggerType::Manual.as_str()),
            outbox::due.eq(now),
            outbox::claimed_until.eq(claimed_until),
            outbox::traceparent.eq(traceparent),
        ))
        .returning(outbox::id)
        .get_result(conn)
        .await?;
    Ok(OutboxJob {
        id,
        message_id: message.id,
        endpoint_id: endpoint.id,
        attempt: 0,
        trigger_type: TriggerType::Manual,
        traceparent: traceparent.map(str::to_owned),
        claimed_until: Some(claimed_until),
        deferrals: 0,
        fanout_id: None,
    })
}

/// Whose attempts to list: a message or an endpoint of the caller.
#[derive(Debug, Clone, Copy)]
pub struct AttemptsOf(Owner);

#[derive(Debug, Clone, Copy)]
enum Owner {
    Message(Uuid),
    Endpoint(Uuid),
}

impl AttemptsOf {
    /// Every attempt of a message, to any endpoint.
    pub fn message(message: &Scoped<Message>) -> Self {
        Self(Owner::Message(message.id))
    }

    /// Every attempt made to an endpoint.
    pub fn endpoint(endpoint: &Scoped<Endpoint>) -> Self {
        Self(Owner::Endpoint(endpoint.id))
    }
}

/// Attempts of a message or an endpoint, newest first, older than the cursor.
pub async fn attempts(
    conn: &mut Conn,
    of: AttemptsOf,
    older_than: Option<Uuid>,
    limit: i64,
) -> DbResult<Vec<Attempt>> {
    let mut query = attempts::table
        .order(attempts::id.desc())
        .select(Attempt::as_select())
        .into_boxed();
    query = match of.0 {
        Owner::Message(id) => query.filter(attempts::message_id.eq(id)),
        Owner::Endpoint(id) => query.filter(attempts::endpoint_id.eq(id)),
    };
    if let Some(cursor) = older_than {
        query = query.filter(attempts::id.lt(cursor));
    }
    Ok(query.limit(limit + 1).load(conn).await?)
}

/// One attempt of a message; `NotFound` otherwise.
pub async fn attempt(
    conn: &mut Conn,
    message: &Scoped<Message>,
    attempt_id: Uuid,
) -> DbResult<Attempt> {
    Ok(attempts::table
        .filter(attempts::message_id.eq(message.id))
        .filter(attempts::id.eq(attempt_id))
        .select(Attempt::as_select())
        .first(conn)
        .await?)
}

/// Destinations of a message in endpoint id order after the cursor.
pub async fn destinations(
    conn: &mut Conn,
    message: &Scoped<Message>,
    after: Option<Uuid>,
    limit: i64,
) -> DbResult<Vec<Destination>> {
    let mut query = message_destinations::table
        .filter(message_destinations::message_id.eq(message.id))
        .order(message_destinations::endpoint_id.asc())
        .select(Destination::as_select())
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(message_destinations::endpoint_id.gt(after));
    }
    Ok(query.limit(limit + 1).load(conn).await?)
}
