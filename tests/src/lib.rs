//! The test harness: a fresh database per test cloned from a migrated template, the real API
//! and dispatcher started in-process on port 0 (or as processes, to kill them), webhook
//! receivers that are real HTTP servers on 127.0.0.1, a TCP proxy in front of RabbitMQ or
//! Postgres to cut them away, and a load balancer in front of API replicas.

pub mod app;
pub mod balancer;
pub mod database;
pub mod hostile;
pub mod load;
pub mod outbound;
pub mod process;
pub mod proxy;
pub mod receiver;
pub mod tls_postgres;

pub use app::{Options, TestApp};
pub use receiver::Receiver;

/// Polls `check` every 50 ms until it is true or `secs` seconds passed; returns the last value.
pub async fn eventually<F, Fut>(secs: u64, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The value of `series` (its name with labels, as exposed, e.g.
/// `octohooks_delivery_attempts_total{outcome="success"}`) in Prometheus text; 0 when absent.
pub fn series_value(metrics: &str, series: &str) -> f64 {
    let prefix = format!("{series} ");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|value| value.parse().ok())
        .unwrap_or(0.0)
}

/// Scrapes `{base}/metrics` of a service and reads `series` from it.
pub async fn scrape(base: &str, series: &str) -> f64 {
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await
        .expect("scrape a service's metrics")
        .text()
        .await
        .unwrap_or_default();
    series_value(&metrics, series)
}
