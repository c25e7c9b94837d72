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
    /// What the first attempt needs, read in the message's own commit, on a first attempt of
    /// the express lane (absent elsewhere). Added within version 1: a reader that does not know
    /// the field ignores it and reads the context from Postgres, as it always did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Box<CarriedContext>>,
}

/// What a dispatcher needs to make a first attempt, read by the statement that stores the
/// message and carried by the express lane, so that the attempt starts without a read of
/// Postgres. Trusted only on the lane's first delivery and while fresh (see the dispatcher):
/// a copy that waited longer may be older than its endpoint's last change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CarriedContext {
    /// The payload, as stored.
    pub payload: String,
    /// When the message was accepted, in microseconds since the Unix epoch.
    pub accepted_us: i64,
    /// The endpoint's URL.
    pub url: String,
    /// Its custom headers (a JSON object of strings).
    pub headers: serde_json::Value,
    /// Since when it has failed every delivery (microseconds since the epoch), if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing_since_us: Option<i64>,
    /// Its messages per second, if limited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<i32>,
    /// Its active signing secrets as stored (sealed when an encryption key is set), current
    /// first.
    pub secrets: Vec<String>,
}

impl DeliveryJob {
    /// Whether the job belongs in the retry queue: a retry, or a job that waited its turn, so
    /// that neither queues ahead of anyone's first attempt.
    pub fn goes_to_retry_queue(&self) -> bool {
        self.deferrals > 0 || (self.attempt > 0 && self.trigger == TriggerType::Scheduled)
    }
}

/// The schema version of a [`JobGroup`]: a reader of version 1 only would drop it, so groups
/// go to a queue of their own that only readers of both consume.
pub const GROUP_VERSION: u32 = 2;

/// The first attempts of one message to several endpoints, in one broker message: a fan-out
/// to N endpoints costs the broker one publication, confirmation, delivery and acknowledgement
/// instead of N. Each job keeps its own outbox id, attempt record and fate; the broker message
/// is acknowledged once every one of them is done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobGroup {
    /// Schema version, [`GROUP_VERSION`].
    pub v: u32,
    /// The message every job delivers.
    pub message_id: Uuid,
    /// One per endpoint.
    pub jobs: Vec<GroupedJob>,
}

/// One job of a [`JobGroup`]: a first attempt (attempt 0, scheduled, never put back).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupedJob {
    /// The job's outbox row, as [`DeliveryJob::job_id`].
    pub job_id: i64,
    /// The endpoint to deliver to.
    pub endpoint_id: Uuid,
}

impl DeliveryJob {
    /// Whether the job can travel in a [`JobGroup`]: a first attempt that never waited.
    pub fn groupable(&self) -> bool {
        self.trigger == TriggerType::Scheduled && self.attempt == 0 && self.deferrals == 0
    }
}

impl JobGroup {
    /// The group's jobs, each as it would travel alone.
    pub fn jobs(&self) -> impl Iterator<Item = DeliveryJob> + '_ {
        self.jobs.iter().map(|grouped| DeliveryJob {
            v: JOB_VERSION,
            job_id: grouped.job_id,
            message_id: self.message_id,
            endpoint_id: grouped.endpoint_id,
            attempt: 0,
            trigger: TriggerType::Scheduled,
            deferrals: 0,
            context: None,
        })
    }
}

/// What one broker message carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Carried {
    /// One job (version 1).
    Job(DeliveryJob),
    /// First attempts of one message (version 2).
    Group(JobGroup),
}

/// Why a broker message's body is not a job this build runs.
#[derive(Debug, thiserror::Error)]
pub enum UnreadableJob {
    /// Not JSON, or not of either shape.
    #[error("not a delivery job: {0}")]
    Invalid(#[from] serde_json::Error),
    /// A version this build does not know.
    #[error("unknown job schema version {0}")]
    Version(u32),
}

impl Carried {
    /// Reads a broker message's body, of either version.
    pub fn read(body: &[u8]) -> Result<Self, UnreadableJob> {
        #[derive(Deserialize)]
        struct Version {
            v: u32,
        }
        match serde_json::from_slice::<Version>(body)?.v {
            JOB_VERSION => Ok(Self::Job(serde_json::from_slice(body)?)),
            GROUP_VERSION => Ok(Self::Group(serde_json::from_slice(body)?)),
            other => Err(UnreadableJob::Version(other)),
        }
    }

    /// The body to publish.
    pub fn to_body(&self) -> Result<Vec<u8>, serde_json::Error> {
        match self {
            Self::Job(job) => serde_json::to_vec(job),
            Self::Group(group) => serde_json::to_vec(group),
        }
    }

