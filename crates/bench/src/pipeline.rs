//! The phases that follow messages through the whole pipeline under load: end-to-end latency
//! with closed-loop clients, and fan-out delivery throughput beside the single-endpoint
//! delivery rate of the same run, each with the time every stage took.

use std::time::{Duration, Instant};

use tokio::process::Child;

use crate::cpu;
use crate::load::{self, Poster};
use crate::phases::{end_to_end, wait_for, Run};
use crate::services::Environment;
use crate::stages;
use crate::stats::{quantile_ms, Row};
use crate::tail;

/// The dispatcher's counter of jobs put back to wait for their endpoint's turn.
const PUT_BACK: &str = "octohooks_deliveries_deferred_total";

/// End-to-end latency with `clients` closed-loop clients (each sends its next message as soon
/// as the previous one was accepted), `count` messages to one endpoint; latency from just
/// before the POST to the receiver's arrival. `services` are the base URLs whose stage
/// histograms are read.
pub async fn e2e_under_load(
    run: &Run<'_>,
    services: &[String],
    clients: usize,
    count: u64,
) -> anyhow::Result<Vec<Row>> {
    let uid = format!("closed{clients}");
    let path = format!("/{uid}");
    run.admin
        .application(run.key, &uid, &[format!("{}{path}", run.receiver)])
        .await?;
    let poster = Poster::new(run.api, run.key, &uid, 400);
    let before = stages::scrape(services).await;
    let put_back_before = stages::counter_sum(services, PUT_BACK).await;
    let asks_before = SlotAsks::read(services).await;
    let cpu_before = cpu::snapshot();
    let started = Instant::now();
    let sent = load::closed_loop_count(&poster, clients, count).await;
    let sending = started.elapsed();
    wait_for(
        run.arrivals,
        &path,
        sent.started.len(),
        Duration::from_secs(120),
    )
    .await;
    let cpu_after = cpu::snapshot();
    // The dispatcher observes `record` after the receiver answered.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = stages::scrape(services).await;
    let put_back = stages::counter_sum(services, PUT_BACK).await - put_back_before;
    let asks = SlotAsks::read(services).await.since(&asks_before);
    let mut latencies = end_to_end(&sent, run.arrivals, &path);
    tail::write_timeline(&uid, started, &sent, run, &path);
    let title = format!("e2e, {clients} closed-loop clients");
    let delivered = latencies.len();
    let mut rows = vec![
        Row::new(
            format!("{title}: p50"),
            quantile_ms(&mut latencies, 0.5),
            "ms",
            format!("{count} messages, POST start -> receiver"),
        ),
        Row::new(
            format!("{title}: p99"),
            quantile_ms(&mut latencies, 0.99),
            "ms",
            "",
        ),
        Row::new(
            format!("{title}: max"),
            quantile_ms(&mut latencies, 1.0),
            "ms",
            format!("{delivered} delivered, {} errors", sent.errors),
        ),
        Row::new(
            format!("{title}: rate"),
            sent.started.len() as f64 / sending.as_secs_f64(),
            "msg/s",
            "accepted and delivered while sending",
        ),
        Row::new(
            format!("{title}: jobs put back"),
            put_back,
            "jobs",
            "to wait for their endpoint's turn, by the dispatcher",
        ),
    ];
    rows.extend(tail::slowest_split(&title, &sent, run, &path));
    rows.extend(asks.rows(&title));
    rows.extend(stages::breakdown(&title, &before, &after));
    rows.extend(cpu::per_delivery(
        &title,
        &cpu_before,
        &cpu_after,
        delivered,
    ));
    Ok(rows)
}

/// The dispatchers' asks to Postgres for more of an endpoint's slots, and the jobs that waited
/// on one: whether the endpoint's slot grants stand in a phase's way.
struct SlotAsks {
    asks: f64,
    waits: f64,
    waited_secs: f64,
}

impl SlotAsks {
    async fn read(services: &[String]) -> Self {
        Self {
            asks: stages::counter_sum(services, "octohooks_slot_grant_asks_total").await,
            waits: stages::counter_sum(services, "octohooks_slot_ask_wait_seconds_count").await,
            waited_secs: stages::counter_sum(services, "octohooks_slot_ask_wait_seconds_sum").await,
        }
    }

    fn since(&self, earlier: &Self) -> Self {
        Self {
            asks: self.asks - earlier.asks,
            waits: self.waits - earlier.waits,
            waited_secs: self.waited_secs - earlier.waited_secs,
        }
    }

    fn rows(&self, title: &str) -> Vec<Row> {
        let mean_ms = if self.waits > 0.0 {
            self.waited_secs * 1000.0 / self.waits
        } else {
            0.0
        };
        vec![
            Row::new(
                format!("{title}: slot grant asks"),
                self.asks,
                "asks",
                "to Postgres, for more of the endpoint's slots",
            ),
            Row::new(
                format!("{title}: jobs waiting on an ask, mean wait"),
                mean_ms,
                "ms",
                format!("{} jobs", self.waits),
            ),
        ]
    }
}

/// Endpoints of the fan-out application.
const FAN_OUT: usize = 20;

