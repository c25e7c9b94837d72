//! The load generator: closed-loop at a fixed concurrency, or open-loop at a fixed rate.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a load phase sent.
#[derive(Default)]
pub struct Sent {
    /// Request latencies of accepted messages.
    pub latencies: Vec<Duration>,
    /// When each accepted message's request started, by message id.
    pub started: HashMap<String, Instant>,
    /// How long each accepted message's request took, by message id.
    pub accepted_after: HashMap<String, Duration>,
    /// Requests that did not answer 202.
    pub errors: u64,
}

/// Posts messages to one application.
#[derive(Clone)]
pub struct Poster {
    client: reqwest::Client,
    url: String,
    key: String,
    body: Arc<String>,
}

impl Poster {
    /// A poster of ~`payload_bytes` payloads to `app` on `api`.
    pub fn new(api: &str, key: &str, app: &str, payload_bytes: usize) -> Self {
        let filler = "x".repeat(payload_bytes.saturating_sub(120));
        let body = format!(
            r#"{{"eventType":"invoice.paid","payload":{{"id":"in_1NXWPnCo6bFb1KQto6C8OWvE","amount":1999,"currency":"eur","customer":"cus_OKFvL5QkKg","note":"{filler}"}}}}"#
        );
        Self {
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(512)
                .build()
                .unwrap_or_default(),
            url: format!("{api}/api/v1/applications/{app}/messages"),
            key: key.to_owned(),
            body: Arc::new(body),
        }
    }

    /// The same messages with another event type.
    pub fn with_event_type(mut self, event_type: &str) -> Self {
        let body = self.body.replacen(
            r#""eventType":"invoice.paid""#,
            &format!(r#""eventType":"{event_type}""#),
            1,
        );
        self.body = Arc::new(body);
        self
    }

    /// One POST: (message id, latency) or `None` on failure.
    pub async fn post(&self) -> Option<(String, Instant, Duration)> {
        let started = Instant::now();
        let response = self
            .client
            .post(&self.url)
            .bearer_auth(&self.key)
            .header("content-type", "application/json")
            .body(self.body.as_str().to_owned())
            .send()
            .await
            .ok()?;
        if response.status().as_u16() != 202 {
            return None;
        }
        let json: serde_json::Value = response.json().await.ok()?;
        let id = json["id"].as_str()?.to_owned();
        Some((id, started, started.elapsed()))
    }
}

fn record(sent: &Mutex<Sent>, outcome: Option<(String, Instant, Duration)>) {
    if let Ok(mut sent) = sent.lock() {
        match outcome {
            Some((id, started, latency)) => {
                sent.latencies.push(latency);
                sent.accepted_after.insert(id.clone(), latency);
                sent.started.insert(id, started);
            }
            None => sent.errors += 1,
        }
    }
}

/// `concurrency` workers post back to back for `duration`.
pub async fn closed_loop(poster: &Poster, concurrency: usize, duration: Duration) -> Sent {
    let sent = Arc::new(Mutex::new(Sent::default()));
    let deadline = Instant::now() + duration;
    let workers = (0..concurrency).map(|_| {
        let poster = poster.clone();
        let sent = sent.clone();
        tokio::spawn(async move {
            while Instant::now() < deadline {
                record(&sent, poster.post().await);
            }
        })
    });
    futures::future::join_all(workers).await;
    Arc::try_unwrap(sent)
        .ok()
        .and_then(|m| m.into_inner().ok())
        .unwrap_or_default()
}

/// `concurrency` workers post back to back until `count` messages were sent (accepted or not).
pub async fn closed_loop_count(poster: &Poster, concurrency: usize, count: u64) -> Sent {
    let sent = Arc::new(Mutex::new(Sent::default()));
    let tickets = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let workers = (0..concurrency).map(|_| {
        let (poster, sent, tickets) = (poster.clone(), sent.clone(), tickets.clone());
        tokio::spawn(async move {
            while tickets.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < count {
                record(&sent, poster.post().await);
            }
        })
    });
    futures::future::join_all(workers).await;
    Arc::try_unwrap(sent)
        .ok()
        .and_then(|m| m.into_inner().ok())
        .unwrap_or_default()
}

/// Posts `count` messages at `rate` per second (each on its own task).
pub async fn open_loop(poster: &Poster, rate: u64, count: u64) -> Sent {
    let sent = Arc::new(Mutex::new(Sent::default()));
    let mut ticker = tokio::time::interval(Duration::from_nanos(1_000_000_000 / rate.max(1)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = Vec::with_capacity(count as usize);
    for _ in 0..count {
        ticker.tick().await;
        let poster = poster.clone();
        let sent = sent.clone();
        tasks.push(tokio::spawn(
            async move { record(&sent, poster.post().await) },
        ));
    }
    futures::future::join_all(tasks).await;
    Arc::try_unwrap(sent)
        .ok()
        .and_then(|m| m.into_inner().ok())
        .unwrap_or_default()
}
