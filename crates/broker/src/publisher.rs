//! The API's publisher: hands the jobs of each commit to RabbitMQ right after it, by the express
//! lane or durably, and has them removed from the outbox once confirmed (see [`crate::relay`] for
//! what picks up whatever it misses).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use octohooks_db::models::OutboxJob;
use octohooks_db::DbPool;
use octohooks_domain::job::{BatchedJob, Carried, CarriedContext, JobBatch, BATCH_VERSION};
use octohooks_platform::metrics::{Metrics, Stage};
use tokio::sync::Semaphore;

use crate::express;
use crate::forgetter::Forgetter;
use crate::link::{AmqpLink, Outgoing};
use crate::outgoing::to_outgoing;
use crate::relay::settle;

/// Publishes jobs claimed by this process in the background, many per broker round trip and
/// one outbox delete per batch. Requests hand their jobs over and answer at once: the jobs are
/// already durable in the outbox, so a process that dies with jobs in this queue loses nothing
/// (their claims lapse and any relay publishes them).
///
/// Several publications are in flight at once: a batch starts the moment jobs are handed over
/// and a slot is free, instead of waiting for the previous batch's confirmation and outbox
/// delete (each a disk flush, of RabbitMQ and of Postgres), which under load made every job
/// wait for one or two of those round trips before its own began.
#[derive(Clone)]
pub struct Publisher {
    queue: tokio::sync::mpsc::Sender<Handover>,
    link: AmqpLink,
    express_claim: Duration,
}

/// Jobs of one commit and, for first attempts, when it returned.
struct Handover {
    jobs: Vec<OutboxJob>,
    committed: Option<Instant>,
    /// Claimed for the express lane's claim: may go by the lane, and then stay in the outbox.
    express: bool,
    /// What the express lane carries with each job that has it, by job id.
    contexts: HashMap<i64, CarriedContext>,
}

/// Handovers waiting at most; beyond that, the relay takes over.
const PUBLISHER_BACKLOG: usize = 4096;
/// Jobs per publication batch, at most.
pub(crate) const PUBLISH_BATCH: usize = 1000;
/// Publications awaiting their confirmation at once. Under load a confirmation can take tens of
/// milliseconds; at 4, jobs committed meanwhile waited for a free publication (a p99 of 14 ms
/// before their own publish began, at 8 closed-loop clients), at 16 about 1 ms.
const PUBLICATIONS_IN_FLIGHT: usize = 16;

impl Publisher {
    /// Starts the publishing task; it stops when every `Publisher` clone is dropped.
    /// `express_claim` is how long a job published by the express lane keeps its claim
    /// ([`crate::express::claim`]).
    pub fn start(
        db: DbPool,
        link: AmqpLink,
        metrics: Arc<Metrics>,
        express_claim: Duration,
    ) -> Self {
        let (queue, mut handed) = tokio::sync::mpsc::channel::<Handover>(PUBLISHER_BACKLOG);
        let slots = Arc::new(Semaphore::new(PUBLICATIONS_IN_FLIGHT));
        let forget = Forgetter::start(db.clone());
        let link_for_claims = link.clone();
        tokio::spawn(async move {
            while let Some(first) = handed.recv().await {
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    break;
                };
                let mut batch = vec![first];
                let mut jobs = batch[0].jobs.len();
                while jobs < PUBLISH_BATCH {
                    match handed.try_recv() {
                        Ok(more) => {
                            jobs += more.jobs.len();
                            batch.push(more);
                        }
                        Err(_) => break,
                    }
                }
                let (db, link, metrics, forget) =
                    (db.clone(), link.clone(), metrics.clone(), forget.clone());
                tokio::spawn(async move {
                    publish_handed(&db, &link, &metrics, &forget, batch).await;
                    drop(slot);
                });
            }
        });
        Self {
            queue,
            link: link_for_claims,
            express_claim,
        }
    }

    /// How long to claim the first attempts of the next commit: the express lane's claim while
    /// the lane is open (the jobs then go by it, see [`Publisher::enqueue_express`]), `None`
    /// for the usual claim.
    pub async fn express_claim(&self) -> Option<Duration> {
        self.link.express_open().await.then_some(self.express_claim)
    }

    /// Hands jobs over for publication; `committed` (when their commit returned) is given for
    /// first attempts, whose stages are measured. Never waits: when the backlog is full the jobs
    /// stay in the outbox and the relay publishes them once their claim lapses.
    pub fn enqueue(&self, jobs: Vec<OutboxJob>, committed: Option<Instant>) {
        self.hand_over(Handover {
            jobs,
            committed,
            express: false,
            contexts: HashMap::new(),
        });
    }

    /// Hands over first attempts whose rows were claimed for [`Publisher::express_claim`]:
    /// they go by the express lane if it takes them, with the `contexts` read for them
    /// (by job id), and durably otherwise, without.
    pub fn enqueue_express(
        &self,
        jobs: Vec<OutboxJob>,
        contexts: HashMap<i64, CarriedContext>,
        committed: Instant,
    ) {
        self.hand_over(Handover {
            jobs,
            committed: Some(committed),
            express: true,
            contexts,
        });
    }

    fn hand_over(&self, handover: Handover) {
        if handover.jobs.is_empty() {
            return;
        }
        if self.queue.try_send(handover).is_err() {
            tracing::warn!("publisher backlog full; the relay will publish these jobs");
        }
    }
}

