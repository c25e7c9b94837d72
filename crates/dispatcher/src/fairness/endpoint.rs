//! What one dispatcher knows of one endpoint: its grant, its attempts running, its pace.

use std::sync::Arc;
use std::time::{Duration, Instant};

/// Assumed attempt time of an endpoint not attempted yet.
const FIRST_GUESS: Duration = Duration::from_millis(100);
/// Attempts this dispatcher runs at once to an endpoint none of whose attempts here has ended
/// yet: a new endpoint that accepts connections and never answers holds this many delivery
/// slots, not the whole cap, until its first attempts time out (then it is failing and takes
/// the failing share). A healthy one is past this as soon as its first attempt is answered.
pub(super) const PROBE_ATTEMPTS: u32 = 2;
/// Jobs that wait in this dispatcher for an endpoint's slot, per slot it may use: enough that
/// a freed slot finds a job ready, few enough that a backlog for one endpoint leaves the rest
/// of the prefetch to the others. The jobs beyond go back to the outbox at once.
const WAITING_PER_SLOT: u32 = 2;
/// Beyond twice its slots, jobs may wait for an endpoint as long as those ahead of them are
/// through within this time at its pace (its share of the cap over its attempt time): the queue
/// behind them moves at that rate anyway, and putting them back would cost each an outbox round
/// trip (a quarter of a second or more) for nothing. A budget rather than a threshold of speed:
/// a fast endpoint whose attempts take a few milliseconds longer for a moment (a busy host)
/// keeps its waiting jobs instead of putting back all beyond sixteen.
const WAIT_BUDGET: Duration = Duration::from_millis(100);

/// One endpoint as this dispatcher sees it; kept in [`super::Fairness`]'s map under its lock.
pub(super) struct EndpointState {
    /// Slots Postgres granted this dispatcher.
    pub(super) granted: u32,
    /// Attempts running here.
    pub(super) in_use: u32,
    /// Most attempts running at once since the last renewal.
    pub(super) peak: u32,
    /// The most this dispatcher grows its grant to: the cap, or its fair part of it while
    /// other dispatchers hold or want slots of the endpoint too.
    pub(super) share: u32,
    /// Held while the grant changes in Postgres, so that one change runs at a time.
    pub(super) changing: Arc<tokio::sync::Mutex<()>>,
    pub(super) last_used: Instant,
    pub(super) denied_until: Option<Instant>,
    /// Whether the endpoint was in a run of failures when last seen.
    pub(super) failing: bool,
    /// Woken once per slot freed, for a job waiting for one.
    pub(super) freed: Arc<tokio::sync::Notify>,
    /// The next free turn for a job put back.
    pub(super) next_turn: Instant,
    pub(super) mean_attempt: Duration,
    /// Whether an attempt of this dispatcher to the endpoint has ended, so that
    /// `mean_attempt` is measured, not guessed.
    pub(super) attempted: bool,
    /// The slowest pace of the other dispatchers holding slots of the endpoint, as Postgres
    /// last told: what this one goes by while it has not attempted the endpoint itself.
    pub(super) others_pace: Option<Duration>,
    /// When each running attempt started: an endpoint that hangs is known to be slow as soon
    /// as its attempts run long, not only once they time out.
    pub(super) running: Vec<Instant>,
    /// Jobs waiting in this dispatcher for one of the endpoint's slots.
    pub(super) waiting: u32,
}

