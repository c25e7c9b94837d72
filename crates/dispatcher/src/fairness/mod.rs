//! Fairness between endpoints: one endpoint cannot take the delivery slots of the others.
//!
//! Three admissions, in this order, before an attempt is sent:
//! - an endpoint in a run of failures takes one of this dispatcher's few *failing* slots, so
//!   that endpoints which hang or fail can together hold only a share of the dispatcher;
//! - every endpoint has at most `max_in_flight` attempts running across all dispatchers. Each
//!   dispatcher holds a grant of slots per endpoint in Postgres, grows it when it needs more,
//!   and renews (and shrinks) it every 250 ms; a grant that is not renewed lapses, so the
//!   slots of a dispatcher that died come back by themselves;
//! - a rate-limited endpoint takes a token from its bucket in Postgres.
//!
//! A job for a fast endpoint at its cap first waits a moment in the dispatcher for a slot of the
//! endpoint to free (at most 250 ms), or, when other dispatchers hold every slot, for the share
//! they give back once they see it asking (at most 2 s); at most twice as many jobs as the
//! slots it may use wait so for one endpoint, so that a backlog for it leaves the rest of the
//! prefetch to the jobs of other endpoints behind it in the queue. Dispatchers tell each other the
//! endpoint's pace through their grants, so one that has not attempted an endpoint yet knows
//! whether it is fast. A job that is still not admitted does not wait in the
//! dispatcher (it would hold a place of the prefetch): it goes back to the outbox, due
//! at its endpoint's next turn, and its broker message is acknowledged. Turns are spaced by the
//! endpoint's pace (its mean attempt time over the cap, or one over its rate), so a job waits
//! about as long as the queue ahead of it needs; a job put back for a full endpoint also waits
//! twice as long each time, and comes back through the retry queue, behind no first attempt.
//! A job whose endpoint this dispatcher already knows to be full is put back before its
//! context is read.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use octohooks_db::{fairness, pool, DbError, DbPool};
use octohooks_platform::metrics::Metrics;
use rand::Rng;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

use crate::batched::SlotAsker;
use endpoint::EndpointState;
use turns::put_back_delay;

mod endpoint;
mod grants;
mod turns;

/// A job for a fast endpoint whose slots other dispatchers hold waits up to this long in the
/// dispatcher for its share: the holders see it asking at their next renewal (at most
/// 250 ms away) and give the share back at once, so a backlog spread over several
/// dispatchers drains through all of them instead of going round the outbox.
const SHARE_WAIT: Duration = Duration::from_secs(2);
/// While it waits for its share, a job looks again this often.
const ASK_AGAIN: Duration = Duration::from_millis(100);
/// Shortest and longest wait of a job put back.
const MIN_WAIT: Duration = Duration::from_millis(100);
const MAX_WAIT: Duration = Duration::from_secs(300);
/// A job for a fast endpoint at its cap waits up to this long in the dispatcher for one of the
/// endpoint's slots to free, before it is put back: a backlog for one healthy endpoint drains at
/// the cap's pace instead of cycling through the outbox. Endpoints slower than this on average,
/// and failing ones, are not waited for.
const LOCAL_WAIT: Duration = Duration::from_millis(250);
/// Shortest spacing of the turns of a fast endpoint this dispatcher keeps busy: 20,000 jobs a
/// second, above what one dispatcher delivers.
const DRAINING_TURN: Duration = Duration::from_micros(50);
/// A job put back for a full endpoint waits at least this long, doubled each time it was put
/// back before: a job that keeps finding its endpoint full comes around ever more rarely.
const BACKOFF_BASE: Duration = Duration::from_millis(500);

/// Limits of one dispatcher.
#[derive(Debug, Clone, Copy)]
pub struct FairnessConfig {
    /// Attempts one endpoint may have running, across all dispatchers; 0: no cap.
    pub max_in_flight: u32,
    /// Attempts this dispatcher runs at once to endpoints in a run of failures.
    pub failing_slots: usize,
    /// Jobs that may wait in this dispatcher for one endpoint's slots at most (an eighth of
    /// the prefetch): the rest of the prefetch stays free for the jobs of other endpoints.
    pub most_waiting: u32,
}

/// Why a job was put back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitReason {
    /// The endpoint has `max_in_flight` attempts running.
    Concurrency,
    /// Every failing slot of this dispatcher is taken.
    FailingEndpoints,
    /// The endpoint's rate limit is used up.
    RateLimit,
    /// Not a limit: the broker delivered the job too often (see `Deliverer::park`).
    Redelivered,
    /// Not a limit: a grouped job whose attempt ran long, copied to the outbox so that its
    /// group's broker message could be acknowledged (see `octohooks_broker::group`).
    HandedOff,
}

