//! Removing jobs from the outbox once they are safe elsewhere, in the background and in batches.

use std::time::Duration;

use octohooks_db::models::OutboxJob;
use octohooks_db::{outbox, pool, DbPool};

use crate::publisher::PUBLISH_BATCH;

/// Removes jobs from the outbox once they are safe elsewhere (confirmed by the broker, or done
/// by a dispatcher), the ids handed over meanwhile in one statement: with several publications
/// in flight, each deleting its own jobs cost a Postgres round trip and commit per publication.
/// Nothing waits on it: a job whose delete is late or lost is published again once its claim
/// lapses, and the dispatcher drops the duplicate.
#[derive(Clone)]
pub struct Forgetter {
    queue: tokio::sync::mpsc::Sender<Rows>,
}

/// Rows to delete: of the outbox, and of fan-outs.
#[derive(Debug, Default)]
struct Rows {
    jobs: Vec<i64>,
    fanouts: Vec<i64>,
}

impl Rows {
    fn len(&self) -> usize {
        self.jobs.len() + self.fanouts.len()
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn extend(&mut self, more: Rows) {
        self.jobs.extend(more.jobs);
        self.fanouts.extend(more.fanouts);
    }

    /// Keeps at most `most` rows, fan-outs first (each stands for several jobs).
    fn truncate(&mut self, most: usize) {
        self.fanouts.truncate(most);
        self.jobs.truncate(most - self.fanouts.len());
    }
}

/// Confirmed ids waiting for their delete, in batches, at most.
const FORGET_BACKLOG: usize = 1024;

/// Ids whose delete failed (the database was away) and is tried again, at most; beyond, they
/// are published again when their claim lapses and dropped as duplicates.
const FORGET_RETRY_MOST: usize = 100_000;
/// Pause before a failed delete is tried again.
const FORGET_RETRY_AFTER: Duration = Duration::from_secs(1);

impl Forgetter {
    /// Starts the task that removes the jobs. A delete that fails is tried again, with what
    /// arrives meanwhile, once a second: a job moved out of the express lane while the database
    /// is away would otherwise be published again.
    pub fn start(db: DbPool) -> Self {
        let (queue, mut handed) = tokio::sync::mpsc::channel::<Rows>(FORGET_BACKLOG);
        tokio::spawn(async move {
            let mut failed = Rows::default();
            loop {
                let retrying = !failed.is_empty();
                let mut rows = if retrying {
                    tokio::time::sleep(FORGET_RETRY_AFTER).await;
                    std::mem::take(&mut failed)
                } else {
                    match handed.recv().await {
                        Some(rows) => rows,
                        None => break,
                    }
                };
                // While the database is away, take in everything handed over meanwhile, so
                // that those handing over never wait.
                let most = if retrying {
                    FORGET_RETRY_MOST
                } else {
                    PUBLISH_BATCH
                };
                while rows.len() < most {
                    match handed.try_recv() {
                        Ok(more) => rows.extend(more),
                        Err(_) => break,
                    }
                }
                let removed = match pool::connection(&db).await {
                    Ok(mut conn) => outbox::remove(&mut conn, &rows.jobs, &rows.fanouts).await,
                    Err(err) => Err(err),
                };
                if let Err(err) = removed {
                    if rows.len() > FORGET_RETRY_MOST {
                        tracing::warn!(error = %err, jobs = rows.len() - FORGET_RETRY_MOST,
                            "could not remove jobs from the outbox; they will be published again");
                        rows.truncate(FORGET_RETRY_MOST);
                    } else {
                        tracing::debug!(error = %err, jobs = rows.len(),
                            "could not remove jobs from the outbox; trying again");
                    }
                    failed = rows;
                }
            }
        });
        Self { queue }
    }

    /// Hands over jobs to remove by their outbox ids; waits only while the backlog is full.
    pub async fn forget(&self, ids: Vec<i64>) {
        self.hand_over(Rows {
            jobs: ids,
            fanouts: Vec::new(),
        })
        .await;
    }

    /// Hands over published jobs to remove: their own rows, or the fan-out rows that stand
    /// for them.
    pub async fn forget_published(&self, jobs: &[OutboxJob]) {
        let (jobs, fanouts) = outbox::rows_of(jobs);
        self.hand_over(Rows { jobs, fanouts }).await;
    }

    async fn hand_over(&self, rows: Rows) {
        if self.queue.send(rows).await.is_err() {
            tracing::warn!("outbox cleaner stopped; published jobs will be published again");
        }
    }
}
