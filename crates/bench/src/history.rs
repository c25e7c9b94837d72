//! Cost that stays flat as history grows: ingest at 32 clients, one application's message list,
//! one endpoint's attempt list and its statistics, first with 100,000 messages of history, then
//! after 10 million more, each with a destination and an attempt, added by SQL. Both spread
//! over 100 applications (the measured one included) and over the same last 30 days, so that
//! only the volume differs (and retention keeps them). Each figure is given as the ratio of
//! full to little, in the same run; `VACUUM ANALYZE` runs before each set of reads, as
//! autovacuum would have on a live database.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::load::{self, Poster};
use crate::phases::Run;
use crate::setup;
use crate::stats::{quantile_ms, Row};

/// Applications the history is spread over; the first is the one measured.
const APPLICATIONS: u64 = 100;
/// Messages inserted per statement, so that no statement holds millions of rows in memory.
const CHUNK: u64 = 1_000_000;
/// The little history the first measurement sees.
const LITTLE: u64 = 100_000;
/// Sequential reads of each list per measurement.
const READS: usize = 200;

/// What one measurement found.
struct Figures {
    ingest: f64,
    ingest_p99: f64,
    messages_p50: f64,
    attempts_p50: f64,
    stats_p50: f64,
}

/// Measures on little history, fills `10M` (1M with `quick`) messages, measures again.
pub async fn flat_cost(run: &Run<'_>, database: &str, quick: bool) -> anyhow::Result<Vec<Row>> {
    let total: u64 = if quick { 1_000_000 } else { 10_000_000 };
    for i in 0..APPLICATIONS {
        let uid = format!("history-{i}");
        run.admin.application(run.key, &uid, &[]).await?;
        run.admin
            .endpoint(
                run.key,
                &uid,
                json!({"uid": "hook", "url": format!("{}/{uid}", run.receiver)}),
            )
            .await?;
    }
    let poster = Poster::new(run.api, run.key, "history-0", 400);
    // Some real history, delivered and recorded, beside the little one made by SQL.
    load::closed_loop_count(&poster, 8, 500).await;
    setup::sql(database, &fill(0, LITTLE, LITTLE))?;
    let empty = measure(run, &poster, database).await?;

    let filled = Instant::now();
    let mut done = 0;
    while done < total {
        let chunk = CHUNK.min(total - done);
        setup::sql(database, &fill(done, chunk, total))?;
        done += chunk;
    }
    let fill_secs = filled.elapsed().as_secs_f64();
    let full = measure(run, &poster, database).await?;
    let sizes = table_sizes(database)?;

    let ratio = |name: &str, empty: f64, full: f64, unit: &str, target: &str| {
        Row::new(
            format!("history: {name}, {total} more messages / {LITTLE}"),
            full / empty,
            "x",
            format!("{full:.1} vs {empty:.1} {unit}; {target}"),
        )
    };
    Ok(vec![
        Row::new(
            "history: messages inserted by SQL",
            total as f64,
            "msgs",
            format!("with a destination and an attempt each, in {fill_secs:.0} s; {sizes}"),
        ),
        ratio(
            "ingest c=32",
            empty.ingest,
            full.ingest,
            "msg/s",
            "target >= 0.9",
        ),
        ratio(
            "ingest c=32 p99",
            empty.ingest_p99,
            full.ingest_p99,
            "ms",
            "lower is better",
        ),
        ratio(
            "message list p50",
            empty.messages_p50,
            full.messages_p50,
            "ms",
            "target <= 2",
        ),
        ratio(
            "attempt list p50",
            empty.attempts_p50,
            full.attempts_p50,
            "ms",
            "target <= 2",
        ),
        ratio(
            "endpoint stats p50",
            empty.stats_p50,
            full.stats_p50,
            "ms",
            "target <= 2",
        ),
    ])
}

