//! The outbox relay: moves delivery jobs from Postgres to RabbitMQ.
//!
//! The API publishes the jobs of a message right after committing it ([`publish_claimed`]);
//! the relay loop, run by every API and dispatcher process, picks up whatever that missed (the
//! broker was down, the process died) and the retries that have come due. A job leaves the
//! outbox only after the broker confirmed it, so a crash at any point leads to a second
//! publication, never to a lost job.

use std::time::Duration;

use octohooks_db::models::OutboxJob;
use octohooks_db::{outbox, pool, DbPool};
use octohooks_domain::job::{DeliveryJob, TriggerType, JOB_VERSION};
use tokio_util::sync::CancellationToken;

use crate::amqp::{AmqpLink, Outgoing};

/// Jobs claimed per relay pass.
const BATCH: i64 = 500;
/// How long a relay's claim on jobs lasts before another relay may take them.
const CLAIM_SECS: i32 = 30;
/// Pause between passes when there was nothing to do.
const IDLE_PAUSE: Duration = Duration::from_millis(200);

/// Turns an outbox row into the job published to the queue. A job with a trace gets an
/// `outbox.publish` span in it, and the job carries that span's context onwards, so a trace reads
/// request → publish → attempt.
pub fn to_job(row: &OutboxJob) -> Outgoing {
    let traceparent = row.traceparent.as_deref().and_then(|parent| {
        let span =
            tracing::info_span!("outbox.publish", job_id = row.id, message_id = %row.message_id);
        crate::telemetry::continue_trace(&span, Some(parent));
        span.in_scope(crate::telemetry::current_traceparent)
    });
    Outgoing {
        job: DeliveryJob {
            v: JOB_VERSION,
            job_id: row.id,
            message_id: row.message_id,
            endpoint_id: row.endpoint_id,
            attempt: u32::try_from(row.attempt).unwrap_or(0),
            trigger: TriggerType::from_stored(&row.trigger_type),
        },
        traceparent: traceparent.or_else(|| row.traceparent.clone()),
    }
}

/// Publishes jobs this process has claimed, then removes them from the outbox. On failure the
/// claims are released so that the next relay pass tries again as soon as the broker is back.
pub async fn publish_claimed(db: &DbPool, link: &AmqpLink, rows: &[OutboxJob]) -> bool {
    if rows.is_empty() {
        return true;
    }
    let jobs: Vec<Outgoing> = rows.iter().map(to_job).collect();
    let ids: Vec<i64> = rows.iter().map(|row| row.id).collect();
    let published = link.publish(&jobs).await;
    let outcome = match pool::connection(db).await {
        Ok(mut conn) => match &published {
            Ok(()) => outbox::remove(&mut conn, &ids).await,
            Err(_) => outbox::release(&mut conn, &ids).await,
        },
        Err(err) => Err(err),
    };
    if let Err(err) = &published {
        tracing::warn!(error = %err, jobs = ids.len(), "publish failed; the relay will retry");
    }
    if let Err(err) = outcome {
        // Harmless: a confirmed job left in the outbox is published again after its claim
        // lapses and the dispatcher drops the duplicate.
        tracing::warn!(error = %err, jobs = ids.len(), "could not update the outbox after publishing");
    }
    published.is_ok()
}

/// A pending delivery overdue by this much without a job anywhere is re-enqueued.
const STRANDED_AFTER_SECS: i32 = 15 * 60;
/// How often the relay looks for such deliveries.
const STRANDED_SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Publishes jobs claimed by this process in the background, many per broker round trip and
/// one outbox delete per batch. Requests hand their jobs over and answer at once: the jobs are
/// already durable in the outbox, so a process that dies with jobs in this queue loses nothing
/// (their claims lapse and any relay publishes them).
#[derive(Clone)]
pub struct Publisher {
    queue: tokio::sync::mpsc::Sender<Vec<OutboxJob>>,
}

/// Jobs handed over but not yet published, at most; beyond that, the relay takes over.
const PUBLISHER_BACKLOG: usize = 4096;
/// Jobs per publication batch, at most.
const PUBLISH_BATCH: usize = 1000;

impl Publisher {
    /// Starts the publishing task; it stops when every `Publisher` clone is dropped.
    pub fn start(db: DbPool, link: AmqpLink) -> Self {
        let (queue, mut jobs) = tokio::sync::mpsc::channel::<Vec<OutboxJob>>(PUBLISHER_BACKLOG);
        tokio::spawn(async move {
            while let Some(first) = jobs.recv().await {
                let mut batch = first;
                while batch.len() < PUBLISH_BATCH {
                    match jobs.try_recv() {
                        Ok(more) => batch.extend(more),
                        Err(_) => break,
                    }
                }
                publish_claimed(&db, &link, &batch).await;
            }
        });
        Self { queue }
    }

    /// Hands jobs over for publication. Never waits: when the backlog is full the jobs stay in
    /// the outbox and the relay publishes them once their claim lapses.
    pub fn enqueue(&self, jobs: Vec<OutboxJob>) {
        if jobs.is_empty() {
            return;
        }
        if self.queue.try_send(jobs).is_err() {
            tracing::warn!("publisher backlog full; the relay will publish these jobs");
        }
    }
}

/// Runs relay passes until `shutdown`; now and then also re-enqueues stranded deliveries.
pub async fn run(db: DbPool, link: AmqpLink, shutdown: CancellationToken) {
    let mut next_sweep = tokio::time::Instant::now();
    while !shutdown.is_cancelled() {
        if tokio::time::Instant::now() >= next_sweep {
            next_sweep += STRANDED_SWEEP_EVERY;
            sweep_stranded(&db).await;
        }
        let mut busy = false;
        if link.is_connected().await {
            match claim(&db).await {
                Ok(rows) => {
                    busy = rows.len() as i64 == BATCH;
                    if !rows.is_empty() {
                        tracing::debug!(jobs = rows.len(), "relaying due jobs");
                        busy &= publish_claimed(&db, &link, &rows).await;
                    }
                }
                Err(err) => tracing::warn!(error = %err, "relay could not read the outbox"),
            }
        }
        if !busy {
            tokio::select! {
                () = shutdown.cancelled() => {}
                () = tokio::time::sleep(IDLE_PAUSE) => {}
            }
        }
    }
}

async fn sweep_stranded(db: &DbPool) {
    let swept = match pool::connection(db).await {
        Ok(mut conn) => outbox::requeue_stranded(&mut conn, STRANDED_AFTER_SECS).await,
        Err(err) => Err(err),
    };
    match swept {
        Ok(0) => {}
        Ok(count) => tracing::warn!(count, "re-enqueued deliveries whose job went missing"),
        Err(err) => tracing::warn!(error = %err, "could not look for stranded deliveries"),
    }
}

async fn claim(db: &DbPool) -> octohooks_db::DbResult<Vec<OutboxJob>> {
    let mut conn = pool::connection(db).await?;
    outbox::claim_due(&mut conn, BATCH, CLAIM_SECS).await
}
