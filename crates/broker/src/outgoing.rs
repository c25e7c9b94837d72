//! What the relay publishes for a set of outbox rows: the first attempts of one message to
//! several endpoints travel together as a [`JobGroup`], every other row as a job of its own.

use std::collections::HashMap;

use octohooks_db::models::OutboxJob;
use octohooks_domain::job::{
    Carried, DeliveryJob, GroupedJob, JobGroup, GROUP_VERSION, JOB_VERSION,
};
use uuid::Uuid;

use crate::link::Outgoing;

/// Jobs of one group, at most: a fan-out to more endpoints travels in several groups, so that
/// one broker message stays small and its jobs finish together.
const MOST_GROUPED: usize = 64;

/// Turns outbox rows into what is published: the first attempts of one message to several
/// endpoints as [`JobGroup`]s, every other row as a job of its own. A published message with a
/// trace gets an `outbox.publish` span, and carries that span's context onwards, so a trace
/// reads request → publish → attempt.
pub fn to_outgoing<'a>(rows: impl IntoIterator<Item = &'a OutboxJob>) -> Vec<Outgoing> {
    let mut outgoing = Vec::new();
    // First attempts by message, in the order their messages first appear.
    let mut firsts: Vec<(Uuid, Vec<&OutboxJob>)> = Vec::new();
    let mut at: HashMap<Uuid, usize> = HashMap::new();
    for row in rows {
        let job = to_job(row);
        if !job.groupable() {
            outgoing.push(traced(Carried::Job(job), row));
            continue;
        }
        let index = *at.entry(row.message_id).or_insert_with(|| {
            firsts.push((row.message_id, Vec::new()));
            firsts.len() - 1
        });
        firsts[index].1.push(row);
    }
    for (message_id, rows) in firsts {
        for chunk in rows.chunks(MOST_GROUPED) {
            let carried = if let [row] = chunk {
                Carried::Job(to_job(row))
            } else {
                Carried::Group(JobGroup {
                    v: GROUP_VERSION,
                    message_id,
                    jobs: chunk
                        .iter()
                        .map(|row| GroupedJob {
                            job_id: row.id,
                            endpoint_id: row.endpoint_id,
                        })
                        .collect(),
                })
            };
            outgoing.push(traced(carried, chunk[0]));
        }
    }
    outgoing
}

fn to_job(row: &OutboxJob) -> DeliveryJob {
    DeliveryJob {
        v: JOB_VERSION,
        job_id: row.id,
        message_id: row.message_id,
        endpoint_id: row.endpoint_id,
        attempt: u32::try_from(row.attempt).unwrap_or(0),
        trigger: row.trigger_type,
        deferrals: u32::try_from(row.deferrals).unwrap_or(0),
        context: None,
    }
}

/// `carried` with the trace of `row`, continued by an `outbox.publish` span.
fn traced(carried: Carried, row: &OutboxJob) -> Outgoing {
    let traceparent = row.traceparent.as_deref().and_then(|parent| {
        let span =
            tracing::info_span!("outbox.publish", job_id = row.id, message_id = %row.message_id);
        octohooks_platform::telemetry::continue_trace(&span, Some(parent));
        span.in_scope(octohooks_platform::telemetry::current_traceparent)
    });
    Outgoing {
        carried,
        traceparent: traceparent.or_else(|| row.traceparent.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use octohooks_domain::job::TriggerType;

    fn row(id: i64, message: u128, attempt: i32, deferrals: i32) -> OutboxJob {
        OutboxJob {
            id,
            message_id: Uuid::from_u128(message),
            endpoint_id: Uuid::from_u128(1000 + id as u128),
            attempt,
            trigger_type: TriggerType::Scheduled,
            traceparent: None,
            claimed_until: None,
            deferrals,
            fanout_id: None,
        }
    }

    fn ids(outgoing: &Outgoing) -> Vec<i64> {
        outgoing.carried.job_ids()
    }

    #[test]
    fn first_attempts_of_one_message_travel_together_and_the_rest_alone() {
        let mut rows = vec![
            row(1, 1, 0, 0),
            row(2, 2, 0, 0),
            row(3, 1, 0, 0),
            row(4, 1, 2, 0), // a retry
            row(5, 1, 0, 1), // put back once
            row(6, 3, 0, 0),
        ];
        rows.push(OutboxJob {
            trigger_type: TriggerType::Manual,
            ..row(7, 1, 0, 0)
        });
        let outgoing = to_outgoing(&rows);
        let shapes: Vec<(bool, Vec<i64>)> = outgoing
            .iter()
            .map(|o| (matches!(o.carried, Carried::Group(_)), ids(o)))
            .collect();
        assert_eq!(
            shapes,
            vec![
                (false, vec![4]),
                (false, vec![5]),
                (false, vec![7]),
                (true, vec![1, 3]),
                (false, vec![2]),
                (false, vec![6]),
            ]
        );
    }

    #[test]
    fn a_wide_fan_out_travels_in_groups_of_at_most_64() {
        let rows: Vec<OutboxJob> = (0..130).map(|id| row(id, 9, 0, 0)).collect();
        let sizes: Vec<usize> = to_outgoing(&rows).iter().map(|o| o.carried.len()).collect();
        assert_eq!(sizes, vec![64, 64, 2]);
    }
}
