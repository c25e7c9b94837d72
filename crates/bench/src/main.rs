//! `make bench`: one reproducible run on one machine with the real API, dispatcher, Postgres
//! and RabbitMQ; prints a table and writes `bench-results.json`. `--quick` shortens every
//! phase (for a smoke run; the published figures come from a full run).

mod blackhole;
mod cpu;
mod endpoint_stats;
mod history;
mod load;
mod phases;
mod pipeline;
mod receiver;
mod retention;
mod schemas;
mod sdk;
mod services;
mod setup;
mod stages;
mod stats;
mod tail;

use std::time::{Duration, Instant};

use load::Poster;
use phases::{end_to_end, wait_for};
use stats::{quantile_ms, Row};

const API: &str = "127.0.0.1:18180";
const DISPATCHER_A: &str = "127.0.0.1:18181";
const DISPATCHER_B: &str = "127.0.0.1:18182";
const DATABASE: &str = "octohooks_bench";
/// The "moderate" rate of the end-to-end latency phase (override with OCTOHOOKS_BENCH_E2E_RATE).
const E2E_RATE_DEFAULT: u64 = 200;

/// The number in environment variable `name`, or `default` when it is unset. A value that is
/// not a number is named on stderr and the default used, so a typo never passes unnoticed.
fn number_from_env<T: std::str::FromStr + std::fmt::Display>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Err(_) => default,
        Ok(value) => value.parse().unwrap_or_else(|_| {
            eprintln!("{name}={value:?} is not a number; using {default}");
            default
        }),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let quick = std::env::args().any(|arg| arg == "--quick");
    let e2e_rate: u64 = number_from_env("OCTOHOOKS_BENCH_E2E_RATE", E2E_RATE_DEFAULT);
    let phase = Duration::from_secs(if quick { 3 } else { 10 });
    // OCTOHOOKS_BENCH_DRAIN_COUNT=<n> drains a longer backlog, where a dispatcher's start
    // weighs less in the figure.
    let drain_count = number_from_env(
        "OCTOHOOKS_BENCH_DRAIN_COUNT",
        if quick { 1000 } else { 5000 },
    );
    let mut rows = Vec::new();
    // OCTOHOOKS_BENCH_ONLY=<phase>[,<phase>…] runs only those phases: ingest, pgbench, e2e, drain, e2e-load,
    // fanout-load, sdk, schemas, endpoint-stats, retention, fanout, isolation, transactions;
    // history (10 million messages) runs only when named.
    let only = std::env::var("OCTOHOOKS_BENCH_ONLY").ok();
    let run = |phase: &str| {
        only.as_deref()
            .is_none_or(|only| only.split(',').any(|name| name == phase))
    };

    setup::recreate_database(DATABASE)?;
    let env = services::Environment {
        database_url: format!("postgres://postgres@127.0.0.1:5432/{DATABASE}"),
        queue: format!("octohooks.bench.{}", uuid::Uuid::new_v4().simple()),
        admin_token: "bench-admin-token-0123456789abcdef".into(),
    };
    let (receiver, arrivals) = receiver::start(2)?;
    let api_process = env.start("octohooks-api", API).await?;
    let mut dispatcher = env.start("octohooks-dispatcher", DISPATCHER_A).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (api_idle, _) = services::rss_mib(&api_process);
    let (dispatcher_idle, _) = services::rss_mib(&dispatcher);
    rows.push(Row::new("idle RSS, API", api_idle, "MiB", "target <= 64"));
    rows.push(Row::new(
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
            rows.push(Row::new(
                format!("ingest c={concurrency}: throughput"),
                rate,
                "msg/s",
                note,
            ));
            rows.push(Row::new(
                format!("ingest c={concurrency}: p50"),
                quantile_ms(&mut sent.latencies, 0.5),
                "ms",
                "",
            ));
            rows.push(Row::new(
                format!("ingest c={concurrency}: p99"),
                quantile_ms(&mut sent.latencies, 0.99),
                "ms",
                format!("{} errors", sent.errors),
            ));
        }
        let caught_up = wait_for(&arrivals, "/ingest", accepted, Duration::from_secs(300)).await;
        rows.push(Row::new(
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
        rows.push(Row::new(
            "ingest c=32, no delivery running: throughput",
            alone_at_32,
            "msg/s",
            "dispatcher stopped",
        ));
        rows.push(Row::new(
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
        rows.push(Row::new(
            "pgbench, API's inserts per message, c=32",
            pg_tps,
            "tx/s",
            "raw Postgres limit",
        ));
        rows.push(Row::new(
            "ingest c=32 / pgbench, while delivering",
            ingest_at_32 / pg_tps * 100.0,
            "%",
            "target >= 50 %",
        ));
        rows.push(Row::new(
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
        rows.push(Row::new(
            format!("end-to-end at {e2e_rate} msg/s: p50"),
            quantile_ms(&mut latencies, 0.5),
            "ms",
            "POST start -> receiver; target <= 10",
        ));
        rows.push(Row::new(
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
        rows.push(Row::new(
            format!("delivery throughput, {replicas} dispatcher(s)"),
            rate,
            "msg/s",
            format!("{} queued messages", sent.started.len()),
        ));
        drop(second);
    }

    let bench = phases::Run {
        api: &api,
        key: &key,
        admin: &admin,
        receiver: &receiver,
        arrivals: &arrivals,
        phase,
    };
    if run("e2e-load") {
        let services = [
            format!("http://{}", services::API_METRICS),
            format!("http://{DISPATCHER_A}"),
        ];
        // OCTOHOOKS_BENCH_E2E_LOAD_COUNT lengthens the phase, e.g. to profile it.
        let count = number_from_env(
            "OCTOHOOKS_BENCH_E2E_LOAD_COUNT",
            if quick { 500 } else { 2000 },
        );
        for clients in [8, 2] {
            rows.extend(pipeline::e2e_under_load(&bench, &services, clients, count).await?);
        }
    }
    if run("fanout-load") {
        // OCTOHOOKS_BENCH_FANOUT_COUNT=<n> sends more messages, for a window long enough to
        // profile or to compare builds with less noise; 500 is the workload of issue 14.
        let count = number_from_env(
            "OCTOHOOKS_BENCH_FANOUT_COUNT",
            if quick { 100 } else { 500 },
        );
        rows.extend(
            pipeline::fanout_throughput(&bench, &env, &mut dispatcher, DISPATCHER_A, count).await?,
        );
    }
    if run("sdk") {
        rows.extend(sdk::overhead(&bench, quick).await?);
    }
    if run("schemas") {
        rows.extend(schemas::enforcement(&bench).await?);
    }
    if run("endpoint-stats") {
        rows.extend(endpoint_stats::flat_cost(&bench, DATABASE, quick).await?);
    }
    // Only when asked for: it adds millions of rows, which every later phase would read past.
    if only
        .as_deref()
        .is_some_and(|only| only.split(',').any(|name| name == "history"))
    {
        rows.extend(history::flat_cost(&bench, DATABASE, quick).await?);
    }
    if run("retention") {
        rows.extend(
            retention::ingest_while_sweeping(
                &bench,
                &env,
                &mut dispatcher,
                DISPATCHER_A,
                DATABASE,
                quick,
            )
            .await?,
        );
    }
    if run("fanout") {
        rows.extend(phases::fanout(&bench).await?);
    }
    // Before isolation, whose failing endpoints keep retrying afterwards.
    if run("transactions") {
        rows.extend(phases::transactions(&bench, DATABASE).await?);
    }
    if run("isolation") {
        rows.extend(phases::isolation(&bench).await?);
        // Last: the hanging endpoints' jobs keep waiting and retrying after it. Each of its two
        // runs lasts OCTOHOOKS_BENCH_ISOLATION_SECS (60 s).
        let length = Duration::from_secs(number_from_env(
            "OCTOHOOKS_BENCH_ISOLATION_SECS",
            if quick { 6 } else { 60 },
        ));
        rows.extend(blackhole::isolation(&bench, length).await?);
    }

    let (_, api_peak) = services::rss_mib(&api_process);
    let (_, dispatcher_peak) = services::rss_mib(&dispatcher);
    rows.push(Row::new("peak RSS, API", api_peak, "MiB", ""));
    rows.push(Row::new(
        "peak RSS, dispatcher",
        dispatcher_peak,
        "MiB",
        "the last dispatcher started",
    ));
    rows.push(Row::new(
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
