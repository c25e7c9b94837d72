//! Cross-replica cache invalidation over Postgres `LISTEN`/`NOTIFY`. Triggers on the tables a
//! process caches (migration 000006) send a notice when a change commits; every process listens
//! on one dedicated connection. A cache may be used only while [`Listening::is_live`]: whenever
//! the connection is (re)established or lost, caches are told to forget everything, because
//! notices sent meanwhile were missed.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_postgres::AsyncMessage;
use tokio_util::sync::CancellationToken;

use crate::connect::{Messages, Target};

/// The channel the triggers notify.
pub const CHANNEL: &str = "octohooks_lookups";
/// The `application_name` of the listening connection.
pub const APPLICATION_NAME: &str = "octohooks-invalidation";
/// How often the listening connection proves it is alive.
const PING_EVERY: Duration = Duration::from_secs(5);
/// Longest a ping or a connection attempt may take before the connection counts as lost.
const PING_TIMEOUT: Duration = Duration::from_secs(3);
/// Pause before connecting again after losing a live connection; it doubles with every failed
/// attempt up to [`MAX_RECONNECT_PAUSE`].
const RECONNECT_AFTER: Duration = Duration::from_secs(1);
/// Longest pause between attempts while Postgres stays unreachable.
const MAX_RECONNECT_PAUSE: Duration = Duration::from_secs(15);
/// While Postgres stays unreachable, the outage is reported at most this often.
const REPORT_OUTAGE_EVERY: Duration = Duration::from_secs(60);

/// What a cache hears from the listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Something cached may have changed (or notices may have been missed): forget it all.
    Forget,
    /// The listener is (again) receiving every notice: caching may go on.
    Live,
    /// The listener lost its connection: stop using the cache until `Live`.
    Lost,
}

/// Keeps a `LISTEN` connection open for as long as `stop` is not cancelled, calling `on_event`
/// for every change. Always sends `Forget` before `Live` and after `Lost`.
pub async fn listen(
    database_url: String,
    on_event: Arc<dyn Fn(Event) + Send + Sync>,
    stop: CancellationToken,
) {
    let mut pause = RECONNECT_AFTER;
    // Since when the listener has been down and when that was last reported; the next loss of
    // a live connection starts a new outage.
    let mut outage: Option<(Instant, Instant)> = None;
    loop {
        let ended = tokio::select! {
            ended = listen_once(&database_url, on_event.as_ref(), outage.is_some()) => ended,
            () = stop.cancelled() => return,
        };
        on_event(Event::Lost);
        on_event(Event::Forget);
        let now = Instant::now();
        match outage {
            Some((since, reported)) if !ended.was_live => {
                pause = (pause * 2).min(MAX_RECONNECT_PAUSE);
                if now.duration_since(reported) >= REPORT_OUTAGE_EVERY {
                    tracing::warn!(error = %ended.error, down_secs = now.duration_since(since).as_secs(),
                        "cache invalidation listener still down; caches bypassed");
                    outage = Some((since, now));
                } else {
                    tracing::debug!(error = %ended.error, "cache invalidation listener still down");
                }
            }
            _ => {
                pause = RECONNECT_AFTER;
                tracing::warn!(error = %ended.error, "cache invalidation listener lost; caches bypassed until it is back");
                outage = Some((now, now));
            }
        }
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = stop.cancelled() => return,
        }
    }
}

/// How a listening connection ended.
struct Ended {
    /// It had been listening (and caches were live) before it ended.
    was_live: bool,
    /// Why it ended.
    error: String,
}

async fn listen_once(
    database_url: &str,
    on_event: &(dyn Fn(Event) + Send + Sync),
    recovering: bool,
) -> Ended {
    let (client, mut messages) = match connect(database_url).await {
        Ok(connected) => connected,
        Err(error) => {
            return Ended {
                was_live: false,
                error,
            }
        }
    };
    // The connection object does the I/O; it forwards notices until the connection ends.
    let (notices, mut heard) = mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(_)) => {
                    if notices.send(()).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(err) => {
                    tracing::debug!(error = %err, "invalidation connection ended");
                    return;
                }
            }
        }
    });
    let mut was_live = false;
    let error = async {
        if let Err(err) = ping(&client, &format!("LISTEN {CHANNEL}")).await {
            return err;
        }
        on_event(Event::Forget);
        on_event(Event::Live);
        was_live = true;
        if recovering {
            tracing::info!("cache invalidation listener is back");
        }
        let mut every = tokio::time::interval(PING_EVERY);
        loop {
            tokio::select! {
                notice = heard.recv() => match notice {
                    Some(()) => on_event(Event::Forget),
                    None => return "connection closed".to_owned(),
                },
                _ = every.tick() => if let Err(err) = ping(&client, "SELECT 1").await {
                    return err;
                },
            }
        }
    }
    .await;
    driver.abort();
    Ended { was_live, error }
}

/// Opens the listening connection, named so that operators can tell it apart in
/// `pg_stat_activity`.
async fn connect(database_url: &str) -> Result<(tokio_postgres::Client, Messages), String> {
    let target = Target::parse(database_url)
        .map_err(|err| err.to_string())?
        .application_name(APPLICATION_NAME);
    tokio::time::timeout(PING_TIMEOUT, target.open())
        .await
        .map_err(|_| "connect timed out".to_owned())?
        .map_err(|err| err.to_string())
}

async fn ping(client: &tokio_postgres::Client, sql: &str) -> Result<(), String> {
    tokio::time::timeout(PING_TIMEOUT, client.batch_execute(sql))
        .await
        .map_err(|_| format!("`{sql}` timed out"))?
        .map_err(|err| err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(start_paused = true)]
    async fn an_unreachable_database_is_tried_less_and_less_often() {
        let attempts = Arc::new(AtomicUsize::new(0));
        let counted = attempts.clone();
        let stop = CancellationToken::new();
        // Nothing listens on the discard port: every attempt fails at once or times out.
        let listener = tokio::spawn(listen(
            "postgres://postgres@127.0.0.1:9/none".to_owned(),
            Arc::new(move |event| {
                if event == Event::Lost {
                    counted.fetch_add(1, Ordering::SeqCst);
                }
            }),
            stop.clone(),
        ));
        tokio::time::sleep(Duration::from_secs(120)).await;
        stop.cancel();
        listener.await.unwrap();
        // Pauses of 1, 2, 4, 8, then 15 s: about ten attempts in two minutes, not a hundred.
        let attempts = attempts.load(Ordering::SeqCst);
        assert!((5..=15).contains(&attempts), "{attempts} attempts");
    }
}