async fn publish_handed(
    db: &DbPool,
    link: &AmqpLink,
    metrics: &Metrics,
    forget: &Forgetter,
    batch: Vec<Handover>,
) {
    let started = Instant::now();
    for handover in &batch {
        if let Some(committed) = handover.committed {
            let waited = started.saturating_duration_since(committed);
            for _ in &handover.jobs {
                metrics.observe_stage(Stage::PublishWait, waited);
            }
        }
    }
    let (express, durable): (Vec<Handover>, Vec<Handover>) =
        batch.into_iter().partition(|handover| handover.express);
    let mut measured = measured_jobs(&durable);
    let mut durable_rows: Vec<OutboxJob> = durable
        .into_iter()
        .flat_map(|handover| handover.jobs)
        .collect();
    if !express.is_empty() {
        // Express handovers are first attempts, all measured: those the lane took now, the
        // others with the durable publication.
        let mut rows = Vec::new();
        let mut contexts = HashMap::new();
        for handover in express {
            rows.extend(handover.jobs);
            contexts.extend(handover.contexts);
        }
        let (taken, refused) = publish_by_lane(link, metrics, rows, contexts).await;
        if taken > 0 {
            metrics
                .jobs_published
                .with_label_values(&["express"])
                .inc_by(taken as u64);
            observe_confirms(metrics, taken, started.elapsed());
        }
        measured += refused.len();
        durable_rows.extend(refused);
    }
    if durable_rows.is_empty() {
        return;
    }
    let rows = durable_rows;
    let jobs = to_outgoing(&rows);
    let published = link.publish(&jobs).await;
    if published.is_ok() {
        observe_confirms(metrics, measured, started.elapsed());
        metrics
            .jobs_published
            .with_label_values(&["durable"])
            .inc_by(rows.len() as u64);
        forget.forget_published(&rows).await;
    } else {
        settle(db, &rows, &published).await;
    }
}

/// Jobs of `handovers` whose stages are measured (first attempts).
fn measured_jobs(handovers: &[Handover]) -> usize {
    handovers
        .iter()
        .filter(|handover| handover.committed.is_some())
        .map(|handover| handover.jobs.len())
        .sum()
}

