//! The RabbitMQ link. lapin does not reconnect by itself after a broker restart, so a
//! supervisor task owns the connection: it connects, declares the topology, enables publisher
//! confirms, then watches the connection and rebuilds everything with backoff when it drops.
//! Readiness probes read [`AmqpLink::is_connected`].

use std::sync::Arc;
use std::time::Duration;

use lapin::options::{BasicPublishOptions, QueueDeclareOptions};
use lapin::publisher_confirm::Confirmation;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use octohooks_domain::job::Carried;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::{Notify, RwLock};
use tokio_util::sync::CancellationToken;

mod supervisor;

use crate::express;
use crate::timing::CONFIRM_TIMEOUT;
use crate::topology::{fanout_queue, open_channel, retry_queue, Topology};

/// How often the supervisor checks that the connection is still up.
const WATCH_INTERVAL: Duration = Duration::from_millis(250);
/// Longest pause between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Why a publish did not happen.
#[derive(Debug, thiserror::Error)]
pub enum AmqpError {
    /// No connection to the broker right now.
    #[error("not connected to RabbitMQ")]
    NotConnected,
    /// The broker refused or failed the operation.
    #[error("RabbitMQ: {0}")]
    Broker(#[from] lapin::Error),
    /// The broker answered a publish with a nack.
    #[error("RabbitMQ refused a message")]
    Nacked,
    /// The broker returned a message no queue would take (the queue was deleted).
    #[error("RabbitMQ had no queue for a message")]
    Unroutable,
    /// The broker did not confirm in time.
    #[error("RabbitMQ did not confirm in time")]
    Timeout,
    /// A job could not be encoded.
    #[error("job encoding: {0}")]
    Encode(#[from] serde_json::Error),
}

/// Connection properties that run lapin's tasks and socket readiness on the caller's tokio
/// runtime. By default lapin brings its own executor and reactor threads, and every frame then
/// crossed two more threads (a wake-up and a context switch each) on its way to our tasks.
/// Must be called from within a tokio runtime.
pub fn connection_properties() -> ConnectionProperties {
    ConnectionProperties::default()
        .with_executor(tokio_executor_trait::Tokio::current())
        .with_reactor(tokio_reactor_trait::Tokio)
}

/// Opens a connection and a channel and declares the queues.
pub async fn connect(url: &str, topology: &Topology) -> Result<(Connection, Channel), AmqpError> {
    let connection = Connection::connect(url, connection_properties()).await?;
    let channel = open_channel(&connection, topology).await?;
    Ok((connection, channel))
}

/// Closes `connection` and waits for the client's IO thread to end, each for at most 2 s. The
/// thread does its last turn after the broker acknowledged the close; a process that exits
/// while it runs has it log errors about the runtime going away.
pub async fn close_connection(connection: Connection, reason: &str) {
    const LIMIT: Duration = Duration::from_secs(2);
    let _ = tokio::time::timeout(LIMIT, connection.close(200, reason)).await;
    // `run` joins the IO thread, a blocking wait: on a thread of its own, not the runtime's
    // blocking pool, which a runtime waits for when it shuts down (a broker that never
    // answers would then hold up the process's exit).
    let (joined, join) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let _ = connection.run();
        let _ = joined.send(());
    });
    let _ = tokio::time::timeout(LIMIT, join).await;
}

/// A job, or a group of them, to publish with the trace context it carries in the
/// `traceparent` message header.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// What the broker message carries.
    pub carried: Carried,
    /// W3C trace context of the request that caused it.
    pub traceparent: Option<String>,
}

/// The `traceparent` header of a consumed message, if any.
pub fn traceparent_of(properties: &BasicProperties) -> Option<String> {
    properties
        .headers()
        .as_ref()?
        .inner()
        .get("traceparent")
        .and_then(|value| match value {
            AMQPValue::LongString(text) => Some(text.to_string()),
            _ => None,
        })
}

/// How often the broker delivered this message before (its `x-delivery-count` header; 0 on a
/// first delivery).
pub fn delivery_count(properties: &BasicProperties) -> u32 {
    let Some(value) = properties
        .headers()
        .as_ref()
        .and_then(|headers| headers.inner().get("x-delivery-count"))
    else {
        return 0;
    };
    let count = match value {
        AMQPValue::LongLongInt(n) => *n,
        AMQPValue::LongInt(n) => i64::from(*n),
        AMQPValue::ShortInt(n) => i64::from(*n),
        AMQPValue::ShortShortInt(n) => i64::from(*n),
        AMQPValue::LongUInt(n) => i64::from(*n),
        AMQPValue::ShortUInt(n) => i64::from(*n),
        AMQPValue::ShortShortUInt(n) => i64::from(*n),
        _ => 0,
    };
    u32::try_from(count).unwrap_or(0)
}