/// Fan-out throughput: `count` messages to an application with 20 endpoints from 16
/// closed-loop clients while the dispatcher runs (deliveries per second from the first POST to
/// the last arrival); then the backlog drain rate of the same fan-out and of as many
/// deliveries to single-endpoint messages, from first to last arrival with one dispatcher.
pub async fn fanout_throughput(
    run: &Run<'_>,
    env: &Environment,
    dispatcher: &mut Child,
    dispatcher_addr: &str,
    count: u64,
) -> anyhow::Result<Vec<Row>> {
    let services = [
        format!("http://{}", crate::services::API_METRICS),
        format!("http://{dispatcher_addr}"),
    ];
    let urls = |prefix: &str| -> Vec<String> {
        (0..FAN_OUT)
            .map(|i| format!("{}/{prefix}/{i}", run.receiver))
            .collect()
    };
    run.admin
        .application(run.key, "fanload", &urls("fanload"))
        .await?;
    let before = stages::scrape(&services).await;
    let cpu_before = cpu::snapshot();
    let started = Instant::now();
    let sent =
        load::closed_loop_count(&Poster::new(run.api, run.key, "fanload", 400), 16, count).await;
    let expected = sent.started.len() * FAN_OUT;
    wait_for(
        run.arrivals,
        "/fanload/",
        expected,
        Duration::from_secs(300),
    )
    .await;
    let cpu_after = cpu::snapshot();
    let rate = run
        .arrivals
        .span("/fanload/")
        .map_or(f64::NAN, |(_, last)| {
            run.arrivals.distinct("/fanload/") as f64
                / last.saturating_duration_since(started).as_secs_f64()
        });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = stages::scrape(&services).await;
    let mut latencies: Vec<Duration> = (0..FAN_OUT)
        .flat_map(|i| end_to_end(&sent, run.arrivals, &format!("/fanload/{i}")))
        .collect();
    let title = format!("fan-out {count} x {FAN_OUT}, 16 clients");
    let mut rows = vec![
        Row::new(
            format!("{title}: deliveries/s"),
            rate,
            "1/s",
            "first POST -> last arrival",
        ),
        Row::new(
            format!("{title}: e2e p50"),
            quantile_ms(&mut latencies, 0.5),
            "ms",
            "per delivery",
        ),
        Row::new(
            format!("{title}: e2e p99"),
            quantile_ms(&mut latencies, 0.99),
            "ms",
            format!("{} of {expected} delivered", latencies.len()),
        ),
    ];
    rows.extend(stages::breakdown(&title, &before, &after));
    rows.extend(cpu::per_delivery(
        &title,
        &cpu_before,
        &cpu_after,
        latencies.len(),
    ));

    // The same deliveries from a standing backlog, fanned out and not.
    let fan_drain = drain(
        run,
        env,
        dispatcher,
        dispatcher_addr,
        "fandrain",
        FAN_OUT,
        count,
    )
    .await?;
    let single_drain = drain(
        run,
        env,
        dispatcher,
        dispatcher_addr,
        "singledrain",
        1,
        count * FAN_OUT as u64,
    )
    .await?;
    rows.push(Row::new(
        format!("backlog drain, {count} messages x {FAN_OUT} endpoints"),
        fan_drain,
        "1/s",
        "deliveries, first -> last arrival, 1 dispatcher",
    ));
    rows.push(Row::new(
        format!(
            "backlog drain, {} messages x 1 endpoint",
            count * FAN_OUT as u64
        ),
        single_drain,
        "1/s",
        "the same number of deliveries",
    ));
    rows.push(Row::new(
        "fan-out drain / single-endpoint drain",
        fan_drain / single_drain,
        "ratio",
        "target >= 0.9",
    ));
    Ok(rows)
}

/// Queues `count` messages to an application of `endpoints` endpoints with no dispatcher
/// running, starts one and returns its deliveries per second from first to last arrival.
async fn drain(
    run: &Run<'_>,
    env: &Environment,
    dispatcher: &mut Child,
    dispatcher_addr: &str,
    uid: &str,
    endpoints: usize,
    count: u64,
) -> anyhow::Result<f64> {
    let urls: Vec<String> = (0..endpoints)
        .map(|i| format!("{}/{uid}/{i}", run.receiver))
        .collect();
    run.admin.application(run.key, uid, &urls).await?;
    let _ = dispatcher.kill().await;
    let sent = load::closed_loop_count(&Poster::new(run.api, run.key, uid, 400), 32, count).await;
    let prefix = format!("/{uid}/");
    *dispatcher = env.start("octohooks-dispatcher", dispatcher_addr).await?;
    let expected = sent.started.len() * endpoints;
    if wait_for(run.arrivals, &prefix, expected, Duration::from_secs(300))
        .await
        .is_none()
    {
        return Ok(f64::NAN);
    }
    Ok(run
        .arrivals
        .span(&prefix)
        .map_or(f64::NAN, |(first, last)| {
            (expected.saturating_sub(1)) as f64
                / last.saturating_duration_since(first).as_secs_f64()
        }))
}
