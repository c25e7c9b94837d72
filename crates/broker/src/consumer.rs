//! The queue consumer: manual acks, bounded prefetch, a connection rebuilt with backoff when it
//! drops, and a drain on shutdown (stop taking jobs, finish the ones in flight, then close). It
//! decodes each job (or group of jobs, see [`crate::group`]), decides whether it is parked
//! (delivered too often, or from the parked queue), hands it to a [`JobHandler`], and acks or
//! requeues as the handler says.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
};
use lapin::types::FieldTable;
use octohooks_domain::job::{Carried, DeliveryJob};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::express;
use crate::link::{self as amqp, AmqpError};
use crate::topology::{open_channel, Topology};

/// What the handler does with the broker message once the job ran.
#[derive(Debug, PartialEq, Eq)]
pub enum Disposition {
    /// Done (delivered, failed for good, retry scheduled, parked, or nothing to do): acknowledge.
    Ack,
    /// Could not record the outcome (database trouble): requeue so it runs again.
    Requeue,
}

/// A job as the consumer hands it over.
#[derive(Debug)]
pub struct Incoming {
    /// The job.
    pub job: DeliveryJob,
    /// W3C trace context it carries.
    pub traceparent: Option<String>,
    /// The broker delivered it too often, or it comes from the parked queue: move it to the
    /// outbox rather than attempting it.
    pub park: bool,
    /// It came by the express lane and still has its outbox row: a handler that answers
    /// [`Disposition::Ack`] has removed that row (with the attempt's record when there is one,
    /// in the same commit, else by [`JobHandler::forget`]).
    pub express: bool,
}

/// What runs each job; cloned into the task of every job.
pub trait JobHandler: Clone + Send + Sync + 'static {
    /// Runs (or parks) one job and says what becomes of its broker message.
    fn handle(&self, incoming: Incoming) -> impl std::future::Future<Output = Disposition> + Send;

    /// Stores a copy of `job` in the outbox, due after `after`, so that its group's broker
    /// message can be acknowledged while the job's own attempt is still under way (or could
    /// not be recorded): the copy runs only if that attempt was not recorded by then. True
    /// once the copy is stored.
    fn hand_off(
        &self,
        job: &DeliveryJob,
        traceparent: Option<&str>,
        after: Duration,
    ) -> impl std::future::Future<Output = bool> + Send;

    /// Removes the outbox rows of jobs that came by the express lane and are done without a
    /// record that removed them (put back, handed off, dropped, moved to the durable queue),
    /// which the API left in the outbox in case the lane lost them ([`crate::express`]). A row
    /// whose removal is lost is published again when its claim lapses, and dropped as a
    /// duplicate.
    fn forget(&self, job_ids: Vec<i64>) -> impl std::future::Future<Output = ()> + Send;
}

/// Longest pause between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Unacknowledged jobs from the parked queue at once.
const PARKED_PREFETCH: u16 = 4;

/// Consumer configuration.
pub struct ConsumerConfig {
    /// RabbitMQ URL.
    pub url: String,
    /// The queues to consume (and declare).
    pub topology: Topology,
    /// Jobs at once: first attempts get three quarters, retries the rest.
    pub prefetch: u16,
    /// When the copy of a grouped job handed off to the outbox runs (see [`crate::group`]):
    /// after the longest an attempt can take, and some.
    pub hand_off_after: Duration,
    /// The process's publishing link: express jobs that cannot run move to their durable queue
    /// through it.
    pub link: crate::link::AmqpLink,
}

impl ConsumerConfig {
    /// The prefetch of the first-attempt queue and of the retry queue: retries get a quarter,
    /// so that retries of failing endpoints never hold every slot.
    fn shares(&self) -> (u16, u16) {
        let retry_prefetch = (self.prefetch / 4).max(1);
        let first_prefetch = self.prefetch.saturating_sub(retry_prefetch).max(1);
        (first_prefetch, retry_prefetch)
    }
}

