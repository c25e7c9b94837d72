//! Removing jobs from the outbox once they are safe elsewhere, in the background and in batches.

use std::time::Duration;

use octohooks_db::{outbox, pool, DbPool};

use crate::publisher::PUBLISH_BATCH;

/// Removes jobs from the outbox once they are safe elsewhere (confirmed by the broker, or done
/// by a dispatcher), the ids handed over meanwhile in one statement: with several publications
/// in flight, each deleting its own jobs cost a Postgres round trip and commit per publication.
/// Nothing waits on it: a job whose delete is late or lost is published again once its claim
/// lapses, and the dispatcher drops the duplicate.
#[derive(Clone)]
pub struct Forgetter {
    queue: tokio::sync::mpsc::Sender<Vec<i64>>,
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
        let (queue, mut handed) = tokio::sync::mpsc::channel::<Vec<i64>>(FORGET_BACKLOG);
        tokio::spawn(async move {
            let mut failed: Vec<i64> = Vec::new();
            loop {
                let retrying = !failed.is_empty();
                let mut ids = if retrying {
                    tokio::time::sleep(FORGET_RETRY_AFTER).await;
                    std::mem::take(&mut failed)
                } else {
                    match handed.recv().await {
                        Some(ids) => ids,
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
                while ids.len() < most {
                    match handed.try_recv() {
                        Ok(more) => ids.extend(more),
                        Err(_) => break,
                    }
                }
                let removed = match pool::connection(&db).await {
                    Ok(mut conn) => outbox::remove(&mut conn, &ids).await,
                    Err(err) => Err(err),
                };
                if let Err(err) = removed {
                    if ids.len() > FORGET_RETRY_MOST {
                        tracing::warn!(error = %err, jobs = ids.len() - FORGET_RETRY_MOST,
                            "could not remove jobs from the outbox; they will be published again");
                        ids.truncate(FORGET_RETRY_MOST);
                    } else {
                        tracing::debug!(error = %err, jobs = ids.len(),
                            "could not remove jobs from the outbox; trying again");
                    }
                    failed = ids;
                }
            }
        });
        Self { queue }
    }

    /// Hands over jobs to remove; waits only while the backlog is full.
    pub async fn forget(&self, ids: Vec<i64>) {
        if self.queue.send(ids).await.is_err() {
            tracing::warn!("outbox cleaner stopped; published jobs will be published again");
        }
    }
}
