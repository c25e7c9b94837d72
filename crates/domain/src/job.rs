//! The delivery job: what the outbox relay publishes to RabbitMQ and the dispatcher consumes.
//! The schema is versioned (`v`) so that old and new replicas can run side by side during a
//! rolling upgrade; it is documented in `proto-docs/queue.md`.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The job schema version this build writes and reads.
pub const JOB_VERSION: u32 = 1;

crate::status::stored_state!(
    /// Why an attempt is made: the retry schedule, or a user asking for a resend.
    #[derive(Serialize, Deserialize)]
    #[serde(rename_all = "lowercase")]
    TriggerType {
        /// The first attempt or a retry.
        Scheduled = "scheduled",
        /// A resend asked through the API: one attempt, never retried.
        Manual = "manual",
    }
);

/// One attempt to deliver one message to one endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryJob {
    /// Schema version, [`JOB_VERSION`].
    pub v: u32,
    /// The outbox row this job came from: unique per job; stored with its attempt, so that a job
    /// delivered twice is attempted once.
    pub job_id: i64,
    /// The message to deliver.
    pub message_id: Uuid,
    /// The endpoint to deliver it to.
    pub endpoint_id: Uuid,
    /// For scheduled jobs, how many attempts had been made when this one was scheduled; a job
    /// whose number is behind the stored count is a duplicate and is dropped.
    pub attempt: u32,
    /// Scheduled or manual.
    pub trigger: TriggerType,
    /// Times the job was put back to wait for its endpoint's turn (absent: 0). Such a job goes
    /// to the retry queue and waits longer each time. Added within version 1: a reader that
    /// does not know the field ignores it.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub deferrals: u32,
}

impl DeliveryJob {
    /// Whether the job belongs in the retry queue: a retry, or a job that waited its turn, so
    /// that neither queues ahead of anyone's first attempt.
    pub fn goes_to_retry_queue(&self) -> bool {
        self.deferrals > 0 || (self.attempt > 0 && self.trigger == TriggerType::Scheduled)
    }
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format_is_stable() {
        let job = DeliveryJob {
            v: JOB_VERSION,
            job_id: 7,
            message_id: Uuid::nil(),
            endpoint_id: Uuid::nil(),
            attempt: 2,
            trigger: TriggerType::Manual,
            deferrals: 0,
        };
        let text = serde_json::to_string(&job).unwrap();
        assert_eq!(
            text,
            r#"{"v":1,"jobId":7,"messageId":"00000000-0000-0000-0000-000000000000","endpointId":"00000000-0000-0000-0000-000000000000","attempt":2,"trigger":"manual"}"#
        );
        assert_eq!(serde_json::from_str::<DeliveryJob>(&text).unwrap(), job);
        let waited = DeliveryJob {
            deferrals: 3,
            ..job
        };
        let text = serde_json::to_string(&waited).unwrap();
        assert!(
            text.ends_with(r#""trigger":"manual","deferrals":3}"#),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<DeliveryJob>(&text).unwrap(), waited);
    }
}
