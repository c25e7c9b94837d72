//! The context the express lane carries with a first attempt: read by the statement that stored
//! the message, it spares the dispatcher its own read of Postgres before the attempt.

use std::time::Duration;

use chrono::{DateTime, Utc};
use octohooks_db::deliveries::JobContext;
use octohooks_domain::job::{DeliveryJob, TriggerType};
use octohooks_domain::status::DestinationStatus;

/// A carried context older than this is not used: the endpoint may have changed since (a new
/// URL, a rotated secret, a disable), and the job's context is read afresh. A read before
/// each attempt has the same gap, only shorter; the lane hands a job over in milliseconds.
/// Measured on the API's and the dispatcher's clocks, so it also bounds their skew.
pub const CARRIED_FRESH: Duration = Duration::from_secs(2);

/// The context `job` carries, if it may be used now: a scheduled first attempt whose context
/// is younger than [`CARRIED_FRESH`]. The consumer has already dropped any context that came
/// other than by the lane's first delivery.
pub fn usable(job: &DeliveryJob, now: DateTime<Utc>) -> Option<JobContext> {
    let carried = job.context.as_deref()?;
    if job.trigger != TriggerType::Scheduled || job.attempt != 0 {
        return None;
    }
    let accepted = DateTime::from_timestamp_micros(carried.accepted_us)?;
    let age = (now - accepted).abs().to_std().ok()?;
    if age > CARRIED_FRESH {
        return None;
    }
    Some(JobContext {
        payload: carried.payload.clone(),
        accepted,
        url: carried.url.clone(),
        headers: carried.headers.clone(),
        // The destination was made for an enabled endpoint in the same statement.
        enabled: true,
        failing_since: carried
            .failing_since_us
            .and_then(DateTime::from_timestamp_micros),
        rate_limit: carried.rate_limit,
        status: Some(DestinationStatus::Pending.as_str().to_owned()),
        scheduled_attempts: Some(0),
        secrets: carried.secrets.clone(),
        handled: false,
        // Endpoints with a client certificate carry no context: their key stays in Postgres.
        client_certificate: None,
        client_key: None,
        expunged: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use octohooks_domain::job::{CarriedContext, JOB_VERSION};
    use uuid::Uuid;

    fn job(accepted: DateTime<Utc>, attempt: u32) -> DeliveryJob {
        DeliveryJob {
            v: JOB_VERSION,
            job_id: 1,
            message_id: Uuid::nil(),
            endpoint_id: Uuid::nil(),
            attempt,
            trigger: TriggerType::Scheduled,
            deferrals: 0,
            context: Some(Box::new(CarriedContext {
                payload: "{}".into(),
                accepted_us: accepted.timestamp_micros(),
                url: "https://hooks.example/a".into(),
                headers: serde_json::json!({}),
                failing_since_us: None,
                rate_limit: None,
                secrets: vec!["whsec_a".into()],
            })),
        }
    }

    #[test]
    fn only_a_fresh_first_attempt_uses_what_it_carries() {
        let now = Utc::now();
        let context = usable(&job(now, 0), now).expect("a fresh first attempt");
        assert_eq!(context.url, "https://hooks.example/a");
        assert_eq!(
            context.destination_status(),
            Some(DestinationStatus::Pending)
        );
        assert_eq!(context.secrets, vec!["whsec_a".to_owned()]);
        let stale = now - chrono::Duration::seconds(3);
        assert!(usable(&job(stale, 0), now).is_none(), "older than 2 s");
        let ahead = now + chrono::Duration::seconds(3);
        assert!(usable(&job(ahead, 0), now).is_none(), "a clock 3 s apart");
        assert!(usable(&job(now, 1), now).is_none(), "a retry");
        let bare = DeliveryJob {
            context: None,
            ..job(now, 0)
        };
        assert!(usable(&bare, now).is_none());
    }
}