async fn measure(run: &Run<'_>, poster: &Poster, database: &str) -> anyhow::Result<Figures> {
    let sent = load::closed_loop(poster, 32, run.phase).await;
    let ingest = sent.latencies.len() as f64 / run.phase.as_secs_f64();
    let mut latencies = sent.latencies;
    let ingest_p99 = quantile_ms(&mut latencies, 0.99);
    // Let the dispatcher catch up, so that the reads do not compete with the ingest's tail.
    tokio::time::sleep(Duration::from_secs(3)).await;
    setup::analyze(database)?;
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .saturating_sub(Duration::from_secs(30 * 24 * 3600))
        .as_millis();
    let base = format!("{}/api/v1/applications/history-0", run.api);
    let messages_p50 = read_p50(run, &format!("{base}/messages?limit=50")).await?;
    let attempts_p50 = read_p50(run, &format!("{base}/endpoints/hook/attempts?limit=50")).await?;
    let stats_p50 = read_p50(run, &format!("{base}/endpoints/hook/stats?since={since}")).await?;
    Ok(Figures {
        ingest,
        ingest_p99,
        messages_p50,
        attempts_p50,
        stats_p50,
    })
}

/// The median of [`READS`] sequential reads of `url`, each answered 200 with rows.
async fn read_p50(run: &Run<'_>, url: &str) -> anyhow::Result<f64> {
    let client = reqwest::Client::new();
    let mut latencies = Vec::with_capacity(READS);
    for _ in 0..READS {
        let started = Instant::now();
        let answer = client.get(url).bearer_auth(run.key).send().await?;
        anyhow::ensure!(answer.status().is_success(), "{url}: {}", answer.status());
        let body = answer.bytes().await?;
        latencies.push(started.elapsed());
        anyhow::ensure!(body.len() > 2, "{url} returned nothing");
    }
    Ok(quantile_ms(&mut latencies, 0.5))
}

/// SQL that stores messages `from..from + count` of `total` spread evenly over the last 30
/// days, round-robin over the applications, each delivered to its application's
/// endpoint with one recorded attempt, counted per hour as the recording statement counts.
fn fill(from: u64, count: u64, total: u64) -> String {
    format!(
        "CREATE TEMP TABLE filler AS \
           SELECT octohooks_uuid_v7(now() - interval '30 days' \
               + g * (interval '30 days' / {total})) AS id, \
             now() - interval '30 days' + g * (interval '30 days' / {total}) AS t, \
             'history-' || (g % {APPLICATIONS}) AS uid \
           FROM generate_series({from}, {from} + {count} - 1) AS g; \
         INSERT INTO messages (id, application_id, event_type, channels, payload, created) \
           SELECT f.id, a.id, 'history.old', '{{}}', '{{\"old\": true}}', f.t \
           FROM filler f JOIN applications a ON a.uid = f.uid; \
         INSERT INTO message_destinations \
           (message_id, endpoint_id, status, scheduled_attempts, attempt_count, updated) \
           SELECT f.id, e.id, 'success', 1, 1, f.t FROM filler f \
             JOIN applications a ON a.uid = f.uid JOIN endpoints e ON e.application_id = a.id; \
         INSERT INTO attempts (id, message_id, endpoint_id, url, status, response_status_code, \
             response, response_duration_ms, trigger_type, created) \
           SELECT gen_random_uuid(), f.id, e.id, e.url, 'success', 200, '', 3, 'scheduled', f.t \
           FROM filler f JOIN applications a ON a.uid = f.uid \
             JOIN endpoints e ON e.application_id = a.id; \
         INSERT INTO endpoint_attempt_counts AS c \
             (endpoint_id, hour, shard, successes, failures, last_success, last_failure) \
           SELECT e.id, date_trunc('hour', f.t, 'UTC'), 7, count(*), 0, max(f.t), NULL \
           FROM filler f JOIN applications a ON a.uid = f.uid \
             JOIN endpoints e ON e.application_id = a.id GROUP BY 1, 2 \
           ON CONFLICT (endpoint_id, hour, shard) DO UPDATE SET \
             successes = c.successes + excluded.successes, \
             last_success = greatest(c.last_success, excluded.last_success); \
         DROP TABLE filler"
    )
}

/// Sizes of the big tables with their indexes, for the report.
fn table_sizes(database: &str) -> anyhow::Result<String> {
    let mut parts = Vec::new();
    for table in ["messages", "message_destinations", "attempts"] {
        let bytes = setup::count(
            database,
            &format!("SELECT pg_total_relation_size('{table}')"),
        )?;
        parts.push(format!(
            "{table} {:.1} GiB",
            bytes as f64 / f64::from(1 << 30)
        ));
    }
    Ok(parts.join(", "))
}
