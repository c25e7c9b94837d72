//! The supervisor of an [`AmqpLink`]: connects, enables confirms, watches the connection and
//! the express lane, and rebuilds everything with backoff when the connection drops.

use std::sync::atomic::Ordering;
use std::time::Duration;

use lapin::options::ConfirmSelectOptions;
use lapin::{Channel, Connection};
use tokio_util::sync::CancellationToken;

use super::{close_connection, connect, AmqpError, AmqpLink, MAX_BACKOFF, WATCH_INTERVAL};
use crate::express;
use crate::topology::Topology;

/// How often the supervisor looks at the express queue (and reopens its channel), in watch
/// intervals.
const EXPRESS_CHECK_EVERY: u32 = 4;

/// Longest wait for one look at the express lane: a broker node that does not answer must not
/// hold up the supervisor.
const EXPRESS_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Keeps the express lane's channel open and whether it takes jobs fresh; a broker without the
/// lane (or a cluster whose node holding it is down or unreachable) leaves it closed.
async fn check_express(link: &AmqpLink, connection: &Connection) {
    let queue = &link.topology.queue;
    let open = link.state.express.read().await.clone();
    let look = async {
        let channel = match open {
            Some(channel) if channel.status().connected() => channel,
            _ => {
                let channel = express::open_channel(connection, queue).await?;
                channel
                    .confirm_select(ConfirmSelectOptions::default())
                    .await?;
                channel
            }
        };
        let singles = express::is_open(
            &channel,
            &express::express_queue(queue),
            express::OPEN_BELOW,
        )
        .await;
        let batches = express::is_open(
            &channel,
            &express::batch_queue(queue),
            express::BATCHES_OPEN_BELOW,
        )
        .await;
        Ok::<_, AmqpError>((channel, singles, batches))
    };
    let (channel, singles, batches) = match tokio::time::timeout(EXPRESS_CHECK_TIMEOUT, look).await
    {
        Ok(Ok((channel, singles, batches))) => (Some(channel), singles, batches),
        Ok(Err(err)) => {
            tracing::debug!(error = %err, "the express queue is not available");
            (None, false, false)
        }
        Err(_) => {
            tracing::debug!("the express queue did not answer in time");
            (None, false, false)
        }
    };
    link.state
        .express_open
        .store(singles || batches, Ordering::Relaxed);
    link.state.batches_open.store(batches, Ordering::Relaxed);
    *link.state.express.write().await = channel;
}

/// Runs until `shutdown` is cancelled, then closes the link's channels and connection.
pub(super) async fn supervise(link: AmqpLink, url: String, shutdown: CancellationToken) {
    let mut backoff = Duration::from_millis(100);
    while !shutdown.is_cancelled() {
        match open_confirmed(&url, &link.topology).await {
            Ok((connection, channel)) => {
                tracing::info!(queue = %link.queue, "connected to RabbitMQ");
                backoff = Duration::from_millis(100);
                *link.state.channel.write().await = Some(channel.clone());
                let mut ticks = 0u32;
                loop {
                    if link.lane && ticks.is_multiple_of(EXPRESS_CHECK_EVERY) {
                        check_express(&link, &connection).await;
                    }
                    ticks = ticks.wrapping_add(1);
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = link.state.broken.notified() => {}
                        () = tokio::time::sleep(WATCH_INTERVAL) => {}
                    }
                    if !connection.status().connected() || !channel.status().connected() {
                        break;
                    }
                }
                *link.state.channel.write().await = None;
                link.state.express_open.store(false, Ordering::Relaxed);
                link.state.batches_open.store(false, Ordering::Relaxed);
                if let Some(lane) = link.state.express.write().await.take() {
                    let _ =
                        tokio::time::timeout(Duration::from_secs(2), lane.close(200, "bye")).await;
                }
                if channel.status().connected() {
                    let _ = tokio::time::timeout(Duration::from_secs(2), channel.close(200, "bye"))
                        .await;
                }
                close_connection(connection, "bye").await;
                if !shutdown.is_cancelled() {
                    tracing::warn!("lost the RabbitMQ connection; reconnecting");
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, retry_in_ms = backoff.as_millis() as u64, "cannot connect to RabbitMQ");
                tokio::select! {
                    () = shutdown.cancelled() => {}
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
    link.state.stopped.cancel();
}

/// A connection made within 10 s, with its channel in confirm mode, or the reason there is none.
async fn open_confirmed(
    url: &str,
    topology: &Topology,
) -> Result<(Connection, Channel), AmqpError> {
    let (connection, channel) =
        tokio::time::timeout(Duration::from_secs(10), connect(url, topology))
            .await
            .map_err(|_| AmqpError::Timeout)??;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    Ok((connection, channel))
}