/// Consumes until `shutdown`, then drains. `connected` mirrors the consumer's broker link.
pub async fn run<H: JobHandler>(
    config: ConsumerConfig,
    handler: H,
    connected: Arc<AtomicBool>,
    shutdown: CancellationToken,
) {
    let tracker = TaskTracker::new();
    let session = Session {
        config: &config,
        handler: &handler,
        connected: &connected,
        shutdown: &shutdown,
        tracker: &tracker,
        first_slots: &Arc::new(Semaphore::new(usize::from(config.shares().0))),
    };
    let mut backoff = Duration::from_millis(100);
    while !shutdown.is_cancelled() {
        match session.consume_on_new_connection().await {
            Ok(()) => backoff = Duration::from_millis(100),
            Err(err) => {
                tracing::warn!(error = %err, retry_in_ms = backoff.as_millis() as u64,
                    "consumer lost RabbitMQ; reconnecting");
                tokio::select! {
                    () = shutdown.cancelled() => {}
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
    tracker.close();
    tracker.wait().await;
}

/// How often the consumer checks that its queues still exist and know it.
const WATCHDOG_EVERY: Duration = Duration::from_secs(5);
/// A consumer that has received nothing for this long, with no job in flight, is subscribed
/// again on a fresh channel. RabbitMQ (seen with 3.10) may not cancel the consumers of a quorum
/// queue that is deleted; once the queue is declared again under the same name, it hands jobs
/// to the stale subscription, which never sees them: they stay unacknowledged until that
/// channel closes. Replacing an idle channel bounds how long jobs can be stranded this way;
/// when idle, it costs a handful of broker round trips.
const RESUBSCRIBE_WHEN_IDLE: Duration = Duration::from_secs(20);
/// Longest wait for the broker to close a channel or connection.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a subscription ended without an error.
enum SubscriptionEnd {
    /// Shutdown: the consumers were cancelled and the jobs in flight finished.
    Shutdown,
    /// The subscription was idle or cancelled by the broker: subscribe again.
    Resubscribe,
}

/// What every subscription of the consumer shares.
struct Session<'a, H> {
    config: &'a ConsumerConfig,
    handler: &'a H,
    connected: &'a AtomicBool,
    shutdown: &'a CancellationToken,
    tracker: &'a TaskTracker,
    /// First attempts running at once, alone or grouped: a group's broker message takes one
    /// place of the prefetch however many jobs it carries, so the jobs take these.
    first_slots: &'a Arc<Semaphore>,
}

impl<H: JobHandler> Session<'_, H> {
    /// Connects and keeps subscribing on that connection until it fails or shutdown.
    async fn consume_on_new_connection(&self) -> Result<(), AmqpError> {
        let connection =
            lapin::Connection::connect(&self.config.url, amqp::connection_properties()).await?;
        let mut first = true;
        let result = loop {
            match self.subscribe(&connection, first).await {
                Ok(SubscriptionEnd::Shutdown) => break Ok(()),
                Ok(SubscriptionEnd::Resubscribe) => first = false,
                Err(err) => break Err(err),
            }
        };
        self.connected.store(false, Ordering::Relaxed);
        let reason = if result.is_ok() {
            "shutting down"
        } else {
            "reconnecting"
        };
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, connection.close(200, reason)).await;
        result
    }

    /// Subscribes to the three queues on a new channel and hands each job to a task of its own.
    async fn subscribe(
        &self,
        connection: &lapin::Connection,
        first_on_connection: bool,
    ) -> Result<SubscriptionEnd, AmqpError> {
        let config = self.config;
        let channel = open_channel(connection, &config.topology).await?;
        // The prefetch applies per consumer.
        let (first_prefetch, retry_prefetch) = config.shares();
        let tag = format!("octohooks-dispatcher-{}", uuid::Uuid::new_v4());
        let [first_queue, retry_queue, parked_queue, fanout_queue] = config.topology.queues();
        let tags = [
            tag.clone(),
            format!("{tag}-retry"),
            format!("{tag}-parked"),
            format!("{tag}-fanout"),
        ];
        let mut firsts = consume(&channel, &first_queue, &tags[0], first_prefetch).await?;
        let mut retries = consume(&channel, &retry_queue, &tags[1], retry_prefetch).await?;
        // Parked jobs only move to the outbox: a few at a time is plenty.
        let mut parked = consume(&channel, &parked_queue, &tags[2], PARKED_PREFETCH).await?;
        // Groups wait for their jobs' turn at `first_slots`, and a slow job is handed off: as
        // many groups as there are first-attempt slots keep them busy.
        let mut fanouts = consume(&channel, &fanout_queue, &tags[3], first_prefetch).await?;
        // The express lane on a channel of its own: without it, the durable queues go on.
        let express_tag = format!("{tag}-express");
        let express_return = Arc::new(express::Return {
            link: config.link.clone(),
        });
        let mut express =
            express::subscribe(connection, &config.topology, &express_tag, first_prefetch).await;
        self.connected.store(true, Ordering::Relaxed);
        if first_on_connection {
            tracing::info!(queue = %config.topology.queue, prefetch = config.prefetch, "consuming delivery jobs");
        } else {
            tracing::debug!(queue = %config.topology.queue, "subscribed again on a fresh channel");
        }
        let mut watchdog = tokio::time::interval(WATCHDOG_EVERY);
        watchdog.tick().await;
        let queues = config.topology.queues();
        let mut last_first = Instant::now();
        let mut last_retry = Instant::now();
        let ended = loop {
            // Whether the job is a first attempt (alone or grouped), which takes a slot; retries
            // are bounded by their own prefetch.
            let (next, first) = tokio::select! {
                () = self.shutdown.cancelled() => break Ok(SubscriptionEnd::Shutdown),
                next = firsts.next() => { last_first = Instant::now(); (next, true) }
                next = fanouts.next() => { last_first = Instant::now(); (next, true) }
                next = express::next(&mut express) => {
                    last_first = Instant::now();
                    match next {
                        Some(Ok(delivery)) => {
                            self.tracker.spawn(self.handle_express(delivery, express_return.clone()));
                        }
                        other => {
                            // The lane's channel closed, or its queue was deleted: go on
                            // without it until the watchdog subscribes again.
                            if let Some(Err(err)) = other {
                                tracing::warn!(error = %err, "lost the express queue; first attempts come durably");
                            }
                            express = None;
                        }
                    }
                    continue;
                }
                next = retries.next() => { last_retry = Instant::now(); (next, false) }
                next = parked.next() => match next {
                    Some(Ok(delivery)) => {
                        self.tracker.spawn(self.handle(delivery, 0, false));
                        continue;
                    }
                    other => (other, false),
                },
                _ = watchdog.tick() => {
                    // A queue deleted under us may leave the consumer without deliveries:
                    // check that the queues exist and have consumers, and replace a
                    // subscription that has been idle for long.
                    if let Err(err) = still_consuming(&channel, &queues).await {
                        break Err(err);
                    }
                    if express.is_none() {
                        express = express::subscribe(connection, &config.topology, &express_tag, first_prefetch).await;
                    }
                    let idle = last_first.elapsed().max(last_retry.elapsed());
                    if idle >= RESUBSCRIBE_WHEN_IDLE && self.tracker.is_empty() {
                        break Ok(SubscriptionEnd::Resubscribe);
                    }
                    continue;
                }
            };
            match next {
                Some(Ok(delivery)) => {
                    self.tracker
                        .spawn(self.handle(delivery, park_after(&config.topology), first));
                }
                Some(Err(err)) => break Err(err.into()),
                None => {
                    // The broker cancelled a consumer (its queue was deleted). Closing the
                    // channel returns its unacknowledged jobs to their queues; a job whose
                    // attempt is under way may then be attempted a second time.
                    tracing::warn!(queue = %config.topology.queue, "RabbitMQ cancelled a consumer; subscribing again");
                    break Ok(SubscriptionEnd::Resubscribe);
                }
            }
        };
        if let Some((lane, _)) = &express {
            let _ = lane
                .basic_cancel(&express_tag, BasicCancelOptions::default())
                .await;
        }
        self.finish(&ended, &channel, &tags).await;
        if let Some((lane, _)) = express {
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, lane.close(200, "bye")).await;
        }
        ended
    }

    /// The task that runs one broker message.
    fn handle(
        &self,
        delivery: Delivery,
        park_after: u32,
        first: bool,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        handle(
            self.handler.clone(),
            delivery,
            park_after,
            first.then(|| self.first_slots.clone()),
            self.config.hand_off_after,
            None,
        )
    }

    /// The task that runs one broker message of the express lane.
    fn handle_express(
        &self,
        delivery: Delivery,
        lane: Arc<express::Return>,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        handle(
            self.handler.clone(),
            delivery,
            0,
            Some(self.first_slots.clone()),
            self.config.hand_off_after,
            Some(lane),
        )
    }

    /// Ends a subscription: on shutdown, stops taking jobs and waits for those in flight; on
    /// a resubscription, closes the channel so that what it held goes back to the queues.
    async fn finish(
        &self,
        ended: &Result<SubscriptionEnd, AmqpError>,
        channel: &lapin::Channel,
        tags: &[String],
    ) {
        match ended {
            Ok(SubscriptionEnd::Shutdown) => {
                tracing::info!(
                    in_flight = self.tracker.len(),
                    "stopping: no new jobs, finishing in-flight ones"
                );
                for tag in tags {
                    let _ = channel
                        .basic_cancel(tag, BasicCancelOptions::default())
                        .await;
                }
                self.tracker.close();
                self.tracker.wait().await;
                tracing::info!("drained");
            }
            Ok(SubscriptionEnd::Resubscribe) => {
                let _ =
                    tokio::time::timeout(CLOSE_TIMEOUT, channel.close(200, "resubscribing")).await;
            }
            Err(_) => {}
        }
    }
}