impl WaitReason {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Concurrency => "concurrency",
            Self::FailingEndpoints => "failing_endpoints",
            Self::RateLimit => "rate_limit",
            Self::Redelivered => "redelivered",
            Self::HandedOff => "handed_off",
        }
    }
}

/// The answer to "may this job's attempt start now?".
pub enum Admission {
    /// Yes: hold the slot while the request is in flight.
    Go(Slot),
    /// Not now: run again after `delay`.
    Wait {
        /// Until the endpoint's next turn.
        delay: Duration,
        /// What was full.
        reason: WaitReason,
    },
}

/// One running attempt's place; dropping it frees the place.
pub struct Slot {
    inner: Arc<Inner>,
    endpoint: Uuid,
    started: Instant,
    _failing: Option<OwnedSemaphorePermit>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let took = self.started.elapsed();
        let mut endpoints = self.inner.endpoints();
        if let Some(state) = endpoints.get_mut(&self.endpoint) {
            state.in_use = state.in_use.saturating_sub(1);
            state.last_used = Instant::now();
            // A moving average: the pace of the last handful of attempts.
            state.mean_attempt = if state.attempted {
                state.mean_attempt.mul_f64(0.8) + took.mul_f64(0.2)
            } else {
                took
            };
            state.attempted = true;
            if let Some(at) = state.running.iter().position(|s| *s == self.started) {
                state.running.swap_remove(at);
            }
            state.freed.notify_one();
        }
    }
}

/// A job's place among those waiting in this dispatcher for an endpoint's slot; dropping it
/// (taken, given up, or cancelled) leaves the place.
struct Waiting {
    inner: Arc<Inner>,
    endpoint: Uuid,
}

impl Waiting {
    /// A place, unless as many jobs wait for the endpoint as may.
    fn enter(inner: &Arc<Inner>, endpoint: Uuid) -> Option<Self> {
        let cap = inner.config.max_in_flight.max(1);
        let mut endpoints = inner.endpoints();
        let state = endpoints.get_mut(&endpoint)?;
        if state.waiting_room_full(cap, inner.config.most_waiting, Instant::now()) {
            return None;
        }
        state.waiting += 1;
        Some(Self {
            inner: inner.clone(),
            endpoint,
        })
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if let Some(state) = self.inner.endpoints().get_mut(&self.endpoint) {
            state.waiting = state.waiting.saturating_sub(1);
        }
    }
}

/// This dispatcher's side of the shared limits.
#[derive(Clone)]
pub struct Fairness(Arc<Inner>);

struct Inner {
    db: DbPool,
    /// Grows this dispatcher's grants, many endpoints per statement.
    asker: SlotAsker,
    /// Names this dispatcher's grants.
    holder: Uuid,
    config: FairnessConfig,
    failing: Arc<Semaphore>,
    endpoints: Mutex<HashMap<Uuid, EndpointState>>,
    /// Counts the grant asks and how long jobs waited on them.
    metrics: Arc<Metrics>,
}

impl Inner {
    fn endpoints(&self) -> MutexGuard<'_, HashMap<Uuid, EndpointState>> {
        self.endpoints
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
impl Fairness {
    /// Limits with a fresh holder id; call [`Fairness::run_renewals`] to keep its grants alive.
    pub fn new(db: DbPool, config: FairnessConfig, metrics: Arc<Metrics>) -> Self {
        let holder = Uuid::new_v4();
        let cap = config.max_in_flight.max(1);
        Self(Arc::new(Inner {
            asker: SlotAsker::start(db.clone(), holder, cap, grants::millis(grants::GRANT_TTL)),
            db,
            holder,
            config,
            failing: Arc::new(Semaphore::new(config.failing_slots.max(1))),
            endpoints: Mutex::default(),
            metrics,
        }))
    }

    /// Whether what this dispatcher knows already tells that `endpoint` is full: then the job
    /// can be put back without reading its context. `deferrals`: times it was put back.
    pub fn known_full(&self, endpoint: Uuid, deferrals: u32) -> Option<Admission> {
        let now = Instant::now();
        let reason = {
            let endpoints = self.0.endpoints();
            let state = endpoints.get(&endpoint)?;
            let cap = self.0.config.max_in_flight.max(1);
            let full = self.0.config.max_in_flight > 0 && state.in_use >= state.most(cap)
                || (state.in_use >= state.granted && state.denied_until.is_some_and(|t| t > now));
            if full
                && (state.pace(now) > LOCAL_WAIT
                    || state.waiting_room_full(cap, self.0.config.most_waiting, now))
            {
                WaitReason::Concurrency
            } else if state.failing && self.0.failing.available_permits() == 0 {
                WaitReason::FailingEndpoints
            } else {
                return None;
            }
        };
        Some(self.wait(endpoint, reason, None, deferrals))
    }

