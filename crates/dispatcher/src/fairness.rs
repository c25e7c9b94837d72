//! Fairness between endpoints: one endpoint cannot take the delivery slots of the others.
//!
//! Three admissions, in this order, before an attempt is sent:
//! - an endpoint in a run of failures takes one of this dispatcher's few *failing* slots, so
//!   that endpoints which hang or fail can together hold only a share of the dispatcher;
//! - every endpoint has at most `max_in_flight` attempts running across all dispatchers. Each
//!   dispatcher holds a grant of slots per endpoint in Postgres, grows it when it needs more,
//!   and renews (and shrinks) it every second; a grant that is not renewed lapses, so the
//!   slots of a dispatcher that died come back by themselves;
//! - a rate-limited endpoint takes a token from its bucket in Postgres.
//!
//! A job for a fast endpoint at its cap first waits a moment in the dispatcher for a slot of the
//! endpoint to free (at most 250 ms). A job that is still not admitted does not wait in the
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
use rand::Rng;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How long a grant lasts unless renewed.
const GRANT_TTL: Duration = Duration::from_secs(30);
/// How often grants are renewed and shrunk to what is in use.
const RENEW_EVERY: Duration = Duration::from_secs(1);
/// A grant unused for this long is given back.
const RELEASE_WHEN_IDLE: Duration = Duration::from_secs(10);
/// What this dispatcher knows of an endpoint that holds nothing is forgotten after this long.
const FORGET_AFTER: Duration = Duration::from_secs(600);
/// After Postgres refused more slots, the endpoint is not asked again for this long.
const DENIAL_HOLDS: Duration = Duration::from_millis(500);
/// Shortest and longest wait of a job put back.
const MIN_WAIT: Duration = Duration::from_millis(100);
const MAX_WAIT: Duration = Duration::from_secs(300);
/// Assumed attempt time of an endpoint not attempted yet.
const FIRST_GUESS: Duration = Duration::from_millis(100);
/// A job for a fast endpoint at its cap waits up to this long in the dispatcher for one of the
/// endpoint's slots to free, before it is put back: a backlog for one healthy endpoint drains at
/// the cap's pace instead of cycling through the outbox. Endpoints slower than this on average,
/// and failing ones, are not waited for.
const LOCAL_WAIT: Duration = Duration::from_millis(250);
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
}

impl WaitReason {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Concurrency => "concurrency",
            Self::FailingEndpoints => "failing_endpoints",
            Self::RateLimit => "rate_limit",
            Self::Redelivered => "redelivered",
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
            state.mean_attempt = state.mean_attempt.mul_f64(0.8) + took.mul_f64(0.2);
            if let Some(at) = state.running.iter().position(|s| *s == self.started) {
                state.running.swap_remove(at);
            }
            state.freed.notify_one();
        }
    }
}

/// This dispatcher's side of the shared limits.
#[derive(Clone)]
pub struct Fairness(Arc<Inner>);

struct Inner {
    db: DbPool,
    /// Names this dispatcher's grants.
    holder: Uuid,
    config: FairnessConfig,
    failing: Arc<Semaphore>,
    endpoints: Mutex<HashMap<Uuid, EndpointState>>,
}

impl Inner {
    fn endpoints(&self) -> MutexGuard<'_, HashMap<Uuid, EndpointState>> {
        self.endpoints
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

struct EndpointState {
    /// Slots Postgres granted this dispatcher.
    granted: u32,
    /// Attempts running here.
    in_use: u32,
    /// Most attempts running at once since the last renewal.
    peak: u32,
    /// The most this dispatcher grows its grant to: the cap, or its fair part of it while
    /// other dispatchers hold or want slots of the endpoint too.
    share: u32,
    /// Held while the grant changes in Postgres, so that one change runs at a time.
    changing: Arc<tokio::sync::Mutex<()>>,
    last_used: Instant,
    denied_until: Option<Instant>,
    /// Whether the endpoint was in a run of failures when last seen.
    failing: bool,
    /// Woken once per slot freed, for a job waiting for one.
    freed: Arc<tokio::sync::Notify>,
    /// The next free turn for a job put back.
    next_turn: Instant,
    mean_attempt: Duration,
    /// When each running attempt started: an endpoint that hangs is known to be slow as soon
    /// as its attempts run long, not only once they time out.
    running: Vec<Instant>,
}

impl EndpointState {
    fn new(now: Instant) -> Self {
        Self {
            granted: 0,
            in_use: 0,
            peak: 0,
            share: u32::MAX,
            changing: Arc::default(),
            last_used: now,
            denied_until: None,
            failing: false,
            freed: Arc::default(),
            next_turn: now,
            mean_attempt: FIRST_GUESS,
            running: Vec::new(),
        }
    }

