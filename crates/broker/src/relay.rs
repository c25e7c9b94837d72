//! The outbox relay: moves delivery jobs from Postgres to RabbitMQ.
//!
//! The API publishes the jobs of a message right after committing it ([`publish_claimed`]);
//! the relay loop, run by every API and dispatcher process, picks up whatever that missed (the
//! broker was down, the process died) and the retries that have come due. A job leaves the
//! outbox only after the broker confirmed it, so a crash at any point leads to a second
//! publication, never to a lost job.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use octohooks_db::models::OutboxJob;
use octohooks_db::{outbox, pool, DbPool};
use octohooks_domain::job::{Carried, CarriedContext};
use octohooks_platform::metrics::{Metrics, Stage};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::link::{AmqpError, AmqpLink, Outgoing};
use crate::outgoing::to_outgoing;
use crate::timing::RELAY_CLAIM_SECS;

/// Jobs claimed per relay pass.
const BATCH: i64 = 500;
/// Pause between passes when there was nothing to do.
const IDLE_PAUSE: Duration = Duration::from_millis(200);

/// Publishes jobs this process has claimed, then removes them from the outbox. On failure the
/// claims are released so that the next relay pass tries again as soon as the broker is back.
pub async fn publish_claimed(db: &DbPool, link: &AmqpLink, rows: &[OutboxJob]) -> bool {
    if rows.is_empty() {
        return true;
    }
    let jobs = to_outgoing(rows);
    let published = link.publish(&jobs).await;
    settle(db, rows, &published).await;
    published.is_ok()
}

/// After a publication: removes confirmed jobs from the outbox, or releases the claims of jobs
/// that were not confirmed.
async fn settle(db: &DbPool, rows: &[OutboxJob], published: &Result<(), AmqpError>) {
    let ids: Vec<i64> = rows.iter().map(|row| row.id).collect();
    let outcome = match pool::connection(db).await {
        Ok(mut conn) => match published {
            Ok(()) => outbox::remove(&mut conn, &ids).await,
            Err(_) => outbox::release(&mut conn, rows).await,
        },
        Err(err) => Err(err),
    };
    if let Err(err) = published {
        tracing::warn!(error = %err, jobs = ids.len(), "publish failed; the relay will retry");
    }
    if let Err(err) = outcome {
        // Harmless: a confirmed job left in the outbox is published again after its claim
        // lapses and the dispatcher drops the duplicate.
        tracing::warn!(error = %err, jobs = ids.len(), "could not update the outbox after publishing");
    }
}

/// A pending delivery overdue by this much without a job anywhere is re-enqueued.
const STRANDED_AFTER_SECS: i32 = 15 * 60;
/// How often the relay looks for such deliveries.
const STRANDED_SWEEP_EVERY: Duration = Duration::from_secs(60);

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
const PUBLISH_BATCH: usize = 1000;
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
        let (taken, refused) = publish_by_lane(link, rows, contexts).await;
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
        forget.forget(rows.iter().map(|row| row.id).collect()).await;
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
/// goes durably: its jobs take slots one by one, which the lane's claim does not cover); returns
/// how many the lane took, and the rows to publish durably instead. Each job travels with its
/// context from `contexts` when it has one.
async fn publish_by_lane(
    link: &AmqpLink,
    rows: Vec<OutboxJob>,
    mut contexts: HashMap<i64, CarriedContext>,
) -> (usize, Vec<OutboxJob>) {
    let mut singles: Vec<Outgoing> = to_outgoing(&rows)
        .into_iter()
        .filter(|outgoing| matches!(outgoing.carried, Carried::Job(_)))
        .collect();
    for outgoing in &mut singles {
        if let Carried::Job(job) = &mut outgoing.carried {
            job.context = contexts.remove(&job.job_id).map(Box::new);
        }
    }
    let taken = link.publish_express(&singles).await;
    let mut settled: HashSet<i64> = HashSet::new();
    for (outgoing, taken) in singles.iter().zip(&taken) {
        if *taken {
            settled.extend(outgoing.carried.job_ids());
        }
    }
    let refused = rows
        .into_iter()
        .filter(|row| !settled.contains(&row.id))
        .collect();
    (settled.len(), refused)
}