struct LinkState {
    channel: RwLock<Option<Channel>>,
    broken: Notify,
    /// The express lane's channel, in confirm mode, while the broker has the queue.
    express: RwLock<Option<Channel>>,
    /// The express lane takes jobs (a dispatcher reads it, it is nearly empty), as last seen.
    express_open: AtomicBool,
    /// Of the lane, its batch queue takes jobs, as last seen.
    batches_open: AtomicBool,
    /// Cancelled once the supervisor has closed its channels and connection after shutdown.
    stopped: CancellationToken,
}

/// A supervised publishing connection, cheap to clone.
#[derive(Clone)]
pub struct AmqpLink {
    state: Arc<LinkState>,
    topology: Arc<Topology>,
    queue: Arc<str>,
    retry_queue: Arc<str>,
    fanout_queue: Arc<str>,
    express_queue: Arc<str>,
    batch_queue: Arc<str>,
    /// Keeps the express lane open (the API's link, with `OCTOHOOKS_EXPRESS_LANE`).
    lane: bool,
}

impl AmqpLink {
    /// Starts the supervisor; it runs until `shutdown` is cancelled.
    pub fn start(url: String, topology: Topology, shutdown: CancellationToken) -> Self {
        Self::start_inner(url, topology, false, shutdown)
    }

    /// [`AmqpLink::start`], and keeps the express lane ready for
    /// [`AmqpLink::publish_express`].
    pub fn start_with_lane(url: String, topology: Topology, shutdown: CancellationToken) -> Self {
        Self::start_inner(url, topology, true, shutdown)
    }

    fn start_inner(
        url: String,
        topology: Topology,
        lane: bool,
        shutdown: CancellationToken,
    ) -> Self {
        let link = Self {
            state: Arc::new(LinkState {
                channel: RwLock::new(None),
                broken: Notify::new(),
                express: RwLock::new(None),
                express_open: AtomicBool::new(false),
                batches_open: AtomicBool::new(false),
                stopped: CancellationToken::new(),
            }),
            queue: topology.queue.as_str().into(),
            retry_queue: retry_queue(&topology.queue).into(),
            fanout_queue: fanout_queue(&topology.queue).into(),
            express_queue: express::express_queue(&topology.queue).into(),
            batch_queue: express::batch_queue(&topology.queue).into(),
            topology: Arc::new(topology),
            lane,
        };
        tokio::spawn(supervisor::supervise(link.clone(), url, shutdown));
        link
    }

    /// Waits, up to `limit`, until the supervisor has closed its channels and its connection
    /// after shutdown. A process that exits before leaves the broker an abrupt disconnect, and
    /// the AMQP client logs errors about its runtime going away.
    pub async fn stopped(&self, limit: Duration) {
        let _ = tokio::time::timeout(limit, self.state.stopped.cancelled()).await;
    }

    /// True while a confirmed channel to the broker is open.
    pub async fn is_connected(&self) -> bool {
        self.state
            .channel
            .read()
            .await
            .as_ref()
            .is_some_and(|channel| channel.status().connected())
    }

