//! `TestApp`: the real API (and, by default, a dispatcher) on port 0 against a database and a
//! queue of its own, with an environment and its API key ready to use.

use std::collections::{HashMap, HashSet};

use octohooks_platform::Settings;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::database;

/// The admin token every test app uses.
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdef";
/// The encryption key of endpoint secrets in every test app (base64 of 32 bytes); tests about
/// other keys override it through `Options::extra`.
pub const ENCRYPTION_KEY: &str = "dGVzdC1lbmNyeXB0aW9uLWtleS0wMTIzNDU2Nzg5YWI=";
/// The broker every test uses (directly or through a proxy).
pub const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// How a test app is started.
#[derive(Clone)]
pub struct Options {
    /// Start an in-process dispatcher too.
    pub dispatcher: bool,
    /// `OCTOHOOKS_RETRY_SCHEDULE`.
    pub retry_schedule: String,
    /// `OCTOHOOKS_ALLOW_PRIVATE_DESTINATIONS`.
    pub allow_private: bool,
    /// `OCTOHOOKS_DELIVERY_TIMEOUT`.
    pub delivery_timeout: String,
    /// Broker URL (a proxy's, to cut the broker away).
    pub amqp_url: String,
    /// `host:port` (a proxy's) through which the services reach the test database; the
    /// test's own queries go to it directly.
    pub database_via: Option<String>,
    /// A database elsewhere (another server, TLS settings in the URL) instead of a fresh one
    /// on the machine's server: the API creates and migrates it; the test removes its server.
    pub database_url: Option<String>,
    /// More `OCTOHOOKS_*` variables.
    pub extra: Vec<(String, String)>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            dispatcher: true,
            retry_schedule: "200ms,200ms,200ms".into(),
            allow_private: true,
            delivery_timeout: "5s".into(),
            amqp_url: AMQP_URL.into(),
            database_via: None,
            database_url: None,
            extra: Vec::new(),
        }
    }
}

impl Options {
    /// These options with more `OCTOHOOKS_*` variables.
    pub fn with_vars(mut self, vars: &[(&str, &str)]) -> Self {
        self.extra.extend(
            vars.iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned())),
        );
        self
    }

    /// The API alone, no dispatcher: for tests of what the API answers and stores.
    pub fn api_only() -> Self {
        Self {
            dispatcher: false,
            ..Self::default()
        }
    }

    /// The API alone, reaching the broker through `proxy`: a test cuts the broker away to keep
    /// jobs in the outbox, then starts a dispatcher (with its own relay) to publish them.
    pub fn api_behind(proxy: &crate::proxy::Proxy) -> Self {
        Self {
            amqp_url: proxy.amqp_url(),
            ..Self::api_only()
        }
    }
}

/// An answer of the API.
#[derive(Debug)]
pub struct Answer {
    /// Status code.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Raw body.
    pub text: String,
    /// Body as JSON (`Null` when it is not JSON).
    pub json: Value,
}

impl Answer {
    /// A response header or "".
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

struct Dispatcher {
    shutdown: CancellationToken,
    consumer: tokio::task::JoinHandle<()>,
    health: actix_web::dev::ServerHandle,
    addr: std::net::SocketAddr,
}

/// A running API (and dispatcher) with a fresh environment.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// Base URL of the API's metrics listener.
    pub metrics_base: String,
    /// The test database's URL.
    pub database_url: String,
    /// The test database's name on the machine's server ("" for `Options::database_url`).
    pub database_name: String,
    /// The delivery queue of this test.
    pub queue: String,
    /// An API key of the test environment.
    pub api_key: String,
    /// The test environment's id.
    pub environment_id: String,
    /// The options it was started with.
    pub options: Options,
    client: reqwest::Client,
    api: actix_web::dev::ServerHandle,
    api_shutdown: CancellationToken,
    api_broker: octohooks_broker::AmqpLink,
    dispatcher: Option<Dispatcher>,
}

impl TestApp {
    /// Starts with default options.
    pub async fn spawn() -> Self {
        Self::spawn_with(Options::default()).await
    }

    /// The environment variables of this app's services.
    pub fn env_vars(&self) -> HashMap<String, String> {
        vars(&self.options, &self.database_url, &self.queue)
    }

