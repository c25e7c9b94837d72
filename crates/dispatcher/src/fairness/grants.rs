//! This dispatcher's grants of endpoint slots in Postgres: taken from, grown when all are in
//! use, renewed and shrunk every 250 ms, given back when idle or beyond this dispatcher's
//! share, and lapsing by themselves when their dispatcher dies.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use octohooks_db::fairness::{self, SlotAsk};
use octohooks_db::{pool, DbError};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::endpoint::EndpointState;
use super::Fairness;

/// How long a grant lasts unless renewed (twenty renewals): also how long the slots of a
/// dispatcher that died stay taken.
pub(super) const GRANT_TTL: Duration = Duration::from_secs(5);
/// How often grants are renewed and shrunk to what is in use: also how soon a holder learns
/// that another dispatcher asks for slots of its endpoint.
const RENEW_EVERY: Duration = Duration::from_millis(250);
/// A grant unused for this long is given back.
const RELEASE_WHEN_IDLE: Duration = Duration::from_secs(10);
/// What this dispatcher knows of an endpoint that holds nothing is forgotten after this long.
const FORGET_AFTER: Duration = Duration::from_secs(600);
/// After Postgres refused more slots, the endpoint is not asked again for this long.
const DENIAL_HOLDS: Duration = Duration::from_millis(200);
/// A dispatcher holding more than its share renews again this soon, to give the rest back.
const SHRINK_SOON: Duration = Duration::from_millis(100);

/// What the grant this dispatcher holds allows.
enum Granted {
    /// A slot was taken.
    Taken,
    /// The endpoint is at its cap, or Postgres refused more a moment ago.
    Full,
    /// Every granted slot is busy: ask Postgres for more under `changing`. `freed` wakes a job
    /// when one of this dispatcher's `in_use` attempts to the endpoint ends.
    AskFor {
        changing: Arc<tokio::sync::Mutex<()>>,
        freed: Arc<tokio::sync::Notify>,
        in_use: u32,
    },
}

impl Fairness {
    /// Takes one of the endpoint's slots, growing this dispatcher's grant when all it holds
    /// are in use. While the ask is under way, a slot freed by one of this dispatcher's own
    /// attempts serves the job as well: an attempt to a fast endpoint ends in a millisecond,
    /// where the ask waits for a Postgres commit (under load, ten times as long), and every job
    /// that arrives meanwhile would wait for it too.
    pub(super) async fn take_slot(&self, endpoint: Uuid) -> Result<bool, DbError> {
        let cap = self.0.config.max_in_flight.max(1);
        let (changing, freed, in_use) = match self.take_granted(endpoint, cap) {
            Granted::Taken => return Ok(true),
            Granted::Full => return Ok(false),
            Granted::AskFor {
                changing,
                freed,
                in_use,
            } => (changing, freed, in_use),
        };
        let began = Instant::now();
        let taken = self.wait_for_ask(endpoint, changing, freed, in_use).await;
        self.0
            .metrics
            .slot_ask_wait
            .observe(began.elapsed().as_secs_f64());
        taken
    }

    /// Asks for more of the endpoint's slots, and takes one once the answer came, or as soon
    /// as one of this dispatcher's `in_use` attempts to it ends (`freed`).
    async fn wait_for_ask(
        &self,
        endpoint: Uuid,
        changing: Arc<tokio::sync::Mutex<()>>,
        freed: Arc<tokio::sync::Notify>,
        in_use: u32,
    ) -> Result<bool, DbError> {
        // The ask runs in a task of its own, so that its answer is kept whichever comes first.
        let mut asking = tokio::spawn(self.clone().grow_grant(endpoint, changing));
        if in_use == 0 {
            return self.take_after_ask(endpoint, asking.await);
        }
        loop {
            tokio::select! {
                asked = &mut asking => return self.take_after_ask(endpoint, asked),
                // A slot freed while no job waited leaves a permit that another job may have
                // used meanwhile: then wait on.
                () = freed.notified() => {
                    if self.take_granted_only(endpoint) {
                        return Ok(true);
                    }
                }
            }
        }
    }

    /// Takes a slot once the ask for more has been answered.
    fn take_after_ask(
        &self,
        endpoint: Uuid,
        asked: Result<Result<(), DbError>, tokio::task::JoinError>,
    ) -> Result<bool, DbError> {
        match asked {
            Ok(Ok(())) => {}
            Ok(Err(err)) => return Err(err),
            // Only a runtime shutting down cancels the task: no slot then.
            Err(_) => return Ok(false),
        }
        Ok(self.take_granted_only(endpoint))
    }

