//! When a job put back comes around again: at its endpoint's next turn, spaced by the
//! endpoint's pace, or after a backoff that doubles each time the job was put back.

use std::time::{Duration, Instant};

use super::endpoint::EndpointState;
use super::{WaitReason, BACKOFF_BASE, DRAINING_TURN, LOCAL_WAIT, MAX_WAIT, MIN_WAIT};

/// How long a job put back waits for `state`'s endpoint: until its next turn (which this takes),
/// or its backoff if longer, within [`MIN_WAIT`] and [`MAX_WAIT`]. `rate`: the time until the
/// bucket's next token and the bucket's pace.
pub(super) fn put_back_delay(
    state: &mut EndpointState,
    now: Instant,
    cap: u32,
    reason: WaitReason,
    rate: Option<(Duration, Duration)>,
    deferrals: u32,
) -> Duration {
    let (earliest, pace) = match rate {
        Some((until_token, pace)) => (now + until_token, pace),
        None => (now, state.pace(now) / cap),
    };
    // A fast endpoint whose slots this dispatcher holds and keeps busy: its turns are a good
    // guess, so the jobs put back come back at the pace it takes them, with no backoff (with
    // one, a backlog for a fast endpoint drained at a seventh of its pace, its slots idle
    // while the jobs waited out backoffs).
    let draining =
        reason == WaitReason::Concurrency && state.in_use > 0 && state.pace(now) <= LOCAL_WAIT;
    let least_pace = if draining {
        DRAINING_TURN
    } else {
        Duration::from_millis(1)
    };
    let turn = state.next_turn.max(earliest) + pace.max(least_pace);
    state.next_turn = turn.min(now + MAX_WAIT);
    // A rate limit's turns are exact; a full endpoint's are a guess, hence the backoff (a
    // fixed short wait let the jobs of a dispatcher refused every slot cycle without end).
    let backoff = match reason {
        // Parking for redeliveries has its own fixed wait and never asks for a turn.
        WaitReason::RateLimit | WaitReason::Redelivered | WaitReason::HandedOff => Duration::ZERO,
        WaitReason::Concurrency if draining => Duration::ZERO,
        WaitReason::Concurrency | WaitReason::FailingEndpoints => {
            BACKOFF_BASE.saturating_mul(1 << deferrals.min(16))
        }
    };
    turn.saturating_duration_since(now)
        .max(backoff)
        .clamp(MIN_WAIT, MAX_WAIT)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fast endpoint (1 ms an attempt) whose 8 slots this dispatcher keeps busy.
    fn busy_fast_endpoint(now: Instant) -> EndpointState {
        let mut state = EndpointState::new(now);
        state.attempted = true;
        state.mean_attempt = Duration::from_millis(1);
        state.in_use = 8;
        state
    }

    #[test]
    fn jobs_put_back_for_a_busy_fast_endpoint_come_back_at_its_pace() {
        let now = Instant::now();
        let mut state = busy_fast_endpoint(now);
        let delays: Vec<Duration> = (0..2000)
            .map(|_| put_back_delay(&mut state, now, 8, WaitReason::Concurrency, None, 0))
            .collect();
        // 2,000 turns an eighth of a millisecond apart: the last a quarter second away, with
        // no backoff of half a second before any of them.
        assert_eq!(delays[0], MIN_WAIT);
        let last = delays[1999];
        assert!(
            last >= Duration::from_millis(240) && last <= Duration::from_millis(260),
            "{last:?}"
        );
    }

    #[test]
    fn jobs_put_back_for_an_endpoint_this_dispatcher_does_not_keep_busy_back_off() {
        let now = Instant::now();
        let mut idle_here = busy_fast_endpoint(now);
        idle_here.in_use = 0;
        let delay = put_back_delay(&mut idle_here, now, 8, WaitReason::Concurrency, None, 2);
        assert_eq!(delay, BACKOFF_BASE * 4, "twice as long per time put back");
        let mut slow = busy_fast_endpoint(now);
        slow.mean_attempt = Duration::from_secs(1);
        let delay = put_back_delay(&mut slow, now, 8, WaitReason::Concurrency, None, 0);
        assert_eq!(delay, BACKOFF_BASE);
    }
}
