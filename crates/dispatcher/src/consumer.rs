//! The queue consumer: manual acks, bounded prefetch, a connection rebuilt with backoff when it
//! drops, and a drain on shutdown (stop taking jobs, finish the ones in flight, then close).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
};
use lapin::types::FieldTable;
use octohooks_domain::job::{DeliveryJob, JOB_VERSION};
use octohooks_platform::{amqp, telemetry};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument as _;

use crate::deliver::{Deliverer, Disposition};

/// Longest pause between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Consumer configuration.
pub struct ConsumerConfig {
    /// RabbitMQ URL.
    pub url: String,
    /// Queue to consume.
    pub queue: String,
    /// Unacknowledged jobs at once.
    pub prefetch: u16,
}

/// Consumes until `shutdown`, then drains. `connected` mirrors the consumer's broker link.
pub async fn run(
    config: ConsumerConfig,
    deliverer: Deliverer,
    connected: Arc<AtomicBool>,
    shutdown: CancellationToken,
) {
    let tracker = TaskTracker::new();
    let mut backoff = Duration::from_millis(100);
    while !shutdown.is_cancelled() {
        match consume_once(&config, &deliverer, &connected, &shutdown, &tracker).await {
            Ok(()) => backoff = Duration::from_millis(100),
            Err(err) => {
                connected.store(false, Ordering::Relaxed);
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

async fn consume_once(
    config: &ConsumerConfig,
    deliverer: &Deliverer,
    connected: &AtomicBool,
    shutdown: &CancellationToken,
    tracker: &TaskTracker,
) -> Result<(), amqp::AmqpError> {
    let (connection, channel) = amqp::connect(&config.url, &config.queue).await?;
    // The prefetch applies per consumer: first attempts get three quarters of it, retries the
    // rest, so retries of failing endpoints never hold every slot.
    let retry_prefetch = (config.prefetch / 4).max(1);
    let first_prefetch = config.prefetch.saturating_sub(retry_prefetch).max(1);
    let tag = format!("octohooks-dispatcher-{}", uuid::Uuid::new_v4());
    let retry_tag = format!("{tag}-retry");
    channel
        .basic_qos(first_prefetch, BasicQosOptions::default())
        .await?;
    let first = channel
        .basic_consume(
            &config.queue,
            &tag,
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    channel
        .basic_qos(retry_prefetch, BasicQosOptions::default())
        .await?;
    let retries = channel
        .basic_consume(
            &amqp::retry_queue(&config.queue),
            &retry_tag,
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let mut consumer = futures::stream::select(first, retries);
    connected.store(true, Ordering::Relaxed);
    tracing::info!(queue = %config.queue, prefetch = config.prefetch, "consuming delivery jobs");
    let mut watchdog = tokio::time::interval(WATCHDOG_EVERY);
    watchdog.tick().await;
    let queues = [config.queue.clone(), amqp::retry_queue(&config.queue)];
    let result = loop {
        let next = tokio::select! {
            () = shutdown.cancelled() => break Ok(()),
            next = consumer.next() => next,
            _ = watchdog.tick() => {
                // A queue deleted under us may leave the consumer silently without deliveries:
                // check that both queues exist and still have us as a consumer.
                if let Err(err) = still_consuming(&channel, &queues).await {
                    break Err(err);
                }
                continue;
            }
        };
        match next {
            Some(Ok(delivery)) => {
                let deliverer = deliverer.clone();
                tracker.spawn(handle(deliverer, delivery));
            }
            Some(Err(err)) => break Err(err.into()),
            None => break Err(amqp::AmqpError::NotConnected),
        }
    };
    if result.is_err() {
        let _ = connection.close(200, "reconnecting").await;
    }
    if shutdown.is_cancelled() {
        tracing::info!(
            in_flight = tracker.len(),
            "stopping: no new jobs, finishing in-flight ones"
        );
        for tag in [&tag, &retry_tag] {
            let _ = channel
                .basic_cancel(tag, BasicCancelOptions::default())
                .await;
        }
        tracker.close();
        tracker.wait().await;
        let _ = connection.close(200, "shutting down").await;
        tracing::info!("drained");
    }
    connected.store(false, Ordering::Relaxed);
    result
}

/// How often the consumer checks that its queues still exist and know it.
const WATCHDOG_EVERY: Duration = Duration::from_secs(5);

async fn still_consuming(
    channel: &lapin::Channel,
    queues: &[String],
) -> Result<(), amqp::AmqpError> {
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
            return Err(amqp::AmqpError::NotConnected);
        }
    }
    Ok(())
}

async fn handle(deliverer: Deliverer, delivery: Delivery) {
    let traceparent = amqp::traceparent_of(&delivery.properties);
    let disposition = match serde_json::from_slice::<DeliveryJob>(&delivery.data) {
        Ok(job) if job.v == JOB_VERSION => {
            let span = tracing::info_span!(
                "delivery.attempt",
                message_id = %job.message_id,
                endpoint_id = %job.endpoint_id,
                trigger = job.trigger.as_str(),
                attempt = job.attempt,
                trace_id = tracing::field::Empty,
            );
            telemetry::continue_trace(&span, traceparent.as_deref());
            if let Some(trace_id) = telemetry::trace_id(&span) {
                span.record("trace_id", trace_id);
            }
            deliverer
                .run(&job, traceparent.as_deref())
                .instrument(span)
                .await
        }
        Ok(job) => {
            tracing::error!(
                version = job.v,
                "dropping a job of an unknown schema version"
            );
            Disposition::Ack
        }
        Err(err) => {
            tracing::error!(error = %err, "dropping a job that is not valid JSON");
            Disposition::Ack
        }
    };
    let result = match disposition {
        Disposition::Ack => delivery.ack(BasicAckOptions::default()).await,
        Disposition::Requeue => {
            // Give the database a moment before the job comes around again.
            tokio::time::sleep(Duration::from_secs(1)).await;
            delivery
                .nack(BasicNackOptions {
                    requeue: true,
                    ..BasicNackOptions::default()
                })
                .await
        }
    };
    if let Err(err) = result {
        // The broker will redeliver the job; the dispatcher drops it as a duplicate if needed.
        tracing::warn!(error = %err, "could not acknowledge a job");
    }
}
