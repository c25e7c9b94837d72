//! What the API and the dispatcher share at run time.
//!
//! # Layout
//! - [`settings`]: configuration (embedded commented defaults, optional file, environment).
//! - [`batch`]: group work of concurrent callers (group commit and batched reads).
//! - [`telemetry`]: structured logs and OpenTelemetry traces.
//! - [`metrics`]: Prometheus metrics.
//! - [`outbound`]: the proxy and the extra certificate authorities of deliveries.

pub mod batch;
pub mod metrics;
pub mod outbound;
pub mod settings;
pub mod telemetry;

pub use settings::Settings;
