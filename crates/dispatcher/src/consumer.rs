//! The dispatcher's side of consuming: every job the broker's consumer
//! ([`octohooks_broker::consumer`]) hands over is attempted within its trace, or parked in the
//! outbox when the broker delivered it too often; a grouped job whose attempt runs long is
//! handed off to the outbox ([`octohooks_broker::group`]).

use std::time::Duration;

use octohooks_broker::consumer::{Disposition, Incoming, JobHandler};
use octohooks_domain::job::DeliveryJob;
use octohooks_platform::telemetry;
use tracing::Instrument as _;

use crate::deliver::Deliverer;
use crate::fairness::WaitReason;

impl JobHandler for Deliverer {
    async fn handle(&self, incoming: Incoming) -> Disposition {
        let Incoming {
            job,
            traceparent,
            park,
            express,
            slot,
        } = incoming;
        if park {
            return self.park(&job, traceparent.as_deref()).await;
        }
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
        self.run(&job, traceparent.as_deref(), express, slot)
            .instrument(span)
            .await
    }

    async fn hand_off(
        &self,
        job: &DeliveryJob,
        traceparent: Option<&str>,
        after: Duration,
    ) -> bool {
        match self
            .defer(job, traceparent, after, WaitReason::HandedOff)
            .await
        {
            Ok(()) => true,
            Err(err) => {
                tracing::warn!(error = %err, message_id = %job.message_id, endpoint_id = %job.endpoint_id,
                    "could not hand a grouped job off to the outbox; its group comes back");
                false
            }
        }
    }

    async fn forget(&self, job_ids: Vec<i64>) {
        self.forgetter.forget(job_ids).await;
    }
}
