//! Everything about RabbitMQ in one place: the queues, the supervised publishing link, the
//! outbox relay, the consumer supervisor, and the timing rules between them.
//!
//! # Layout
//! - [`topology`]: the delivery queues (first attempts, retries, parked, fan-out) and their
//!   declaration.
//! - [`express`]: the in-memory lane for first attempts whose outbox rows stay until done.
//! - [`link`]: the publishing connection, rebuilt with backoff, with confirmed publishes.
//! - [`publisher`]: the API's publication of each commit's jobs, by the express lane or durably.
//! - [`relay`]: moves due jobs from the Postgres outbox to RabbitMQ.
//! - [`forgetter`]: removes jobs from the outbox once they are safe elsewhere, in batches.
//! - [`outgoing`]: what a set of outbox rows is published as (jobs, and groups of a fan-out).
//! - [`consumer`]: consumes the queues with manual acks and bounded prefetch, decides when a job
//!   is parked, acks or requeues as the handler says, and drains on shutdown.
//! - [`group`]: runs the first attempts of one message that travel in one broker message.
//! - [`timing`]: confirm timeout < accept claim < relay claim, checked at compile time.

pub mod consumer;
pub mod express;
pub mod forgetter;
pub mod group;
pub mod link;
pub mod outgoing;
pub mod publisher;
pub mod relay;
pub mod timing;
pub mod topology;

pub use link::{AmqpError, AmqpLink, Outgoing};
pub use topology::{delivery_queues, Topology};
