//! One connection's subscriptions: the queues consumed with their prefetch, a watchdog that
//! subscribes again when a queue forgot the consumer, and the drain on shutdown.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::{BasicCancelOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::message::{handle, park_after};
use super::{ConsumerConfig, JobHandler};
use crate::express;
use crate::link::{self as amqp, AmqpError};
use crate::topology::open_channel;

/// How often the consumer checks that its queues still exist and know it.
const WATCHDOG_EVERY: Duration = Duration::from_secs(5);
/// A consumer that has received nothing for this long, with no job in flight, is subscribed
/// again on a fresh channel. RabbitMQ (seen with 3.10) may not cancel the consumers of a quorum
/// queue that is deleted; once the queue is declared again under the same name, it hands jobs
/// to the stale subscription, which never sees them: they stay unacknowledged until that
/// channel closes. Replacing an idle channel bounds how long jobs can be stranded this way;
/// when idle, it costs a handful of broker round trips.
const RESUBSCRIBE_WHEN_IDLE: Duration = Duration::from_secs(20);
/// Unacknowledged jobs from the parked queue at once.
const PARKED_PREFETCH: u16 = 4;
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
pub(super) struct Session<'a, H> {
    pub(super) config: &'a ConsumerConfig,
    pub(super) handler: &'a H,
    pub(super) connected: &'a AtomicBool,
    pub(super) shutdown: &'a CancellationToken,
    pub(super) tracker: &'a TaskTracker,
    /// First attempts running at once, alone or grouped: a group's broker message takes one
    /// place of the prefetch however many jobs it carries, so the jobs take these.
    pub(super) first_slots: &'a Arc<Semaphore>,
}

impl<H: JobHandler> Session<'_, H> {
    /// Connects and keeps subscribing on that connection until it fails or shutdown.
    pub(super) async fn consume_on_new_connection(&self) -> Result<(), AmqpError> {
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
        crate::link::close_connection(connection, reason).await;
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
                            self.tracker.spawn(self.handle_express(delivery));
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
        if let Some((lane, _, _)) = &express {
            for tag in [express_tag.clone(), express::batch_tag(&express_tag)] {
                let cancel = lane.basic_cancel(&tag, BasicCancelOptions::default());
                let _ = tokio::time::timeout(CLOSE_TIMEOUT, cancel).await;
            }
        }
        self.finish(&ended, &channel, &tags).await;
        if let Some((lane, _, _)) = express {
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
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        handle(
            self.handler.clone(),
            delivery,
            0,
            Some(self.first_slots.clone()),
            self.config.hand_off_after,
            Some(super::message::Lane {
                link: self.config.link.clone(),
                tracker: self.tracker.clone(),
            }),
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
                // Closed before the connection, so that the connection's close finds no channel
                // still open (the client logs that as an error).
                let _ = tokio::time::timeout(CLOSE_TIMEOUT, channel.close(200, "bye")).await;
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