    /// Jobs waiting in the queue, as the broker counts them (`None` while disconnected).
    pub async fn queue_depth(&self) -> Option<u32> {
        let channel = self.state.channel.read().await.clone()?;
        let queue = channel
            .queue_declare(
                &self.topology.queue,
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .ok()?;
        Some(queue.message_count())
    }

    /// Publishes the jobs as persistent messages and waits until the broker confirmed every one.
    pub async fn publish(&self, jobs: &[Outgoing]) -> Result<(), AmqpError> {
        let channel = self
            .state
            .channel
            .read()
            .await
            .clone()
            .ok_or(AmqpError::NotConnected)?;
        let route = |carried: &Carried| match carried {
            Carried::Group(_) => self.fanout_queue.clone(),
            Carried::Job(job) if job.goes_to_retry_queue() => self.retry_queue.clone(),
            // A batch never goes durably from here (its jobs leave the lane one by one); where
            // the lane dead-letters one.
            Carried::Job(_) | Carried::Batch(_) => self.queue.clone(),
        };
        let deadline = tokio::time::Instant::now() + CONFIRM_TIMEOUT;
        let result = match publish_each(&channel, jobs, route, PERSISTENT, deadline).await {
            (_, Some(err)) => Err(err),
            (taken, None) if taken.iter().all(|taken| *taken) => Ok(()),
            (_, None) => Err(AmqpError::Nacked),
        };
        if matches!(result, Err(AmqpError::Unroutable)) {
            // Someone deleted a queue: the new connection declares it again, and the relay
            // publishes the jobs anew.
            tracing::warn!(queue = %self.topology.queue, "a delivery queue was missing; declaring it again");
        }
        if matches!(
            result,
            Err(AmqpError::Broker(_) | AmqpError::Timeout | AmqpError::Unroutable)
        ) {
            self.state.broken.notify_one();
        }
        result
    }

    /// True while the express lane takes jobs: its queue is there, a dispatcher reads it and
    /// keeps it nearly empty (see [`crate::express`]).
    pub async fn express_open(&self) -> bool {
        self.state.express_open.load(Ordering::Relaxed) && self.state.express.read().await.is_some()
    }

    /// True while the lane's batch queue takes jobs: a dispatcher that reads batches consumes
    /// it and keeps it nearly empty.
    pub fn batches_open(&self) -> bool {
        self.state.batches_open.load(Ordering::Relaxed)
    }

    /// Publishes first attempts as transient messages to the express lane (batches to its
    /// batch queue, single jobs to the other) and waits for the broker's confirms; says which
    /// messages the lane took. The others (refused by a full lane, returned, unconfirmed) are
    /// to be published durably. A broker fault closes only the lane, never the durable link.
    pub async fn publish_express(&self, jobs: &[Outgoing]) -> Vec<bool> {
        let Some(channel) = self.state.express.read().await.clone() else {
            return vec![false; jobs.len()];
        };
        let deadline = tokio::time::Instant::now() + CONFIRM_TIMEOUT;
        let route = |carried: &Carried| match carried {
            Carried::Batch(_) => self.batch_queue.clone(),
            Carried::Job(_) | Carried::Group(_) => self.express_queue.clone(),
        };
        let (taken, fault) = publish_each(&channel, jobs, route, TRANSIENT, deadline).await;
        if let Some(err) = fault {
            tracing::debug!(error = %err, "the express lane failed; the supervisor opens it again");
            *self.state.express.write().await = None;
        }
        taken
    }
}

/// Publishes `jobs` on `channel`, each to the queue `route` names, and waits for every
/// confirmation until `deadline`; says which the broker took, and the fault that stopped it,
/// if any. A refusal of one job (a full queue) leaves the others taken.
async fn publish_each(
    channel: &Channel,
    jobs: &[Outgoing],
    route: impl Fn(&Carried) -> Arc<str>,
    delivery_mode: u8,
    deadline: tokio::time::Instant,
) -> (Vec<bool>, Option<AmqpError>) {
    let mut taken = vec![false; jobs.len()];
    let mut confirms = Vec::with_capacity(jobs.len());
    for (index, outgoing) in jobs.iter().enumerate() {
        let sent = async {
            let body = outgoing.carried.to_body()?;
            let properties = message_properties(outgoing, delivery_mode);
            let confirm = channel
                .basic_publish(
                    "",
                    &route(&outgoing.carried),
                    // Mandatory: a job that no queue takes comes back instead of vanishing.
                    BasicPublishOptions {
                        mandatory: true,
                        ..BasicPublishOptions::default()
                    },
                    &body,
                    properties,
                )
                .await?;
            Ok::<_, AmqpError>(confirm)
        };
        match tokio::time::timeout_at(deadline, sent).await {
            Ok(Ok(confirm)) => confirms.push((index, confirm)),
            Ok(Err(err)) => return (taken, Some(err)),
            Err(_) => return (taken, Some(AmqpError::Timeout)),
        }
    }
    for (index, confirm) in confirms {
        match tokio::time::timeout_at(deadline, confirm).await {
            Ok(Ok(Confirmation::Ack(None) | Confirmation::NotRequested)) => taken[index] = true,
            Ok(Ok(Confirmation::Ack(Some(_)))) => return (taken, Some(AmqpError::Unroutable)),
            Ok(Ok(Confirmation::Nack(_))) => {}
            Ok(Err(err)) => return (taken, Some(err.into())),
            Err(_) => return (taken, Some(AmqpError::Timeout)),
        }
    }
    (taken, None)
}

/// What every published job carries besides its body: delivery mode, content type and its
/// trace context.
fn message_properties(outgoing: &Outgoing, delivery_mode: u8) -> BasicProperties {
    let properties = BasicProperties::default()
        .with_delivery_mode(delivery_mode)
        .with_content_type("application/json".into());
    match &outgoing.traceparent {
        Some(traceparent) => {
            let mut headers = FieldTable::default();
            headers.insert(
                "traceparent".into(),
                AMQPValue::LongString(traceparent.as_str().into()),
            );
            properties.with_headers(headers)
        }
        None => properties,
    }
}

/// AMQP delivery modes: kept on disk, or in memory only.
const PERSISTENT: u8 = 2;
const TRANSIENT: u8 = 1;
