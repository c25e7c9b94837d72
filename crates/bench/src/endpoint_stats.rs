//! The cost of `GET …/endpoints/{endpoint}/stats` as history grows: one endpoint with a few
//! attempts beside one with a million (inserted by SQL, spread over 30 days, and counted by
//! SQL as the migration counts earlier attempts), read in alternating rounds. The figure that matters is the
//! ratio of the two latencies: flat means near 1.

use std::time::Instant;

use serde_json::json;

use crate::phases::Run;
use crate::setup;
use crate::stats::{quantile_ms, Row};

/// Reads of each endpoint per round, and rounds.
const READS: usize = 200;
const ROUNDS: usize = 3;

/// Fills two endpoints' histories and times their statistics.
pub async fn flat_cost(run: &Run<'_>, database: &str, quick: bool) -> anyhow::Result<Vec<Row>> {
    let many = if quick { 100_000 } else { 1_000_000 };
    run.admin.application(run.key, "stats-bench", &[]).await?;
    let mut ids = Vec::new();
    for uid in ["few", "many"] {
        let endpoint = run
            .admin
            .endpoint(
                run.key,
                "stats-bench",
                json!({"uid": uid, "url": format!("{}/stats-{uid}", run.receiver)}),
            )
            .await?;
        ids.push(endpoint["id"].as_str().unwrap_or_default().to_owned());
    }
    let client = reqwest::Client::new();
    let message: serde_json::Value = client
        .post(format!(
            "{}/api/v1/applications/stats-bench/messages",
            run.api
        ))
        .bearer_auth(run.key)
        .json(&json!({"eventType": "stats.bench", "payload": {}}))
        .send()
        .await?
        .json()
        .await?;
    let message_id = message["id"].as_str().unwrap_or_default();
    let filled = Instant::now();
    // The counts are those of every attempt stored, the message's real ones included: when the
    // dispatcher counted those first, its row of this hour is replaced.
    for (endpoint, count) in [(&ids[0], 10), (&ids[1], many)] {
        setup::sql(
            database,
            &format!(
                "INSERT INTO attempts (id, message_id, endpoint_id, url, status, \
                   response_status_code, response, response_duration_ms, trigger_type, created) \
                 SELECT gen_random_uuid(), '{message_id}', '{endpoint}', 'http://bench.invalid/', \
                   CASE WHEN g % 10 = 0 THEN 'failed' ELSE 'success' END, \
                   CASE WHEN g % 10 = 0 THEN 500 ELSE 200 END, '', 3, 'scheduled', \
                   now() - (g % 720) * interval '1 hour' - (g % 3600) * interval '1 second' \
                 FROM generate_series(1, {count}) AS g; \
                 INSERT INTO endpoint_attempt_counts \
                   (endpoint_id, hour, shard, successes, failures, last_success, last_failure) \
                 SELECT endpoint_id, date_trunc('hour', created, 'UTC'), 0, \
                   count(*) FILTER (WHERE status = 'success'), \
                   count(*) FILTER (WHERE status <> 'success'), \
                   max(created) FILTER (WHERE status = 'success'), \
                   max(created) FILTER (WHERE status <> 'success') \
                 FROM attempts WHERE endpoint_id = '{endpoint}' GROUP BY 1, 2 \
                 ON CONFLICT (endpoint_id, hour, shard) DO UPDATE SET \
                   successes = excluded.successes, failures = excluded.failures, \
                   last_success = excluded.last_success, last_failure = excluded.last_failure"
            ),
        )?;
    }
    let fill_secs = filled.elapsed().as_secs_f64();
    setup::analyze(database)?;

    // The API takes a window in epoch milliseconds: the last 30 days.
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .saturating_sub(std::time::Duration::from_secs(30 * 24 * 3600))
        .as_millis();
    let mut latencies = [Vec::new(), Vec::new()];
    for _ in 0..ROUNDS {
        for (side, uid) in ["few", "many"].into_iter().enumerate() {
            let url = format!(
                "{}/api/v1/applications/stats-bench/endpoints/{uid}/stats?since={since}",
                run.api
            );
            for _ in 0..READS {
                let started = Instant::now();
                let answer = client.get(&url).bearer_auth(run.key).send().await?;
                anyhow::ensure!(answer.status().is_success(), "stats: {}", answer.status());
                let body: serde_json::Value = answer.json().await?;
                latencies[side].push(started.elapsed());
                anyhow::ensure!(
                    body["success"].as_i64().unwrap_or(0) + body["failure"].as_i64().unwrap_or(0)
                        > 0,
                    "stats of {uid} count nothing: {body}"
                );
            }
        }
    }
    let [mut few, mut many_latencies] = latencies;
    let few_p50 = quantile_ms(&mut few, 0.5);
    let many_p50 = quantile_ms(&mut many_latencies, 0.5);
    Ok(vec![
        Row::new(
            "endpoint stats, 10 attempts: p50",
            few_p50,
            "ms",
            format!("30-day window, {} reads", READS * ROUNDS),
        ),
        Row::new(
            format!("endpoint stats, {many} attempts: p50"),
            many_p50,
            "ms",
            format!(
                "p99 {:.2} ms; history inserted in {fill_secs:.1} s",
                quantile_ms(&mut many_latencies, 0.99)
            ),
        ),
        Row::new(
            "endpoint stats, many / few attempts",
            many_p50 / few_p50,
            "x",
            "target <= 2 (flat: ~1)",
        ),
    ])
}