    /// Takes a slot of the grant held, without asking for more.
    fn take_granted_only(&self, endpoint: Uuid) -> bool {
        self.0
            .endpoints()
            .get_mut(&endpoint)
            .is_some_and(EndpointState::take)
    }

    /// Asks Postgres to grow this dispatcher's grant of the endpoint, under `changing`, unless
    /// another ask grew it while this one waited for its turn. A refusal (no slot beyond those
    /// in use) holds further asks back for [`DENIAL_HOLDS`].
    async fn grow_grant(
        self,
        endpoint: Uuid,
        changing: Arc<tokio::sync::Mutex<()>>,
    ) -> Result<(), DbError> {
        let _changing = changing.lock().await;
        let cap = self.0.config.max_in_flight.max(1);
        let (wanted, keep, pace_ms) = {
            let endpoints = self.0.endpoints();
            let Some(state) = endpoints.get(&endpoint) else {
                return Ok(());
            };
            let most = state.most(cap);
            if state.in_use < state.granted.min(state.share)
                || state.in_use >= most
                || state.denied_until.is_some_and(|t| t > Instant::now())
            {
                return Ok(());
            }
            (
                // Double what is held: a burst costs a few round trips, not one per attempt.
                (state.granted * 2).max(state.in_use + 1).min(most),
                state.in_use,
                state.own_pace(Instant::now()).map(millis),
            )
        };
        let grant = self
            .0
            .asker
            .ask(SlotAsk {
                endpoint,
                wanted,
                keep,
                pace_ms,
            })
            .await?;
        let mut endpoints = self.0.endpoints();
        let state = endpoints
            .entry(endpoint)
            .or_insert_with(|| EndpointState::new(Instant::now()));
        state.granted = grant.slots;
        state.others_pace = grant
            .others_pace_ms
            .map(|ms| Duration::from_millis(u64::from(ms)));
        let refused = state.in_use >= grant.slots.min(state.share);
        state.denied_until = refused.then(|| Instant::now() + DENIAL_HOLDS);
        drop(endpoints);
        let answer = if refused { "refused" } else { "grown" };
        self.0
            .metrics
            .slot_grant_asks
            .with_label_values(&[answer])
            .inc();
        Ok(())
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
        let most = state.most(cap);
        if state.in_use >= most || state.denied_until.is_some_and(|t| t > Instant::now()) {
            return Granted::Full;
        }
        Granted::AskFor {
            changing: state.changing.clone(),
            freed: state.freed.clone(),
            in_use: state.in_use,
        }
    }

    /// Renews this dispatcher's grants every 250 ms until `shutdown`, then gives them all
    /// back. While it holds more than its share of an endpoint, it renews again within
    /// [`SHRINK_SOON`], so that dispatchers waiting for their share get it.
    pub async fn run_renewals(self, shutdown: CancellationToken) {
        let mut next = RENEW_EVERY;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(next) => {}
            }
            next = match self.renew().await {
                Ok(true) => SHRINK_SOON,
                Ok(false) => RENEW_EVERY,
                Err(err) => {
                    tracing::warn!(error = %err, "could not renew endpoint slot grants");
                    RENEW_EVERY
                }
            };
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
    /// Returns whether a grant is still above this dispatcher's share.
    async fn renew(&self) -> Result<bool, DbError> {
        let mut held = Vec::new();
        let mut ids = Vec::new();
        let mut sizes = Vec::new();
        let mut paces = Vec::new();
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
                paces.push(state.own_pace(now).map_or(-1, |pace| {
                    i32::try_from(pace.as_millis()).unwrap_or(i32::MAX)
                }));
            }
        }
        if ids.is_empty() {
            return Ok(false);
        }
        let mut conn = pool::connection(&self.0.db).await?;
        let renewed: HashMap<Uuid, i64> = fairness::renew_grants(
            &mut conn,
            self.0.holder,
            &ids,
            &sizes,
            &paces,
            millis(GRANT_TTL),
        )
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
        let over_share = endpoints.values().any(|state| state.granted > state.share);
        drop(endpoints);
        drop(held);
        Ok(over_share)
    }
}

pub(super) fn millis(duration: Duration) -> u32 {
    u32::try_from(duration.as_millis()).unwrap_or(u32::MAX)
}
