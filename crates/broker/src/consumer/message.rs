//! One broker message: decoded, parked or run (the express lane's own way included), then
//! acknowledged or requeued as the handler says.

use std::sync::Arc;
use std::time::Duration;

use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicNackOptions};
use octohooks_domain::job::Carried;
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;

use super::{Disposition, Incoming, JobHandler};
use crate::express;
use crate::link as amqp;
use crate::link::AmqpLink;
use crate::topology::Topology;

/// Deliveries of one broker message after which its job is parked in the outbox: half the
/// queues' limit, so that parking comes long before the broker moves it on. (Jobs of the
/// parked queue are parked at once: `handle` gets 0.)
pub(super) fn park_after(topology: &Topology) -> u32 {
    (topology.delivery_limit / 2).max(1)
}

/// How long a job that could not be recorded is held before it goes back to its queue: longer
/// each time the broker redelivers it, so that a database outage does not spin through the
/// deliveries the broker allows.
fn requeue_pause(delivery_count: u32) -> Duration {
    Duration::from_secs(1 << delivery_count.min(5)).min(Duration::from_secs(30))
}

/// Runs what a broker message carries and says what becomes of it.
async fn run_delivery<H: JobHandler>(
    handler: H,
    carried: Carried,
    traceparent: Option<String>,
    park: bool,
    slots: Option<Arc<Semaphore>>,
    hand_off_after: Duration,
) -> Disposition {
    match carried {
        Carried::Job(job) => {
            let slot = crate::group::take_slot(slots).await;
            let incoming = Incoming {
                job,
                traceparent,
                park,
                express: false,
                slot,
            };
            handler.handle(incoming).await
        }
        Carried::Group(group) => {
            let jobs = crate::group::of_group(&group, traceparent.as_deref());
            crate::group::run(handler, jobs, park, slots, hand_off_after).await
        }
        // A batch the express lane moved here, its jobs now safe in a durable queue: they run
        // as a group's do.
        Carried::Batch(batch) => {
            let jobs = crate::group::of_batch(batch);
            crate::group::run(handler, jobs, park, slots, hand_off_after).await
        }
    }
}

/// What running a message of the express lane needs besides the rest.
pub(super) struct Lane {
    /// Moves a job that cannot run soon to its durable queue.
    pub(super) link: AmqpLink,
    /// Runs the jobs of a batch, which may outlive its acknowledgement: the drain on shutdown
    /// waits for them too.
    pub(super) tracker: TaskTracker,
}

/// Runs a broker message and acknowledges or requeues it; a message of the express lane
/// (`express`) goes to [`run_express`].
pub(super) async fn handle<H: JobHandler>(
    handler: H,
    delivery: Delivery,
    park_after: u32,
    slots: Option<Arc<Semaphore>>,
    hand_off_after: Duration,
    express: Option<Lane>,
) {
    let delivery_count = amqp::delivery_count(&delivery.properties);
    let traceparent = amqp::traceparent_of(&delivery.properties);
    let mut carried = match Carried::read(&delivery.data) {
        Ok(carried) => carried,
        Err(err) => {
            tracing::error!(error = %err, "dropping a broker message that is no job of this version");
            ack(&delivery).await;
            return;
        }
    };
    if express.is_none() || delivery.redelivered {
        // A carried context is trusted on the express lane's first delivery only: a copy
        // dead-lettered from the lane, or delivered again, may be older than its endpoint's
        // last change, and is read afresh.
        carried.forget_context();
    }
    if let Some(lane) = express {
        let run = ExpressRun {
            carried,
            traceparent,
            slots,
            hand_off_after,
        };
        run_express(handler, &delivery, run, &lane).await;
        return;
    }
    if express::left_the_lane(&delivery.properties) {
        handler.forget(carried.job_ids()).await;
    }
    let park = delivery_count >= park_after;
    if park && park_after > 0 {
        tracing::warn!(
            jobs = carried.len(),
            delivery_count,
            "the broker delivered this job too often; parking it in the outbox"
        );
    }
    let disposition =
        run_delivery(handler, carried, traceparent, park, slots, hand_off_after).await;
    match disposition {
        Disposition::Ack => ack(&delivery).await,
        Disposition::Requeue => {
            // Give the database a moment before the job comes around again.
            tokio::time::sleep(requeue_pause(delivery_count)).await;
            let requeued = delivery
                .nack(BasicNackOptions {
                    requeue: true,
                    ..BasicNackOptions::default()
                })
                .await;
            if let Err(err) = requeued {
                // The broker will redeliver the job; the dispatcher drops it as a duplicate if needed.
                tracing::warn!(error = %err, "could not requeue a job");
            }
        }
    }
}

