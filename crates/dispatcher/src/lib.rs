//! The Octohooks dispatcher: consumes delivery jobs from RabbitMQ and sends signed webhooks.
//! Replicas share the queue; each also runs an outbox relay, which publishes the retries that
//! come due.
//!
//! # Layout
//! - [`build`] starts the consumer, the relay and the health server; tests call it directly.
//! - [`consumer`]: what becomes of each job the broker's consumer hands over (attempted or
//!   parked); acks, prefetch, reconnection and drain are in `octohooks_broker::consumer`.
//! - [`deliver`]: one job from context to recorded attempt.
//! - [`fairness`]: the limits per endpoint that keep one endpoint from slowing the others.
//! - [`http`]: the outgoing client with the SSRF guard.
//! - [`tasks`]: the runner of background tasks (recover, replay-missing).

pub mod batched;
pub mod consumer;
pub mod deliver;
pub mod fairness;
pub mod http;
pub mod retention;
pub mod tasks;

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, App, HttpResponse, HttpServer};
use octohooks_broker::consumer::{self as broker_consumer, ConsumerConfig};
use octohooks_broker::forgetter::Forgetter;
use octohooks_broker::{relay, AmqpLink, Topology};
use octohooks_db::pool;
use octohooks_platform::Settings;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::batched::{ContextReader, Deferrer, Recorder};
use crate::deliver::Deliverer;
use crate::fairness::{Fairness, FairnessConfig};
use crate::http::{Outbound, WebhookClient};

/// A grouped job handed off while its attempt runs is due this long after the attempt's
/// timeout: by then the attempt is recorded (and the copy dropped), or its dispatcher died
/// (and the copy runs it).
const HAND_OFF_MARGIN: Duration = Duration::from_secs(10);

/// A started dispatcher.
pub struct Running {
    /// Address of the health server.
    pub addr: SocketAddr,
    /// The health server; stop it with its handle.
    pub health: actix_web::dev::Server,
    /// Cancel to stop consuming; `consumer` then completes once in-flight jobs are done.
    pub shutdown: CancellationToken,
    /// Completes when the consumer has drained.
    pub consumer: JoinHandle<()>,
}

#[derive(Clone)]
struct Health {
    metrics: Arc<octohooks_platform::metrics::Metrics>,
    db: octohooks_db::DbPool,
    link: AmqpLink,
    consuming: Arc<AtomicBool>,
}

/// Longest wait at shutdown for the publishing link to close its connection.
const LINK_CLOSE_LIMIT: Duration = Duration::from_secs(3);

/// Connects and starts consuming; binds the health server on `dispatcher_listen_addr`.
pub async fn build(settings: Settings) -> anyhow::Result<Running> {
    let db = settings.database_pool()?;
    octohooks_db::pool::close_idle_connections(&db);
    // The batched reads, records and put-backs have connections of their own, whose plans
    // are made once.
    let batches = settings.batch_pool(batched::CONNECTIONS)?;
    octohooks_db::pool::close_idle_connections(&batches);
    let shutdown = CancellationToken::new();
    // The relay and the broker link outlive the consumer's drain, so they get a child token
    // cancelled only after the consumer is done.
    let background = CancellationToken::new();
    let link = AmqpLink::start(
        settings.amqp_url.clone(),
        Topology::of(&settings),
        background.clone(),
    );
    tokio::spawn(relay::run(db.clone(), link.clone(), background.clone()));
    tokio::spawn(tasks::run(
        db.clone(),
        settings.task_batch_size,
        background.clone(),
    ));
    tokio::spawn(retention::run(
        db.clone(),
        octohooks_db::retention::RetentionPolicy {
            retention: settings.retention,
            payload_retention: settings.payload_retention,
        },
        background.clone(),
    ));
    let metrics = Arc::new(octohooks_platform::metrics::Metrics::new()?);
    let fairness = Fairness::new(
        db.clone(),
        FairnessConfig {
            max_in_flight: settings.endpoint_max_in_flight,
            failing_slots: usize::from(settings.dispatcher_concurrency / 4).max(1),
            most_waiting: u32::from(settings.dispatcher_concurrency / 8).max(1),
        },
        metrics.clone(),
    );
    tokio::spawn(fairness.clone().run_renewals(background.clone()));
    let deliverer = Deliverer {
        metrics: metrics.clone(),
        db: db.clone(),
        client: WebhookClient::new(
            settings.destination_policy.clone(),
            settings.delivery_timeout,
            &Outbound {
                proxy: settings.proxy.clone(),
                extra_ca_file: settings.extra_ca_file.clone(),
            },
            settings.sealer.clone(),
        )?,
        schedule: settings.retry_schedule.clone(),
        disable_after: settings.endpoint_disable_after,
        sealer: settings.sealer.clone(),
        contexts: ContextReader::start(batches.clone()),
        recorder: Recorder::start(batches.clone()),
        fairness,
        deferrer: Deferrer::start(batches.clone()),
        forgetter: Forgetter::start(db.clone()),
    };
    let consuming = Arc::new(AtomicBool::new(false));
    let consumer = tokio::spawn({
        let config = ConsumerConfig {
            url: settings.amqp_url.clone(),
            topology: Topology::of(&settings),
            prefetch: settings.dispatcher_concurrency,
            hand_off_after: settings.delivery_timeout + HAND_OFF_MARGIN,
            link: link.clone(),
        };
        let consuming = consuming.clone();
        let shutdown = shutdown.clone();
        let link = link.clone();
        async move {
            broker_consumer::run(config, deliverer, consuming, shutdown).await;
            background.cancel();
            link.stopped(LINK_CLOSE_LIMIT).await;
        }
    });

    let health = Health {
        metrics,
        db,
        link,
        consuming,
    };
    let listener = TcpListener::bind(settings.dispatcher_listen_addr)?;
    let addr = listener.local_addr()?;
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(health.clone()))
            .route("/health/live", web::get().to(live))
            .route("/health/ready", web::get().to(ready))
            .route("/metrics", web::get().to(serve_metrics))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run();
    tracing::info!(%addr, "dispatcher health listening");
    Ok(Running {
        addr,
        health: server,
        shutdown,
        consumer,
    })
}

async fn live() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

async fn serve_metrics(health: web::Data<Health>) -> HttpResponse {
    health.metrics.refresh_outbox(&health.db).await;
    if let Some(depth) = health.link.queue_depth().await {
        health.metrics.queue_depth.set(i64::from(depth));
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(health.metrics.render())
}

async fn ready(health: web::Data<Health>) -> HttpResponse {
    let postgres = pool::ping(&health.db).await;
    let rabbitmq = health.link.is_connected().await && health.consuming.load(Ordering::Relaxed);
    let ok = postgres && rabbitmq;
    let body = serde_json::json!({
        "status": if ok { "ok" } else { "unavailable" },
        "postgres": postgres,
        "rabbitmq": rabbitmq,
    });
    if ok {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
