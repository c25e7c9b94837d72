//! Octohooks domain: the values the API accepts, the wire format of delivery jobs and the
//! Standard Webhooks signer. Everything here is pure logic without I/O, so it is tested with
//! plain unit tests and shared by the API and the dispatcher.
//!
//! # Layout
//! - [`validate`]: "parse, don't validate" types for uids, names, URLs, event types, headers.
//! - [`signing`]: endpoint secrets and `webhook-signature` computation.
//! - [`retry`]: the retry schedule and how `OCTOHOOKS_RETRY_SCHEDULE` is parsed.
//! - [`job`]: the versioned delivery job carried through RabbitMQ.
//! - [`destination`]: which IP addresses a webhook may never be sent to (SSRF guard).
//! - [`sealing`]: encryption at rest of endpoint secrets.
//! - [`client_identity`]: client certificates (mTLS) checked before they are stored.
//! - [`schema`]: event type schemas and the check of payloads against them.
//! - [`openapi_import`]: event types read from an OpenAPI document's `webhooks`.
//! - [`operational`]: the operational events an environment's operators subscribe to.

pub mod client_identity;
pub mod destination;
pub mod job;
pub mod openapi_import;
pub mod operational;
pub mod portal;
pub mod retry;
pub mod schema;
pub mod sealing;
pub mod signing;
pub mod status;
pub mod validate;

/// A new time-ordered identifier: UUID v7 keeps B-tree inserts local and makes ids sortable by
/// creation time, which the cursor paging relies on.
pub fn new_id() -> uuid::Uuid {
    uuid::Uuid::now_v7()
}