/// Starts a consumer of `queue` with its own prefetch (the prefetch applies per consumer).
pub(crate) async fn consume(
    channel: &lapin::Channel,
    queue: &str,
    tag: &str,
    prefetch: u16,
) -> Result<lapin::Consumer, AmqpError> {
    channel
        .basic_qos(prefetch, BasicQosOptions::default())
        .await?;
    Ok(channel
        .basic_consume(
            queue,
            tag,
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?)
}

async fn still_consuming(channel: &lapin::Channel, queues: &[String]) -> Result<(), AmqpError> {
    for queue in queues {
        let state = channel
            .queue_declare(
                queue,
                lapin::options::QueueDeclareOptions {
                    passive: true,
                    ..lapin::options::QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        if state.consumer_count() == 0 {
            return Err(AmqpError::NotConnected);
        }
    }
    Ok(())
}

/// Deliveries of one broker message after which its job is parked in the outbox: half the
/// queues' limit, so that parking comes long before the broker moves it on. (Jobs of the
/// parked queue are parked at once: `handle` gets 0.)
fn park_after(topology: &Topology) -> u32 {
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
            let _slot = crate::group::take_slot(slots).await;
            let incoming = Incoming {
                job,
                traceparent,
                park,
                express: false,
            };
            handler.handle(incoming).await
        }
        Carried::Group(group) => {
            crate::group::run(handler, &group, traceparent, park, slots, hand_off_after).await
        }
    }
}

/// Runs a broker message and acknowledges or requeues it; a message of the express lane
/// (`express`) goes to [`run_express`].
async fn handle<H: JobHandler>(
    handler: H,
    delivery: Delivery,
    park_after: u32,
    slots: Option<Arc<Semaphore>>,
    hand_off_after: Duration,
    express: Option<Arc<express::Return>>,
) {
    let delivery_count = amqp::delivery_count(&delivery.properties);
    let traceparent = amqp::traceparent_of(&delivery.properties);
    let carried = match Carried::read(&delivery.data) {
        Ok(carried) => carried,
        Err(err) => {
            tracing::error!(error = %err, "dropping a broker message that is no job of this version");
            ack(&delivery).await;
            return;
        }
    };
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
/// then the message acknowledged. A job that gets no first-attempt slot within
/// [`express::SLOT_WAIT`], or whose outcome could not be recorded, moves to its durable queue
/// (confirmed) and is forgotten likewise; the lane counts no deliveries, so nothing is parked
/// from it.
async fn run_express<H: JobHandler>(
    handler: H,
    delivery: &Delivery,
    run: ExpressRun,
    lane: &express::Return,
) {
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
            let Ok(_slot) = taken else {
                return leave_lane(&handler, delivery, lane, job_ids).await;
            };
            let incoming = Incoming {
                job,
                traceparent,
                park: false,
                express: true,
            };
            match handler.handle(incoming).await {
                Disposition::Ack => return ack(delivery).await,
                Disposition::Requeue => Disposition::Requeue,
            }
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
        Disposition::Requeue => leave_lane(&handler, delivery, lane, job_ids).await,
    }
}

/// Moves an express message's job to its durable queue, forgets its rows once it is there, and
/// acknowledges the message. The job is read again from the message: only this rare path needs
/// it after it ran.
async fn leave_lane<H: JobHandler>(
    handler: &H,
    delivery: &Delivery,
    lane: &express::Return,
    job_ids: Vec<i64>,
) {
    if let Ok(carried) = Carried::read(&delivery.data) {
        let traceparent = amqp::traceparent_of(&delivery.properties);
        if express::move_to_durable(&lane.link, carried, traceparent).await {
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
