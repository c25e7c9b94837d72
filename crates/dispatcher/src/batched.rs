//! The dispatcher's database steps per job, grouped across concurrent jobs: reading what an
//! attempt needs, asking for endpoint slots, recording its outcome, and putting back a job that
//! waits for its turn. One statement per delivery made Postgres the
//! bottleneck; now each statement serves every job that was waiting for it, and each job still
//! gets its own answer before it is acknowledged.

use std::collections::HashSet;

use octohooks_db::deliveries::{self, JobContext, JobKey, ScheduledRecord};
use octohooks_db::fairness::{self, Deferral, Grant, SlotAsk};
use octohooks_db::{pool, DbError, DbPool};
use octohooks_platform::batch::{Batcher, Limits, Pending};
use uuid::Uuid;

/// Sizes of both batchers (the consumer's prefetch bounds what can wait well below).
const LIMITS: Limits = Limits {
    batch: 256,
    backlog: 4096,
    workers: 2,
    spare_until: 0,
};

/// Sizes of the context reader and the recorder, the two batchers every delivery passes
/// through: the second statement in flight waits for a crowd. Each statement has a fixed cost
/// in Postgres (starting the plan of a statement of many steps, a commit for a record) that a
/// larger batch shares out; with both workers taking whatever waited, a fan-out's jobs were
/// read and recorded 14 to 19 at a time, and Postgres spent more CPU per delivery (BENCHMARKS.md,
/// "Fan-out: slots back before the record, one statement at a time"). A crowd of
/// [`Limits::spare_until`] jobs means the first statement no longer keeps up.
const PER_DELIVERY: Limits = Limits {
    spare_until: 64,
    ..LIMITS
};

/// Connections the batchers that run on the batch pool use at most (context reads, records
/// and put-backs: one per worker; [`crate::build`] gives them a pool of their own).
pub const CONNECTIONS: usize = 3 * LIMITS.workers;

type Answer<R> = Result<R, DbError>;

fn stopped() -> DbError {
    DbError::Unavailable("dispatcher stopping".into())
}

/// Reads job contexts, many per statement.
#[derive(Clone)]
pub struct ContextReader(Batcher<JobKey, Answer<Option<JobContext>>>);

impl ContextReader {
    /// Starts the workers.
    pub fn start(db: DbPool) -> Self {
        Self(Batcher::start(PER_DELIVERY, move |batch| {
            read(db.clone(), batch)
        }))
    }

    /// The context of one job; `None` when its message or endpoint is gone.
    pub async fn read(&self, job: JobKey) -> Answer<Option<JobContext>> {
        self.0.call(job).await.unwrap_or_else(|_| Err(stopped()))
    }
}

async fn read(db: DbPool, batch: Vec<Pending<JobKey, Answer<Option<JobContext>>>>) {
    let keys: Vec<JobKey> = batch.iter().map(|pending| pending.item).collect();
    let outcome = match pool::connection(&db).await {
        Ok(mut conn) => deliveries::job_contexts(&mut conn, &keys).await,
        Err(err) => Err(err),
    };
    for pending in answer(batch, outcome) {
        Box::pin(read(db.clone(), vec![pending])).await;
    }
}

/// Records scheduled attempts, many per statement and commit.
#[derive(Clone)]
pub struct Recorder(Batcher<ScheduledRecord, Answer<bool>>);

impl Recorder {
    /// Starts the workers.
    pub fn start(db: DbPool) -> Self {
        Self(Batcher::start(PER_DELIVERY, move |batch| {
            record_in_rounds(db.clone(), batch)
        }))
    }

    /// Records one scheduled attempt; `Ok(false)` when another run of the same job already did.
    pub async fn record(&self, record: ScheduledRecord) -> Answer<bool> {
        self.0.call(record).await.unwrap_or_else(|_| Err(stopped()))
    }
}

/// Asks Postgres for endpoint slots, the asks of many endpoints per statement: the first
/// message to many new endpoints brings all their first jobs at once, and each would otherwise
/// wait for a connection of its own.
#[derive(Clone)]
pub struct SlotAsker(Batcher<SlotAsk, Answer<Grant>>);

impl SlotAsker {
    /// Starts the workers; `holder` names this dispatcher's grants, which hold at most `cap`
    /// slots per endpoint together with the others' and lapse after `ttl_ms` unless renewed.
    pub fn start(db: DbPool, holder: Uuid, cap: u32, ttl_ms: u32) -> Self {
        Self(Batcher::start(LIMITS, move |batch| {
            ask(db.clone(), holder, cap, ttl_ms, batch)
        }))
    }