    /// How long an attempt to the endpoint takes, as far as is known by now: the moving
    /// average, or the age of the oldest attempt still running if that is longer.
    fn pace(&self, now: Instant) -> Duration {
        let oldest = self
            .running
            .iter()
            .map(|started| now.saturating_duration_since(*started))
            .max()
            .unwrap_or_default();
        self.mean_attempt.max(oldest)
    }

    /// Takes a granted slot if one is free (within the share, which may have shrunk below the
    /// grant until the next renewal gives the difference back).
    fn take(&mut self) -> bool {
        if self.in_use < self.granted.min(self.share) {
            self.in_use += 1;
            self.peak = self.peak.max(self.in_use);
            self.last_used = Instant::now();
            true
        } else {
            false
        }
    }
}

/// What the grant this dispatcher holds allows.
enum Granted {
    /// A slot was taken.
    Taken,
    /// The endpoint is at its cap, or Postgres refused more a moment ago.
    Full,
    /// Every granted slot is busy: ask Postgres for `wanted`, keeping `keep`, under `changing`.
    AskFor {
        changing: Arc<tokio::sync::Mutex<()>>,
        wanted: u32,
        keep: u32,
    },
}

impl Fairness {
    /// Limits with a fresh holder id; call [`Fairness::run_renewals`] to keep its grants alive.
    pub fn new(db: DbPool, config: FairnessConfig) -> Self {
        Self(Arc::new(Inner {
            db,
            holder: Uuid::new_v4(),
            config,
            failing: Arc::new(Semaphore::new(config.failing_slots.max(1))),
            endpoints: Mutex::default(),
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
            let full = self.0.config.max_in_flight > 0 && state.in_use >= cap
                || (state.in_use >= state.granted && state.denied_until.is_some_and(|t| t > now));
            if full && state.pace(now) > LOCAL_WAIT {
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

    /// Takes one of the endpoint's slots, growing this dispatcher's grant when all it holds
    /// are in use.
    async fn take_slot(&self, endpoint: Uuid) -> Result<bool, DbError> {
        let cap = self.0.config.max_in_flight.max(1);
        let changing = match self.take_granted(endpoint, cap) {
            Granted::Taken => return Ok(true),
            Granted::Full => return Ok(false),
            Granted::AskFor { changing, .. } => changing,
        };
        let _changing = changing.lock().await;
        // Someone else may have grown the grant while this one waited.
        let (wanted, keep) = match self.take_granted(endpoint, cap) {
            Granted::Taken => return Ok(true),
            Granted::Full => return Ok(false),
            Granted::AskFor { wanted, keep, .. } => (wanted, keep),
        };
        let granted = {
            let mut conn = pool::connection(&self.0.db).await?;
            fairness::grant_slots(
                &mut conn,
                endpoint,
                self.0.holder,
                wanted,
                keep,
                cap,
                millis(GRANT_TTL),
            )
            .await?
        };
        let mut endpoints = self.0.endpoints();
        let state = endpoints
            .entry(endpoint)
            .or_insert_with(|| EndpointState::new(Instant::now()));
        state.granted = granted;
        if state.take() {
            state.denied_until = None;
            Ok(true)
        } else {
            state.denied_until = Some(Instant::now() + DENIAL_HOLDS);
            Ok(false)
        }
    }

    /// Waits up to [`LOCAL_WAIT`] for a slot of a fast endpoint to free, and takes it.
    async fn wait_for_a_freed_slot(&self, endpoint: Uuid) -> Result<bool, DbError> {
        let deadline = tokio::time::Instant::now() + LOCAL_WAIT;
        loop {
            let freed = {
                let endpoints = self.0.endpoints();
                match endpoints.get(&endpoint) {
                    // Only this dispatcher's own attempts free a slot it can take.
                    Some(state) if state.in_use > 0 && state.pace(Instant::now()) <= LOCAL_WAIT => {
                        state.freed.clone()
                    }
                    _ => return Ok(false),
                }
            };
            // A slot freed since the last look left a permit: this returns at once then.
            if tokio::time::timeout_at(deadline, freed.notified())
                .await
                .is_err()
            {
                return Ok(false);
            }
            if self.take_slot(endpoint).await? {
                return Ok(true);
            }
        }
    }

    /// Takes a slot of the grant this dispatcher holds, or says what to ask Postgres for.
    fn take_granted(&self, endpoint: Uuid, cap: u32) -> Granted {
        let mut endpoints = self.0.endpoints();
        let state = endpoints
            .entry(endpoint)
            .or_insert_with(|| EndpointState::new(Instant::now()));
        if state.take() {
            return Granted::Taken;
        }
        let most = cap.min(state.share);
        if state.in_use >= most || state.denied_until.is_some_and(|t| t > Instant::now()) {
            return Granted::Full;
        }
        Granted::AskFor {
            changing: state.changing.clone(),
            // Double what is held: a burst costs a few round trips, not one per attempt.
            wanted: (state.granted * 2).max(state.in_use + 1).min(most),
            keep: state.in_use,
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
        let (earliest, pace) = match rate {
            Some((until_token, pace)) => (now + until_token, pace),
            None => (now, state.pace(now) / cap),
        };
        let turn = state.next_turn.max(earliest) + pace.max(Duration::from_millis(1));
        state.next_turn = turn.min(now + MAX_WAIT);
        // A rate limit's turns are exact; a full endpoint's are a guess, hence the backoff (a
        // fixed short wait let the jobs of a dispatcher refused every slot cycle without end).
        let backoff = match reason {
            // Parking for redeliveries has its own fixed wait and never asks for a turn.
            WaitReason::RateLimit | WaitReason::Redelivered => Duration::ZERO,
            WaitReason::Concurrency | WaitReason::FailingEndpoints => {
                BACKOFF_BASE.saturating_mul(1 << deferrals.min(16))
            }
        };
        let delay = turn
            .saturating_duration_since(now)
            .max(backoff)
            .clamp(MIN_WAIT, MAX_WAIT);
        Admission::Wait {
            delay: delay.mul_f64(rand::thread_rng().gen_range(1.0..=1.1)),
            reason,
        }
    }

    /// Renews this dispatcher's grants every few seconds until `shutdown`, then gives them
    /// all back.
    pub async fn run_renewals(self, shutdown: CancellationToken) {
        let mut every = tokio::time::interval(RENEW_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = every.tick() => {}
            }
            if let Err(err) = self.renew().await {
                tracing::warn!(error = %err, "could not renew endpoint slot grants");
            }
        }
        let released = match pool::connection(&self.0.db).await {
            Ok(mut conn) => fairness::release_grants(&mut conn, self.0.holder).await,
            Err(err) => Err(err),
        };
        if let Err(err) = released {
            tracing::warn!(error = %err, "could not give back endpoint slot grants; they lapse");
        }
    }

    /// One renewal: each grant shrinks to the most attempts it ran at once since the last
    /// renewal (or goes back when idle), in one statement. A grant being grown is skipped.
    async fn renew(&self) -> Result<(), DbError> {
        let mut held = Vec::new();
        let mut ids = Vec::new();
        let mut sizes = Vec::new();
        {
            let mut endpoints = self.0.endpoints();
            let now = Instant::now();
            endpoints.retain(|_, state| {
                state.granted > 0
                    || state.in_use > 0
                    || state.next_turn > now
                    || now.duration_since(state.last_used) < FORGET_AFTER
            });
            for (id, state) in endpoints.iter_mut() {
                if state.granted == 0 {
                    continue;
                }
                let Ok(changing) = state.changing.clone().try_lock_owned() else {
                    continue;
                };
                let idle =
                    state.in_use == 0 && now.duration_since(state.last_used) >= RELEASE_WHEN_IDLE;
                let keep = if idle {
                    0
                } else {
                    state.peak.min(state.share).max(state.in_use)
                };
                state.granted = keep;
                state.peak = state.in_use;
                held.push(changing);
                ids.push(*id);
                sizes.push(i32::try_from(keep).unwrap_or(i32::MAX));
            }
        }
        if ids.is_empty() {
            return Ok(());
        }
        let mut conn = pool::connection(&self.0.db).await?;
        let renewed: HashMap<Uuid, i64> =
            fairness::renew_grants(&mut conn, self.0.holder, &ids, &sizes, millis(GRANT_TTL))
                .await?
                .into_iter()
                .collect();
        let cap = self.0.config.max_in_flight.max(1);
        let mut endpoints = self.0.endpoints();
        for (id, holders) in &renewed {
            if let Some(state) = endpoints.get_mut(id) {
                let holders = u32::try_from(*holders).unwrap_or(u32::MAX).max(1);
                state.share = cap.div_ceil(holders);
            }
        }
        for (id, size) in ids.iter().zip(&sizes) {
            if *size > 0 && !renewed.contains_key(id) {
                // The grant lapsed (Postgres was out of reach for long): start no attempt
                // beyond those running until a new grant is had.
                if let Some(state) = endpoints.get_mut(id) {
                    state.granted = state.granted.min(state.in_use);
                }
                tracing::warn!(endpoint_id = %id, "an endpoint slot grant had lapsed");
            }
        }
        drop(held);
        Ok(())
    }
}

fn millis(duration: Duration) -> u32 {
    u32::try_from(duration.as_millis()).unwrap_or(u32::MAX)
}
