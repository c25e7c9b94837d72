//! The phases that send to many endpoints at once: fan-out, isolation of failing endpoints,
//! and the Postgres transactions each message costs.

use std::time::{Duration, Instant};

use crate::load::{self, Poster, Sent};
use crate::receiver::Arrivals;
use crate::setup::{self, Admin};
use crate::stats::{quantile_ms, Row};

/// What every phase talks to.
pub struct Run<'a> {
    /// Base URL of the API.
    pub api: &'a str,
    /// API key of the benchmark's environment.
    pub key: &'a str,
    /// Setup client.
    pub admin: &'a Admin,
    /// Base URL of the receiver.
    pub receiver: &'a str,
    /// What the receiver got.
    pub arrivals: &'a Arrivals,
    /// Length of a load phase.
    pub phase: Duration,
}

/// Latencies from each accepted request's start to its arrival on `path`.
pub fn end_to_end(sent: &Sent, arrivals: &Arrivals, path: &str) -> Vec<Duration> {
    sent.started
        .iter()
        .filter_map(|(id, started)| {
            arrivals
                .at(path, id)
                .map(|at| at.saturating_duration_since(*started))
        })
        .collect()
}

/// Waits until `count` distinct messages arrived under `prefix`; how long that took, or `None`
/// after `limit`.
pub async fn wait_for(
    arrivals: &Arrivals,
    prefix: &str,
    count: usize,
    limit: Duration,
) -> Option<Duration> {
    let started = Instant::now();
    while arrivals.distinct(prefix) < count {
        if started.elapsed() > limit {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Some(started.elapsed())
}

/// One message to 50 endpoints, 20 times in a row: time until the 50th endpoint has it.
pub async fn fanout(run: &Run<'_>) -> anyhow::Result<Vec<Row>> {
    let fan_urls: Vec<String> = (0..50)
        .map(|i| format!("{}/fan/{i}", run.receiver))
        .collect();
    run.admin.application(run.key, "fanout", &fan_urls).await?;
    let fan_poster = Poster::new(run.api, run.key, "fanout", 400);
    let mut fan_latencies = Vec::new();
    for round in 1..=20 {
        let started = Instant::now();
        if fan_poster.post().await.is_some()
            && wait_for(run.arrivals, "/fan/", 50 * round, Duration::from_secs(30))
                .await
                .is_some()
        {
            fan_latencies.push(started.elapsed());
        }
    }
    Ok(vec![
        Row::new(
            "fan-out to 50 endpoints: p50 (last arrival)",
            quantile_ms(&mut fan_latencies, 0.5),
            "ms",
            "20 messages",
        ),
        Row::new(
            "fan-out to 50 endpoints: p99 (last arrival)",
            quantile_ms(&mut fan_latencies, 0.99),
            "ms",
            "",
        ),
    ])
}

/// Half the endpoints fail (and are retried); the healthy half must not slow down.
pub async fn isolation(run: &Run<'_>) -> anyhow::Result<Vec<Row>> {
    let receiver = run.receiver;
    let healthy: Vec<String> = (0..10).map(|i| format!("{receiver}/base/{i}")).collect();
    let mixed: Vec<String> = (0..10)
        .map(|i| {
            if i % 2 == 0 {
                format!("{receiver}/fail/{i}")
            } else {
                format!("{receiver}/ok/{i}")
            }
        })
        .collect();
    run.admin.application(run.key, "healthy", &healthy).await?;
    run.admin.application(run.key, "mixed", &mixed).await?;
    let rate = 20;
    let count = rate * run.phase.as_secs();
    let baseline =
        load::open_loop(&Poster::new(run.api, run.key, "healthy", 400), rate, count).await;
    let limit = Duration::from_secs(60);
    wait_for(run.arrivals, "/base/", baseline.started.len() * 10, limit).await;
    let mut base_latencies: Vec<Duration> = (0..10)
        .flat_map(|i| end_to_end(&baseline, run.arrivals, &format!("/base/{i}")))
        .collect();
    let with_failures =
        load::open_loop(&Poster::new(run.api, run.key, "mixed", 400), rate, count).await;
    wait_for(run.arrivals, "/ok/", with_failures.started.len() * 5, limit).await;
    let mut ok_latencies: Vec<Duration> = [1, 3, 5, 7, 9]
        .iter()
        .flat_map(|i| end_to_end(&with_failures, run.arrivals, &format!("/ok/{i}")))
        .collect();
    let base_p50 = quantile_ms(&mut base_latencies, 0.5);
    let mixed_p50 = quantile_ms(&mut ok_latencies, 0.5);
    let base_p99 = quantile_ms(&mut base_latencies, 0.99);
    let mixed_p99 = quantile_ms(&mut ok_latencies, 0.99);
    Ok(vec![
        Row::new(
            "isolation: healthy endpoints p50, all healthy",
            base_p50,
            "ms",
            "10 endpoints, 20 msg/s",
        ),
        Row::new(
            "isolation: healthy endpoints p50, half failing",
            mixed_p50,
            "ms",
            format!("ratio {:.2}", mixed_p50 / base_p50),
        ),
        Row::new(
            "isolation: healthy endpoints p99, all healthy",
            base_p99,
            "ms",
            "",
        ),
        Row::new(
            "isolation: healthy endpoints p99, half failing",
            mixed_p99,
            "ms",
            format!("ratio {:.2}", mixed_p99 / base_p99),
        ),
    ])
}

/// Messages per endpoint-count step of the transactions phase, and their rate.
const COUNTED_MESSAGES: u64 = 100;
const COUNTED_RATE: u64 = 50;
/// Postgres publishes a busy backend's counters within a second, an idle one's only after up to
/// ten seconds (PGSTAT_IDLE_INTERVAL): a shorter wait counted an earlier step's transactions in
/// the next one.
const STATS_SETTLE: Duration = Duration::from_secs(11);

/// Postgres transactions (each one round trip and at most one commit) per message, for an
/// application with 1 endpoint and with 50. The API writes a whole batch of messages with their
/// destinations in one statement and the dispatcher reads and records groups of jobs, so the
/// count per message must stay far below one per delivery as endpoints are added. Counted from
/// `pg_stat_database`, less what the idle services commit (relay passes) in the same time.
pub async fn transactions(run: &Run<'_>, database: &str) -> anyhow::Result<Vec<Row>> {
    const STEPS: [usize; 2] = [1, 50];
    // The applications are made first, so that their writes are not counted as messages'.
    for endpoints in STEPS {
        let urls: Vec<String> = (0..endpoints)
            .map(|i| format!("{}/tx{endpoints}/{i}", run.receiver))
            .collect();
        run.admin
            .application(run.key, &format!("tx{endpoints}"), &urls)
            .await?;
    }
    // Counts of earlier phases are still being published at first.
    tokio::time::sleep(STATS_SETTLE).await;
    let idle_started = Instant::now();
    let idle_before = setup::transactions(database)?;
    tokio::time::sleep(STATS_SETTLE).await;
    let idle_rate = (setup::transactions(database)? - idle_before) as f64
        / idle_started.elapsed().as_secs_f64();
    let mut rows = Vec::new();
    for endpoints in STEPS {
        let uid = format!("tx{endpoints}");
        let started = Instant::now();
        let before = setup::transactions(database)?;
        let poster = Poster::new(run.api, run.key, &uid, 400);
        let sent = load::open_loop(&poster, COUNTED_RATE, COUNTED_MESSAGES).await;
        let prefix = format!("/{uid}/");
        wait_for(
            run.arrivals,
            &prefix,
            sent.started.len() * endpoints,
            Duration::from_secs(60),
        )
        .await;
        tokio::time::sleep(STATS_SETTLE).await;
        let counted = setup::transactions(database)? - before;
        let busy = counted as f64 - idle_rate * started.elapsed().as_secs_f64();
        rows.push(Row::new(
            format!("Postgres transactions per message, {endpoints} endpoint(s)"),
            busy / sent.started.len().max(1) as f64,
            "tx/msg",
            format!(
                "{} messages at {COUNTED_RATE}/s, all delivered; idle {idle_rate:.0} tx/s subtracted",
                sent.started.len()
            ),
        ));
    }
    Ok(rows)
}