    /// Starts with `options`.
    pub async fn spawn_with(options: Options) -> Self {
        // Spans (and so trace propagation) need the subscriber; tests log warnings only.
        std::mem::forget(octohooks_platform::telemetry::init(
            "octohooks-tests",
            "text",
            None,
            "warn",
        ));
        let (database_name, database_url) = match &options.database_url {
            Some(url) => (String::new(), url.clone()),
            None => database::fresh().await,
        };
        let queue = format!("octohooks.test.{}", uuid::Uuid::new_v4().simple());
        let settings =
            Settings::load_from(vars(&options, &database_url, &queue)).expect("settings");
        let running = octohooks_api::build(settings.clone(), 1)
            .await
            .expect("start API");
        let base = format!("http://{}", running.addr);
        let metrics_base = format!("http://{}", running.metrics_addr);
        let api = running.server.handle();
        tokio::spawn(running.server);
        let mut app = Self {
            base,
            metrics_base,
            database_url,
            database_name,
            queue,
            api_key: String::new(),
            environment_id: String::new(),
            options: options.clone(),
            client: reqwest::Client::new(),
            api,
            api_shutdown: running.shutdown,
            api_broker: running.broker,
            dispatcher: None,
        };
        if options.dispatcher {
            app.start_dispatcher().await;
        }
        let created = app
            .admin(
                Method::POST,
                "/api/v1/environments",
                Some(serde_json::json!({"name": "test"})),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
        app.api_key = created.json["apiKey"].as_str().expect("apiKey").to_owned();
        app.environment_id = created.json["id"].as_str().expect("id").to_owned();
        app
    }

    /// Starts the in-process dispatcher (if not running).
    pub async fn start_dispatcher(&mut self) {
        if self.dispatcher.is_some() {
            return;
        }
        let settings = Settings::load_from(self.env_vars()).expect("settings");
        let running = octohooks_dispatcher::build(settings)
            .await
            .expect("start dispatcher");
        let health = running.health.handle();
        tokio::spawn(running.health);
        self.dispatcher = Some(Dispatcher {
            shutdown: running.shutdown,
            consumer: running.consumer,
            health,
            addr: running.addr,
        });
    }

    /// The in-process dispatcher's health URL.
    pub fn dispatcher_health(&self) -> Option<String> {
        self.dispatcher
            .as_ref()
            .map(|d| format!("http://{}/health/ready", d.addr))
    }

    /// The in-process dispatcher's base URL (health and metrics).
    pub fn dispatcher_base(&self) -> Option<String> {
        self.dispatcher
            .as_ref()
            .map(|d| format!("http://{}", d.addr))
    }

    /// Waits until the API reports ready (Postgres answers, RabbitMQ connected): the broker
    /// link connects in the background, and a message accepted before it is published by the
    /// relay instead of the request's own publisher.
    pub async fn wait_ready(&self) {
        let url = format!("{}/health/ready", self.base);
        let ready = crate::eventually(15, || async {
            reqwest::get(&url)
                .await
                .is_ok_and(|answer| answer.status().is_success())
        })
        .await;
        assert!(ready, "the API did not become ready");
    }

    /// Stops the in-process dispatcher the way SIGTERM does (drain, then exit).
    pub async fn stop_dispatcher(&mut self) {
        if let Some(dispatcher) = self.dispatcher.take() {
            dispatcher.shutdown.cancel();
            let _ = dispatcher.consumer.await;
            dispatcher.health.stop(true).await;
        }
    }

    /// Sends a request with the environment's API key.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let key = self.api_key.clone();
        self.request(method, path, Some(&key), body.map(|b| b.to_string()), &[])
            .await
    }

