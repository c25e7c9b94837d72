//! Configuration through the `config` crate: the commented defaults in `defaults.toml` are
//! compiled in, then an optional file named by `OCTOHOOKS_CONFIG_FILE`, then `OCTOHOOKS_*`
//! environment variables. Values are checked right after loading, so a bad one stops start-up
//! with a message naming it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use config::{Config, Environment, File, FileFormat};
use octohooks_domain::destination::DestinationPolicy;
use octohooks_domain::portal::PortalSigner;
use octohooks_domain::retry::RetrySchedule;
use octohooks_domain::sealing::Sealer;
use serde::Deserialize;
use std::sync::Arc;

mod values;

use values::{invalid, parse_addr, parse_duration, parse_period, portal_key, public_url};

const DEFAULTS: &str = include_str!("defaults.toml");

/// A configuration value was refused.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The sources could not be read or a value had the wrong type.
    #[error("configuration: {0}")]
    Load(#[from] config::ConfigError),
    /// A value was readable but invalid.
    #[error("configuration: {key} (OCTOHOOKS_{upper}) {message}", upper = key.to_uppercase())]
    Invalid {
        /// The key at fault.
        key: &'static str,
        /// Why.
        message: String,
    },
}

#[derive(Deserialize)]
struct RawSettings {
    database_url: String,
    amqp_url: String,
    listen_addr: String,
    dispatcher_listen_addr: String,
    metrics_listen_addr: String,
    admin_token: String,
    retry_schedule: String,
    allow_private_destinations: bool,
    allowed_destination_cidrs: String,
    proxy_url: String,
    extra_ca_file: String,
    delivery_timeout: String,
    queue_name: String,
    queue_delivery_limit: u32,
    db_pool_size: usize,
    statement_timeout: String,
    dispatcher_concurrency: u16,
    endpoint_max_in_flight: u32,
    express_lane: bool,
    task_batch_size: u32,
    dispatcher_worker_threads: usize,
    log_format: String,
    otlp_endpoint: String,
    endpoint_disable_after: String,
    retention: String,
    payload_retention: String,
    secret_encryption_key: String,
    secret_decryption_keys: String,
    allow_plaintext_secrets: bool,
    rate_limit_per_second: u32,
    rate_limit_burst: u32,
    public_url: String,
    portal_signing_key: String,
    portal_frame_ancestors: String,
}

/// Validated settings of both services. `Debug` hides the connection strings and the token.
#[derive(Clone)]
pub struct Settings {
    /// Postgres connection string.
    pub database_url: String,
    /// RabbitMQ connection string.
    pub amqp_url: String,
    /// API listen address.
    pub listen_addr: SocketAddr,
    /// Dispatcher health listen address.
    pub dispatcher_listen_addr: SocketAddr,
    /// The API's metrics listen address, apart from the public one.
    pub metrics_listen_addr: SocketAddr,
    /// Admin bearer token; `None` disables the admin routes.
    pub admin_token: Option<String>,
    /// Delays between attempts.
    pub retry_schedule: RetrySchedule,
    /// Which destinations deliveries may reach.
    pub destination_policy: DestinationPolicy,
    /// The HTTP proxy every delivery goes through, if any.
    pub proxy: Option<crate::outbound::OutboundProxy>,
    /// A PEM file of certificate authorities trusted beside the public ones, for receivers
    /// with private certificates.
    pub extra_ca_file: Option<std::path::PathBuf>,
    /// Time limit of one attempt.
    pub delivery_timeout: Duration,
    /// The delivery queue.
    pub queue_name: String,
    /// Deliveries of one broker message before it moves to the other delivery queue; half
    /// of it before a dispatcher parks the job in the outbox.
    pub queue_delivery_limit: u32,
    /// Postgres pool size per process.
    pub db_pool_size: usize,
    /// Per-statement time limit.
    pub statement_timeout: Duration,
    /// Concurrent deliveries per dispatcher.
    pub dispatcher_concurrency: u16,
    /// Attempts one endpoint may have running at once, across all dispatchers; 0: no cap.
    pub endpoint_max_in_flight: u32,
    /// First attempts go by the in-memory express queue while a dispatcher reads it, their
    /// outbox rows kept until done (see `octohooks_broker::express`); false: always durably.
    pub express_lane: bool,
    /// Messages a background task (recover, replay) examines per transaction.
    pub task_batch_size: u32,
    /// Threads of the dispatcher's runtime: 1 runs it on one thread, 0 one per core.
    pub dispatcher_worker_threads: usize,
    /// `auto`, `json` or `text`.
    pub log_format: String,
    /// OTLP/HTTP collector base URL; `None` keeps traces in-process.
    pub otlp_endpoint: Option<String>,
    /// An endpoint whose deliveries all failed for this long is disabled.
    pub endpoint_disable_after: Duration,
    /// Messages, their attempts and statistics older than this are removed; `None`: kept.
    pub retention: Option<Duration>,
    /// Payloads older than this are expunged sooner than their message; `None`: they go with it.
    pub payload_retention: Option<Duration>,
    /// Encrypts endpoint secrets at rest (or passes them through when no key is set).
    pub sealer: Arc<Sealer>,
    /// The operator chose to run the API without an encryption key.
    pub allow_plaintext_secrets: bool,
    /// Requests per second per environment and API process; 0 turns the limit off.
    pub rate_limit_per_second: u32,
    /// Requests an environment may send at once before the rate applies.
    pub rate_limit_burst: u32,
    /// Base URL that users reach the API and the console at (no trailing slash); `None`: the
    /// address the API listens at.
    pub public_url: Option<String>,
    /// Signs and checks consumer portal tokens.
    pub portal_signer: Arc<PortalSigner>,
    /// True when the portal key was made up by this process (links die with it).
    pub portal_key_is_ephemeral: bool,
    /// CSP `frame-ancestors` of the portal pages.
    pub portal_frame_ancestors: String,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("database_url", &"<redacted>")
            .field("amqp_url", &"<redacted>")
            .field("listen_addr", &self.listen_addr)
            .field("dispatcher_listen_addr", &self.dispatcher_listen_addr)
            .field(
                "admin_token",
                &self.admin_token.as_ref().map(|_| "<redacted>"),
            )
            .field("retry_schedule", &self.retry_schedule)
            .field("delivery_timeout", &self.delivery_timeout)
            .field("queue_name", &self.queue_name)
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// Loads from the process environment.
    pub fn load() -> Result<Self, SettingsError> {
        Self::load_from(std::env::vars().collect())
    }

