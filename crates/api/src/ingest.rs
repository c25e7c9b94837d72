//! Group commit for accepting messages. Concurrent `POST …/messages` requests queue their
//! message here; a writer task takes whatever is waiting (up to a batch) and stores it in one
//! transaction, with a second writer while a crowd waits, so one commit (one WAL flush) serves
//! many requests. Each request gets its own answer: stored, or its uid was taken. The stored
//! jobs go to the background publisher.

use chrono::{DateTime, Utc};
use octohooks_broker::publisher::Publisher;
use octohooks_db::models::Message;
use octohooks_db::{messages, pool, DbError, DbPool};
use octohooks_platform::batch::{Batcher, Limits};

use crate::error::{ApiError, ProblemCode};

/// Most messages per transaction, waiting messages at most (then requests wait for room), and
/// transactions in flight at once: one, and a second while at least 16 messages wait. One
/// transaction takes everything that arrived while the previous one ran; more in flight split a
/// moderate load into smaller transactions, whose statements and WAL flushes cost Postgres more
/// per message, which on a busy host came back as latency. Under a crowd, the second executes
/// while the first waits for its flush (BENCHMARKS.md, "A second writer for crowds").
const LIMITS: Limits = Limits {
    batch: 256,
    backlog: 4096,
    workers: 2,
    spare_until: 16,
};

/// Connections the writers use at most: one each ([`crate::build`] gives them a pool of their
/// own).
pub const CONNECTIONS: usize = LIMITS.workers;

/// A message, the trace context of the request that sent it, and when it is to be delivered
/// (`None`: now).
type Item = (Message, Option<String>, Option<DateTime<Utc>>);
type Pending = octohooks_platform::batch::Pending<Item, Result<(), ApiError>>;

/// The handle requests use.
#[derive(Clone)]
pub struct Ingest(Batcher<Item, Result<(), ApiError>>);

impl Ingest {
    /// Starts the writers. First attempts go by the express lane while the publisher's link
    /// has it open (never with `OCTOHOOKS_EXPRESS_LANE=false`).
    pub fn start(db: DbPool, publisher: Publisher) -> Self {
        Self(Batcher::start(LIMITS, move |batch| {
            let (db, publisher) = (db.clone(), publisher.clone());
            async move { write(&db, &publisher, batch).await }
        }))
    }

    /// Stores `message` durably with its fan-out, to be delivered now or at `deliver_at`;
    /// returns once it is committed.
    pub async fn accept(
        &self,
        message: Message,
        traceparent: Option<String>,
        deliver_at: Option<DateTime<Utc>>,
    ) -> Result<(), ApiError> {
        self.0
            .call((message, traceparent, deliver_at))
            .await
            .map_err(|_| ApiError::Unavailable("ingest stopped".into()))?
    }
}

fn answer_error(err: &DbError) -> ApiError {
    match err {
        err if err.is_transient() => ApiError::Unavailable(err.to_string()),
        // The application was deleted between the lookup and the insert.
        err if err.is_foreign_key_violation() => ApiError::NotFound("application"),
        other => ApiError::Internal(other.to_string()),
    }
}

async fn write(db: &DbPool, publisher: &Publisher, batch: Vec<Pending>) {
    if batch.len() > 1 {
        if let Err(batch) = write_together(db, publisher, batch).await {
            // One bad message (say, its application was deleted meanwhile) must not fail the
            // others: store them one by one. A commit that failed on the wire may have happened
            // after all, so messages already stored are answered as accepted.
            let ids: Vec<_> = batch.iter().map(|pending| pending.item.0.id).collect();
            let stored = match pool::connection(db).await {
                Ok(mut conn) => messages::existing_ids(&mut conn, &ids)
                    .await
                    .unwrap_or_default(),
                Err(_) => Vec::new(),
            };
            for pending in batch {
                if stored.contains(&pending.item.0.id) {
                    let _ = pending.reply.send(Ok(()));
                } else {
                    let _ = Box::pin(write_together(db, publisher, vec![pending])).await;
                }
            }
        }
    } else {
        let _ = write_together(db, publisher, batch).await;
    }
}

/// Which of the messages `ids` (left out of a batch's insert) exist already: a message is left
/// out when its uid is taken, or when it is itself stored, by an earlier try whose commit
/// succeeded after all. Asked only when something was left out.
async fn stored_before(db: &DbPool, ids: &[uuid::Uuid]) -> Result<Vec<uuid::Uuid>, DbError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut conn = pool::connection(db).await?;
    messages::existing_ids(&mut conn, ids).await
}

/// Stores the batch in one transaction and answers every request; on a non-transient error of
/// a batch of several, answers nobody and gives the batch back.
async fn write_together(
    db: &DbPool,
    publisher: &Publisher,
    batch: Vec<Pending>,
) -> Result<(), Vec<Pending>> {
    let express_claim = publisher.express_claim().await;
    let messages: Vec<&Message> = batch.iter().map(|pending| &pending.item.0).collect();
    let traces: Vec<Option<&str>> = batch.iter().map(|p| p.item.1.as_deref()).collect();
    let deliver_at: Vec<Option<DateTime<Utc>>> = batch.iter().map(|p| p.item.2).collect();
    let outcome = match pool::connection(db).await {
        Ok(mut conn) => {
            let claim = express_claim.unwrap_or(messages::ACCEPT_CLAIM);
            let carry = express_claim.is_some();
            messages::accept_batch(&mut conn, &messages, &traces, &deliver_at, claim, carry).await
        }
        Err(err) => Err(err),
    };
    drop((messages, traces));
    match outcome {
        Ok(accepted) => {
            let committed = std::time::Instant::now();
            let stored = accepted.stored;
            if express_claim.is_some() {
                publisher.enqueue_express(accepted.jobs, accepted.contexts, committed);
            } else {
                publisher.enqueue(accepted.jobs, Some(committed));
            }
            let left_out: Vec<_> = batch
                .iter()
                .map(|pending| pending.item.0.id)
                .filter(|id| stored.binary_search(id).is_err())
                .collect();
            let ours = stored_before(db, &left_out).await;
            for pending in batch {
                let id = pending.item.0.id;
                let result = if stored.binary_search(&id).is_ok() {
                    Ok(())
                } else {
                    match &ours {
                        // Stored by an earlier try of this same batch whose commit got through
                        // although its answer was lost: accepted, not a conflict.
                        Ok(ours) if ours.contains(&id) => Ok(()),
                        Ok(_) => Err(ApiError::Conflict {
                            code: ProblemCode::Conflict,
                            detail: "uid is already taken".into(),
                        }),
                        Err(err) => Err(answer_error(err)),
                    }
                };
                let _ = pending.reply.send(result);
            }
        }
        Err(err) if batch.len() > 1 && !err.is_transient() => {
            tracing::warn!(error = %err, size = batch.len(), "batch failed; storing one by one");
            return Err(batch);
        }
        Err(err) => {
            for pending in batch {
                let _ = pending.reply.send(Err(answer_error(&err)));
            }
        }
    }
    Ok(())
}
