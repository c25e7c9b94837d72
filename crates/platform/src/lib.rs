//! What the API and the dispatcher share at run time.
//!
//! # Layout
//! - [`settings`]: configuration (embedded commented defaults, optional file, environment).
//! - [`amqp`]: the RabbitMQ link: a supervisor that rebuilds connection, channel and topology
//!   with backoff, and confirmed publishing.
//! - [`batch`]: group work of concurrent callers (group commit and batched reads).
//! - [`relay`]: the outbox relay that moves due jobs from Postgres to RabbitMQ.
//! - [`telemetry`]: structured logs and OpenTelemetry traces.
//! - [`metrics`]: Prometheus metrics.

pub mod amqp;
pub mod batch;
pub mod metrics;
pub mod relay;
pub mod settings;
pub mod telemetry;

pub use settings::Settings;
