//! Liveness and readiness probes.

use actix_web::{web, HttpResponse};
use octohooks_db::pool;

use crate::dto::{HealthOut, HealthStatus};
use crate::state::AppState;

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/health/live", web::get().to(live))
        .route("/health/ready", web::get().to(ready));
}

/// Prometheus metrics of this API instance, on the metrics listener only.
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    state.metrics.refresh_outbox(&state.db).await;
    let express_open = state.amqp.express_open().await;
    state.metrics.express_lane_open.set(i64::from(express_open));
    state
        .metrics
        .express_batches_open
        .set(i64::from(express_open && state.amqp.batches_open()));
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}

/// The process runs.
#[utoipa::path(get, path = "/health/live", tag = "health",
    responses((status = 200, body = HealthOut)))]
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(HealthOut {
        status: HealthStatus::Ok,
        postgres: None,
        rabbitmq: None,
    })
}

/// 200 only while Postgres answers and RabbitMQ is connected.
#[utoipa::path(get, path = "/health/ready", tag = "health",
    responses((status = 200, body = HealthOut), (status = 503, body = HealthOut)))]
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let postgres = pool::ping(&state.db).await;
    let rabbitmq = state.amqp.is_connected().await;
    let body = HealthOut {
        status: if postgres && rabbitmq {
            HealthStatus::Ok
        } else {
            HealthStatus::Unavailable
        },
        postgres: Some(postgres),
        rabbitmq: Some(rabbitmq),
    };
    if postgres && rabbitmq {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
