//! What follows an attempt: its record (and, for a scheduled one, the outcome: delivered, a
//! retry at a jittered time or a receiver's `Retry-After`, or exhausted), and the endpoint's
//! health when the outcome can change it.

use std::time::Duration;

use chrono::Utc;
use octohooks_db::deliveries::{self, JobContext, ScheduledOutcome, ScheduledRecord};
use octohooks_db::models::Attempt;
use octohooks_db::{pool, DbError};
use octohooks_domain::job::{DeliveryJob, TriggerType};
use octohooks_domain::status::AttemptStatus;
use octohooks_platform::metrics::Stage;
use rand::Rng;

use super::Deliverer;
use crate::http::Exchange;

/// Longest wait a `Retry-After` may impose.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(6 * 3600);

/// What recording an attempt did.
pub(super) struct Recorded {
    /// The attempt was recorded: not already, by another run of the job, and, for a manual
    /// attempt, its message was still there.
    pub recorded: bool,
    /// The job's outbox row went in the same commit.
    pub row_removed: bool,
}

impl Deliverer {
    /// Records the attempt (and, for a scheduled one, its outcome, removing the job's outbox
    /// row with it when `remove_row`).
    pub(super) async fn record(
        &self,
        job: &DeliveryJob,
        traceparent: Option<&str>,
        context: &JobContext,
        exchange: &Exchange,
        first_attempt: bool,
        remove_row: bool,
    ) -> Result<Recorded, DbError> {
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
                let recorded = deliveries::record_manual(&mut conn, &attempt).await?;
                if !recorded {
                    tracing::debug!(message_id = %job.message_id,
                        "manual attempt not recorded: its message is gone or it was recorded already");
                }
                return Ok(Recorded {
                    recorded,
                    row_removed: false,
                });
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
                        remove_job: remove_row,
                    })
                    .await?;
                if first_attempt {
                    self.metrics
                        .observe_stage(Stage::Record, recording.elapsed());
                }
                if !recorded {
                    tracing::debug!(message_id = %job.message_id, "attempt already recorded elsewhere");
                    return Ok(Recorded {
                        recorded: false,
                        row_removed: remove_row,
                    });
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
        Ok(Recorded {
            recorded: true,
            row_removed: remove_row,
        })
    }

    /// Keeps the endpoint's health up to date after a recorded attempt. Only attempts that
    /// change it cost a round trip: not a success of a healthy endpoint, nor a failure of one
    /// already failing whose run is still too short to disable it.
    pub(super) async fn note_health(
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
