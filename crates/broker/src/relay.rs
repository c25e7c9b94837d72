//! The outbox relay: moves delivery jobs from Postgres to RabbitMQ.
//!
//! The API publishes the jobs of a message right after committing it
//! ([`crate::publisher::Publisher`]); the relay loop, run by every API and dispatcher process,
//! picks up whatever that missed (the broker was down, the process died) and the retries that
//! have come due. A job leaves the
//! outbox only after the broker confirmed it, so a crash at any point leads to a second
//! publication, never to a lost job.

use std::time::{Duration, Instant};

use octohooks_db::models::OutboxJob;
use octohooks_db::{outbox, pool, DbPool};
use tokio_util::sync::CancellationToken;

use crate::link::{AmqpError, AmqpLink};
use crate::outgoing::to_outgoing;
use crate::timing::RELAY_CLAIM_SECS;

/// Jobs claimed per relay pass.
const BATCH: i64 = 500;
/// Pause between passes when there was nothing to do.
const IDLE_PAUSE: Duration = Duration::from_millis(200);

/// Publishes jobs this process has claimed, then removes them from the outbox. On failure the
/// claims are released so that the next relay pass tries again as soon as the broker is back.
async fn publish_claimed(db: &DbPool, link: &AmqpLink, rows: &[OutboxJob]) -> bool {
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
pub(crate) async fn settle(db: &DbPool, rows: &[OutboxJob], published: &Result<(), AmqpError>) {
    let outcome = match pool::connection(db).await {
        Ok(mut conn) => match published {
            Ok(()) => {
                let (own, fanouts) = outbox::rows_of(rows);
                outbox::remove(&mut conn, &own, &fanouts).await
            }
            Err(_) => outbox::release(&mut conn, rows).await,
        },
        Err(err) => Err(err),
    };
    if let Err(err) = published {
        tracing::warn!(error = %err, jobs = rows.len(), "publish failed; the relay will retry");
    }
    if let Err(err) = outcome {
        // Harmless: a confirmed job left in the outbox is published again after its claim
        // lapses and the dispatcher drops the duplicate.
        tracing::warn!(error = %err, jobs = rows.len(), "could not update the outbox after publishing");
    }
}

/// A pending delivery overdue by this much without a job anywhere is re-enqueued.
const STRANDED_AFTER_SECS: i32 = 15 * 60;
/// How often the relay looks for such deliveries.
const STRANDED_SWEEP_EVERY: Duration = Duration::from_secs(60);

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
                    busy = rows.len() as i64 >= BATCH;
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