/// An express message and what running it needs.
struct ExpressRun {
    carried: Carried,
    traceparent: Option<String>,
    slots: Option<Arc<Semaphore>>,
    hand_off_after: Duration,
}

/// Runs a message of the express lane, whose jobs still have their outbox rows: once done, the
/// rows are removed (a single job's by its handler, with its record: [`Incoming::express`]),
/// then the message acknowledged (a batch's as [`super::batch`] says). A job that gets no
/// first-attempt slot within [`express::SLOT_WAIT`], or whose outcome could not be recorded,
/// moves to its durable queue (confirmed) and is forgotten likewise; the lane counts no
/// deliveries, so nothing is parked from it.
async fn run_express<H: JobHandler>(handler: H, delivery: &Delivery, run: ExpressRun, lane: &Lane) {
    let link = &lane.link;
    let ExpressRun {
        carried,
        traceparent,
        slots,
        hand_off_after,
    } = run;
    let job_ids = carried.job_ids();
    let disposition = match carried {
        // A single job takes its slot here, within the wait.
        Carried::Job(job) => {
            let taken =
                tokio::time::timeout(express::SLOT_WAIT, crate::group::take_slot(slots)).await;
            let Ok(slot) = taken else {
                return leave_lane(&handler, delivery, link, job_ids).await;
            };
            let incoming = Incoming {
                job,
                traceparent,
                park: false,
                express: true,
                slot,
            };
            match handler.handle(incoming).await {
                Disposition::Ack => return ack(delivery).await,
                Disposition::Requeue => Disposition::Requeue,
            }
        }
        Carried::Batch(batch) => {
            super::batch::run(&handler, batch, slots, lane).await;
            return ack(delivery).await;
        }
        // A group (which the API does not send by the lane) takes a slot per job as it runs.
        group @ Carried::Group(_) => {
            run_delivery(
                handler.clone(),
                group,
                traceparent,
                false,
                slots,
                hand_off_after,
            )
            .await
        }
    };
    match disposition {
        Disposition::Ack => {
            handler.forget(job_ids).await;
            ack(delivery).await;
        }
        Disposition::Requeue => leave_lane(&handler, delivery, link, job_ids).await,
    }
}

/// Moves an express message's job to its durable queue, forgets its rows once it is there, and
/// acknowledges the message. The job is read again from the message: only this rare path needs
/// it after it ran.
async fn leave_lane<H: JobHandler>(
    handler: &H,
    delivery: &Delivery,
    link: &AmqpLink,
    job_ids: Vec<i64>,
) {
    if let Ok(carried) = Carried::read(&delivery.data) {
        let traceparent = amqp::traceparent_of(&delivery.properties);
        if express::move_to_durable(link, carried, traceparent).await {
            handler.forget(job_ids).await;
        }
    }
    ack(delivery).await;
}

async fn ack(delivery: &Delivery) {
    if let Err(err) = delivery.ack(BasicAckOptions::default()).await {
        // The broker will redeliver the job; the dispatcher drops it as a duplicate if needed.
        tracing::warn!(error = %err, "could not acknowledge a job");
    }
}
