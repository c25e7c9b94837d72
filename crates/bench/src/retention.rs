//! Ingest while retention removes a backlog of old history: the same closed-loop ingest (32
//! clients) with a dispatcher that keeps everything and with one that sweeps messages older
//! than the retention, with their destinations and attempts (inserted by SQL, 100 days old).
//! The figures that matter are the ratios of the two ingest rates, and of the latency of a
//! message list read meanwhile: removal that does not disturb ingest and queries is near 1.

use std::time::Instant;

use tokio::process::Child;

use crate::load::{self, Poster};
use crate::phases::Run;
use crate::services::Environment;
use crate::setup;
use crate::stats::{quantile_ms, Row};

/// Rounds of each kind: the two kinds alternate, so that drift of the host hits both.
const ROUNDS: usize = 3;

/// Ingest in alternating rounds: with a dispatcher that keeps everything (retention off) and
/// with one that sweeps (restarted for each round, so that it sweeps at once) while `backlog`
/// old messages wait to be removed.
pub async fn ingest_while_sweeping(
    run: &Run<'_>,
    env: &Environment,
    dispatcher: &mut Child,
    dispatcher_addr: &str,
    database: &str,
    quick: bool,
) -> anyhow::Result<Vec<Row>> {
    let backlog: u64 = if quick { 50_000 } else { 300_000 };
    run.admin
        .application(
            run.key,
            "retention",
            &[format!("{}/retention", run.receiver)],
        )
        .await?;
    let poster = Poster::new(run.api, run.key, "retention", 400);
    let filled = Instant::now();
    setup::sql(database, &fill(backlog))?;
    let fill_secs = filled.elapsed().as_secs_f64();
    setup::analyze(database)?;

    let mut latencies = [Vec::new(), Vec::new()];
    let mut reads = [Vec::new(), Vec::new()];
    let mut accepted = [0_usize; 2];
    let mut sweeping_for = std::time::Duration::ZERO;
    for _ in 0..ROUNDS {
        for (kind, retention) in ["off", "90d"].into_iter().enumerate() {
            // Stopped as a rollout stops it: it drains and gives back its endpoint slots, which
            // the next one would otherwise wait for until they lapse.
            crate::services::stop(dispatcher).await?;
            *dispatcher = env
                .start_with(
                    "octohooks-dispatcher",
                    dispatcher_addr,
                    &[("OCTOHOOKS_RETENTION", retention)],
                )
                .await?;
            let started = Instant::now();
            let reading = tokio::spawn(read_while(
                format!(
                    "{}/api/v1/applications/retention/messages?limit=50",
                    run.api
                ),
                run.key.to_owned(),
                started + run.phase,
            ));
            let sent = load::closed_loop(&poster, 32, run.phase).await;
            reads[kind].extend(reading.await??);
            if kind == 1 {
                sweeping_for += started.elapsed();
            }
            accepted[kind] += sent.latencies.len();
            latencies[kind].extend(sent.latencies);
        }
    }
    // Its deliveries are let through before the next phase, which would otherwise queue behind
    // them and measure this phase's backlog instead of itself.
    let caught_up = crate::phases::wait_for(
        run.arrivals,
        "/retention",
        accepted.iter().sum(),
        std::time::Duration::from_secs(300),
    )
    .await;
    if caught_up.is_none() {
        eprintln!(
            "retention: {} accepted, {} arrived in 300 s; undelivered:\n{}",
            accepted.iter().sum::<usize>(),
            run.arrivals.distinct("/retention"),
            setup::undelivered(database, "retention")
        );
    }
    let left = setup::count(
        database,
        "SELECT count(*) FROM messages WHERE event_type = 'old'",
    )?;
    let removal_rate = backlog.saturating_sub(left) as f64 / sweeping_for.as_secs_f64();
    let seconds = run.phase.as_secs_f64() * ROUNDS as f64;
    let [mut kept, mut swept] = latencies;
    let [mut read_kept, mut read_swept] = reads;
    let (read_kept_p50, read_swept_p50) = (
        quantile_ms(&mut read_kept, 0.5),
        quantile_ms(&mut read_swept, 0.5),
    );
    let (read_kept_p99, read_swept_p99) = (
        quantile_ms(&mut read_kept, 0.99),
        quantile_ms(&mut read_swept, 0.99),
    );
    let (rate_kept, rate_swept) = (accepted[0] as f64 / seconds, accepted[1] as f64 / seconds);
    Ok(vec![
        Row::new(
            "ingest c=32 while retention removes history",
            rate_swept,
            "msg/s",
            format!(
                "p99 {:.1} ms; retention off: {rate_kept:.0} msg/s, p99 {:.1} ms",
                quantile_ms(&mut swept, 0.99),
                quantile_ms(&mut kept, 0.99)
            ),
        ),
        Row::new(
            "ingest while removing / retention off",
            rate_swept / rate_kept,
            "x",
            format!("{ROUNDS} alternating rounds each; target >= 0.9"),
        ),
        Row::new(
            "message list p50 while removing / retention off",
            read_swept_p50 / read_kept_p50,
            "x",
            format!(
                "{read_swept_p50:.1} vs {read_kept_p50:.1} ms, p99 {read_swept_p99:.1} vs \
                 {read_kept_p99:.1} ms; read back to back beside the ingest"
            ),
        ),
        Row::new(
            "retention phase: deliveries caught up",
            caught_up.map_or(f64::NAN, |waited| waited.as_secs_f64()),
            "s",
            "after the last round, before the next phase (NaN: not within 300 s)",
        ),
        Row::new(
            "retention: old messages removed",
            removal_rate,
            "msg/s",
            format!(
                "with their destinations and attempts, during ingest; {backlog} inserted in {fill_secs:.1} s"
            ),
        ),
    ])
}

