//! `make bench`: one reproducible run on one machine with the real API, dispatcher, Postgres
//! and RabbitMQ; prints a table and writes `bench-results.json`. `--quick` shortens every
//! phase (for a smoke run; the published figures come from a full run).

mod load;
mod receiver;
mod services;
mod setup;
mod stats;

use std::time::{Duration, Instant};

use load::{Poster, Sent};
use receiver::Arrivals;
use stats::{quantile_ms, Row};

const API: &str = "127.0.0.1:18180";
const DISPATCHER_A: &str = "127.0.0.1:18181";
const DISPATCHER_B: &str = "127.0.0.1:18182";
const DATABASE: &str = "octohooks_bench";
/// The "moderate" rate of the end-to-end latency phase (override with OCTOHOOKS_BENCH_E2E_RATE).
const E2E_RATE_DEFAULT: u64 = 200;

fn row(name: impl Into<String>, value: f64, unit: &str, note: impl Into<String>) -> Row {
    Row {
        name: name.into(),
        value,
        unit: unit.into(),
        note: note.into(),
    }
}

/// Latencies from each accepted request's start to its arrival on `path`.
fn end_to_end(sent: &Sent, arrivals: &Arrivals, path: &str) -> Vec<Duration> {
    sent.started
        .iter()
        .filter_map(|(id, started)| {
            arrivals
                .at(path, id)
                .map(|at| at.saturating_duration_since(*started))
        })
        .collect()
}