    /// Loads from the given variables instead of the process environment (used by tests).
    pub fn load_from(vars: HashMap<String, String>) -> Result<Self, SettingsError> {
        let mut builder = Config::builder().add_source(File::from_str(DEFAULTS, FileFormat::Toml));
        if let Some(path) = vars.get("OCTOHOOKS_CONFIG_FILE") {
            builder = builder.add_source(File::with_name(path).required(true));
        }
        let env_vars: HashMap<String, String> = vars
            .into_iter()
            .filter(|(key, _)| key != "OCTOHOOKS_CONFIG_FILE")
            .collect();
        let raw: RawSettings = builder
            .add_source(
                Environment::with_prefix("OCTOHOOKS")
                    .prefix_separator("_")
                    .source(Some(env_vars)),
            )
            .build()?
            .try_deserialize()?;
        Self::validate(raw)
    }

    fn validate(raw: RawSettings) -> Result<Self, SettingsError> {
        let invalid = |key: &'static str, message: String| SettingsError::Invalid { key, message };
        let retry_schedule = RetrySchedule::parse(&raw.retry_schedule)
            .map_err(|err| invalid("retry_schedule", err.message))?;
        let allow_list = raw
            .allowed_destination_cidrs
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(|part| part.parse())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| {
                invalid(
                    "allowed_destination_cidrs",
                    "must be comma-separated CIDRs such as 10.0.0.0/8".into(),
                )
            })?;
        if !matches!(raw.log_format.as_str(), "auto" | "json" | "text") {
            return Err(invalid("log_format", "must be auto, json or text".into()));
        }
        if raw.queue_name.trim().is_empty() {
            return Err(invalid("queue_name", "must not be empty".into()));
        }
        if !(2..=1000).contains(&raw.queue_delivery_limit) {
            return Err(invalid(
                "queue_delivery_limit",
                "must be between 2 and 1000".into(),
            ));
        }
        if !(1..=10_000).contains(&raw.task_batch_size) {
            return Err(invalid(
                "task_batch_size",
                "must be between 1 and 10000".into(),
            ));
        }
        if raw.dispatcher_concurrency == 0 {
            return Err(invalid(
                "dispatcher_concurrency",
                "must be at least 1".into(),
            ));
        }
        if !raw.admin_token.is_empty() && raw.admin_token.chars().count() < MIN_ADMIN_TOKEN_CHARS {
            return Err(invalid(
                "admin_token",
                format!(
                    "must be at least {MIN_ADMIN_TOKEN_CHARS} characters (e.g. `openssl rand -hex 32`)"
                ),
            ));
        }
        let listen_addr = parse_addr(&raw.listen_addr)
            .ok_or_else(|| invalid("listen_addr", "must be host:port, e.g. 0.0.0.0:8080".into()))?;
        let (portal_key, portal_key_is_ephemeral) =
            portal_key(&raw.portal_signing_key, &raw.secret_encryption_key)?;
        if raw.portal_frame_ancestors.contains([';', ',', '\n', '\r']) {
            return Err(invalid(
                "portal_frame_ancestors",
                "must be CSP sources separated by spaces".into(),
            ));
        }
        Ok(Self {
            public_url: public_url(&raw.public_url)?,
            portal_signer: Arc::new(PortalSigner::new(&portal_key)),
            portal_key_is_ephemeral,
            portal_frame_ancestors: raw.portal_frame_ancestors.trim().to_owned(),
            listen_addr,
            dispatcher_listen_addr: parse_addr(&raw.dispatcher_listen_addr).ok_or_else(|| {
                invalid(
                    "dispatcher_listen_addr",
                    "must be host:port, e.g. 0.0.0.0:8081".into(),
                )
            })?,
            metrics_listen_addr: parse_addr(&raw.metrics_listen_addr).ok_or_else(|| {
                invalid(
                    "metrics_listen_addr",
                    "must be host:port, e.g. 0.0.0.0:8082".into(),
                )
            })?,
            delivery_timeout: parse_duration(&raw.delivery_timeout).ok_or_else(|| {
                invalid("delivery_timeout", "must be a duration such as 15s".into())
            })?,
            statement_timeout: parse_duration(&raw.statement_timeout).ok_or_else(|| {
                invalid("statement_timeout", "must be a duration such as 30s".into())
            })?,
            database_url: raw.database_url,
            amqp_url: raw.amqp_url,
            admin_token: Some(raw.admin_token).filter(|token| !token.is_empty()),
            retry_schedule,
            destination_policy: DestinationPolicy {
                allow_private: raw.allow_private_destinations,
                allow_list,
            },
            proxy: crate::outbound::OutboundProxy::parse(&raw.proxy_url)
                .map_err(|message| invalid("proxy_url", message))?,
            extra_ca_file: Some(raw.extra_ca_file.trim())
                .filter(|path| !path.is_empty())
                .map(std::path::PathBuf::from),
            queue_name: raw.queue_name,
            queue_delivery_limit: raw.queue_delivery_limit,
            db_pool_size: raw.db_pool_size.max(2),
            dispatcher_concurrency: raw.dispatcher_concurrency,
            endpoint_max_in_flight: raw.endpoint_max_in_flight,
            express_lane: raw.express_lane,
            task_batch_size: raw.task_batch_size,
            dispatcher_worker_threads: raw.dispatcher_worker_threads,
            log_format: raw.log_format,
            otlp_endpoint: Some(raw.otlp_endpoint).filter(|url| !url.trim().is_empty()),
            sealer: Arc::new(
                Sealer::new(&raw.secret_encryption_key, &raw.secret_decryption_keys)
                    .map_err(|err| invalid("secret_encryption_key", err.to_string()))?,
            ),
            allow_plaintext_secrets: raw.allow_plaintext_secrets,
            rate_limit_per_second: raw.rate_limit_per_second,
            rate_limit_burst: raw.rate_limit_burst,
            endpoint_disable_after: parse_duration(&raw.endpoint_disable_after).ok_or_else(
                || {
                    invalid(
                        "endpoint_disable_after",
                        "must be a duration such as 5d".into(),
                    )
                },
            )?,
            retention: parse_period("retention", &raw.retention)?,
            payload_retention: parse_period("payload_retention", &raw.payload_retention)?,
        })
    }
}

