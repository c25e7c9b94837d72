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
        };
        let text = serde_json::to_string(&job).unwrap();
        assert_eq!(
            text,
            r#"{"v":1,"jobId":7,"messageId":"00000000-0000-0000-0000-000000000000","endpointId":"00000000-0000-0000-0000-000000000000","attempt":2,"trigger":"manual"}"#
        );
        assert_eq!(serde_json::from_str::<DeliveryJob>(&text).unwrap(), job);
    }
}