    /// Sets this dispatcher's grant of one endpoint (see [`fairness::grant_slots`]).
    pub async fn ask(&self, ask: SlotAsk) -> Answer<Grant> {
        self.0.call(ask).await.unwrap_or_else(|_| Err(stopped()))
    }
}

async fn ask(
    db: DbPool,
    holder: Uuid,
    cap: u32,
    ttl_ms: u32,
    batch: Vec<Pending<SlotAsk, Answer<Grant>>>,
) {
    let asks: Vec<SlotAsk> = batch.iter().map(|pending| pending.item).collect();
    let outcome = match pool::connection(&db).await {
        Ok(mut conn) => fairness::grant_slots(&mut conn, holder, cap, ttl_ms, &asks).await,
        Err(err) => Err(err),
    };
    for pending in answer(batch, outcome) {
        Box::pin(ask(db.clone(), holder, cap, ttl_ms, vec![pending])).await;
    }
}

/// Puts jobs back in the outbox to wait for their endpoint's turn, many per statement.
#[derive(Clone)]
pub struct Deferrer(Batcher<Deferral, Answer<()>>);

impl Deferrer {
    /// Starts the workers.
    pub fn start(db: DbPool) -> Self {
        Self(Batcher::start(LIMITS, move |batch| {
            defer(db.clone(), batch)
        }))
    }

    /// Stores one waiting job; once this returns, its broker message may be acknowledged.
    pub async fn defer(&self, job: Deferral) -> Answer<()> {
        self.0.call(job).await.unwrap_or_else(|_| Err(stopped()))
    }
}

async fn defer(db: DbPool, batch: Vec<Pending<Deferral, Answer<()>>>) {
    let jobs: Vec<&Deferral> = batch.iter().map(|pending| &pending.item).collect();
    let outcome = match pool::connection(&db).await {
        Ok(mut conn) => fairness::defer(&mut conn, &jobs).await,
        Err(err) => Err(err),
    };
    drop(jobs);
    let outcome = outcome.map(|()| vec![(); batch.len()]);
    for pending in answer(batch, outcome) {
        Box::pin(defer(db.clone(), vec![pending])).await;
    }
}

/// One statement may touch each destination once: a second record of the same destination (a
/// duplicate job) goes in a later round.
async fn record_in_rounds(db: DbPool, mut batch: Vec<Pending<ScheduledRecord, Answer<bool>>>) {
    while !batch.is_empty() {
        let mut seen = HashSet::<(Uuid, Uuid)>::with_capacity(batch.len());
        let (round, later) = batch.into_iter().partition(|pending| {
            let attempt = &pending.item.attempt;
            seen.insert((attempt.message_id, attempt.endpoint_id))
        });
        record(&db, round).await;
        batch = later;
    }
}

async fn record(db: &DbPool, batch: Vec<Pending<ScheduledRecord, Answer<bool>>>) {
    let records: Vec<&ScheduledRecord> = batch.iter().map(|pending| &pending.item).collect();
    let outcome = match pool::connection(db).await {
        Ok(mut conn) => deliveries::record_scheduled(&mut conn, &records).await,
        Err(err) => Err(err),
    };
    drop(records);
    for pending in answer(batch, outcome) {
        Box::pin(record(db, vec![pending])).await;
    }
}

/// Answers every item of a batch from the statement's `outcome` (one answer per item, in
/// order), and returns the items to run again one by one: none when the statement succeeded,
/// or when it failed for a lost database (every item fails and runs again later) or for the
/// batch's only item (which gets its own error); all of them when a batch of several failed
/// otherwise, so that one bad item does not fail the others.
fn answer<T, R>(
    batch: Vec<Pending<T, Answer<R>>>,
    outcome: Answer<Vec<R>>,
) -> Vec<Pending<T, Answer<R>>> {
    match outcome {
        Ok(answers) => {
            for (pending, answer) in batch.into_iter().zip(answers) {
                let _ = pending.reply.send(Ok(answer));
            }
            Vec::new()
        }
        Err(DbError::Unavailable(cause)) => {
            for pending in batch {
                let _ = pending.reply.send(Err(DbError::Unavailable(cause.clone())));
            }
            Vec::new()
        }
        Err(err) if batch.len() == 1 => {
            if let Some(pending) = batch.into_iter().next() {
                let _ = pending.reply.send(Err(err));
            }
            Vec::new()
        }
        Err(err) => {
            tracing::warn!(error = %err, size = batch.len(), "batch failed; running it one by one");
            batch
        }
    }
}
