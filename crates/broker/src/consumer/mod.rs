//! The queue consumer: manual acks, bounded prefetch, a connection rebuilt with backoff when it
//! drops, and a drain on shutdown (stop taking jobs, finish the ones in flight, then close). It
//! decodes each job (or group of jobs, see [`crate::group`]), decides whether it is parked
//! (delivered too often, or from the parked queue), hands it to a [`JobHandler`], and acks or
//! requeues as the handler says.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use octohooks_domain::job::DeliveryJob;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::topology::Topology;

/// What the handler does with the broker message once the job ran.
#[derive(Debug, PartialEq, Eq)]
pub enum Disposition {
    /// Done (delivered, failed for good, retry scheduled, parked, or nothing to do): acknowledge.
    Ack,
    /// Could not record the outcome (database trouble): requeue so it runs again.
    Requeue,
}

/// A job as the consumer hands it over.
#[derive(Debug)]
pub struct Incoming {
    /// The job.
    pub job: DeliveryJob,
    /// W3C trace context it carries.
    pub traceparent: Option<String>,
    /// The broker delivered it too often, or it comes from the parked queue: move it to the
    /// outbox rather than attempting it.
    pub park: bool,
    /// It came by the express lane and still has its outbox row: a handler that answers
    /// [`Disposition::Ack`] has removed that row (with the attempt's record when there is one,
    /// in the same commit, else by [`JobHandler::forget`]).
    pub express: bool,
    /// The first-attempt slot the job runs in, if it takes one. The handler gives it back once
    /// the job's HTTP exchange is over: a job waiting for its record (a commit) then does not
    /// hold back the next job's request. Dropping it anywhere gives it back.
    pub slot: Option<OwnedSemaphorePermit>,
}

/// What runs each job; cloned into the task of every job.
pub trait JobHandler: Clone + Send + Sync + 'static {
    /// Runs (or parks) one job and says what becomes of its broker message.
    fn handle(&self, incoming: Incoming) -> impl std::future::Future<Output = Disposition> + Send;

    /// Stores a copy of `job` in the outbox, due after `after`, so that its group's broker
    /// message can be acknowledged while the job's own attempt is still under way (or could
    /// not be recorded): the copy runs only if that attempt was not recorded by then. True
    /// once the copy is stored.
    fn hand_off(
        &self,
        job: &DeliveryJob,
        traceparent: Option<&str>,
        after: Duration,
    ) -> impl std::future::Future<Output = bool> + Send;

    /// Removes the outbox rows of jobs that came by the express lane and are done without a
    /// record that removed them (put back, handed off, dropped, moved to the durable queue),
    /// which the API left in the outbox in case the lane lost them ([`crate::express`]). A row
    /// whose removal is lost is published again when its claim lapses, and dropped as a
    /// duplicate.
    fn forget(&self, job_ids: Vec<i64>) -> impl std::future::Future<Output = ()> + Send;
}

/// Consumer configuration.
pub struct ConsumerConfig {
    /// RabbitMQ URL.
    pub url: String,
    /// The queues to consume (and declare).
    pub topology: Topology,
    /// Jobs at once: first attempts get three quarters, retries the rest.
    pub prefetch: u16,
    /// When the copy of a grouped job handed off to the outbox runs (see [`crate::group`]):
    /// after the longest an attempt can take, and some.
    pub hand_off_after: Duration,
    /// The process's publishing link: express jobs that cannot run move to their durable queue
    /// through it.
    pub link: crate::link::AmqpLink,
}

impl ConsumerConfig {
    /// The prefetch of the first-attempt queue and of the retry queue: retries get a quarter,
    /// so that retries of failing endpoints never hold every slot.
    fn shares(&self) -> (u16, u16) {
        let retry_prefetch = (self.prefetch / 4).max(1);
        let first_prefetch = self.prefetch.saturating_sub(retry_prefetch).max(1);
        (first_prefetch, retry_prefetch)
    }
}

/// Longest pause between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Consumes until `shutdown`, then drains. `connected` mirrors the consumer's broker link.
pub async fn run<H: JobHandler>(
    config: ConsumerConfig,
    handler: H,
    connected: Arc<AtomicBool>,
    shutdown: CancellationToken,
) {
    let tracker = TaskTracker::new();
    let session = Session {
        config: &config,
        handler: &handler,
        connected: &connected,
        shutdown: &shutdown,
        tracker: &tracker,
        first_slots: &Arc::new(Semaphore::new(usize::from(config.shares().0))),
    };
    let mut backoff = Duration::from_millis(100);
    while !shutdown.is_cancelled() {
        match session.consume_on_new_connection().await {
            Ok(()) => backoff = Duration::from_millis(100),
            Err(err) => {
                tracing::warn!(error = %err, retry_in_ms = backoff.as_millis() as u64,
                    "consumer lost RabbitMQ; reconnecting");
                tokio::select! {
                    () = shutdown.cancelled() => {}
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
    tracker.close();
    tracker.wait().await;
}

mod batch;
mod message;
mod session;

pub(crate) use session::consume;
use session::Session;
