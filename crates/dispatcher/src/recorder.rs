//! Group commit for attempt records. Every delivery ends with a write (the attempt, the
//! destination's new state, maybe a retry job); one commit per delivery made Postgres the
//! bottleneck. Jobs hand their record to a few writer tasks, each of which stores whatever is
//! waiting in one statement; each job still gets its own answer before it is acknowledged.

use std::collections::HashSet;
use std::sync::Arc;

use octohooks_db::deliveries::{self, ScheduledRecord};
use octohooks_db::{pool, DbError, DbPool};
use tokio::sync::{mpsc, oneshot, Mutex};
use uuid::Uuid;

/// Most records in one statement.
const BATCH: usize = 256;
/// Records waiting for a writer, at most (the consumer's prefetch bounds it well below).
const BACKLOG: usize = 4096;
/// Statements in flight at once.
const WRITERS: usize = 2;

type Answer = Result<bool, DbError>;

struct Pending {
    record: ScheduledRecord,
    reply: oneshot::Sender<Answer>,
}

/// The handle jobs use.
#[derive(Clone)]
pub struct Recorder {
    queue: mpsc::Sender<Pending>,
}

impl Recorder {
    /// Starts the writers.
    pub fn start(db: DbPool) -> Self {
        let (queue, receiver) = mpsc::channel(BACKLOG);
        let receiver = Arc::new(Mutex::new(receiver));
        for _ in 0..WRITERS {
            tokio::spawn(write_batches(receiver.clone(), db.clone()));
        }
        Self { queue }
    }

    /// Records one scheduled attempt; `Ok(false)` when another run of the same job already did.
    pub async fn record(&self, record: ScheduledRecord) -> Answer {
        let stopped = || DbError::Unavailable("attempt recorder stopped".into());
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Pending { record, reply })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

async fn write_batches(receiver: Arc<Mutex<mpsc::Receiver<Pending>>>, db: DbPool) {
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
        // One statement may touch each destination once: a second record of the same
        // destination (a duplicate job) goes in a later round.
        while !batch.is_empty() {
            let (round, later) = distinct_destinations(batch);
            write(&db, round).await;
            batch = later;
        }
    }
}

fn distinct_destinations(batch: Vec<Pending>) -> (Vec<Pending>, Vec<Pending>) {
    let mut seen = HashSet::<(Uuid, Uuid)>::with_capacity(batch.len());
    batch.into_iter().partition(|pending| {
        seen.insert((
            pending.record.attempt.message_id,
            pending.record.attempt.endpoint_id,
        ))
    })
}

async fn write(db: &DbPool, batch: Vec<Pending>) {
    let records: Vec<&ScheduledRecord> = batch.iter().map(|p| &p.record).collect();
    let outcome = match pool::connection(db).await {
        Ok(mut conn) => deliveries::record_scheduled(&mut conn, &records).await,
        Err(err) => Err(err),
    };
    drop(records);
    match outcome {
        Ok(recorded) => {
            for (pending, recorded) in batch.into_iter().zip(recorded) {
                let _ = pending.reply.send(Ok(recorded));
            }
        }
        Err(err) if batch.len() > 1 && !matches!(err, DbError::Unavailable(_)) => {
            // One bad record must not fail the others: store them one by one.
            tracing::warn!(error = %err, size = batch.len(), "attempt batch failed; recording one by one");
            for pending in batch {
                Box::pin(write(db, vec![pending])).await;
            }
        }
        Err(DbError::Unavailable(cause)) => {
            for pending in batch {
                let _ = pending.reply.send(Err(DbError::Unavailable(cause.clone())));
            }
        }
        Err(err) => {
            // A batch of one: its own error.
            if let Some(pending) = batch.into_iter().next() {
                let _ = pending.reply.send(Err(err));
            }
        }
    }
}