impl EndpointState {
    pub(super) fn new(now: Instant) -> Self {
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
            attempted: false,
            others_pace: None,
            running: Vec::new(),
            waiting: 0,
        }
    }

    /// How long an attempt to the endpoint takes, as far as is known by now: the moving
    /// average, or the age of the oldest attempt still running if that is longer; what the
    /// other dispatchers measured while this one has not attempted the endpoint.
    pub(super) fn pace(&self, now: Instant) -> Duration {
        match self.own_pace(now) {
            Some(pace) => pace,
            None => self.others_pace.unwrap_or(self.mean_attempt),
        }
    }

    /// The pace this dispatcher measured, if it has attempted the endpoint.
    pub(super) fn own_pace(&self, now: Instant) -> Option<Duration> {
        let oldest = self
            .running
            .iter()
            .map(|started| now.saturating_duration_since(*started))
            .max();
        if oldest.is_none() && !self.attempted {
            return None;
        }
        Some(self.mean_attempt.max(oldest.unwrap_or_default()))
    }

    /// Whether this dispatcher is still finding out whether the endpoint answers at all, and
    /// runs as many attempts to it as that allows.
    pub(super) fn probing(&self) -> bool {
        !self.attempted && self.in_use >= PROBE_ATTEMPTS
    }

    /// The most attempts this dispatcher may run to the endpoint now: its share of `cap`, or
    /// [`PROBE_ATTEMPTS`] while none of its attempts to it has ended.
    pub(super) fn most(&self, cap: u32) -> u32 {
        let most = cap.min(self.share);
        if self.attempted {
            most
        } else {
            most.min(PROBE_ATTEMPTS)
        }
    }

    /// Whether as many jobs wait here for the endpoint's slots as may: a further job goes back
    /// to the outbox instead of holding a place of the prefetch that other endpoints' jobs
    /// behind it in the queue need. The bound is twice the slots (at most `most_waiting`, the
    /// dispatcher's bound for any one endpoint), or what the endpoint drains within
    /// [`WAIT_BUDGET`] if that is more. None until an attempt of this dispatcher to the endpoint
    /// has ended: only its first answer tells how fast it drains (the guess before it put back
    /// most of a fast endpoint's backlog), and jobs wait here at most 250 ms meanwhile.
    pub(super) fn waiting_room_full(&self, cap: u32, most_waiting: u32, now: Instant) -> bool {
        let most = self.most(cap).max(1);
        let drains_per_sec = f64::from(most) / self.pace(now).as_secs_f64().max(1e-6);
        let within_budget = drains_per_sec * WAIT_BUDGET.as_secs_f64();
        let by_slots = (WAITING_PER_SLOT * most).min(most_waiting.max(1));
        self.attempted && f64::from(self.waiting) >= within_budget.max(f64::from(by_slots))
    }

    /// Takes a granted slot if one is free (within the share, which may have shrunk below the
    /// grant until the next renewal gives the difference back).
    pub(super) fn take(&mut self) -> bool {
        if self.in_use < self.granted.min(self.share) && !self.probing() {
            self.in_use += 1;
            self.peak = self.peak.max(self.in_use);
            self.last_used = Instant::now();
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_endpoint_gets_two_attempts_until_one_of_them_ends() {
        let mut state = EndpointState::new(Instant::now());
        state.granted = 8;
        assert!(state.take() && state.take());
        assert!(!state.take(), "a third attempt before any answer");
        assert_eq!(state.most(8), PROBE_ATTEMPTS);
        state.attempted = true;
        assert_eq!(state.most(8), 8);
        assert!(
            (2..8).all(|_| state.take()),
            "the whole grant once one ended"
        );
        assert!(!state.take(), "never beyond the grant");
    }

    #[test]
    fn twice_the_slots_wait_for_a_slow_endpoint_and_what_drains_in_the_budget_for_a_fast_one() {
        let now = Instant::now();
        let mut state = EndpointState::new(now);
        state.waiting = 50;
        assert!(
            !state.waiting_room_full(8, 16, now),
            "no bound before the first answer"
        );
        state.attempted = true;
        state.mean_attempt = Duration::from_secs(1);
        state.waiting = 15;
        assert!(!state.waiting_room_full(8, 16, now), "16 for 8 slots");
        state.waiting = 16;
        assert!(state.waiting_room_full(8, 16, now));
        state.share = 4;
        state.waiting = 8;
        assert!(state.waiting_room_full(8, 16, now), "8 for a share of 4");
        state.waiting = 2;
        assert!(
            state.waiting_room_full(8, 2, now),
            "never more than the dispatcher's bound"
        );
        state.mean_attempt = Duration::from_millis(2);
        state.waiting = 199;
        assert!(
            !state.waiting_room_full(8, 2, now),
            "4 slots of 2 ms drain 200 jobs in 100 ms"
        );
        state.waiting = 200;
        assert!(state.waiting_room_full(8, 2, now));
    }

    #[test]
    fn a_fast_endpoint_slowed_for_a_moment_keeps_the_jobs_that_drain_within_the_budget() {
        let now = Instant::now();
        let mut state = EndpointState::new(now);
        state.attempted = true;
        state.mean_attempt = Duration::from_millis(1);
        state.in_use = 8;
        // Its running attempts are 12 ms old: 8 slots at that pace still take 66 jobs in 100 ms.
        state.running = vec![now - Duration::from_millis(12); 8];
        state.waiting = 40;
        assert!(!state.waiting_room_full(8, 16, now));
        state.waiting = 67;
        assert!(state.waiting_room_full(8, 16, now));
    }
}