async fn wait_for(
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let quick = std::env::args().any(|arg| arg == "--quick");
    let e2e_rate: u64 = std::env::var("OCTOHOOKS_BENCH_E2E_RATE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(E2E_RATE_DEFAULT);
    let phase = Duration::from_secs(if quick { 3 } else { 10 });
    let drain_count = if quick { 1000 } else { 5000 };
    let mut rows = Vec::new();
    // OCTOHOOKS_BENCH_ONLY=<phase> runs one phase: ingest, pgbench, e2e, drain, fanout, isolation.
    let only = std::env::var("OCTOHOOKS_BENCH_ONLY").ok();
    let run = |phase: &str| only.as_deref().is_none_or(|only| only == phase);

    setup::recreate_database(DATABASE)?;
    let env = services::Environment {
        database_url: format!("postgres://postgres@127.0.0.1:5432/{DATABASE}"),
        queue: format!("octohooks.bench.{}", uuid::Uuid::new_v4().simple()),
        admin_token: "bench-admin".into(),
    };
    let (receiver, arrivals) = receiver::start(2)?;
    let api_process = env.start("octohooks-api", API).await?;
    let mut dispatcher = env.start("octohooks-dispatcher", DISPATCHER_A).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (api_idle, _) = services::rss_mib(&api_process);
    let (dispatcher_idle, _) = services::rss_mib(&dispatcher);
    rows.push(row("idle RSS, API", api_idle, "MiB", "target <= 64"));
    rows.push(row(
        "idle RSS, dispatcher",
        dispatcher_idle,
        "MiB",
        "target <= 64",
    ));

    let api = format!("http://{API}");
    let admin = setup::Admin::new(&api);
    let key = admin.environment(&env.admin_token).await?;
    admin
        .application(&key, "ingest", &[format!("{receiver}/ingest")])
        .await?;

    // Warm-up. A fresh database has no planner statistics until autovacuum's first ANALYZE
    // (within a minute of traffic); plans made on its empty tables would be measured instead
    // of the services. Like pgbench, which vacuums before it runs, the bench loads the
    // services for a few seconds, waits for delivery, and analyzes.
    admin
        .application(&key, "warmup", &[format!("{receiver}/warmup")])
        .await?;
    let warmup = load::closed_loop(&Poster::new(&api, &key, "warmup", 400), 32, phase).await;
    wait_for(
        &arrivals,
        "/warmup",
        warmup.started.len(),
        Duration::from_secs(300),
    )
    .await;
    setup::analyze(DATABASE)?;

    // Ingest at three concurrencies.
    let mut ingest_at_32 = f64::NAN;
    let mut alone_at_32 = f64::NAN;
    if run("ingest") {
        let poster = Poster::new(&api, &key, "ingest", 400);
        let mut accepted = 0;
        for concurrency in [8, 32, 128] {
            let mut sent = load::closed_loop(&poster, concurrency, phase).await;
            let rate = sent.latencies.len() as f64 / phase.as_secs_f64();
            accepted += sent.started.len();
            if concurrency == 32 {
                ingest_at_32 = rate;
            }
            let note = if concurrency == 32 {
                "target >= 3000 msg/s, p99 <= 25 ms"
            } else {
                ""
            };
            rows.push(row(
                format!("ingest c={concurrency}: throughput"),
                rate,
                "msg/s",
                note,
            ));
            rows.push(row(
                format!("ingest c={concurrency}: p50"),
                quantile_ms(&mut sent.latencies, 0.5),
                "ms",
                "",
            ));
            rows.push(row(
                format!("ingest c={concurrency}: p99"),
                quantile_ms(&mut sent.latencies, 0.99),
                "ms",
                format!("{} errors", sent.errors),
            ));
        }
        let caught_up = wait_for(&arrivals, "/ingest", accepted, Duration::from_secs(300)).await;
        rows.push(row(
            "delivery backlog drained after ingest",
            caught_up.map_or(f64::NAN, |d| d.as_secs_f64()),
            "s",
            format!("{accepted} messages accepted during ingest"),
        ));
        // The same at c=32 with no dispatcher running: what the API and Postgres do alone.
        drop(dispatcher);
        admin
            .application(&key, "ingest-only", &[format!("{receiver}/ingest-only")])
            .await?;
        let mut alone =
            load::closed_loop(&Poster::new(&api, &key, "ingest-only", 400), 32, phase).await;
        alone_at_32 = alone.latencies.len() as f64 / phase.as_secs_f64();
        rows.push(row(
            "ingest c=32, no delivery running: throughput",
            alone_at_32,
            "msg/s",
            "dispatcher stopped",
        ));
        rows.push(row(
            "ingest c=32, no delivery running: p99",
            quantile_ms(&mut alone.latencies, 0.99),
            "ms",
            "",
        ));
        dispatcher = env.start("octohooks-dispatcher", DISPATCHER_A).await?;
        wait_for(
            &arrivals,
            "/ingest-only",
            alone.started.len(),
            Duration::from_secs(300),
        )
        .await;
    }

    // The raw Postgres limit, same run, same machine.
    if run("pgbench") {
        let pg_database = format!("{DATABASE}_pgbench");
        let pg_app = setup::prepare_pgbench_database(&pg_database)?;
        let pg_tps = setup::pgbench_limit(&pg_database, &pg_app, 32, phase.as_secs() as u32)?;
        setup::recreate_database(&pg_database)?;
        rows.push(row(
            "pgbench, API's inserts per message, c=32",
            pg_tps,
            "tx/s",
            "raw Postgres limit",
        ));
        rows.push(row(
            "ingest c=32 / pgbench, while delivering",
            ingest_at_32 / pg_tps * 100.0,
            "%",
            "target >= 50 %",
        ));
        rows.push(row(
            "ingest c=32 / pgbench, no delivery running",
            alone_at_32 / pg_tps * 100.0,
            "%",
            "target: beyond 100 % (group commit)",
        ));
    }

    // End-to-end latency at a moderate rate.
    if run("e2e") {
        admin
            .application(&key, "e2e", &[format!("{receiver}/e2e")])
            .await?;
        let e2e_poster = Poster::new(&api, &key, "e2e", 400);
        let sent = load::open_loop(&e2e_poster, e2e_rate, e2e_rate * phase.as_secs()).await;
        wait_for(
            &arrivals,
            "/e2e",
            sent.started.len(),
            Duration::from_secs(60),
        )
        .await;
        let mut latencies = end_to_end(&sent, &arrivals, "/e2e");
        rows.push(row(
            format!("end-to-end at {e2e_rate} msg/s: p50"),
            quantile_ms(&mut latencies, 0.5),
            "ms",
            "POST start -> receiver; target <= 10",
        ));
        rows.push(row(
            format!("end-to-end at {e2e_rate} msg/s: p99"),
            quantile_ms(&mut latencies, 0.99),
            "ms",
            "",
        ));
    }

    // Delivery throughput with one and with two dispatchers, from a standing backlog.
    for (replicas, path) in [(1, "/drain1"), (2, "/drain2")] {
        if !run("drain") {
            break;
        }
        drop(dispatcher);
        let uid = &path[1..];
        admin
            .application(&key, uid, &[format!("{receiver}{path}")])
            .await?;
        let backlog_poster = Poster::new(&api, &key, uid, 400);
        let sent = load::open_loop(&backlog_poster, 4000, drain_count).await;
        let started = Instant::now();
        dispatcher = env.start("octohooks-dispatcher", DISPATCHER_A).await?;
        let second = if replicas == 2 {
            Some(env.start("octohooks-dispatcher", DISPATCHER_B).await?)
        } else {
            None
        };
        let done = wait_for(
            &arrivals,
            path,
            sent.started.len(),
            Duration::from_secs(300),
        )
        .await;
        let rate = done.map_or(f64::NAN, |_| {
            sent.started.len() as f64 / started.elapsed().as_secs_f64()
        });
        rows.push(row(
            format!("delivery throughput, {replicas} dispatcher(s)"),
            rate,
            "msg/s",
            format!("{} queued messages", sent.started.len()),
        ));
        drop(second);
    }

    // Fan-out: one message to 50 endpoints.
    if run("fanout") {
        let fan_urls: Vec<String> = (0..50).map(|i| format!("{receiver}/fan/{i}")).collect();
        admin.application(&key, "fanout", &fan_urls).await?;
        let fan_poster = Poster::new(&api, &key, "fanout", 400);
        let mut fan_latencies = Vec::new();
        for round in 1..=20 {
            let started = Instant::now();
            if fan_poster.post().await.is_some()
                && wait_for(&arrivals, "/fan/", 50 * round, Duration::from_secs(30))
                    .await
                    .is_some()
            {
                fan_latencies.push(started.elapsed());
            }
        }
        rows.push(row(
            "fan-out to 50 endpoints: p50 (last arrival)",
            quantile_ms(&mut fan_latencies, 0.5),
            "ms",
            "20 messages",
        ));
        rows.push(row(
            "fan-out to 50 endpoints: p99 (last arrival)",
            quantile_ms(&mut fan_latencies, 0.99),
            "ms",
            "",
        ));
    }

    if run("isolation") {
        // Isolation: half the endpoints fail (and retry); the healthy half must not slow down.
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
        admin.application(&key, "healthy", &healthy).await?;
        admin.application(&key, "mixed", &mixed).await?;
        let rate = 20;
        let baseline = load::open_loop(
            &Poster::new(&api, &key, "healthy", 400),
            rate,
            rate * phase.as_secs(),
        )
        .await;
        wait_for(
            &arrivals,
            "/base/",
            baseline.started.len() * 10,
            Duration::from_secs(60),
        )
        .await;
        let mut base_latencies: Vec<Duration> = (0..10)
            .flat_map(|i| end_to_end(&baseline, &arrivals, &format!("/base/{i}")))
            .collect();
        let with_failures = load::open_loop(
            &Poster::new(&api, &key, "mixed", 400),
            rate,
            rate * phase.as_secs(),
        )
        .await;
        wait_for(
            &arrivals,
            "/ok/",
            with_failures.started.len() * 5,
            Duration::from_secs(60),
        )
        .await;
        let mut ok_latencies: Vec<Duration> = [1, 3, 5, 7, 9]
            .iter()
            .flat_map(|i| end_to_end(&with_failures, &arrivals, &format!("/ok/{i}")))
            .collect();
        let base_p99 = quantile_ms(&mut base_latencies, 0.99);
        let mixed_p99 = quantile_ms(&mut ok_latencies, 0.99);
        rows.push(row(
            "isolation: healthy endpoints p99, all healthy",
            base_p99,
            "ms",
            "10 endpoints, 20 msg/s",
        ));
        rows.push(row(
            "isolation: healthy endpoints p99, half failing",
            mixed_p99,
            "ms",
            format!("ratio {:.2}", mixed_p99 / base_p99),
        ));
    }

    let (_, api_peak) = services::rss_mib(&api_process);
    let (_, dispatcher_peak) = services::rss_mib(&dispatcher);
    rows.push(row("peak RSS, API", api_peak, "MiB", ""));
    rows.push(row(
        "peak RSS, dispatcher",
        dispatcher_peak,
        "MiB",
        "the last dispatcher started",
    ));
    rows.push(row(
        "receiver requests in all",
        arrivals.total() as f64,
        "req",
        "duplicates included",
    ));

    stats::print_table(&rows);
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench-results.json");
    std::fs::write(&out, serde_json::to_string_pretty(&rows)?)?;
    println!("\nwritten to {}", out.display());
    drop(dispatcher);
    drop(api_process);
    setup::recreate_database(DATABASE)?;
    setup::delete_queues(&env.queue);
    Ok(())
}
