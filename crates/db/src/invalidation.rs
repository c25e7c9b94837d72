//! Cross-replica cache invalidation over Postgres `LISTEN`/`NOTIFY`. Triggers on the tables a
//! process caches (migration 000006) send a notice when a change commits; every process listens
//! on one dedicated connection. A cache may be used only while [`Listening::is_live`]: whenever
//! the connection is (re)established or lost, caches are told to forget everything, because
//! notices sent meanwhile were missed.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, NoTls};
use tokio_util::sync::CancellationToken;

/// The channel the triggers notify.
pub const CHANNEL: &str = "octohooks_lookups";
/// How often the listening connection proves it is alive.
const PING_EVERY: Duration = Duration::from_secs(5);
/// Longest a ping or a connection attempt may take before the connection counts as lost.
const PING_TIMEOUT: Duration = Duration::from_secs(3);
/// Pause before connecting again.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

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
    loop {
        let outcome = tokio::select! {
            outcome = listen_once(&database_url, on_event.as_ref()) => outcome,
            () = stop.cancelled() => return,
        };
        on_event(Event::Lost);
        on_event(Event::Forget);
        if let Err(err) = outcome {
            tracing::warn!(error = %err, "cache invalidation listener lost; caches bypassed until it is back");
        }
        tokio::select! {
            () = tokio::time::sleep(RECONNECT_AFTER) => {}
            () = stop.cancelled() => return,
        }
    }
}

async fn listen_once(
    database_url: &str,
    on_event: &(dyn Fn(Event) + Send + Sync),
) -> Result<(), String> {
    let (client, mut connection) =
        tokio::time::timeout(PING_TIMEOUT, tokio_postgres::connect(database_url, NoTls))
            .await
            .map_err(|_| "connect timed out".to_owned())?
            .map_err(|err| err.to_string())?;
    // The connection object does the I/O; it forwards notices until the connection ends.
    let (notices, mut heard) = mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
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
    let result = async {
        ping(&client, &format!("LISTEN {CHANNEL}")).await?;
        on_event(Event::Forget);
        on_event(Event::Live);
        let mut every = tokio::time::interval(PING_EVERY);
        loop {
            tokio::select! {
                notice = heard.recv() => match notice {
                    Some(()) => on_event(Event::Forget),
                    None => return Err("connection closed".to_owned()),
                },
                _ = every.tick() => ping(&client, "SELECT 1").await?,
            }
        }
    }
    .await;
    driver.abort();
    result
}

async fn ping(client: &tokio_postgres::Client, sql: &str) -> Result<(), String> {
    tokio::time::timeout(PING_TIMEOUT, client.batch_execute(sql))
        .await
        .map_err(|_| format!("`{sql}` timed out"))?
        .map_err(|err| err.to_string())
}
