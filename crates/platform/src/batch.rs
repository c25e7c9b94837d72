//! Group work: many concurrent callers each hand in one item and await their own answer, while
//! a few worker tasks take whatever is waiting (up to a batch) and handle it in one go — one
//! statement, one commit, one round trip for many requests. Nobody waits for a batch to fill:
//! a worker takes what is there the moment it is free, so at low load a batch is one item and
//! costs no extra latency.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Mutex};

/// One waiting item and where its answer goes.
pub struct Pending<T, R> {
    /// The caller's item.
    pub item: T,
    /// Answers the caller; dropping it answers "stopped".
    pub reply: oneshot::Sender<R>,
}

/// Sizes of a batcher.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most items handled together.
    pub batch: usize,
    /// Items waiting at most; further callers wait for room (backpressure).
    pub backlog: usize,
    /// Batches in flight at once.
    pub workers: usize,
}

/// The handle callers use; cheap to clone.
pub struct Batcher<T, R> {
    queue: mpsc::Sender<Pending<T, R>>,
}

impl<T, R> Clone for Batcher<T, R> {
    fn clone(&self) -> Self {
        Self {
            queue: self.queue.clone(),
        }
    }
}

/// The batcher's workers are gone (the process is stopping).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped;

impl<T: Send + 'static, R: Send + 'static> Batcher<T, R> {
    /// Starts `limits.workers` tasks that call `handle` with each batch; `handle` must answer
    /// every item of the batch it is given.
    pub fn start<F, Fut>(limits: Limits, handle: F) -> Self
    where
        F: Fn(Vec<Pending<T, R>>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send,
    {
        let (queue, receiver) = mpsc::channel(limits.backlog.max(1));
        let receiver = Arc::new(Mutex::new(receiver));
        let handle = Arc::new(handle);
        for _ in 0..limits.workers.max(1) {
            let receiver = receiver.clone();
            let handle = handle.clone();
            tokio::spawn(async move {
                while let Some(batch) = next_batch(&receiver, limits.batch.max(1)).await {
                    handle(batch).await;
                }
            });
        }
        Self { queue }
    }

    /// Hands in one item and waits for its answer.
    pub async fn call(&self, item: T) -> Result<R, Stopped> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Pending { item, reply })
            .await
            .map_err(|_| Stopped)?;
        answer.await.map_err(|_| Stopped)
    }
}

async fn next_batch<T, R>(
    receiver: &Mutex<mpsc::Receiver<Pending<T, R>>>,
    most: usize,
) -> Option<Vec<Pending<T, R>>> {
    let mut receiver = receiver.lock().await;
    let first = receiver.recv().await?;
    let mut batch = Vec::with_capacity(most.min(64));
    batch.push(first);
    while batch.len() < most {
        match receiver.try_recv() {
            Ok(next) => batch.push(next),
            Err(_) => break,
        }
    }
    Some(batch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn every_caller_gets_its_own_answer_and_waiting_callers_share_a_batch() {
        let batches = Arc::new(AtomicUsize::new(0));
        let counted = batches.clone();
        let limits = Limits {
            batch: 100,
            backlog: 1000,
            workers: 1,
        };
        let doubler = Batcher::start(limits, move |batch: Vec<Pending<u32, u32>>| {
            counted.fetch_add(1, Ordering::SeqCst);
            async move {
                // Slow enough that the other callers queue up meanwhile.
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                for pending in batch {
                    let _ = pending.reply.send(pending.item * 2);
                }
            }
        });
        let calls: Vec<_> = (0..50)
            .map(|n| {
                let doubler = doubler.clone();
                tokio::spawn(async move { (n, doubler.call(n).await) })
            })
            .collect();
        for call in calls {
            let (n, answer) = call.await.unwrap();
            assert_eq!(answer, Ok(n * 2));
        }
        let used = batches.load(Ordering::SeqCst);
        assert!((1..50).contains(&used), "50 calls in {used} batches");
    }

    #[tokio::test]
    async fn an_unanswered_item_is_told_the_batcher_stopped() {
        let limits = Limits {
            batch: 10,
            backlog: 10,
            workers: 1,
        };
        let silent = Batcher::start(limits, |batch: Vec<Pending<u32, u32>>| async move {
            drop(batch);
        });
        assert_eq!(silent.call(1).await, Err(Stopped));
    }
}
