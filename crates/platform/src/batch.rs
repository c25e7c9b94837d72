//! Group work: many concurrent callers each hand in one item and await their own answer, while
//! a few worker tasks take whatever is waiting (up to a batch) and handle it in one go — one
//! statement, one commit, one round trip for many requests. Nobody waits for a batch to fill:
//! a worker takes what is there the moment it is free, so at low load a batch is one item and
//! costs no extra latency. Workers beyond the first may be kept for crowds
//! ([`Limits::spare_until`]): they take a batch only while many items wait, so that a moderate
//! load is not split into many small batches.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Mutex, Notify};

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
    /// Items that must be waiting before a worker other than the first takes a batch (0: every
    /// worker takes whatever is there). Each batch has a fixed cost (a statement, a commit): a
    /// second batch in flight pays off once many wait, not when it only halves a few.
    pub spare_until: usize,
}

/// The handle callers use; cheap to clone.
pub struct Batcher<T, R> {
    queue: mpsc::Sender<Pending<T, R>>,
    /// Wakes a spare worker once [`Limits::spare_until`] items wait.
    crowded: Arc<Notify>,
    spare_until: usize,
}

impl<T, R> Clone for Batcher<T, R> {
    fn clone(&self) -> Self {
        Self {
            queue: self.queue.clone(),
            crowded: self.crowded.clone(),
            spare_until: self.spare_until,
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
        let crowded = Arc::new(Notify::new());
        for index in 0..limits.workers.max(1) {
            let (receiver, handle, crowded) = (receiver.clone(), handle.clone(), crowded.clone());
            // The first worker takes whatever is there; a spare one only a crowd.
            let least = if index == 0 {
                1
            } else {
                limits.spare_until.max(1)
            };
            tokio::spawn(async move {
                loop {
                    if least > 1 {
                        crowded.notified().await;
                    }
                    match next_batch(&receiver, limits.batch.max(1), least).await {
                        Some(batch) if batch.is_empty() => {}
                        Some(batch) => handle(batch).await,
                        None => break,
                    }
                }
            });
        }
        Self {
            queue,
            crowded,
            spare_until: limits.spare_until,
        }
    }

    /// Hands in one item and waits for its answer.
    pub async fn call(&self, item: T) -> Result<R, Stopped> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Pending { item, reply })
            .await
            .map_err(|_| Stopped)?;
        let waiting = self.queue.max_capacity() - self.queue.capacity();
        if self.spare_until > 1 && waiting >= self.spare_until {
            self.crowded.notify_one();
        }
        answer.await.map_err(|_| Stopped)
    }
}

/// Up to `most` waiting items, once at least one is there; none (an empty batch) when fewer
/// than `least` wait.
async fn next_batch<T, R>(
    receiver: &Mutex<mpsc::Receiver<Pending<T, R>>>,
    most: usize,
    least: usize,
) -> Option<Vec<Pending<T, R>>> {
    let mut receiver = receiver.lock().await;
    if least > 1 && receiver.len() < least {
        return (!receiver.is_closed()).then(Vec::new);
    }
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

    /// Makes `callers` calls to a doubler at once and checks that each got its own answer.
    async fn call_all_at_once(doubler: &Batcher<u32, u32>, callers: u32) {
        let calls: Vec<_> = (0..callers)
            .map(|n| {
                let doubler = doubler.clone();
                tokio::spawn(async move { (n, doubler.call(n).await) })
            })
            .collect();
        for call in calls {
            let (n, answer) = call.await.unwrap();
            assert_eq!(answer, Ok(n * 2));
        }
    }

    #[tokio::test]
    async fn every_caller_gets_its_own_answer_and_waiting_callers_share_a_batch() {
        let batches = Arc::new(AtomicUsize::new(0));
        let counted = batches.clone();
        let limits = Limits {
            batch: 100,
            backlog: 1000,
            workers: 1,
            spare_until: 0,
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
        call_all_at_once(&doubler, 50).await;
        let used = batches.load(Ordering::SeqCst);
        assert!((1..50).contains(&used), "50 calls in {used} batches");
    }

    /// Runs `callers` calls at once through two workers, the second kept for crowds of 8, and
    /// returns the most batches that were in flight at the same moment.
    async fn most_in_flight(callers: u32) -> usize {
        let (running, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (counted, highest) = (running.clone(), most.clone());
        let limits = Limits {
            batch: 4,
            backlog: 1000,
            workers: 2,
            spare_until: 8,
        };
        let doubler = Batcher::start(limits, move |batch: Vec<Pending<u32, u32>>| {
            let (counted, highest) = (counted.clone(), highest.clone());
            async move {
                let now = counted.fetch_add(1, Ordering::SeqCst) + 1;
                highest.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                counted.fetch_sub(1, Ordering::SeqCst);
                for pending in batch {
                    let _ = pending.reply.send(pending.item * 2);
                }
            }
        });
        call_all_at_once(&doubler, callers).await;
        most.load(Ordering::SeqCst)
    }

    #[tokio::test]
    async fn a_spare_worker_takes_a_batch_only_while_a_crowd_waits() {
        assert_eq!(
            most_in_flight(6).await,
            1,
            "six waiting: one batch at a time"
        );
        assert_eq!(
            most_in_flight(40).await,
            2,
            "forty waiting: the spare takes some"
        );
    }

    #[tokio::test]
    async fn an_unanswered_item_is_told_the_batcher_stopped() {
        let limits = Limits {
            batch: 10,
            backlog: 10,
            workers: 1,
            spare_until: 0,
        };
        let silent = Batcher::start(limits, |batch: Vec<Pending<u32, u32>>| async move {
            drop(batch);
        });
        assert_eq!(silent.call(1).await, Err(Stopped));
    }
}
