//! The express lane for first attempts: a queue that holds jobs in memory only, for the jobs
//! whose outbox rows stay in Postgres until a dispatcher is done with them.
//!
//! A job published to a quorum queue is confirmed, and handed to a consumer, only after the
//! queue's Raft log reached the disk: a second durable write, one after Postgres's commit, on
//! the path of every message. The express lane skips it without giving up a promise. The API
//! claims a first attempt's outbox row for [`claim`] (longer than the job can take from
//! publication to acknowledgement), publishes it as a transient message to the express queue,
//! and leaves the row where it is. The dispatcher that acknowledges the job removes the row
//! ([`crate::consumer::JobHandler::forget`]). Whatever loses the job on the way (a broker
//! restart, a dispatcher that dies, a message that waited past [`TTL`]) leaves the row, whose
//! claim lapses, and the relay publishes it durably like any other.
//!
//! The lane is used only while a dispatcher consumes it: dispatchers of the version before it
//! (during a rolling upgrade) never read it, and with none consuming, the API publishes to the
//! durable queues as before. A full express queue refuses a publish (`reject-publish`), and the
//! API publishes those jobs durably instead, so a backlog never builds up in memory.

use std::time::Duration;

use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::{BasicPublishOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection};
use octohooks_domain::job::Carried;

use crate::link::AmqpError;
use crate::topology::{fanout_queue, Topology};

/// The express queue of the deployment whose first-attempt queue is `queue`.
pub fn express_queue(queue: &str) -> String {
    format!("{queue}.express")
}

/// Jobs the express queue holds at most; publishes beyond are refused and go durably. The lane
/// is for latency, not for a backlog.
pub const MOST_WAITING: i64 = 1_000;

/// The API publishes to the lane only while fewer jobs than this wait in it (as last counted,
/// about once a second): a lane that dispatchers do not keep empty is closed until they do, and
/// new jobs go durably, in order behind the backlog.
pub const OPEN_BELOW: u32 = 100;

/// How long a job may wait in the express queue; the broker drops it after that, and the relay
/// publishes its row once the claim lapsed.
pub const TTL: Duration = Duration::from_secs(20);

/// Extra time in an express claim beyond the queue's wait and two delivery timeouts: slot
/// waits, the context read and the record.
const CLAIM_MARGIN: Duration = Duration::from_secs(5);

/// How long the API claims an express job's outbox row: the longest the job can wait in the
/// queue, then twice the longest attempt, and a margin. A relay publishes the row again only
/// after that, so a job still being attempted is never published twice; a job the lane lost
/// arrives that much later.
pub fn claim(delivery_timeout: Duration) -> Duration {
    TTL + delivery_timeout * 2 + CLAIM_MARGIN
}

const _: () = assert!(
    TTL.as_secs() + CLAIM_MARGIN.as_secs() > crate::timing::ACCEPT_CLAIM_SECS as u64,
    "an express claim is never shorter than the accepting API's claim"
);

fn arguments() -> FieldTable {
    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("classic".into()),
    );
    arguments.insert("x-max-length".into(), AMQPValue::LongLongInt(MOST_WAITING));
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

/// Opens a channel of its own on `connection` and declares the express queue there, so that a
/// broker that refuses the queue (a cluster whose node holding it is down) closes only this
/// channel and the durable queues go on.
pub async fn open_channel(connection: &Connection, queue: &str) -> Result<Channel, AmqpError> {
    let channel = connection.create_channel().await?;
    channel
        .queue_declare(
            &express_queue(queue),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            arguments(),
        )
        .await?;
    Ok(channel)
}

/// Whether the lane takes jobs now: a dispatcher consumes it and it is nearly empty
/// ([`OPEN_BELOW`]). False if it cannot be read.
pub async fn is_open(channel: &Channel, queue: &str) -> bool {
    channel
        .queue_declare(
            &express_queue(queue),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .is_ok_and(|state| state.consumer_count() > 0 && state.message_count() < OPEN_BELOW)
}

/// The durable queue an express broker message would have gone to: groups to the fan-out
/// queue, single jobs to the first-attempt queue.
pub fn durable_queue(queue: &str, carried: &Carried) -> String {
    match carried {
        Carried::Group(_) => fanout_queue(queue),
        Carried::Job(_) => queue.to_owned(),
    }
}

/// The header that marks a job moved from the lane to a durable queue: its outbox row is still
/// there, and whoever acknowledges it removes the row as for a job of the lane.
const MOVED_HEADER: &str = "octohooks-express-row";

/// Whether a broker message is a job moved from the lane (see [`move_to_durable`]).
pub fn was_moved(properties: &BasicProperties) -> bool {
    properties
        .headers()
        .as_ref()
        .is_some_and(|headers| headers.inner().contains_key(MOVED_HEADER))
}

/// Moves an express job that could not be finished (its outcome could not be recorded) to
/// `target`, its [`durable_queue`], on `channel`, so that it comes back with the broker's
/// delivery count and parking like any other, marked so that its outbox row goes once it is
/// done. Unconfirmed: if this publish is lost, the job's outbox row is still there and the
/// relay publishes it when its claim lapses.
pub async fn move_to_durable(
    channel: &Channel,
    target: &str,
    body: &[u8],
    properties: BasicProperties,
) -> Result<(), AmqpError> {
    let mut headers = properties.headers().clone().unwrap_or_default();
    headers.insert(MOVED_HEADER.into(), AMQPValue::Boolean(true));
    let properties = properties.with_headers(headers);
    channel
        .basic_publish(
            "",
            target,
            BasicPublishOptions::default(),
            body,
            properties.with_delivery_mode(2),
        )
        .await?;
    Ok(())
}

/// Where an express job that cannot be finished goes: the durable queue it would have taken,
/// published on the consumer's channel.
pub(crate) struct Return {
    pub(crate) channel: Channel,
    pub(crate) queue: String,
}

/// A dispatcher's subscription to the lane: its channel and its consumer.
pub(crate) type Subscription = (Channel, lapin::Consumer);

/// Consumes the express lane on a channel of its own, so that a broker without it (or a cluster
/// whose node holding it is down) leaves the durable queues going; `None` then, and the
/// consumer's watchdog tries again.
pub(crate) async fn subscribe(
    connection: &Connection,
    topology: &Topology,
    tag: &str,
    prefetch: u16,
) -> Option<Subscription> {
    let subscribed = async {
        let lane = open_channel(connection, &topology.queue).await?;
        let queue = express_queue(&topology.queue);
        let consumer = crate::consumer::consume(&lane, &queue, tag, prefetch).await?;
        Ok::<_, AmqpError>((lane, consumer))
    };
    match subscribed.await {
        Ok(subscribed) => Some(subscribed),
        Err(err) => {
            tracing::warn!(error = %err, "cannot consume the express queue; first attempts come durably");
            None
        }
    }
}

/// The next job of the lane; never, without a subscription.
pub(crate) async fn next(
    subscription: &mut Option<Subscription>,
) -> Option<Result<Delivery, lapin::Error>> {
    match subscription {
        Some((_, consumer)) => consumer.next().await,
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
        assert!(claim > TTL + Duration::from_secs(30));
    }
}
