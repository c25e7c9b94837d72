//! One job, start to finish: read what the attempt needs, take the endpoint's slot, sign and
//! send ([`request`]), record the outcome and schedule the retry ([`outcome`]). No database
//! connection is held while the HTTP request is in flight.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use octohooks_db::deliveries::{self, JobContext, JobKey};
use octohooks_db::fairness::Deferral;
use octohooks_db::{pool, DbError, DbPool};
use octohooks_domain::job::{DeliveryJob, TriggerType};
use octohooks_domain::retry::RetrySchedule;
use octohooks_domain::status::DestinationStatus;
use octohooks_platform::metrics::{Metrics, Stage};
use tokio::sync::OwnedSemaphorePermit;

use crate::batched::{ContextReader, Deferrer, Recorder};
use crate::fairness::{Admission, Fairness, WaitReason};
use crate::http::WebhookClient;

mod carried;
mod outcome;
mod request;

/// The `user-agent` of every delivery.
pub const USER_AGENT: &str = concat!("octohooks/", env!("CARGO_PKG_VERSION"));
/// How long a job parked for being redelivered too often waits in the outbox.
pub const PARKED_FOR: Duration = Duration::from_secs(30);

pub use octohooks_broker::consumer::Disposition;

/// What the dispatcher needs to deliver.
#[derive(Clone)]
pub struct Deliverer {
    /// Postgres pool.
    pub db: DbPool,
    /// Outgoing HTTP client.
    pub client: WebhookClient,
    /// Delays between attempts.
    pub schedule: RetrySchedule,
    /// This instance's metrics.
    pub metrics: Arc<Metrics>,
    /// An endpoint failing for this long is disabled.
    pub disable_after: Duration,
    /// Opens the stored signing secrets.
    pub sealer: Arc<octohooks_domain::sealing::Sealer>,
    /// Reads job contexts, many per statement.
    pub contexts: ContextReader,
    /// Records scheduled attempts, many per commit.
    pub recorder: Recorder,
    /// The limits per endpoint that all dispatchers share.
    pub fairness: Fairness,
    /// Puts back jobs that wait for their endpoint's turn.
    pub deferrer: Deferrer,
    /// Removes the outbox rows of express jobs that are done.
    pub forgetter: octohooks_broker::forgetter::Forgetter,
}

impl Deliverer {
    /// Runs one job. A job of the express lane (`express`) leaves with its outbox row removed
    /// when it is acknowledged: with its record, or on its own when nothing was recorded. The
    /// job's `first_attempt_slot` is given back as soon as its HTTP exchange is over.
    pub async fn run(
        &self,
        job: &DeliveryJob,
        traceparent: Option<&str>,
        express: bool,
        first_attempt_slot: Option<OwnedSemaphorePermit>,
    ) -> Disposition {
        let (disposition, row_removed) = match self
            .try_run(job, traceparent, express, first_attempt_slot)
            .await
        {
            Ok(row_removed) => (Disposition::Ack, row_removed),
            Err(err) if err.is_transient() => {
                tracing::warn!(error = %err, message_id = %job.message_id, endpoint_id = %job.endpoint_id,
                    "could not read or record a delivery; it will run again");
                (Disposition::Requeue, false)
            }
            Err(DbError::Query(diesel::result::Error::DatabaseError(_, info))) => {
                // A permanent refusal would fail the same way on every run: do not loop.
                tracing::error!(error = %info.message(), message_id = %job.message_id,
                    endpoint_id = %job.endpoint_id, "dropping a job whose outcome cannot be recorded");
                (Disposition::Ack, false)
            }
            Err(err) => {
                tracing::warn!(error = %err, message_id = %job.message_id, endpoint_id = %job.endpoint_id,
                    "could not read or record a delivery; it will run again");
                (Disposition::Requeue, false)
            }
        };
        if express && disposition == Disposition::Ack && !row_removed {
            self.forgetter.forget(vec![job.job_id]).await;
        }
        disposition
    }

    /// Puts a job that the broker keeps redelivering back into the outbox, due in
    /// [`PARKED_FOR`]: it returns as a fresh broker message, and the attempt it stands for is
    /// neither lost nor counted.
    pub async fn park(&self, job: &DeliveryJob, traceparent: Option<&str>) -> Disposition {
        match self
            .defer(job, traceparent, PARKED_FOR, WaitReason::Redelivered)
            .await
        {
            Ok(()) => Disposition::Ack,
            Err(err) => {
                tracing::warn!(error = %err, message_id = %job.message_id,
                    "could not park a job; it goes back to its queue");
                Disposition::Requeue
            }
        }
    }

