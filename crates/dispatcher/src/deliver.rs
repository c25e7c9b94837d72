//! One job, start to finish: read what the attempt needs, sign, send, record the outcome and
//! schedule the retry. No database connection is held while the HTTP request is in flight.

use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use hyper::header::HeaderMap;
use octohooks_db::deliveries::{self, JobContext, JobKey, ScheduledOutcome, ScheduledRecord};
use octohooks_db::fairness::Deferral;
use octohooks_db::models::Attempt;
use octohooks_db::{pool, DbError, DbPool};
use octohooks_domain::job::{DeliveryJob, TriggerType};
use octohooks_domain::retry::RetrySchedule;
use octohooks_domain::signing::{signature_header, EndpointSecret};
use octohooks_domain::status::{AttemptStatus, DestinationStatus};
use octohooks_platform::metrics::{Metrics, Stage};
use rand::Rng;
use std::sync::Arc;

use crate::batched::{ContextReader, Deferrer, Recorder};
use crate::fairness::{Admission, Fairness, WaitReason};
use crate::http::{put_header, Exchange, StoredIdentity, WebhookClient};

/// The `user-agent` of every delivery.
pub const USER_AGENT: &str = concat!("octohooks/", env!("CARGO_PKG_VERSION"));
/// How long a job parked for being redelivered too often waits in the outbox.
pub const PARKED_FOR: Duration = Duration::from_secs(30);
/// Longest wait a `Retry-After` may impose.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(6 * 3600);

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
}

