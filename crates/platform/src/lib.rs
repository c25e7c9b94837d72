//! What the API and the dispatcher share at run time.
//!
//! # Layout
//! - [`settings`]: configuration (embedded commented defaults, optional file, environment).
//! - [`batch`]: group work of concurrent callers (group commit and batched reads).
//! - [`telemetry`]: structured logs and OpenTelemetry traces.
//! - [`metrics`]: Prometheus metrics.

pub mod batch;
pub mod metrics;
pub mod settings;
pub mod telemetry;

pub use settings::Settings;
