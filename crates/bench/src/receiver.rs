//! The benchmark's webhook receiver: records when each `webhook-id` arrived on each path.
//! Paths under `/fail/` answer 500 (a broken endpoint); everything else answers 204.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};

/// Arrival times by path and webhook id.
#[derive(Clone, Default)]
pub struct Arrivals {
    inner: Arc<Mutex<HashMap<String, HashMap<String, Instant>>>>,
    total: Arc<std::sync::atomic::AtomicU64>,
}

impl Arrivals {
    /// When `id` first arrived on `path`.
    pub fn at(&self, path: &str, id: &str) -> Option<Instant> {
        self.inner.lock().ok()?.get(path)?.get(id).copied()
    }

    /// Distinct ids received on paths starting with `prefix`.
    pub fn distinct(&self, prefix: &str) -> usize {
        self.inner.lock().map_or(0, |map| {
            map.iter()
                .filter(|(path, _)| path.starts_with(prefix))
                .map(|(_, ids)| ids.len())
                .sum()
        })
    }

    /// The first and the last first-arrival of any id under `prefix`.
    pub fn span(&self, prefix: &str) -> Option<(Instant, Instant)> {
        let map = self.inner.lock().ok()?;
        let times = map
            .iter()
            .filter(|(path, _)| path.starts_with(prefix))
            .flat_map(|(_, ids)| ids.values().copied());
        times.fold(None, |span, at| match span {
            None => Some((at, at)),
            Some((first, last)) => Some((first.min(at), last.max(at))),
        })
    }

    /// Requests received in all (duplicates included).
    pub fn total(&self) -> u64 {
        self.total.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Starts the receiver with `workers` threads; returns its base URL.
pub fn start(workers: usize) -> anyhow::Result<(String, Arrivals)> {
    let arrivals = Arrivals::default();
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let base = format!("http://{}", listener.local_addr()?);
    let state = arrivals.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(state.clone()))
            .default_service(web::to(record))
    })
    .workers(workers)
    .backlog(4096)
    .max_connection_rate(4096)
    .disable_signals()
    .listen(listener)?
    .run();
    tokio::spawn(server);
    Ok((base, arrivals))
}

async fn record(req: HttpRequest, _body: web::Bytes, state: web::Data<Arrivals>) -> HttpResponse {
    let now = Instant::now();
    let id = req
        .headers()
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let path = req.path().to_owned();
    state
        .total
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if let Ok(mut map) = state.inner.lock() {
        map.entry(path.clone())
            .or_default()
            .entry(id)
            .or_insert(now);
    }
    if path.starts_with("/fail/") {
        HttpResponse::InternalServerError().finish()
    } else {
        HttpResponse::NoContent().finish()
    }
}