/// SQL that stores `backlog` delivered messages of the `retention` application, 100 days old,
/// each with its destination and one attempt.
fn fill(backlog: u64) -> String {
    format!(
        "CREATE TEMP TABLE old AS \
           SELECT octohooks_uuid_v7(t) AS id, t \
           FROM (SELECT now() - interval '100 days' + g * interval '1 millisecond' AS t \
                 FROM generate_series(1, {backlog}) AS g) AS times; \
         INSERT INTO messages (id, application_id, event_type, channels, payload, created) \
           SELECT old.id, a.id, 'old', '{{}}', '{{\"old\": true}}', old.t FROM old, \
             applications a WHERE a.uid = 'retention'; \
         INSERT INTO message_destinations \
           (message_id, endpoint_id, status, scheduled_attempts, attempt_count, updated) \
           SELECT old.id, e.id, 'success', 1, 1, old.t FROM old, endpoints e \
             JOIN applications a ON a.id = e.application_id WHERE a.uid = 'retention'; \
         INSERT INTO attempts (id, message_id, endpoint_id, url, status, response_status_code, \
             response, response_duration_ms, trigger_type, created) \
           SELECT gen_random_uuid(), old.id, e.id, e.url, 'success', 200, '', 3, 'scheduled', \
             old.t FROM old, endpoints e JOIN applications a ON a.id = e.application_id \
             WHERE a.uid = 'retention'"
    )
}

/// Reads `url` back to back until `until`; the latency of each read.
async fn read_while(
    url: String,
    key: String,
    until: Instant,
) -> anyhow::Result<Vec<std::time::Duration>> {
    let client = reqwest::Client::new();
    let mut latencies = Vec::new();
    while Instant::now() < until {
        let started = Instant::now();
        let answer = client.get(&url).bearer_auth(&key).send().await?;
        anyhow::ensure!(answer.status().is_success(), "{url}: {}", answer.status());
        answer.bytes().await?;
        latencies.push(started.elapsed());
    }
    Ok(latencies)
}
