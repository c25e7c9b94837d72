//! A batch of the express lane ([`JobBatch`]): first attempts of several messages in one
//! broker message. Each job runs as an express job alone would: it waits at most
//! [`express::SLOT_WAIT`] for a first-attempt slot, its record removes its outbox row, and a job
//! that gets no slot in time, or whose outcome could not be recorded, moves to its durable queue
//! on its own.
//!
//! The broker message is acknowledged once every job is done, or has been running past
//! [`PATIENCE`](crate::group::PATIENCE): a slow receiver must not hold a place of the lane's
//! prefetch for its whole attempt. A job still running then needs no copy, as a group's does
//! (see [`crate::group`]): its outbox row is still there, claimed for longer than the job can
//! take, and goes with its record; if the dispatcher dies first, the claim lapses and the relay
//! publishes the job again.

use std::sync::Arc;

use octohooks_domain::job::{Carried, DeliveryJob, JobBatch};
use tokio::sync::{mpsc, Semaphore};

use super::message::Lane;
use super::{Disposition, Incoming, JobHandler};
use crate::express;
use crate::group::{take_slot, Jobs, Progress};
use crate::link::AmqpLink;

/// Runs the jobs of `batch`, each in a task of the `lane`'s tracker that outlives this call if
/// its attempt does; returns when the broker message may be acknowledged.
pub(super) async fn run<H: JobHandler>(
    handler: &H,
    batch: JobBatch,
    slots: Option<Arc<Semaphore>>,
    lane: &Lane,
) {
    let (progress, mut reports) = mpsc::channel(batch.jobs.len() * 2);
    let mut state = Jobs::new(batch.jobs.len());
    for (index, batched) in batch.jobs.into_iter().enumerate() {
        let (handler, slots, progress, link) = (
            handler.clone(),
            slots.clone(),
            progress.clone(),
            lane.link.clone(),
        );
        lane.tracker.spawn(async move {
            let bare = batched.job.without_context();
            let taken = tokio::time::timeout(express::SLOT_WAIT, take_slot(slots)).await;
            let disposition = match taken {
                Ok(slot) => {
                    let _ = progress.send(Progress::Started(index)).await;
                    let incoming = Incoming {
                        job: batched.job,
                        traceparent: batched.traceparent.clone(),
                        park: false,
                        express: true,
                        slot,
                    };
                    handler.handle(incoming).await
                }
                Err(_) => Disposition::Requeue,
            };
            if disposition == Disposition::Requeue {
                leave_lane(&handler, &link, bare, batched.traceparent).await;
            }
            // Whatever became of the job, the batch no longer waits for it.
            let _ = progress.send(Progress::Done(index, Disposition::Ack)).await;
        });
    }
    drop(progress);
    state.follow(&mut reports).await;
}

/// Moves one job of a batch to its durable queue, and forgets its row once it is there; the
/// row stays if it could not move, and the relay publishes it when its claim lapses.
async fn leave_lane<H: JobHandler>(
    handler: &H,
    link: &AmqpLink,
    job: DeliveryJob,
    traceparent: Option<String>,
) {
    let job_id = job.job_id;
    if express::move_to_durable(link, Carried::Job(job), traceparent).await {
        handler.forget(vec![job_id]).await;
    }
}
