//! A webhook receiver: a real HTTP server on 127.0.0.1 that records every request and answers
//! as the test scripts it (status codes in order, a delay, a redirect).

use std::collections::{HashMap, VecDeque};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};

/// One request as the receiver got it.
#[derive(Debug, Clone)]
pub struct Received {
    /// Path of the request.
    pub path: String,
    /// Headers, names in lower case.
    pub headers: HashMap<String, String>,
    /// Body bytes exactly as received.
    pub body: Vec<u8>,
    /// When it arrived.
    pub at: std::time::Instant,
}

impl Received {
    /// A header value or "".
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }

    /// True when one of the `webhook-signature` signatures is `secret`'s over this request's
    /// id, timestamp and body, as a receiver checks it (Standard Webhooks).
    pub fn signed_by(&self, secret: &octohooks_domain::signing::EndpointSecret) -> bool {
        let Ok(timestamp) = self.header("webhook-timestamp").parse::<i64>() else {
            return false;
        };
        let expected = secret.sign(self.header("webhook-id"), timestamp, &self.body);
        self.header("webhook-signature")
            .split(' ')
            .any(|signature| signature == expected)
    }
}

#[derive(Default)]
struct Script {
    statuses: VecDeque<u16>,
    default_status: Option<u16>,
    delay: Option<Duration>,
    headers: Vec<(String, String)>,
}

#[derive(Clone, Default)]
struct Shared {
    received: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<Script>>,
    /// Requests being answered now, and the most there ever were at once.
    answering: Arc<AtomicUsize>,
    most_at_once: Arc<AtomicUsize>,
}

/// A running receiver.
pub struct Receiver {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    shared: Shared,
    handle: actix_web::dev::ServerHandle,
}

impl Receiver {
    /// Starts a receiver answering 200 to everything.
    pub async fn start() -> Self {
        let shared = Shared::default();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind receiver");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let state = shared.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(state.clone()))
                .app_data(web::PayloadConfig::new(16 * 1024 * 1024))
                .default_service(web::to(record))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .expect("listen")
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            base,
            shared,
            handle,
        }
    }

    /// A URL on this receiver.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Answers these statuses to the next requests, in order.
    pub fn respond_with(&self, statuses: &[u16]) {
        self.shared
            .script
            .lock()
            .expect("lock")
            .statuses
            .extend(statuses);
    }

    /// Answers `status` once the scripted statuses are used up.
    pub fn default_status(&self, status: u16) {
        self.shared.script.lock().expect("lock").default_status = Some(status);
    }

    /// Waits this long before answering.
    pub fn delay(&self, delay: Duration) {
        self.shared.script.lock().expect("lock").delay = Some(delay);
    }

    /// Adds a response header.
    pub fn response_header(&self, name: &str, value: &str) {
        self.shared
            .script
            .lock()
            .expect("lock")
            .headers
            .push((name.into(), value.into()));
    }

    /// The most requests this receiver was answering at the same time.
    pub fn most_at_once(&self) -> usize {
        self.shared.most_at_once.load(Ordering::SeqCst)
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().expect("lock").clone()
    }

    /// Requests received on `path`.
    pub fn received_on(&self, path: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// Waits until at least `count` requests arrived on `path` (or `secs` passed).
    pub async fn wait_for(&self, path: &str, count: usize, secs: u64) -> Vec<Received> {
        crate::eventually(secs, || async { self.received_on(path).len() >= count }).await;
        self.received_on(path)
    }

    /// Stops the server.
    pub async fn stop(&self) {
        self.handle.stop(false).await;
    }
}

async fn record(req: HttpRequest, body: web::Bytes, state: web::Data<Shared>) -> HttpResponse {
    let headers = req
        .headers()
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                value.to_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    state.received.lock().expect("lock").push(Received {
        path: req.path().to_owned(),
        headers,
        body: body.to_vec(),
        at: std::time::Instant::now(),
    });
    let now_answering = state.answering.fetch_add(1, Ordering::SeqCst) + 1;
    state
        .most_at_once
        .fetch_max(now_answering, Ordering::SeqCst);
    let (status, delay, extra) = {
        let mut script = state.script.lock().expect("lock");
        let status = script
            .statuses
            .pop_front()
            .or(script.default_status)
            .unwrap_or(200);
        (status, script.delay, script.headers.clone())
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    state.answering.fetch_sub(1, Ordering::SeqCst);
    let mut response =
        HttpResponse::build(actix_web::http::StatusCode::from_u16(status).expect("status"));
    for (name, value) in extra {
        response.insert_header((name, value));
    }
    response.body(format!("answer {status}"))
}
