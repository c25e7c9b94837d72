//! The retention sweeper: every dispatcher runs it, one at a time sweeps (see
//! [`octohooks_db::retention`]). It works in batches while there is a backlog, resting three
//! times as long as each batch took, and otherwise looks again after a tenth of the shortest period it
//! keeps (at most a minute).

use std::time::Duration;

use chrono::Utc;
use octohooks_db::retention::{self, RetentionPolicy};
use octohooks_db::{pool, DbPool};
use tokio_util::sync::CancellationToken;

/// While a backlog is being removed, the sweeper rests this many times as long as its last
/// batch took: it holds a connection (and a core of Postgres) at most a quarter of the time, and
/// backs off by itself when the database is busy and its batches slow down. Measured (the
/// bench's retention phase): 2,100–2,700 old messages removed a second under full ingest, which
/// kept 0.92–1.09 of its rate; resting twice as long removed ~3,000 and kept 0.84–0.96.
const REST_PER_WORK: u32 = 3;
/// Shortest rest between two batches.
const MIN_REST: Duration = Duration::from_millis(50);
/// Pause after an error before trying again.
const ERROR_PAUSE: Duration = Duration::from_secs(5);
/// Pause before the first look after start.
const STARTUP_PAUSE: Duration = Duration::from_secs(2);
/// Longest pause between two looks when there was nothing to remove.
const MAX_IDLE: Duration = Duration::from_secs(60);

/// Sweeps until `shutdown`.
pub async fn run(db: DbPool, policy: RetentionPolicy, shutdown: CancellationToken) {
    let idle = idle_pause(policy);
    // Not at once: a dispatcher starting (or a whole rollout of them) first takes up its
    // deliveries.
    tokio::select! {
        () = shutdown.cancelled() => return,
        () = tokio::time::sleep(idle.min(STARTUP_PAUSE)) => {}
    }
    loop {
        let started = std::time::Instant::now();
        let pause = match sweep_once(&db, policy).await {
            Ok(Some(swept)) if swept.more_waiting() => {
                (started.elapsed() * REST_PER_WORK).max(MIN_REST)
            }
            Ok(_) => idle,
            // A lock timeout is the sweep giving way to other work: tried again later.
            Err(err) if err.is_transient() => {
                tracing::debug!(error = %err, "retention: sweep put off");
                ERROR_PAUSE
            }
            Err(err) => {
                tracing::warn!(error = %err, "retention: cannot sweep");
                ERROR_PAUSE
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(pause) => {}
        }
    }
}

async fn sweep_once(
    db: &DbPool,
    policy: RetentionPolicy,
) -> Result<Option<retention::Swept>, octohooks_db::DbError> {
    let mut conn = pool::connection(db).await?;
    let swept = retention::sweep(&mut conn, policy, Utc::now()).await?;
    if let Some(swept) = swept.filter(|s| *s != retention::Swept::default()) {
        tracing::debug!(
            payloads = swept.payloads,
            messages = swept.messages,
            other = swept.other,
            "retention: swept"
        );
    }
    Ok(swept)
}

/// A tenth of the shortest period kept, between 100 ms and [`MAX_IDLE`]: a short retention
/// (as in tests) is kept to closely, a long one is looked at once a minute.
fn idle_pause(policy: RetentionPolicy) -> Duration {
    [policy.retention, policy.payload_retention]
        .into_iter()
        .flatten()
        .min()
        .map_or(MAX_IDLE, |shortest| shortest / 10)
        .clamp(Duration::from_millis(100), MAX_IDLE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_idle_pause_follows_the_shortest_period() {
        let policy = |retention, payload_retention| RetentionPolicy {
            retention,
            payload_retention,
        };
        let day = Duration::from_secs(86_400);
        assert_eq!(idle_pause(policy(Some(90 * day), None)), MAX_IDLE);
        assert_eq!(idle_pause(policy(None, None)), MAX_IDLE);
        assert_eq!(
            idle_pause(policy(Some(day), Some(Duration::from_secs(3)))),
            Duration::from_millis(300)
        );
        assert_eq!(
            idle_pause(policy(Some(Duration::from_millis(10)), None)),
            Duration::from_millis(100)
        );
    }
}
