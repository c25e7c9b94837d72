//! The Octohooks REST API.
//!
//! # Layout
//! - [`build`] starts everything the API needs (migrations, pool, broker link, relay) and binds
//!   the HTTP server; tests and benchmarks call it with port 0.
//! - [`routes`]: thin handlers, one module per resource.
//! - [`auth`], [`body`], [`paging`], [`idempotency`]: the request plumbing they share.
//! - [`error`]: the one error type and its RFC 9457 rendering.
//! - [`openapi`]: the OpenAPI document generated from the handlers.

pub mod auth;
pub mod body;
mod console;
pub mod dto;
pub mod error;
pub mod event_catalog;
pub mod idempotency;
pub mod ingest;
pub mod key_usage;
pub mod lookups;
pub mod merge_patch;
pub mod openapi;
pub mod paging;
pub mod ratelimit;
pub mod routes;
pub mod schema_gate;
pub mod scope;
pub mod state;

use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use actix_cors::Cors;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::{header, StatusCode};
use actix_web::{web, App, HttpResponse, HttpServer};
use octohooks_broker::publisher::Publisher;
use octohooks_broker::{relay, AmqpLink};
use octohooks_db::pool;
use octohooks_platform::{telemetry, Settings};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::error::{problem_response, ApiError, ProblemCode};
use crate::state::AppState;

/// A started API: its address, the server future to drive, and the token that stops the
/// background tasks.
pub struct Running {
    /// The bound address (useful with port 0).
    pub addr: SocketAddr,
    /// The bound address of the metrics listener.
    pub metrics_addr: SocketAddr,
    /// Resolves when the HTTP server stopped.
    pub server: actix_web::dev::Server,
    /// Cancel to stop the relay, the janitor and the broker link.
    pub shutdown: CancellationToken,
    /// The broker link, to wait for its close after `shutdown`.
    pub broker: AmqpLink,
}

/// Secrets stored before the encryption key was configured stay readable in the database, and
/// those sealed in the first format are not bound to their endpoint, until they are resealed:
/// say how many there are, once per start.
async fn warn_of_unsealed_secrets(db: pool::DbPool) {
    let counted = match pool::connection(&db).await {
        Ok(mut conn) => {
            octohooks_db::endpoints::count_unsealed_secrets(
                &mut conn,
                octohooks_domain::sealing::SEALED_PREFIX,
            )
            .await
        }
        Err(err) => Err(err),
    };
    match counted {
        Ok(0) => {}
        Ok(count) => tracing::warn!(
            count,
            "endpoint secrets are stored in plaintext or sealed without binding to their endpoint; run `octohooks-api reseal-secrets` to reseal them"
        ),
        Err(err) => tracing::warn!(error = %err, "could not count endpoint secrets to reseal"),
    }
}

/// Applies migrations, connects, starts the relay and binds the HTTP server.
pub async fn build(settings: Settings, workers: usize) -> anyhow::Result<Running> {
    settings.require_secret_encryption()?;
    octohooks_db::migrate::run_pending(&settings.database_url).await?;
    let db = settings.database_pool()?;
    if settings.sealer.is_sealing() {
        tokio::spawn(warn_of_unsealed_secrets(db.clone()));
    }
    octohooks_db::pool::close_idle_connections(&db);
    let shutdown = CancellationToken::new();
    let topology = octohooks_broker::Topology::of(&settings);
    let amqp = if settings.express_lane {
        AmqpLink::start_with_lane(settings.amqp_url.clone(), topology, shutdown.clone())
    } else {
        AmqpLink::start(settings.amqp_url.clone(), topology, shutdown.clone())
    };
    tokio::spawn(relay::run(db.clone(), amqp.clone(), shutdown.clone()));
    tokio::spawn(expire_idempotency_keys(db.clone(), shutdown.clone()));

    let listener = TcpListener::bind(settings.listen_addr)?;
    let addr = listener.local_addr()?;
    let metrics_listener = TcpListener::bind(settings.metrics_listen_addr)?;
    let metrics_addr = metrics_listener.local_addr()?;
    let metrics = std::sync::Arc::new(octohooks_platform::metrics::Metrics::new()?);
    let publisher = Publisher::start(
        db.clone(),
        amqp.clone(),
        metrics.clone(),
        octohooks_broker::express::claim(settings.delivery_timeout),
    );
    // The group commit's writers have connections of their own, whose plans are made once.
    let writers = settings.batch_pool(ingest::CONNECTIONS)?;
    octohooks_db::pool::close_idle_connections(&writers);
    let ingest = ingest::Ingest::start(writers, publisher.clone());
    let rate_limiter = std::sync::Arc::new(ratelimit::RateLimiter::new(
        settings.rate_limit_per_second,
        settings.rate_limit_burst,
    ));
    let lookups = lookups::Lookups::new(metrics.lookup_cache.clone(), settings.db_pool_size / 4);
    lookups.listen(settings.database_url.clone(), shutdown.clone());
    let key_usage = std::sync::Arc::new(key_usage::KeyUsage::default());
    tokio::spawn(key_usage.clone().write_until(db.clone(), shutdown.clone()));
    if settings.portal_key_is_ephemeral {
        tracing::warn!(
            "no OCTOHOOKS_PORTAL_SIGNING_KEY or OCTOHOOKS_SECRET_ENCRYPTION_KEY: portal links are \
             signed with a key of this process and work only here until it restarts"
        );
    }
    let public_url = settings
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    let state = AppState {
        public_url: public_url.into(),
        key_usage,
        lookups,
        rate_limiter,
        ingest,
        publisher,
        db,
        amqp: amqp.clone(),
        settings,
        metrics,
    };
    serve_metrics(metrics_listener, state.clone(), shutdown.clone())?;
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(state.clone()))
            .app_data(
                web::QueryConfig::default()
                    .error_handler(|err, _| ApiError::invalid("query", err.to_string()).into()),
            )
            .app_data(
                web::PathConfig::default()
                    .error_handler(|err, _| ApiError::invalid("path", err.to_string()).into()),
            )
            .wrap_fn(observe)
            .wrap(cors())
            .configure(routes::configure)
            .default_service(web::to(unknown_route))
    })
    .workers(workers.max(1))
    .client_request_timeout(Duration::from_secs(10))
    .client_disconnect_timeout(Duration::from_secs(2))
    .shutdown_timeout(25)
    .listen(listener)?
    .run();
    tracing::info!(%addr, %metrics_addr, "API listening");
    Ok(Running {
        addr,
        metrics_addr,
        server,
        shutdown,
        broker: amqp,
    })
}