fn observe_confirms(metrics: &Metrics, jobs: usize, confirmed: Duration) {
    for _ in 0..jobs {
        metrics.observe_stage(Stage::Confirm, confirmed);
    }
}

/// Removes jobs from the outbox once they are safe elsewhere (confirmed by the broker, or done
/// by a dispatcher), the ids handed over meanwhile in one statement: with several publications
/// in flight, each deleting its own jobs cost a Postgres round trip and commit per publication.
/// Nothing waits on it: a job whose delete is late or lost is published again once its claim
/// lapses, and the dispatcher drops the duplicate.
#[derive(Clone)]
pub struct Forgetter {
    queue: tokio::sync::mpsc::Sender<Vec<i64>>,
}

/// Confirmed ids waiting for their delete, in batches, at most.
const FORGET_BACKLOG: usize = 1024;

/// Ids whose delete failed (the database was away) and is tried again, at most; beyond, they
/// are published again when their claim lapses and dropped as duplicates.
const FORGET_RETRY_MOST: usize = 100_000;
/// Pause before a failed delete is tried again.
const FORGET_RETRY_AFTER: Duration = Duration::from_secs(1);

impl Forgetter {
    /// Starts the task that removes the jobs. A delete that fails is tried again, with what
    /// arrives meanwhile, once a second: a job moved out of the express lane while the database
    /// is away would otherwise be published again.
    pub fn start(db: DbPool) -> Self {
        let (queue, mut handed) = tokio::sync::mpsc::channel::<Vec<i64>>(FORGET_BACKLOG);
        tokio::spawn(async move {
            let mut failed: Vec<i64> = Vec::new();
            loop {
                let retrying = !failed.is_empty();
                let mut ids = if retrying {
                    tokio::time::sleep(FORGET_RETRY_AFTER).await;
                    std::mem::take(&mut failed)
                } else {
                    match handed.recv().await {
                        Some(ids) => ids,
                        None => break,
                    }
                };
                // While the database is away, take in everything handed over meanwhile, so
                // that those handing over never wait.
                let most = if retrying {
                    FORGET_RETRY_MOST
                } else {
                    PUBLISH_BATCH
                };
                while ids.len() < most {
                    match handed.try_recv() {
                        Ok(more) => ids.extend(more),
                        Err(_) => break,
                    }
                }
                let removed = match pool::connection(&db).await {
                    Ok(mut conn) => outbox::remove(&mut conn, &ids).await,
                    Err(err) => Err(err),
                };
                if let Err(err) = removed {
                    if ids.len() > FORGET_RETRY_MOST {
                        tracing::warn!(error = %err, jobs = ids.len() - FORGET_RETRY_MOST,
                            "could not remove jobs from the outbox; they will be published again");
                        ids.truncate(FORGET_RETRY_MOST);
                    } else {
                        tracing::debug!(error = %err, jobs = ids.len(),
                            "could not remove jobs from the outbox; trying again");
                    }
                    failed = ids;
                }
            }
        });
        Self { queue }
    }

    /// Hands over jobs to remove; waits only while the backlog is full.
    pub async fn forget(&self, ids: Vec<i64>) {
        if self.queue.send(ids).await.is_err() {
            tracing::warn!("outbox cleaner stopped; published jobs will be published again");
        }
    }
}

/// Longest pause between tries while the outbox cannot be read.
const MAX_OUTAGE_PAUSE: Duration = Duration::from_secs(2);
/// How often a lasting outage is logged again.
const OUTAGE_LOG_EVERY: Duration = Duration::from_secs(30);