impl Deliverer {
    /// Runs one job.
    pub async fn run(&self, job: &DeliveryJob, traceparent: Option<&str>) -> Disposition {
        match self.try_run(job, traceparent).await {
            Ok(()) => Disposition::Ack,
            Err(err) if err.is_transient() => {
                tracing::warn!(error = %err, message_id = %job.message_id, endpoint_id = %job.endpoint_id,
                    "could not read or record a delivery; it will run again");
                Disposition::Requeue
            }
            Err(DbError::Query(diesel::result::Error::DatabaseError(_, info))) => {
                // A permanent refusal would fail the same way on every run: do not loop.
                tracing::error!(error = %info.message(), message_id = %job.message_id,
                    endpoint_id = %job.endpoint_id, "dropping a job whose outcome cannot be recorded");
                Disposition::Ack
            }
            Err(err) => {
                tracing::warn!(error = %err, message_id = %job.message_id, endpoint_id = %job.endpoint_id,
                    "could not read or record a delivery; it will run again");
                Disposition::Requeue
            }
        }
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

    async fn try_run(&self, job: &DeliveryJob, traceparent: Option<&str>) -> Result<(), DbError> {
        let received = (std::time::Instant::now(), Utc::now());
        // Only first attempts count in the stage histograms: a retry waited on purpose.
        let first_attempt = job.trigger == TriggerType::Scheduled && job.attempt == 0;
        if let Some(Admission::Wait { delay, reason }) =
            self.fairness.known_full(job.endpoint_id, job.deferrals)
        {
            return self.defer(job, traceparent, delay, reason).await;
        }
        let Some(context) = self.context_to_run(job).await? else {
            return Ok(());
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
                return self.defer(job, traceparent, delay, reason).await;
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
        if self
            .record(job, traceparent, &context, &exchange, first_attempt)
            .await?
        {
            self.note_health(job, &context, &exchange).await?;
        }
        Ok(())
    }

    /// The job's context, or `None` when there is nothing to attempt: the message or endpoint
    /// is gone, the job is a duplicate or already attempted, the message's payload was expunged
    /// (nothing is left to send), or the endpoint is disabled (then a scheduled delivery is
    /// marked failed).
    async fn context_to_run(&self, job: &DeliveryJob) -> Result<Option<JobContext>, DbError> {
        let key = JobKey {
            message_id: job.message_id,
            endpoint_id: job.endpoint_id,
            job_id: job.job_id,
        };
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

    /// Records the attempt (and, for a scheduled one, its outcome); false when another
    /// dispatcher had already recorded it.
    async fn record(
        &self,
        job: &DeliveryJob,
        traceparent: Option<&str>,
        context: &JobContext,
        exchange: &Exchange,
        first_attempt: bool,
    ) -> Result<bool, DbError> {
        let success = exchange.succeeded();
        let attempt = Attempt {
            id: octohooks_domain::new_id(),
            message_id: job.message_id,
            endpoint_id: job.endpoint_id,
            url: context.url.clone(),
            status: AttemptStatus::of(success),
            response_status_code: i32::from(exchange.status),
            response: exchange.body.clone(),
            response_duration_ms: i64::try_from(exchange.duration.as_millis()).unwrap_or(i64::MAX),
            trigger_type: job.trigger,
            created: Utc::now(),
            job_id: Some(job.job_id),
        };
        match job.trigger {
            TriggerType::Manual => {
                let mut conn = pool::connection(&self.db).await?;
                deliveries::record_manual(&mut conn, &attempt).await?;
            }
            TriggerType::Scheduled => {
                let outcome = self.outcome(job.attempt + 1, success, exchange);
                let created = attempt.created;
                let recording = std::time::Instant::now();
                let recorded = self
                    .recorder
                    .record(ScheduledRecord {
                        attempt,
                        attempts_before: i32::try_from(job.attempt).unwrap_or(i32::MAX),
                        outcome,
                        traceparent: traceparent.map(str::to_owned),
                    })
                    .await?;
                if first_attempt {
                    self.metrics
                        .observe_stage(Stage::Record, recording.elapsed());
                }
                if !recorded {
                    tracing::debug!(message_id = %job.message_id, "attempt already recorded elsewhere");
                    return Ok(false);
                }
                match outcome {
                    ScheduledOutcome::Delivered => {
                        let latency = (created - context.accepted).to_std().unwrap_or_default();
                        self.metrics.delivery_latency.observe(latency.as_secs_f64());
                    }
                    ScheduledOutcome::RetryAt(_) => self.metrics.retries_scheduled.inc(),
                    ScheduledOutcome::Exhausted => self.metrics.deliveries_exhausted.inc(),
                }
            }
        }
        Ok(true)
    }

    /// Keeps the endpoint's health up to date after a recorded attempt. Only attempts that
    /// change it cost a round trip: not a success of a healthy endpoint, nor a failure of one
    /// already failing whose run is still too short to disable it.
    async fn note_health(
        &self,
        job: &DeliveryJob,
        context: &JobContext,
        exchange: &Exchange,
    ) -> Result<(), DbError> {
        let success = exchange.succeeded();
        if health_may_change(
            success,
            exchange.status,
            context.failing_since,
            self.disable_after,
            Utc::now(),
        ) {
            let disable_after = i64::try_from(self.disable_after.as_secs()).unwrap_or(i64::MAX);
            let status = i32::from(exchange.status);
            let mut conn = pool::connection(&self.db).await?;
            let disabled = octohooks_db::endpoints::note_outcome(
                &mut conn,
                job.endpoint_id,
                success,
                status,
                disable_after,
            )
            .await?;
            if disabled {
                tracing::warn!(endpoint_id = %job.endpoint_id, "endpoint disabled after failing");
            }
        }
        Ok(())
    }

    /// Puts the job back in the outbox, due after `delay`: the same attempt, not a new one.
    /// Puts a copy of `job` in the outbox, due after `delay`; the broker message may then be
    /// acknowledged.
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

    fn outcome(&self, attempts_made: u32, success: bool, exchange: &Exchange) -> ScheduledOutcome {
        if success {
            return ScheduledOutcome::Delivered;
        }
        match self.schedule.delay_after(attempts_made) {
            None => ScheduledOutcome::Exhausted,
            Some(delay) => {
                let asked = exchange
                    .retry_after
                    .filter(|_| matches!(exchange.status, 429 | 503))
                    .map(|asked| asked.min(MAX_RETRY_AFTER));
                // Jitter spreads the schedule; a receiver's Retry-After is honoured as asked.
                let delay = asked.map_or(jitter(delay), |asked| asked.max(jitter(delay)));
                let delay = chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::zero());
                ScheduledOutcome::RetryAt(Utc::now() + delay)
            }
        }
    }

    async fn send(&self, job: &DeliveryJob, context: &JobContext) -> Exchange {
        let msg_id = job.message_id.to_string();
        let timestamp = Utc::now().timestamp();
        let body = Bytes::from(context.payload.clone());
        let owner = job.endpoint_id.to_string();
        let secrets: Vec<EndpointSecret> = context
            .secrets
            .iter()
            .filter_map(|stored| match self.sealer.open(stored, &owner) {
                Ok(text) => EndpointSecret::parse("secret", &text).ok(),
                Err(err) => {
                    tracing::error!(error = %err, endpoint_id = %job.endpoint_id, "cannot open a signing secret");
                    None
                }
            })
            .collect();
        if secrets.is_empty() {
            return Exchange {
                status: 0,
                body: "not sent: no signing secret could be opened (check OCTOHOOKS_SECRET_ENCRYPTION_KEY and OCTOHOOKS_SECRET_DECRYPTION_KEYS)".into(),
                retry_after: None,
                duration: std::time::Duration::ZERO,
            };
        }
        let mut headers = HeaderMap::new();
        if let Some(custom) = context.headers.as_object() {
            for (name, value) in custom {
                if let Some(value) = value.as_str() {
                    put_header(&mut headers, name, value);
                }
            }
        }
        put_header(&mut headers, "content-type", "application/json");
        put_header(&mut headers, "user-agent", USER_AGENT);
        put_header(&mut headers, "webhook-id", &msg_id);
        put_header(&mut headers, "webhook-timestamp", &timestamp.to_string());
        put_header(
            &mut headers,
            "webhook-signature",
            &signature_header(&secrets, &msg_id, timestamp, &body),
        );
        let identity = context
            .client_certificate
            .as_deref()
            .zip(context.client_key.as_deref())
            .map(|(certificate, sealed_key)| StoredIdentity {
                endpoint_id: job.endpoint_id,
                certificate,
                sealed_key,
            });
        self.client
            .post(&context.url, headers, body, identity.as_ref())
            .await
    }
}

/// Whether an attempt's outcome can change its endpoint's health (see `note_outcome`): a 410,
/// the first failure, the first success after failures, or a failure that makes the failing run
/// long enough to disable the endpoint. The run's start is the database's clock; the services'
/// clocks are assumed to be in step with it (NTP).
fn health_may_change(
    success: bool,
    status: u16,
    failing_since: Option<chrono::DateTime<Utc>>,
    disable_after: Duration,
    now: chrono::DateTime<Utc>,
) -> bool {
    match failing_since {
        _ if status == 410 => true,
        None => !success,
        Some(_) if success => true,
        Some(since) => (now - since)
            .to_std()
            .is_ok_and(|failing_for| failing_for >= disable_after),
    }
}

/// Spreads retries by ±10% so that endpoints coming back are not hit by a thundering herd.
fn jitter(delay: Duration) -> Duration {
    let factor = rand::thread_rng().gen_range(0.9..=1.1);
    delay.mul_f64(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_outcomes_that_change_health_cost_a_round_trip() {
        let now = Utc::now();
        let day = Duration::from_secs(86_400);
        let since = |secs| Some(now - chrono::Duration::seconds(secs));
        // Healthy endpoint: successes change nothing, a failure starts a run, 410 disables.
        assert!(!health_may_change(true, 200, None, day, now));
        assert!(health_may_change(false, 500, None, day, now));
        assert!(health_may_change(false, 410, None, day, now));
        // Failing endpoint: a success ends the run; failures matter once the run is long enough.
        assert!(health_may_change(true, 200, since(10), day, now));
        assert!(!health_may_change(false, 500, since(10), day, now));
        assert!(!health_may_change(false, 0, since(86_399), day, now));
        assert!(health_may_change(false, 500, since(86_400), day, now));
        assert!(health_may_change(false, 410, since(10), day, now));
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        for _ in 0..1000 {
            let delay = jitter(Duration::from_secs(100));
            assert!(delay >= Duration::from_secs(90) && delay <= Duration::from_secs(110));
        }
    }
}
