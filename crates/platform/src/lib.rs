//! What the API and the dispatcher share at run time.
//!
//! # Layout
//! - [`settings`]: configuration (embedded commented defaults, optional file, environment).
//! - [`amqp`]: the RabbitMQ link: a supervisor that rebuilds connection, channel and topology
//!   with backoff, and confirmed publishing.
//! - [`relay`]: the outbox relay that moves due jobs from Postgres to RabbitMQ.
//! - [`logging`]: structured logs.

pub mod amqp;
pub mod logging;
pub mod relay;
pub mod settings;

pub use settings::Settings;
