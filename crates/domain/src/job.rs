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
    /// A first attempt: the job every message gets per destination when it is accepted.
    pub fn first_attempt(job_id: i64, message_id: Uuid, endpoint_id: Uuid) -> Self {
        Self {
            v: JOB_VERSION,
            job_id,
            message_id,
            endpoint_id,
            attempt: 0,
            trigger: TriggerType::Scheduled,
            deferrals: 0,
            context: None,
        }
    }

    /// The job without its carried context, which a durable queue never holds, at the cost of
    /// a few numbers rather than a copy of the payload and secrets.
    pub fn without_context(&self) -> Self {
        Self {
            context: None,
            v: self.v,
            job_id: self.job_id,
            message_id: self.message_id,
            endpoint_id: self.endpoint_id,
            attempt: self.attempt,
            trigger: self.trigger,
            deferrals: self.deferrals,
        }
    }

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
        self.jobs.iter().map(|grouped| {
            DeliveryJob::first_attempt(grouped.job_id, self.message_id, grouped.endpoint_id)
        })
    }
}

/// The schema version of a [`JobBatch`]: readers of versions 1 and 2 would drop it, so
/// batches go to a lane of their own that only readers of all three consume.
pub const BATCH_VERSION: u32 = 3;

/// First attempts of several messages, each to its one endpoint and with what it needs, in one
/// broker message of the express lane: the jobs of a commit (or of the few that ended
/// together) cost the broker one publication, confirmation, delivery and acknowledgement
/// instead of one each. Each job keeps its own outbox row, trace, attempt record and fate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobBatch {
    /// Schema version, [`BATCH_VERSION`].
    pub v: u32,
    /// The jobs, in the order their messages were accepted.
    pub jobs: Vec<BatchedJob>,
}

/// One job of a [`JobBatch`], with the trace of the request that sent its message (a broker
/// message's header carries one trace only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchedJob {
    /// The job, as it would travel alone.
    pub job: DeliveryJob,
    /// Its W3C trace context, if its request had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

/// What one broker message carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Carried {
    /// One job (version 1).
    Job(DeliveryJob),
    /// First attempts of one message (version 2).
    Group(JobGroup),
    /// First attempts of several messages (version 3).
    Batch(JobBatch),
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
            BATCH_VERSION => Ok(Self::Batch(serde_json::from_slice(body)?)),
            other => Err(UnreadableJob::Version(other)),
        }
    }

    /// The body to publish.
    pub fn to_body(&self) -> Result<Vec<u8>, serde_json::Error> {
        match self {
            Self::Job(job) => serde_json::to_vec(job),
            Self::Group(group) => serde_json::to_vec(group),
            Self::Batch(batch) => serde_json::to_vec(batch),
        }
    }

    /// How many jobs it carries.
    pub fn len(&self) -> usize {
        match self {
            Self::Job(_) => 1,
            Self::Group(group) => group.jobs.len(),
            Self::Batch(batch) => batch.jobs.len(),
        }
    }

    /// The outbox ids of the jobs it carries.
    pub fn job_ids(&self) -> Vec<i64> {
        match self {
            Self::Job(job) => vec![job.job_id],
            Self::Group(group) => group.jobs().map(|job| job.job_id).collect(),
            Self::Batch(batch) => batch
                .jobs
                .iter()
                .map(|batched| batched.job.job_id)
                .collect(),
        }
    }

    /// Drops a carried context: it is trusted only on the express lane's first delivery, and
    /// leaves the lane with no copy of the endpoint's secrets.
    pub fn forget_context(&mut self) {
        match self {
            Self::Job(job) => job.context = None,
            Self::Group(_) => {}
            Self::Batch(batch) => {
                for batched in &mut batch.jobs {
                    batched.job.context = None;
                }
            }
        }
    }

    /// Never: a group has at least two jobs, a batch at least one. (For clippy's
    /// `len_without_is_empty`.)
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests;
