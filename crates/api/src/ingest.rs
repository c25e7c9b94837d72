//! Group commit for accepting messages. Concurrent `POST …/messages` requests queue their
//! message here; a few writer tasks each take whatever is waiting (up to a batch) and store it
//! in one transaction, so one commit (one WAL flush) serves many requests. Each request gets its
//! own answer: stored, or its uid was taken. The stored jobs go to the background publisher.

use std::sync::Arc;

use octohooks_db::models::Message;
use octohooks_db::{messages, pool, DbError, DbPool};
use octohooks_platform::relay::Publisher;
use tokio::sync::{mpsc, oneshot, Mutex};

use crate::error::ApiError;

/// Most messages in one transaction.
const BATCH: usize = 256;
/// Messages waiting for a writer, at most; further requests wait for room (backpressure).
const BACKLOG: usize = 4096;
/// Transactions in flight at once.
const WRITERS: usize = 4;

struct Pending {
    message: Message,
    traceparent: Option<String>,
    reply: oneshot::Sender<Result<(), ApiError>>,
}

/// The handle requests use.
#[derive(Clone)]
pub struct Ingest {
    queue: mpsc::Sender<Pending>,
}

impl Ingest {
    /// Starts the writers.
    pub fn start(db: DbPool, publisher: Publisher) -> Self {
        let (queue, receiver) = mpsc::channel(BACKLOG);
        let receiver = Arc::new(Mutex::new(receiver));
        for _ in 0..WRITERS {
            tokio::spawn(write_batches(
                receiver.clone(),
                db.clone(),
                publisher.clone(),
            ));
        }
        Self { queue }
    }

    /// Stores `message` durably with its fan-out; returns once it is committed.
    pub async fn accept(
        &self,
        message: Message,
        traceparent: Option<String>,
    ) -> Result<(), ApiError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Pending {
                message,
                traceparent,
                reply,
            })
            .await
            .map_err(|_| ApiError::Unavailable("ingest stopped".into()))?;
        answer
            .await
            .map_err(|_| ApiError::Unavailable("ingest stopped".into()))?
    }
}

async fn write_batches(
    receiver: Arc<Mutex<mpsc::Receiver<Pending>>>,
    db: DbPool,
    publisher: Publisher,
) {
    loop {
        let mut batch = Vec::new();
        {
            let mut receiver = receiver.lock().await;
            let Some(first) = receiver.recv().await else {
                return;
            };
            batch.push(first);
            while batch.len() < BATCH {
                match receiver.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
        }
        write(&db, &publisher, batch).await;
    }
}

fn answer_error(err: &DbError) -> ApiError {
    match err {
        DbError::Unavailable(cause) => ApiError::Unavailable(cause.clone()),
        // The application was deleted between the lookup and the insert.
        DbError::Query(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::ForeignKeyViolation,
            _,
        )) => ApiError::NotFound("application"),
        other => ApiError::Internal(other.to_string()),
    }
}

async fn write(db: &DbPool, publisher: &Publisher, batch: Vec<Pending>) {
    if batch.len() > 1 {
        if let Err(batch) = write_together(db, publisher, batch).await {
            // One bad message (say, its application was deleted meanwhile) must not fail the
            // others: store them one by one. A commit that failed on the wire may have happened
            // after all, so messages already stored are answered as accepted.
            let ids: Vec<_> = batch.iter().map(|pending| pending.message.id).collect();
            let stored = match pool::connection(db).await {
                Ok(mut conn) => messages::existing_ids(&mut conn, &ids)
                    .await
                    .unwrap_or_default(),
                Err(_) => Vec::new(),
            };
            for pending in batch {
                if stored.contains(&pending.message.id) {
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

/// Stores the batch in one transaction and answers every request; on a non-transient error of
/// a batch of several, answers nobody and gives the batch back.
async fn write_together(
    db: &DbPool,
    publisher: &Publisher,
    batch: Vec<Pending>,
) -> Result<(), Vec<Pending>> {
    let (messages, traces): (Vec<&Message>, Vec<Option<&str>>) = batch
        .iter()
        .map(|pending| (&pending.message, pending.traceparent.as_deref()))
        .unzip();
    let outcome = match pool::connection(db).await {
        Ok(mut conn) => messages::accept_batch(&mut conn, &messages, &traces).await,
        Err(err) => Err(err),
    };
    drop((messages, traces));
    match outcome {
        Ok((stored, jobs)) => {
            publisher.enqueue(jobs);
            for pending in batch {
                let result = if stored.binary_search(&pending.message.id).is_ok() {
                    Ok(())
                } else {
                    Err(ApiError::Conflict {
                        code: "conflict",
                        detail: "uid is already taken".into(),
                    })
                };
                let _ = pending.reply.send(result);
            }
        }
        Err(err) if batch.len() > 1 && !matches!(err, DbError::Unavailable(_)) => {
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