    /// Whether an attempt to `endpoint` may start now. `failing`: the endpoint is in a run of
    /// failures; `rate_limit`: its messages per second, if limited; `deferrals`: times the job
    /// was put back.
    pub async fn admit(
        &self,
        endpoint: Uuid,
        failing: bool,
        rate_limit: Option<i32>,
        deferrals: u32,
    ) -> Result<Admission, DbError> {
        if let Some(state) = self.0.endpoints().get_mut(&endpoint) {
            state.failing = failing;
        }
        let failing_slot = if failing {
            match self.0.failing.clone().try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => {
                    return Ok(self.wait(endpoint, WaitReason::FailingEndpoints, None, deferrals))
                }
            }
        } else {
            None
        };
        let capped = self.0.config.max_in_flight > 0;
        if capped
            && !self.take_slot(endpoint).await?
            && (failing || !self.wait_for_a_freed_slot(endpoint).await?)
        {
            return Ok(self.wait(endpoint, WaitReason::Concurrency, None, deferrals));
        }
        let started = Instant::now();
        if let Some(state) = self.0.endpoints().get_mut(&endpoint) {
            state.running.push(started);
        }
        let slot = Slot {
            inner: self.0.clone(),
            endpoint,
            started,
            _failing: failing_slot,
        };
        if let Some(rate) = rate_limit.filter(|rate| *rate > 0) {
            let mut conn = pool::connection(&self.0.db).await?;
            if let Some(until_token) = fairness::take_token(&mut conn, endpoint, rate).await? {
                drop(slot);
                let pace = Duration::from_secs_f64(1.0 / f64::from(rate));
                return Ok(self.wait(
                    endpoint,
                    WaitReason::RateLimit,
                    Some((until_token, pace)),
                    deferrals,
                ));
            }
        }
        Ok(Admission::Go(slot))
    }

    /// Waits for a slot of a fast endpoint, and takes it: up to [`LOCAL_WAIT`] for one of this
    /// dispatcher's own attempts to end, or, while it holds none because other dispatchers
    /// hold the slots, up to [`SHARE_WAIT`] for its share, asking again as it goes.
    async fn wait_for_a_freed_slot(&self, endpoint: Uuid) -> Result<bool, DbError> {
        let Some(_waiting) = Waiting::enter(&self.0, endpoint) else {
            return Ok(false);
        };
        let started = tokio::time::Instant::now();
        let mut deadline = started + LOCAL_WAIT;
        loop {
            let (freed, waiting_for_share) = {
                let endpoints = self.0.endpoints();
                match endpoints.get(&endpoint) {
                    Some(state) if state.pace(Instant::now()) <= LOCAL_WAIT => {
                        (state.freed.clone(), state.in_use == 0)
                    }
                    _ => return Ok(false),
                }
            };
            let now = tokio::time::Instant::now();
            let look_again = if waiting_for_share {
                deadline = deadline.max(started + SHARE_WAIT);
                deadline.min(now + ASK_AGAIN)
            } else {
                deadline
            };
            // A slot freed since the last look left a permit: this returns at once then.
            let woken = tokio::time::timeout_at(look_again, freed.notified())
                .await
                .is_ok();
            if !woken && look_again >= deadline {
                return Ok(false);
            }
            if self.take_slot(endpoint).await? {
                return Ok(true);
            }
        }
    }

    /// The endpoint's next turn for a job put back. `rate`: the time until the bucket's next
    /// token and the bucket's pace.
    fn wait(
        &self,
        endpoint: Uuid,
        reason: WaitReason,
        rate: Option<(Duration, Duration)>,
        deferrals: u32,
    ) -> Admission {
        let now = Instant::now();
        let cap = self.0.config.max_in_flight.max(1);
        let mut endpoints = self.0.endpoints();
        let state = endpoints
            .entry(endpoint)
            .or_insert_with(|| EndpointState::new(now));
        let delay = put_back_delay(state, now, cap, reason, rate, deferrals);
        Admission::Wait {
            delay: delay.mul_f64(rand::thread_rng().gen_range(1.0..=1.1)),
            reason,
        }
    }
}