/// Publishes by the express lane what it carries, single first attempts (a fan-out's group
/// goes durably: its jobs take slots one by one, which the lane's claim does not cover), in
/// batches while a dispatcher reads them; returns how many jobs the lane took, and the rows to
/// publish durably instead. Each job travels with its context from `contexts` when it has one.
async fn publish_by_lane(
    link: &AmqpLink,
    metrics: &Metrics,
    rows: Vec<OutboxJob>,
    mut contexts: HashMap<i64, CarriedContext>,
) -> (usize, Vec<OutboxJob>) {
    // A job of a fan-out row is safe only once its whole row is published durably.
    let (mut refused, rows): (Vec<OutboxJob>, Vec<OutboxJob>) =
        rows.into_iter().partition(|row| row.fanout_id.is_some());
    let mut singles: Vec<Outgoing> = to_outgoing(&rows)
        .into_iter()
        .filter(|outgoing| matches!(outgoing.carried, Carried::Job(_)))
        .collect();
    for outgoing in &mut singles {
        if let Carried::Job(job) = &mut outgoing.carried {
            job.context = contexts.remove(&job.job_id).map(Box::new);
        }
    }
    let lane = if link.batches_open() {
        in_batches(singles)
    } else {
        singles
    };
    let taken = link.publish_express(&lane).await;
    let mut settled: HashSet<i64> = HashSet::new();
    for (outgoing, taken) in lane.iter().zip(&taken) {
        if *taken {
            settled.extend(outgoing.carried.job_ids());
            let form = match outgoing.carried {
                Carried::Batch(_) => "batch",
                _ => "single",
            };
            metrics
                .express_messages_published
                .with_label_values(&[form])
                .inc();
        }
    }
    refused.extend(rows.into_iter().filter(|row| !settled.contains(&row.id)));
    (settled.len(), refused)
}

/// Single jobs packed into [`JobBatch`]es of at most [`express::MOST_BATCHED`], each job with
/// its own trace.
fn in_batches(singles: Vec<Outgoing>) -> Vec<Outgoing> {
    let mut batches: Vec<Outgoing> = Vec::new();
    for outgoing in singles {
        let Carried::Job(job) = outgoing.carried else {
            continue;
        };
        let batched = BatchedJob {
            job,
            traceparent: outgoing.traceparent,
        };
        match batches.last_mut() {
            Some(Outgoing {
                carried: Carried::Batch(batch),
                ..
            }) if batch.jobs.len() < express::MOST_BATCHED => batch.jobs.push(batched),
            _ => batches.push(Outgoing {
                carried: Carried::Batch(JobBatch {
                    v: BATCH_VERSION,
                    jobs: vec![batched],
                }),
                traceparent: None,
            }),
        }
    }
    batches
}

fn observe_confirms(metrics: &Metrics, jobs: usize, confirmed: Duration) {
    for _ in 0..jobs {
        metrics.observe_stage(Stage::Confirm, confirmed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use octohooks_domain::job::DeliveryJob;
    use uuid::Uuid;

    fn single(job_id: i64) -> Outgoing {
        Outgoing {
            carried: Carried::Job(DeliveryJob::first_attempt(
                job_id,
                Uuid::from_u128(job_id as u128),
                Uuid::nil(),
            )),
            traceparent: (job_id % 2 == 0).then(|| format!("trace-{job_id}")),
        }
    }

    #[test]
    fn singles_travel_in_batches_of_at_most_sixteen_each_job_with_its_trace() {
        let batches = in_batches((0..35).map(single).collect());
        let sizes: Vec<usize> = batches.iter().map(|o| o.carried.len()).collect();
        assert_eq!(sizes, vec![16, 16, 3]);
        let ids: Vec<i64> = batches.iter().flat_map(|o| o.carried.job_ids()).collect();
        assert_eq!(ids, (0..35).collect::<Vec<_>>(), "every job, in order");
        for outgoing in &batches {
            assert_eq!(
                outgoing.traceparent, None,
                "the header carries no one job's trace"
            );
            let Carried::Batch(batch) = &outgoing.carried else {
                panic!("a batch");
            };
            assert_eq!(batch.v, BATCH_VERSION);
            for batched in &batch.jobs {
                let expected =
                    (batched.job.job_id % 2 == 0).then(|| format!("trace-{}", batched.job.job_id));
                assert_eq!(batched.traceparent, expected);
            }
        }
        assert!(in_batches(Vec::new()).is_empty());
    }
}