    /// Sends a request with the admin token.
    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        self.request(
            method,
            path,
            Some(ADMIN_TOKEN),
            body.map(|b| b.to_string()),
            &[],
        )
        .await
    }

    /// GET with the API key.
    pub async fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, None).await
    }

    /// POST with the API key.
    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.call(Method::POST, path, Some(body)).await
    }

    /// Sends anything: raw body, any token, extra headers.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<String>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{}", self.base, path)
        };
        let mut request = self.client.request(method, url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            text,
            json,
        }
    }

    /// Creates an application and returns its id.
    pub async fn create_app(&self, uid: &str) -> String {
        let answer = self
            .post(
                "/api/v1/applications",
                serde_json::json!({"name": uid, "uid": uid}),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
        answer.json["id"].as_str().expect("id").to_owned()
    }

    /// Creates an endpoint from `body` on `app` and returns its JSON.
    pub async fn create_endpoint(&self, app: &str, body: Value) -> Value {
        let answer = self
            .post(&format!("/api/v1/applications/{app}/endpoints"), body)
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
        answer.json
    }

    /// Sends a message (raw JSON body) and returns its JSON.
    pub async fn send_raw(&self, app: &str, body: &str) -> Value {
        let key = self.api_key.clone();
        let answer = self
            .request(
                Method::POST,
                &format!("/api/v1/applications/{app}/messages"),
                Some(&key),
                Some(body.to_owned()),
                &[],
            )
            .await;
        assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.text);
        answer.json
    }

    /// Sends `count` messages of event type `t` (payload `{"i": n}`) to application `app`, one
    /// after the other, and returns their ids.
    pub async fn send_messages(&self, app: &str, count: usize) -> HashSet<String> {
        let mut ids = HashSet::new();
        for i in 0..count {
            let answer = self
                .post(
                    &format!("/api/v1/applications/{app}/messages"),
                    serde_json::json!({"eventType": "t", "payload": {"i": i}}),
                )
                .await;
            assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.text);
            ids.insert(answer.json["id"].as_str().expect("an id").to_owned());
        }
        ids
    }

    /// Counts rows on the test database: `count(&app, "SELECT count(*) FROM attempts")`.
    pub async fn count(&self, sql: &str) -> i64 {
        database::count(&self.database_url, sql).await
    }

    /// Outbox rows and fan-out rows, both: what still waits to be published (or, for the
    /// express lane, done).
    pub async fn waiting_jobs(&self) -> i64 {
        self.count(database::WAITING_JOBS).await
    }

    /// Reads one value from the test database, as text.
    pub async fn text(&self, sql: &str) -> String {
        database::text(&self.database_url, sql).await
    }

    /// The value of one series of the API's metrics (`name{labels}` as exposed), 0 when absent.
    pub async fn metric(&self, series: &str) -> f64 {
        crate::scrape(&self.metrics_base, series).await
    }

    /// Waits until the API publishes first attempts by the express lane (a dispatcher reads it).
    pub async fn wait_for_express_lane(&self) {
        let open = crate::eventually(20, || async {
            self.metric("octohooks_express_lane_open").await == 1.0
        })
        .await;
        assert!(open, "the express lane opens once a dispatcher reads it");
    }

    /// Waits until the API publishes first attempts by the express lane in batches: a
    /// dispatcher consumes single jobs a moment before batches, and the API may look between.
    pub async fn wait_for_express_batches(&self) {
        let open = crate::eventually(20, || async {
            self.metric("octohooks_express_lane_open").await == 1.0
                && self.metric("octohooks_express_batches_open").await == 1.0
        })
        .await;
        assert!(open, "the lane takes batches once a dispatcher reads them");
    }

    /// The dispatcher's count of the job contexts it got from `source`: `carried` by an express
    /// job, or `read` from Postgres.
    pub async fn job_contexts(&self, source: &str) -> f64 {
        let base = self.dispatcher_base().expect("a dispatcher runs");
        let series = format!("octohooks_job_contexts_total{{source=\"{source}\"}}");
        crate::scrape(&base, &series).await
    }

    /// The in-process dispatcher's metrics, as exposed.
    pub async fn dispatcher_metrics(&self) -> String {
        let base = self.dispatcher_base().expect("a dispatcher runs");
        reqwest::get(format!("{base}/metrics"))
            .await
            .expect("scrape the dispatcher's metrics")
            .text()
            .await
            .expect("metrics text")
    }

    /// Runs one SQL statement on the test database (to stage a fault).
    pub async fn execute(&self, sql: &str) -> usize {
        database::execute(&self.database_url, sql).await
    }

    /// Stops everything and drops the database and the queue.
    pub async fn stop(mut self) {
        self.stop_dispatcher().await;
        self.api.stop(false).await;
        self.api_shutdown.cancel();
        self.api_broker
            .stopped(std::time::Duration::from_secs(3))
            .await;
        if let Ok(connection) =
            lapin::Connection::connect(AMQP_URL, lapin::ConnectionProperties::default()).await
        {
            if let Ok(channel) = connection.create_channel().await {
                for queue in octohooks_broker::delivery_queues(&self.queue) {
                    let _ = channel
                        .queue_delete(&queue, lapin::options::QueueDeleteOptions::default())
                        .await;
                }
                let _ = channel.close(200, "bye").await;
            }
            let _ = connection.close(200, "bye").await;
        }
        if !self.database_name.is_empty() {
            database::drop_database(&self.database_name).await;
        }
    }
}

fn vars(options: &Options, database_url: &str, queue: &str) -> HashMap<String, String> {
    let database_url = match &options.database_via {
        Some(via) => database_url.replacen("127.0.0.1:5432", via, 1),
        None => database_url.to_owned(),
    };
    [
        ("OCTOHOOKS_DATABASE_URL", database_url),
        ("OCTOHOOKS_AMQP_URL", options.amqp_url.clone()),
        ("OCTOHOOKS_LISTEN_ADDR", "127.0.0.1:0".to_owned()),
        ("OCTOHOOKS_DISPATCHER_LISTEN_ADDR", "127.0.0.1:0".to_owned()),
        ("OCTOHOOKS_METRICS_LISTEN_ADDR", "127.0.0.1:0".to_owned()),
        ("OCTOHOOKS_ADMIN_TOKEN", ADMIN_TOKEN.to_owned()),
        ("OCTOHOOKS_SECRET_ENCRYPTION_KEY", ENCRYPTION_KEY.to_owned()),
        ("OCTOHOOKS_QUEUE_NAME", queue.to_owned()),
        ("OCTOHOOKS_RETRY_SCHEDULE", options.retry_schedule.clone()),
        (
            "OCTOHOOKS_ALLOW_PRIVATE_DESTINATIONS",
            options.allow_private.to_string(),
        ),
        (
            "OCTOHOOKS_DELIVERY_TIMEOUT",
            options.delivery_timeout.clone(),
        ),
        ("OCTOHOOKS_DB_POOL_SIZE", "4".to_owned()),
        ("OCTOHOOKS_DISPATCHER_CONCURRENCY", "32".to_owned()),
        ("OCTOHOOKS_LOG_FORMAT", "text".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .chain(options.extra.iter().cloned())
    .collect()
}