    /// Runs the job; true when its record also removed its outbox row (`remove_row`).
    async fn try_run(
        &self,
        job: &DeliveryJob,
        traceparent: Option<&str>,
        remove_row: bool,
        first_attempt_slot: Option<OwnedSemaphorePermit>,
    ) -> Result<bool, DbError> {
        let received = (std::time::Instant::now(), Utc::now());
        // Only first attempts count in the stage histograms: a retry waited on purpose.
        let first_attempt = job.trigger == TriggerType::Scheduled && job.attempt == 0;
        if let Some(Admission::Wait { delay, reason }) =
            self.fairness.known_full(job.endpoint_id, job.deferrals)
        {
            self.defer(job, traceparent, delay, reason).await?;
            return Ok(false);
        }
        let Some(mut context) = self.context_to_run(job).await? else {
            return Ok(false);
        };
        let slot = match self
            .fairness
            .admit(
                job.endpoint_id,
                context.failing_since.is_some(),
                context.rate_limit,
                job.deferrals,
            )
            .await?
        {
            Admission::Go(slot) => slot,
            Admission::Wait { delay, reason } => {
                self.defer(job, traceparent, delay, reason).await?;
                return Ok(false);
            }
        };
        if first_attempt {
            let queued = (received.1 - context.accepted).to_std().unwrap_or_default();
            self.metrics.observe_stage(Stage::Queued, queued);
            self.metrics
                .observe_stage(Stage::Context, received.0.elapsed());
        }
        self.metrics.attempts_in_flight.inc();
        let exchange = self.send(job, &context).await;
        drop(slot);
        self.metrics.attempts_in_flight.dec();
        // What is left is the record, a wait for Postgres: the next job may make its request
        // meanwhile, and the payload, no longer needed, is not held while many records wait.
        drop(first_attempt_slot);
        drop(std::mem::take(&mut context.payload));
        let success = exchange.succeeded();
        if first_attempt {
            self.metrics.observe_stage(Stage::Send, exchange.duration);
        }
        self.metrics
            .attempts
            .with_label_values(&[if success { "success" } else { "failed" }])
            .inc();
        self.metrics
            .attempt_duration
            .observe(exchange.duration.as_secs_f64());
        tracing::info!(message_id = %job.message_id, endpoint_id = %job.endpoint_id,
            status = exchange.status, success, duration_ms = exchange.duration.as_millis() as u64,
            "delivery attempt");
        let record = self
            .record(
                job,
                traceparent,
                &context,
                &exchange,
                first_attempt,
                remove_row,
            )
            .await?;
        if record.recorded {
            self.note_health(job, &context, &exchange).await?;
        }
        Ok(record.row_removed)
    }

    /// The job's context (the one it carries while fresh, else read), or `None` when there is
    /// nothing to attempt: the message or endpoint is gone, the job is a duplicate or already attempted, the message's payload was expunged
    /// (nothing is left to send), or the endpoint is disabled (then a scheduled delivery is
    /// marked failed).
    async fn context_to_run(&self, job: &DeliveryJob) -> Result<Option<JobContext>, DbError> {
        if let Some(context) = carried::usable(job, Utc::now()) {
            self.metrics
                .job_contexts
                .with_label_values(&["carried"])
                .inc();
            return Ok(Some(context));
        }
        let key = JobKey {
            message_id: job.message_id,
            endpoint_id: job.endpoint_id,
            job_id: job.job_id,
            manual: job.trigger == TriggerType::Manual,
        };
        self.metrics.job_contexts.with_label_values(&["read"]).inc();
        let Some(context) = self.contexts.read(key).await? else {
            tracing::debug!(message_id = %job.message_id, "message or endpoint gone; dropping job");
            return Ok(None);
        };
        if context.handled {
            tracing::debug!(job_id = job.job_id, "job already attempted; dropping");
            return Ok(None);
        }
        if context.expunged {
            tracing::debug!(message_id = %job.message_id, "payload expunged; dropping job");
            if job.trigger == TriggerType::Scheduled {
                let mut conn = pool::connection(&self.db).await?;
                deliveries::mark_failed(&mut conn, job.message_id, job.endpoint_id).await?;
            }
            return Ok(None);
        }
        if job.trigger == TriggerType::Scheduled {
            let expected = i32::try_from(job.attempt).unwrap_or(i32::MAX);
            if context.destination_status() != Some(DestinationStatus::Pending)
                || context.scheduled_attempts != Some(expected)
            {
                tracing::debug!(message_id = %job.message_id, "duplicate job; dropping");
                return Ok(None);
            }
            if !context.enabled {
                let mut conn = pool::connection(&self.db).await?;
                deliveries::mark_failed(&mut conn, job.message_id, job.endpoint_id).await?;
                return Ok(None);
            }
        }
        Ok(Some(context))
    }

    /// Puts a copy of `job` in the outbox, due after `delay` (the same attempt, not a new
    /// one); the broker message may then be acknowledged.
    pub(crate) async fn defer(
        &self,
        job: &DeliveryJob,
        traceparent: Option<&str>,
        delay: Duration,
        reason: WaitReason,
    ) -> Result<(), DbError> {
        let delay = chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::zero());
        self.deferrer
            .defer(Deferral {
                message_id: job.message_id,
                endpoint_id: job.endpoint_id,
                attempt: i32::try_from(job.attempt).unwrap_or(i32::MAX),
                trigger: job.trigger,
                due: Utc::now() + delay,
                traceparent: traceparent.map(str::to_owned),
                deferrals: i32::try_from(job.deferrals.saturating_add(1)).unwrap_or(i32::MAX),
            })
            .await?;
        self.metrics
            .deliveries_deferred
            .with_label_values(&[reason.as_str()])
            .inc();
        Ok(())
    }
}
