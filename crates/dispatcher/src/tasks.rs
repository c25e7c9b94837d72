//! The runner of background tasks (recover, replay-missing): every dispatcher polls for a task
//! that no one holds and runs it batch by batch. The deliveries a batch queues go through the
//! outbox, the relay and the queue like any other; the runner itself sends nothing.
//!
//! A runner that dies leaves its claim to lapse, after which any runner resumes the task from
//! its last committed batch (see [`octohooks_db::tasks`]).

use std::time::Duration;

use octohooks_db::tasks::{self, BatchOutcome};
use octohooks_db::{pool, DbPool};
use tokio_util::sync::CancellationToken;

/// How long a runner holds a task past its last batch: a dead runner's task waits this long.
pub const CLAIM_SECS: i32 = 10;
/// Pause between two polls that found nothing to do.
const IDLE_POLL: Duration = Duration::from_millis(500);
/// Pause between two batches of one task: bounds how fast one task fills the outbox (with the
/// default batch of 500, at most 5,000 deliveries a second), leaving room for live traffic.
const BATCH_PAUSE: Duration = Duration::from_millis(100);
/// Pause after an error before polling again.
const ERROR_PAUSE: Duration = Duration::from_secs(2);

/// Runs tasks until `shutdown`.
pub async fn run(db: DbPool, batch_size: u32, shutdown: CancellationToken) {
    let batch = i64::from(batch_size);
    loop {
        let pause = match run_one(&db, batch, &shutdown).await {
            Ok(true) => Duration::ZERO,
            Ok(false) => IDLE_POLL,
            Err(err) => {
                tracing::warn!(error = %err, "background tasks: cannot claim or run a task");
                ERROR_PAUSE
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(pause) => {}
        }
    }
}

/// Claims one task and runs it to its end (or until shutdown); false when there was none.
async fn run_one(
    db: &DbPool,
    batch: i64,
    shutdown: &CancellationToken,
) -> Result<bool, octohooks_db::DbError> {
    let mut conn = pool::connection(db).await?;
    let Some(task) = tasks::claim_next(&mut conn, CLAIM_SECS).await? else {
        return Ok(false);
    };
    drop(conn);
    tracing::info!(task_id = %task.id, kind = task.kind.as_str(), "background task started");
    loop {
        let outcome = {
            let mut conn = pool::connection(db).await?;
            tasks::run_batch(&mut conn, task.id, batch, CLAIM_SECS).await
        };
        match outcome {
            Ok(BatchOutcome::More) => {}
            Ok(BatchOutcome::Finished) => {
                tracing::info!(task_id = %task.id, "background task finished");
                return Ok(true);
            }
            Ok(BatchOutcome::Gone) => return Ok(true),
            // The claim lapses and a runner takes the task up again later.
            Err(err) if err.is_transient() => return Err(err),
            Err(err) => {
                tracing::error!(task_id = %task.id, error = %err, "background task failed");
                let mut conn = pool::connection(db).await?;
                tasks::fail(&mut conn, task.id, "an internal error stopped the task").await?;
                return Ok(true);
            }
        }
        tokio::select! {
            // Stopping leaves the claim to lapse; the next runner goes on from the last batch.
            () = shutdown.cancelled() => return Ok(true),
            () = tokio::time::sleep(BATCH_PAUSE) => {}
        }
    }
}
