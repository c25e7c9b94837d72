//! The express lane for first attempts: a queue that holds jobs in memory only, for the jobs
//! whose outbox rows stay in Postgres until a dispatcher is done with them.
//!
//! A job published to a quorum queue is confirmed, and handed to a consumer, only after the
//! queue's Raft log reached the disk: a second durable write, one after Postgres's commit, on
//! the path of every message. The express lane skips it without giving up a promise. The API
//! claims a single first attempt's outbox row for [`claim`] (longer than the job can take from
//! publication to acknowledgement by the lane), publishes it as a transient message to the
//! express queue, and leaves the row where it is. The dispatcher removes the row when it is
//! done with the job: with the attempt's record, in the same commit, or else through
//! [`crate::consumer::JobHandler::forget`]. A job that cannot run soon
//! leaves the lane for the durable first-attempt queue: after [`SLOT_WAIT`] without a slot
//! ([`move_to_durable`]), or after [`TTL`] in the lane (the broker dead-letters it there, see
//! [`left_the_lane`]); its row goes once it is there. Whatever loses a job on the way (a broker
//! restart) leaves the row, whose claim lapses, and the relay publishes it durably.
//!
//! The lane is used only while a dispatcher consumes it and it is nearly empty: dispatchers of
//! the version before it (during a rolling upgrade) never read it, and with none consuming, the
//! API publishes to the durable queues as before. A full express queue refuses a publish
//! (`reject-publish`), and the API publishes those jobs durably instead, so a backlog never
//! builds up in memory.

use std::time::Duration;

use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::QueueDeclareOptions;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection};
use octohooks_domain::job::Carried;

use crate::link::{AmqpError, AmqpLink, Outgoing};
use crate::topology::Topology;

/// The express queue of the deployment whose first-attempt queue is `queue`: one job per
/// broker message, as dispatchers of every version since the lane read it.
pub fn express_queue(queue: &str) -> String {
    format!("{queue}.express")
}

/// The express lane's second queue, for [`JobBatch`](octohooks_domain::job::JobBatch)es: the
/// jobs of a commit in one broker message. Only dispatchers that read batches consume it, so
/// the API batches only while one does, and during a rolling upgrade from a version without
/// batches sends single jobs to [`express_queue`] as before. Its limits hold as many jobs as
/// the single queue's, in full batches, and it dead-letters to the same durable queue.
pub fn batch_queue(queue: &str) -> String {
    format!("{queue}.express-batches")
}

/// Jobs of one batch, at most: the jobs of a commit under a moderate load fit in one, and a
/// dispatcher that takes a batch cannot take more than this many jobs from its fellows.
pub const MOST_BATCHED: usize = 16;

/// Jobs the express queue holds at most; publishes beyond are refused and go durably. The lane
/// is for latency, not for a backlog.
pub const MOST_WAITING: i64 = 1_000;

/// The API publishes to the lane only while fewer jobs than this wait in it (as last counted,
/// about once a second): a lane that dispatchers do not keep empty is closed until they do, and
/// new jobs go durably, in order behind the backlog.
pub const OPEN_BELOW: u32 = 100;

/// What the batch queue holds at most: as many jobs as [`MOST_WAITING`] when the batches are
/// full, so that batching never lets the lane hold more in memory.
pub const MOST_WAITING_BATCHES: i64 = MOST_WAITING / MOST_BATCHED as i64;

/// The API publishes batches only while fewer than this many wait: [`OPEN_BELOW`] jobs, in
/// full batches.
pub const BATCHES_OPEN_BELOW: u32 = OPEN_BELOW / MOST_BATCHED as u32;

/// How long a job may wait in the express queue; the broker then moves it to the durable
/// first-attempt queue.
pub const TTL: Duration = Duration::from_secs(10);

/// How long an express job waits in a dispatcher for a first-attempt slot; after that it moves
/// to its durable queue, so that no express job outlives its claim behind busy slots.
pub const SLOT_WAIT: Duration = Duration::from_secs(10);

/// Extra time in an express claim beyond the waits and two delivery timeouts: the context read,
/// the endpoint's turn and the record.
const CLAIM_MARGIN: Duration = Duration::from_secs(5);

/// How long the API claims an express job's outbox row: the longest the job can wait in the
/// queue and for a slot, then twice the longest attempt, and a margin. A relay publishes the
/// row again only after that, so a job still being attempted is not published twice; a job the
/// lane lost arrives that much later.
pub fn claim(delivery_timeout: Duration) -> Duration {
    TTL + SLOT_WAIT + delivery_timeout * 2 + CLAIM_MARGIN
}

const _: () = assert!(
    TTL.as_secs() + SLOT_WAIT.as_secs() + CLAIM_MARGIN.as_secs()
        > crate::timing::ACCEPT_CLAIM_SECS as u64,
    "an express claim is never shorter than the accepting API's claim"
);

/// A lane queue's arguments: `most_waiting` messages at most, refusing publishes when full,
/// and moving a message that waited past [`TTL`] (no dispatcher took it: their prefetch is full
/// of slow attempts) to the durable first-attempt `queue`, where the dispatcher that receives it
/// forgets its rows ([`left_the_lane`]).
fn arguments(queue: &str, most_waiting: i64) -> FieldTable {
    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString("".into()),
    );
    arguments.insert(
        "x-dead-letter-routing-key".into(),
        AMQPValue::LongString(queue.into()),
    );
    arguments.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("classic".into()),
    );
    arguments.insert("x-max-length".into(), AMQPValue::LongLongInt(most_waiting));
    arguments.insert(
        "x-overflow".into(),
        AMQPValue::LongString("reject-publish".into()),
    );
    arguments.insert(
        "x-message-ttl".into(),
        AMQPValue::LongLongInt(TTL.as_millis() as i64),
    );
    arguments
}

