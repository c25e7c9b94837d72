//! Isolation from endpoints that hang: 50 endpoints per message, 10 of which accept the
//! connection and never answer (each attempt runs to the delivery timeout), against the same
//! load to 50 healthy endpoints. The healthy endpoints' latency must not follow the hanging
//! ones' (target: p99 within 1.2x of the all-healthy run). Each run lasts 60 s: the p99 of a
//! shorter one is its two or three slowest messages, and moved by a third between runs of the
//! same build; 60 s also covers the hanging attempts' timeouts and their retries.

use std::time::Duration;

use tokio::net::TcpListener;

use crate::load::{self, Poster};
use crate::phases::{end_to_end, wait_for, Run};
use crate::stats::{quantile_ms, Row};

/// Endpoints per message, and how many of them hang in the second run.
const ENDPOINTS: usize = 50;
const HANGING: usize = 10;
/// Messages per second to the application (each fans out to every endpoint).
const RATE: u64 = 10;

/// A receiver that accepts connections and never reads or answers; it keeps them open until
/// the bench ends.
async fn start_blackhole() -> anyhow::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    Ok(url)
}

/// Runs both loads of `length`; the rows compare the healthy endpoints' latencies.
pub async fn isolation(run: &Run<'_>, length: Duration) -> anyhow::Result<Vec<Row>> {
    let blackhole = start_blackhole().await?;
    let receiver = run.receiver;
    let healthy: Vec<String> = (0..ENDPOINTS)
        .map(|i| format!("{receiver}/bh-base/{i}"))
        .collect();
    let mixed: Vec<String> = (0..ENDPOINTS)
        .map(|i| {
            if i < HANGING {
                format!("{blackhole}/hang/{i}")
            } else {
                format!("{receiver}/bh-ok/{i}")
            }
        })
        .collect();
    run.admin
        .application(run.key, "bh-healthy", &healthy)
        .await?;
    run.admin.application(run.key, "bh-mixed", &mixed).await?;
    let count = RATE * length.as_secs();
    let limit = Duration::from_secs(60);

    let baseline = load::open_loop(
        &Poster::new(run.api, run.key, "bh-healthy", 400),
        RATE,
        count,
    )
    .await;
    wait_for(
        run.arrivals,
        "/bh-base/",
        baseline.started.len() * ENDPOINTS,
        limit,
    )
    .await;
    let mut base: Vec<Duration> = (0..ENDPOINTS)
        .flat_map(|i| end_to_end(&baseline, run.arrivals, &format!("/bh-base/{i}")))
        .collect();

    let with_hanging =
        load::open_loop(&Poster::new(run.api, run.key, "bh-mixed", 400), RATE, count).await;
    let healthy_count = ENDPOINTS - HANGING;
    let complete = wait_for(
        run.arrivals,
        "/bh-ok/",
        with_hanging.started.len() * healthy_count,
        limit,
    )
    .await;
    let mut ok: Vec<Duration> = (HANGING..ENDPOINTS)
        .flat_map(|i| end_to_end(&with_hanging, run.arrivals, &format!("/bh-ok/{i}")))
        .collect();
    let missing = with_hanging.started.len() * healthy_count - ok.len();
    let base_p50 = quantile_ms(&mut base, 0.5);
    let base_p99 = quantile_ms(&mut base, 0.99);
    let ok_p50 = quantile_ms(&mut ok, 0.5);
    let ok_p99 = quantile_ms(&mut ok, 0.99);
    let note = format!(
        "{ENDPOINTS} endpoints per message, {RATE} msg/s for {} s",
        length.as_secs()
    );
    Ok(vec![
        Row::new(
            "isolation: healthy p50 / p99, 50 healthy endpoints",
            base_p50,
            "ms",
            format!("p99 {base_p99:.1} ms; {note}"),
        ),
        Row::new(
            "isolation: healthy p50, 10 of 50 endpoints hanging",
            ok_p50,
            "ms",
            format!("ratio {:.2}", ok_p50 / base_p50),
        ),
        Row::new(
            "isolation: healthy p99, 10 of 50 endpoints hanging",
            ok_p99,
            "ms",
            format!(
                "ratio {:.2} (target <= 1.2){}",
                ok_p99 / base_p99,
                if complete.is_some() {
                    String::new()
                } else {
                    format!("; {missing} healthy deliveries missing after 60 s")
                }
            ),
        ),
    ])
}