/// A run of failed outbox reads: logged when it begins, every [`OUTAGE_LOG_EVERY`] while it
/// lasts and when it ends (not five times a second), and the pause between tries grows with it
/// so that a struggling database is not pressed harder.
#[derive(Debug, Default)]
struct Outage {
    /// When the run began and when it was last logged; `None` while reads succeed.
    began: Option<(Instant, Instant)>,
    failures: u32,
}

impl Outage {
    fn failed(&mut self, err: &octohooks_db::DbError) {
        self.failures += 1;
        let now = Instant::now();
        match &mut self.began {
            None => {
                tracing::warn!(error = %err, "relay could not read the outbox; retrying");
                self.began = Some((now, now));
            }
            Some((began, logged)) if logged.elapsed() >= OUTAGE_LOG_EVERY => {
                tracing::warn!(error = %err, failures = self.failures,
                    for_secs = began.elapsed().as_secs(), "relay still cannot read the outbox");
                *logged = now;
            }
            Some(_) => {}
        }
    }

    fn read(&mut self) {
        if let Some((began, _)) = self.began.take() {
            tracing::info!(
                failures = self.failures,
                after_ms = began.elapsed().as_millis() as u64,
                "relay reads the outbox again"
            );
        }
        self.failures = 0;
    }

    /// The pause before the next pass: the idle pause, doubled per failure up to the cap.
    fn pause(&self) -> Duration {
        let doublings = self.failures.min(8);
        (IDLE_PAUSE * (1 << doublings)).min(MAX_OUTAGE_PAUSE.max(IDLE_PAUSE))
    }
}

/// Runs relay passes until `shutdown`; now and then also re-enqueues stranded deliveries.
pub async fn run(db: DbPool, link: AmqpLink, shutdown: CancellationToken) {
    let mut next_sweep = tokio::time::Instant::now();
    let mut outage = Outage::default();
    while !shutdown.is_cancelled() {
        if tokio::time::Instant::now() >= next_sweep {
            next_sweep += STRANDED_SWEEP_EVERY;
            sweep_stranded(&db).await;
        }
        let mut busy = false;
        if link.is_connected().await {
            match claim(&db).await {
                Ok(rows) => {
                    outage.read();
                    busy = rows.len() as i64 == BATCH;
                    if !rows.is_empty() {
                        tracing::debug!(jobs = rows.len(), "relaying due jobs");
                        busy &= publish_claimed(&db, &link, &rows).await;
                    }
                }
                Err(err) => outage.failed(&err),
            }
        }
        if !busy {
            tokio::select! {
                () = shutdown.cancelled() => {}
                () = tokio::time::sleep(outage.pause()) => {}
            }
        }
    }
}

async fn sweep_stranded(db: &DbPool) {
    let swept = match pool::connection(db).await {
        Ok(mut conn) => outbox::requeue_stranded(&mut conn, STRANDED_AFTER_SECS).await,
        Err(err) => Err(err),
    };
    match swept {
        Ok(0) => {}
        Ok(count) => tracing::warn!(count, "re-enqueued deliveries whose job went missing"),
        Err(err) => tracing::warn!(error = %err, "could not look for stranded deliveries"),
    }
}

async fn claim(db: &DbPool) -> octohooks_db::DbResult<Vec<OutboxJob>> {
    let mut conn = pool::connection(db).await?;
    outbox::claim_due(&mut conn, BATCH, RELAY_CLAIM_SECS).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_slows_the_relay_down_to_a_cap_and_ends_at_once() {
        let mut outage = Outage::default();
        assert_eq!(outage.pause(), IDLE_PAUSE);
        let err = octohooks_db::DbError::Unavailable("down".into());
        outage.failed(&err);
        assert_eq!(outage.pause(), IDLE_PAUSE * 2);
        for _ in 0..20 {
            outage.failed(&err);
        }
        assert_eq!(outage.pause(), MAX_OUTAGE_PAUSE);
        outage.read();
        assert_eq!(outage.pause(), IDLE_PAUSE);
        assert!(outage.began.is_none());
    }
}