/// Opens a channel of its own on `connection` and declares the express queues there, so that
/// a broker that refuses them (a cluster whose node holding them is down) closes only this
/// channel and the durable queues go on.
pub async fn open_channel(connection: &Connection, queue: &str) -> Result<Channel, AmqpError> {
    let channel = connection.create_channel().await?;
    let lanes = [
        (express_queue(queue), MOST_WAITING),
        (batch_queue(queue), MOST_WAITING_BATCHES),
    ];
    for (lane, most_waiting) in lanes {
        channel
            .queue_declare(
                &lane,
                QueueDeclareOptions {
                    durable: true,
                    ..QueueDeclareOptions::default()
                },
                arguments(queue, most_waiting),
            )
            .await?;
    }
    Ok(channel)
}

/// Whether the lane's queue `lane` ([`express_queue`] or [`batch_queue`]) takes jobs now: a
/// dispatcher consumes it and fewer than `open_below` messages wait in it ([`OPEN_BELOW`],
/// [`BATCHES_OPEN_BELOW`]). False if it cannot be read.
pub async fn is_open(channel: &Channel, lane: &str, open_below: u32) -> bool {
    channel
        .queue_declare(
            lane,
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .is_ok_and(|state| state.consumer_count() > 0 && state.message_count() < open_below)
}

/// Moves an express job that cannot be run now (no slot in time, or its outcome could not be
/// recorded) to the durable queue it would have taken, with the broker's confirm, as the API
/// publishes any job; the caller then forgets its outbox row, and the job comes back with the
/// broker's delivery count and parking like any other. False if it could not be published: the
/// row stays, and the relay publishes it when its claim lapses.
pub async fn move_to_durable(
    link: &AmqpLink,
    mut carried: Carried,
    traceparent: Option<String>,
) -> bool {
    // The durable copy is read like any other: no context, and no copy of the secrets on disk.
    carried.forget_context();
    let moved = link
        .publish(&[Outgoing {
            carried,
            traceparent,
        }])
        .await;
    if let Err(err) = &moved {
        tracing::warn!(error = %err, "could not move an express job to its durable queue; the relay publishes it when its claim lapses");
    }
    moved.is_ok()
}

/// Whether a broker message of a durable queue is a job the lane moved there (it waited past
/// [`TTL`]): its outbox row is still there, and goes as soon as a dispatcher holds the job, now
/// safe in a durable queue.
pub fn left_the_lane(properties: &lapin::BasicProperties) -> bool {
    properties
        .headers()
        .as_ref()
        .and_then(|headers| headers.inner().get("x-first-death-queue"))
        .is_some_and(|queue| match queue {
            AMQPValue::LongString(name) => {
                let name = name.as_bytes();
                name.ends_with(b".express") || name.ends_with(b".express-batches")
            }
            _ => false,
        })
}

/// Longest wait for a subscription to the lane: a broker node that does not answer must not hold
/// up the consumer's other queues.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(3);

/// A dispatcher's subscription to the lane: its channel, and its consumers of single jobs and
/// of batches.
pub(crate) type Subscription = (Channel, lapin::Consumer, lapin::Consumer);

/// The tag of a dispatcher's consumer of batches, beside its consumer of single jobs `tag`.
pub(crate) fn batch_tag(tag: &str) -> String {
    format!("{tag}-batches")
}

/// Consumes the express lane on a channel of its own, so that a broker without it (or a cluster
/// whose node holding it is down) leaves the durable queues going; `None` then, and the
/// consumer's watchdog tries again. `tag` names the consumer of single jobs; that of batches
/// is named by [`batch_tag`].
pub(crate) async fn subscribe(
    connection: &Connection,
    topology: &Topology,
    tag: &str,
    prefetch: u16,
) -> Option<Subscription> {
    let subscribed = async {
        let lane = open_channel(connection, &topology.queue).await?;
        let queue = express_queue(&topology.queue);
        let singles = crate::consumer::consume(&lane, &queue, tag, prefetch).await?;
        // As many batches as single jobs: a batch holds its place until each of its jobs is
        // done, has run for `group::PATIENCE` or has left the lane, so fewer places would let a
        // few batches with slow receivers hold up the lane's next jobs. The extra jobs wait for
        // slots, at most `SLOT_WAIT`.
        let batches = crate::consumer::consume(
            &lane,
            &batch_queue(&topology.queue),
            &batch_tag(tag),
            prefetch,
        )
        .await?;
        Ok::<_, AmqpError>((lane, singles, batches))
    };
    match tokio::time::timeout(SUBSCRIBE_TIMEOUT, subscribed).await {
        Ok(Ok(subscribed)) => Some(subscribed),
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "cannot consume the express queue; first attempts come durably");
            None
        }
        Err(_) => {
            tracing::warn!("the express queue did not answer in time; first attempts come durably");
            None
        }
    }
}

/// The next job of the lane; never, without a subscription.
pub(crate) async fn next(
    subscription: &mut Option<Subscription>,
) -> Option<Result<Delivery, lapin::Error>> {
    match subscription {
        Some((_, singles, batches)) => tokio::select! {
            next = singles.next() => next,
            next = batches.next() => next,
        },
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_outlasts_the_queue_wait_and_two_attempts() {
        let claim = claim(Duration::from_secs(15));
        assert_eq!(claim, Duration::from_secs(55));
        assert!(claim > TTL + SLOT_WAIT + Duration::from_secs(30));
    }
}