/// Shorter admin tokens are refused: the token opens every environment.
pub const MIN_ADMIN_TOKEN_CHARS: usize = 32;

impl Settings {
    /// Refuses to serve the API with endpoint secrets stored in plaintext, unless the operator
    /// chose that with `allow_plaintext_secrets`: the one secret that forges every webhook of a
    /// customer must not sit readable in the database and its backups by default.
    pub fn require_secret_encryption(&self) -> Result<(), SettingsError> {
        if self.sealer.is_sealing() || self.allow_plaintext_secrets {
            return Ok(());
        }
        Err(invalid(
            "secret_encryption_key",
            "must be set (base64 of 32 random bytes, e.g. `head -c 32 /dev/urandom | base64`), \
             or set OCTOHOOKS_ALLOW_PLAINTEXT_SECRETS=true to store endpoint secrets in plaintext"
                .into(),
        ))
    }

    /// The Postgres pool both services use, sized and bounded by these settings.
    pub fn database_pool(&self) -> octohooks_db::DbResult<octohooks_db::DbPool> {
        octohooks_db::pool::build_pool(
            &self.database_url,
            &octohooks_db::pool::PoolOptions {
                max_size: self.db_pool_size,
                statement_timeout: self.statement_timeout,
                ..octohooks_db::pool::PoolOptions::default()
            },
        )
    }

    /// A pool of at most `max_size` connections for the batched statements of the delivery
    /// path alone, each planned once per connection
    /// ([`octohooks_db::pool::PoolOptions::generic_plans`]).
    pub fn batch_pool(&self, max_size: usize) -> octohooks_db::DbResult<octohooks_db::DbPool> {
        octohooks_db::pool::build_pool(
            &self.database_url,
            &octohooks_db::pool::PoolOptions {
                max_size,
                statement_timeout: self.statement_timeout,
                generic_plans: true,
                ..octohooks_db::pool::PoolOptions::default()
            },
        )
    }
}

#[cfg(test)]
mod tests;
