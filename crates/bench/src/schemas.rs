//! Ingest of messages whose event type enforces a JSON Schema, as a ratio to the same ingest of
//! messages whose type does not, measured in alternating rounds so that drift of the machine
//! (autovacuum, page cache) falls on both sides.

use serde_json::json;

use crate::load::{self, Poster};
use crate::phases::{wait_for, Run};
use crate::stats::{quantile_ms, Row};

/// Rounds of each side.
const ROUNDS: usize = 2;

/// The schema of the bench's payload: every field typed, required, nothing else allowed.
fn invoice_schema() -> serde_json::Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["id", "amount", "currency", "customer", "note"],
        "properties": {
            "id": {"type": "string", "pattern": "^in_[A-Za-z0-9]+$"},
            "amount": {"type": "integer", "minimum": 0},
            "currency": {"type": "string", "minLength": 3, "maxLength": 3},
            "customer": {"type": "string", "pattern": "^cus_"},
            "note": {"type": "string", "maxLength": 1000}
        }
    })
}

/// Ingest c=32 with and without an enforced schema: throughput, p99 and their ratio.
pub async fn enforcement(run: &Run<'_>) -> anyhow::Result<Vec<Row>> {
    run.admin
        .event_type(
            run.key,
            json!({"name": "invoice.checked", "schemaValidation": "enforce",
                   "schemas": {"1": invoice_schema()}}),
        )
        .await?;
    let mut sides = Vec::new();
    for (uid, event_type) in [
        ("schema-off", "invoice.paid"),
        ("schema-on", "invoice.checked"),
    ] {
        let url = format!("{}/{uid}", run.receiver);
        run.admin.application(run.key, uid, &[url]).await?;
        sides.push(Poster::new(run.api, run.key, uid, 400).with_event_type(event_type));
    }
    let mut accepted = [0usize; 2];
    let mut latencies = [Vec::new(), Vec::new()];
    let mut errors = [0u64; 2];
    for _ in 0..ROUNDS {
        for (side, poster) in sides.iter().enumerate() {
            let sent = load::closed_loop(poster, 32, run.phase).await;
            accepted[side] += sent.started.len();
            errors[side] += sent.errors;
            latencies[side].extend(sent.latencies);
        }
    }
    for (side, uid) in ["/schema-off", "/schema-on"].into_iter().enumerate() {
        wait_for(
            run.arrivals,
            uid,
            accepted[side],
            std::time::Duration::from_secs(300),
        )
        .await;
    }
    let seconds = run.phase.as_secs_f64() * ROUNDS as f64;
    let [off, on] = accepted.map(|count| count as f64 / seconds);
    let [mut off_latencies, mut on_latencies] = latencies;
    Ok(vec![
        Row::new(
            "ingest c=32, schema enforced: throughput",
            on,
            "msg/s",
            format!("{} errors", errors[1]),
        ),
        Row::new(
            "ingest c=32, schema enforced: p99",
            quantile_ms(&mut on_latencies, 0.99),
            "ms",
            format!(
                "not enforced, same rounds: p99 {:.1} ms",
                quantile_ms(&mut off_latencies, 0.99)
            ),
        ),
        Row::new(
            "ingest c=32, schema enforced / not enforced",
            on / off * 100.0,
            "%",
            format!(
                "target >= 90 %; not enforced: {off:.0} msg/s, {} errors",
                errors[0]
            ),
        ),
    ])
}
