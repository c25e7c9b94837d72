//! The delivery queues and how they are declared: every process declares them alike, and a
//! queue declared by an earlier version (without the arguments of today) is used as it is.

use lapin::options::QueueDeclareOptions;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection};

use crate::link::AmqpError;

/// The parked queue's delivery limit: as good as none (a parked job is requeued every 30 s
/// while Postgres is away: years), but explicit, since RabbitMQ 4 sets 20 by default.
const PARKED_DELIVERY_LIMIT: u32 = 1_000_000;

/// The queue that carries retries of `queue`. Retries wait apart from first attempts so that an
/// endpoint that keeps failing cannot make everyone else's new messages queue behind its retries;
/// dispatchers give it a smaller share of their prefetch.
pub fn retry_queue(queue: &str) -> String {
    format!("{queue}.retry")
}

/// The queue that carries groups of first attempts of one message to several endpoints
/// ([`octohooks_domain::job::JobGroup`]). Apart from `queue` because a dispatcher of the version
/// before groups would drop one: during a rolling upgrade it never sees this queue, and groups
/// wait there for the first dispatcher that reads them.
pub fn fanout_queue(queue: &str) -> String {
    format!("{queue}.fanout")
}

/// The queue where jobs delivered too often wait until a dispatcher moves them to the outbox.
pub fn parked_queue(queue: &str) -> String {
    format!("{queue}.parked")
}

/// The delivery queues, declared alike by every process that uses them, all durable quorum
/// queues (replicated, surviving broker restarts): `queue` for first attempts, its retry
/// queue, the parked queue, and the fan-out queue of grouped first attempts. A job delivered
/// more than `delivery_limit` times (requeued over and over while the database is away, or held
/// by dispatchers that died) moves from the first-attempt or fan-out queue to the retry queue,
/// and from there to the parked queue, which
/// dispatchers empty into the outbox; so the broker never drops a job at its limit, as
/// RabbitMQ 4 does after 20 deliveries by default. (The chain has no cycle: RabbitMQ drops a
/// message that is dead-lettered back to a queue it left for the same reason.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    /// The first-attempt queue's name.
    pub queue: String,
    /// Deliveries of one broker message before it moves to the other queue.
    pub delivery_limit: u32,
}

/// Every queue that the services declare for `queue`: first attempts, retries, parked,
/// fan-out, and the express lane's two ([`crate::express`]). Whoever removes a deployment's
/// queues (tests, the bench) removes all of these, or leaves queues behind that cost the broker
/// memory and time.
pub fn delivery_queues(queue: &str) -> [String; 6] {
    [
        queue.to_owned(),
        retry_queue(queue),
        parked_queue(queue),
        fanout_queue(queue),
        crate::express::express_queue(queue),
        crate::express::batch_queue(queue),
    ]
}

impl Topology {
    /// The delivery queues as both services declare them, from their settings.
    pub fn of(settings: &octohooks_platform::Settings) -> Self {
        Self {
            queue: settings.queue_name.clone(),
            delivery_limit: settings.queue_delivery_limit,
        }
    }

    /// The durable queues: first attempts, retries, parked, fan-out.
    pub fn queues(&self) -> [String; 4] {
        [
            self.queue.clone(),
            retry_queue(&self.queue),
            parked_queue(&self.queue),
            fanout_queue(&self.queue),
        ]
    }

    pub(crate) fn arguments(&self, queue: &str) -> FieldTable {
        let [first, retry, parked, fanout] = self.queues();
        let (limit, next) = if queue == first || queue == fanout {
            (self.delivery_limit, Some(retry))
        } else if queue == retry {
            (self.delivery_limit, Some(parked))
        } else {
            // Parked jobs are requeued only while the outbox cannot take them.
            (PARKED_DELIVERY_LIMIT, None)
        };
        let mut arguments = FieldTable::default();
        arguments.insert(
            "x-queue-type".into(),
            AMQPValue::LongString("quorum".into()),
        );
        arguments.insert(
            "x-delivery-limit".into(),
            AMQPValue::LongLongInt(i64::from(limit)),
        );
        if let Some(next) = next {
            arguments.insert(
                "x-dead-letter-exchange".into(),
                AMQPValue::LongString("".into()),
            );
            arguments.insert(
                "x-dead-letter-routing-key".into(),
                AMQPValue::LongString(next.into()),
            );
        }
        arguments
    }
}

/// Opens a channel on `connection` and declares both queues, so that a channel replaced on a
/// live connection finds its queues even if they were deleted meanwhile.
///
/// Queues declared by an earlier version have no delivery limit or dead-letter target, and
/// RabbitMQ refuses to declare an existing queue with other arguments (closing the channel):
/// such queues are used as they are, with a warning that names the policy that adds both.
pub async fn open_channel(
    connection: &Connection,
    topology: &Topology,
) -> Result<Channel, AmqpError> {
    let mut channel = connection.create_channel().await?;
    let mut refused = None;
    for queue in topology.queues() {
        if let Err(err) = declare(&channel, &queue, topology.arguments(&queue)).await {
            // The broker closed the channel; the queue may exist with other arguments.
            channel = connection.create_channel().await?;
            let passive = QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            };
            if channel
                .queue_declare(&queue, passive, FieldTable::default())
                .await
                .is_err()
            {
                return Err(err);
            }
            refused = Some(err);
        }
    }
    if let Some(err) = refused {
        tracing::warn!(error = %err, queue = %topology.queue,
            "the delivery queues were declared without a delivery limit and dead-letter target; \
             add them with a policy (see proto-docs/queue.md, \"Redelivered jobs\")");
    }
    Ok(channel)
}

async fn declare(channel: &Channel, queue: &str, arguments: FieldTable) -> Result<(), AmqpError> {
    channel
        .queue_declare(
            queue,
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            arguments,
        )
        .await?;
    Ok(())
}