    /// How many jobs it carries.
    pub fn len(&self) -> usize {
        match self {
            Self::Job(_) => 1,
            Self::Group(group) => group.jobs.len(),
        }
    }

    /// The outbox ids of the jobs it carries.
    pub fn job_ids(&self) -> Vec<i64> {
        match self {
            Self::Job(job) => vec![job.job_id],
            Self::Group(group) => group.jobs().map(|job| job.job_id).collect(),
        }
    }

    /// Drops a carried context: it is trusted only on the express lane's first delivery, and
    /// leaves the lane with no copy of the endpoint's secrets.
    pub fn forget_context(&mut self) {
        if let Self::Job(job) = self {
            job.context = None;
        }
    }

    /// Never: a group has at least two jobs. (For clippy's `len_without_is_empty`.)
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
            context: None,
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

    #[test]
    fn a_carried_context_travels_with_its_job_and_can_be_dropped() {
        let job = DeliveryJob {
            v: JOB_VERSION,
            job_id: 7,
            message_id: Uuid::nil(),
            endpoint_id: Uuid::nil(),
            attempt: 0,
            trigger: TriggerType::Scheduled,
            deferrals: 0,
            context: Some(Box::new(CarriedContext {
                payload: r#"{"a":"\u00e9"}"#.into(),
                accepted_us: 1_700_000_000_000_000,
                url: "https://hooks.example/a".into(),
                headers: serde_json::json!({"x-a": "1"}),
                failing_since_us: None,
                rate_limit: Some(5),
                secrets: vec!["whsec_a".into()],
            })),
        };
        let mut carried = Carried::read(&Carried::Job(job.clone()).to_body().unwrap()).unwrap();
        assert_eq!(carried, Carried::Job(job.clone()));
        carried.forget_context();
        let Carried::Job(bare) = carried else {
            panic!("a job reads as a job");
        };
        assert_eq!(
            bare,
            DeliveryJob {
                context: None,
                ..job
            }
        );
        // A reader takes a job with fields it does not know, as one of this build reads a
        // later build's context.
        let later = br#"{"v":1,"jobId":7,"messageId":"00000000-0000-0000-0000-000000000000","endpointId":"00000000-0000-0000-0000-000000000000","attempt":0,"trigger":"scheduled","context":{"payload":"{}","acceptedUs":1,"url":"https://x","headers":{},"secrets":[],"more":1},"other":true}"#;
        assert!(matches!(Carried::read(later), Ok(Carried::Job(job)) if job.context.is_some()));
    }

    #[test]
    fn a_group_reads_back_as_its_jobs_and_version_one_still_reads() {
        let endpoint = Uuid::from_u128(1);
        let group = JobGroup {
            v: GROUP_VERSION,
            message_id: Uuid::nil(),
            jobs: vec![
                GroupedJob {
                    job_id: 7,
                    endpoint_id: endpoint,
                },
                GroupedJob {
                    job_id: 8,
                    endpoint_id: Uuid::nil(),
                },
            ],
        };
        let body = Carried::Group(group.clone()).to_body().unwrap();
        assert_eq!(
            String::from_utf8(body.clone()).unwrap(),
            r#"{"v":2,"messageId":"00000000-0000-0000-0000-000000000000","jobs":[{"jobId":7,"endpointId":"00000000-0000-0000-0000-000000000001"},{"jobId":8,"endpointId":"00000000-0000-0000-0000-000000000000"}]}"#
        );
        let Carried::Group(read) = Carried::read(&body).unwrap() else {
            panic!("a group reads as a group");
        };
        let jobs: Vec<DeliveryJob> = read.jobs().collect();
        assert_eq!(jobs.len(), 2);
        assert!(jobs.iter().all(DeliveryJob::groupable));
        assert_eq!((jobs[0].job_id, jobs[0].endpoint_id), (7, endpoint));

        let single = br#"{"v":1,"jobId":7,"messageId":"00000000-0000-0000-0000-000000000000","endpointId":"00000000-0000-0000-0000-000000000000","attempt":2,"trigger":"manual"}"#;
        assert!(matches!(Carried::read(single), Ok(Carried::Job(job)) if job.attempt == 2));
        assert!(matches!(
            Carried::read(br#"{"v":3,"jobs":[]}"#),
            Err(UnreadableJob::Version(3))
        ));
        assert!(matches!(
            Carried::read(b"nope"),
            Err(UnreadableJob::Invalid(_))
        ));
    }
}