/// Serves `/metrics` on a listener of its own (one worker, no signal handling of its own)
/// until `shutdown`: Prometheus reaches it, the public port and the load balancer never do.
fn serve_metrics(
    listener: TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(state.clone()))
            .route("/metrics", web::get().to(routes::health::metrics))
    })
    .workers(1)
    .disable_signals()
    .client_request_timeout(Duration::from_secs(10))
    .listen(listener)?
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    tokio::spawn(async move {
        shutdown.cancelled().await;
        handle.stop(false).await;
    });
    Ok(())
}

/// Seed "Cross-Origin Resource Sharing": any origin, preflight answered on every route.
fn cors() -> Cors {
    Cors::default()
        .allow_any_origin()
        .send_wildcard()
        .allowed_methods(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::HeaderName::from_static(idempotency::HEADER),
        ])
        .expose_headers([
            header::LINK,
            header::RETRY_AFTER,
            header::HeaderName::from_static(idempotency::REPLAYED_HEADER),
        ])
        .max_age(3600)
}

/// Wraps every request in a span (continuing an incoming `traceparent`) and counts it.
fn observe<S>(
    req: ServiceRequest,
    service: &S,
) -> impl std::future::Future<Output = Result<ServiceResponse, actix_web::Error>>
where
    S: Service<ServiceRequest, Response = ServiceResponse, Error = actix_web::Error>,
{
    let metrics = req
        .app_data::<web::Data<AppState>>()
        .map(|state| state.metrics.clone());
    let method = req.method().clone();
    let span = tracing::info_span!(
        "http.request",
        http.method = %method,
        http.route = tracing::field::Empty,
        http.status = tracing::field::Empty,
        trace_id = tracing::field::Empty,
    );
    let incoming = req
        .headers()
        .get("traceparent")
        .and_then(|value| value.to_str().ok());
    telemetry::continue_trace(&span, incoming);
    if let Some(trace_id) = telemetry::trace_id(&span) {
        span.record("trace_id", trace_id);
    }
    let started = Instant::now();
    let response = span.in_scope(|| service.call(req)).instrument(span.clone());
    async move {
        let response = response.await?;
        let route = response
            .request()
            .match_pattern()
            .unwrap_or_else(|| "unmatched".to_owned());
        let status = response.status();
        span.record("http.route", route.as_str());
        span.record("http.status", status.as_u16());
        if let Some(metrics) = metrics {
            metrics
                .http_requests
                .with_label_values(&[method.as_str(), route.as_str(), status.as_str()])
                .inc();
            metrics
                .http_duration
                .with_label_values(&[method.as_str(), route.as_str()])
                .observe(started.elapsed().as_secs_f64());
        }
        Ok(response)
    }
}

async fn unknown_route() -> HttpResponse {
    problem_response(
        StatusCode::NOT_FOUND,
        ProblemCode::NotFound,
        "no such route".into(),
    )
}

async fn expire_idempotency_keys(db: octohooks_db::DbPool, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(600)) => {}
        }
        if let Ok(mut conn) = pool::connection(&db).await {
            match octohooks_db::idempotency::expire(&mut conn, idempotency::RETENTION_SECS).await {
                Ok(removed) if removed > 0 => tracing::info!(removed, "expired idempotency keys"),
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "could not expire idempotency keys"),
            }
        }
    }
}
