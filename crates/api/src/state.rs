//! Shared state handed to every handler.

use std::sync::Arc;

use octohooks_broker::AmqpLink;
use octohooks_db::DbPool;
use octohooks_platform::metrics::Metrics;
use octohooks_platform::Settings;

/// What handlers need: the pool, the broker link and the settings.
#[derive(Clone)]
pub struct AppState {
    /// Postgres pool.
    pub db: DbPool,
    /// Supervised RabbitMQ link for publishing jobs.
    pub amqp: AmqpLink,
    /// Validated settings.
    pub settings: Settings,
    /// This instance's metrics.
    pub metrics: Arc<Metrics>,
    /// Group commit of accepted messages.
    pub ingest: crate::ingest::Ingest,
    /// Per-environment request rate limit.
    pub rate_limiter: Arc<crate::ratelimit::RateLimiter>,
    /// Cached API-key and application lookups.
    pub lookups: Arc<crate::lookups::Lookups>,
    /// Base URL of portal links: `OCTOHOOKS_PUBLIC_URL`, or the address the API listens at.
    pub public_url: Arc<str>,
    /// Noted uses of API keys, written in the background.
    pub key_usage: Arc<crate::key_usage::KeyUsage>,
    /// Background publication of claimed jobs.
    pub publisher: octohooks_broker::publisher::Publisher,
}
