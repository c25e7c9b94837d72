//! Opening connections to Postgres, in one place for the pool, the change listener and the
//! migrations: it reads the URL's TLS settings (`sslmode`, `sslrootcert`, with libpq's
//! meaning) and, for pooled connections, puts a client-side deadline on every call. A database
//! behind a path that silently stops forwarding never answers and never closes the socket;
//! without a deadline a request would wait for it as long as the kernel keeps the flow.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::connection::{Instrumentation, InstrumentationEvent};
use diesel::ConnectionError;
use diesel_async::{AsyncConnection as _, AsyncPgConnection};
use futures::stream::{BoxStream, StreamExt as _};
use tokio_postgres::config::SslMode;
use tokio_postgres::{AsyncMessage, Client};

use crate::tls::{self, Verification};
use crate::{DbError, DbResult};

/// Longest a connection attempt (TCP, TLS, authentication) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where and how to connect: the URL parsed once, its TLS settings turned into a rustls
/// configuration.
#[derive(Clone)]
pub struct Target {
    config: tokio_postgres::Config,
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("hosts", &self.config.get_hosts())
            .field("dbname", &self.config.get_dbname())
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

/// What the server sends outside of answers (notices, notifications), until the connection
/// ends.
pub type Messages = BoxStream<'static, Result<AsyncMessage, tokio_postgres::Error>>;

impl Target {
    /// Parses a `postgres://` URL. `sslmode` takes libpq's values (`disable`, `allow`,
    /// `prefer`, `require`, `verify-ca`, `verify-full`); `sslrootcert` names a PEM file of
    /// trusted roots or `system`.
    pub fn parse(database_url: &str) -> DbResult<Self> {
        let invalid = |why: String| DbError::Unavailable(format!("invalid database URL: {why}"));
        let mut url = url::Url::parse(database_url).map_err(|err| invalid(err.to_string()))?;
        let mut mode = None;
        let mut root_cert = None;
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter_map(|(key, value)| match key.as_ref() {
                "sslmode" => {
                    mode = Some(value.into_owned());
                    None
                }
                "sslrootcert" => {
                    root_cert = Some(value.into_owned());
                    None
                }
                _ => Some((key.into_owned(), value.into_owned())),
            })
            .collect();
        url.set_query(None);
        if !kept.is_empty() {
            url.query_pairs_mut().extend_pairs(kept);
        }
        let mut config: tokio_postgres::Config = url
            .as_str()
            .parse()
            .map_err(|err: tokio_postgres::Error| invalid(err.to_string()))?;
        config.connect_timeout(CONNECT_TIMEOUT);
        let mode = match mode.as_deref().unwrap_or("prefer") {
            // Traffic that never leaves the machine has no one to hide from, and TLS costs
            // every call (about a millisecond per delivery at load, BENCHMARKS.md): the modes
            // that only encrypt what they can do without, on loopback, do not.
            "allow" | "prefer" if loopback_only(&config) => "disable",
            other => other,
        };
        let verification = match (mode, &root_cert) {
            ("disable", _) => None,
            ("allow" | "prefer", _) | ("require", None) => Some(Verification::None),
            // As in libpq: `require` with a root certificate checks the chain.
            ("require" | "verify-ca", _) => Some(Verification::Chain),
            ("verify-full", _) => Some(Verification::Full),
            (other, _) => {
                return Err(invalid(format!(
                    "sslmode {other:?} is not one of disable, allow, prefer, require, verify-ca, verify-full"
                )))
            }
        };
        config.ssl_mode(match mode {
            "disable" => SslMode::Disable,
            "allow" | "prefer" => SslMode::Prefer,
            _ => SslMode::Require,
        });
        let tls = verification
            .map(|verification| tls::client_config(verification, root_cert.as_deref()))
            .transpose()?
            .map(tokio_postgres_rustls::MakeRustlsConnect::new);
        Ok(Self { config, tls })
    }

    /// Names the connections in `pg_stat_activity`.
    pub fn application_name(mut self, name: &str) -> Self {
        self.config.application_name(name);
        self
    }

    /// Opens a connection within [`CONNECT_TIMEOUT`]. The caller drives `Messages` (in a task
    /// of its own) for as long as it uses the client; dropping it closes the connection.
    pub async fn open(&self) -> Result<(Client, Messages), ConnectionError> {
        let opening = async {
            match &self.tls {
                None => self
                    .config
                    .connect(tokio_postgres::NoTls)
                    .await
                    .map(|(client, connection)| (client, messages(connection))),
                Some(tls) => self
                    .config
                    .connect(tls.clone())
                    .await
                    .map(|(client, connection)| (client, messages(connection))),
            }
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, opening).await {
            Ok(Ok(opened)) => Ok(opened),
            Ok(Err(err)) => Err(ConnectionError::BadConnection(describe(&err))),
            Err(_) => Err(ConnectionError::BadConnection(format!(
                "no connection to Postgres within {CONNECT_TIMEOUT:?}"
            ))),
        }
    }

    /// A diesel connection without a deadline, for work that may rightly wait long
    /// (migrations under their lock, creating the database).
    pub async fn open_diesel(&self) -> Result<AsyncPgConnection, ConnectionError> {
        let (client, messages) = self.open().await?;
        tokio::spawn(drain(messages, None));
        AsyncPgConnection::try_from(client).await
    }

    /// A diesel connection on which a call that gets no answer within `deadline` closes the
    /// connection: the call fails at once as a lost connection (a transient error, so a 503
    /// or a requeue), and the pool discards the connection instead of handing it out again.
    pub async fn open_with_deadline(
        &self,
        deadline: Duration,
    ) -> Result<AsyncPgConnection, ConnectionError> {
        let (client, messages) = self.open().await?;
        let watch = CallWatch::default();
        tokio::spawn(drain(messages, Some((watch.clone(), deadline))));
        let mut conn = AsyncPgConnection::try_from(client).await?;
        conn.set_instrumentation(watch);
        Ok(conn)
    }
}

/// True when every host of the URL is this machine: a loopback address, `localhost`, or a Unix
/// socket directory.
fn loopback_only(config: &tokio_postgres::Config) -> bool {
    use tokio_postgres::config::Host;
    config.get_hosts().iter().all(|host| match host {
        Host::Tcp(name) => {
            let name = name.trim_start_matches('[').trim_end_matches(']');
            name.eq_ignore_ascii_case("localhost")
                || name
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        #[cfg(unix)]
        Host::Unix(_) => true,
    })
}

/// The error with its causes: tokio-postgres shows only its kind ("db error") and keeps the
/// server's message (such as "database … does not exist") as the source.
fn describe(err: &tokio_postgres::Error) -> String {
    let mut text = err.to_string();
    let mut cause = std::error::Error::source(err);
    while let Some(inner) = cause {
        text = format!("{text}: {inner}");
        cause = inner.source();
    }
    text
}

fn messages<S, T>(connection: tokio_postgres::Connection<S, T>) -> Messages
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut connection = connection;
    futures::stream::poll_fn(move |cx| connection.poll_message(cx)).boxed()
}

/// Keeps a connection going until the client is dropped, the server ends it, or (with a
/// deadline) a call waits longer than the deadline for its answer.
async fn drain(mut messages: Messages, deadline: Option<(CallWatch, Duration)>) {
    let check_every = deadline
        .as_ref()
        .map_or(Duration::from_secs(3600), |(_, d)| {
            (*d / 4).max(Duration::from_millis(100))
        });
    let mut check = tokio::time::interval(check_every);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            message = messages.next() => match message {
                None => return,
                Some(Ok(AsyncMessage::Notice(notice))) => {
                    tracing::debug!(notice = %notice.message(), "notice from Postgres");
                }
                Some(Ok(_)) => {}
                Some(Err(err)) => {
                    tracing::debug!(error = %err, "Postgres connection ended");
                    return;
                }
            },
            _ = check.tick() => {
                if let Some((watch, deadline)) = &deadline {
                    if let Some(waited) = watch.overdue(*deadline) {
                        tracing::warn!(waited_ms = waited.as_millis() as u64,
                            "no answer from Postgres in time; closing the connection");
                        return;
                    }
                }
            }
        }
    }
}

/// Since when the connection's current call has waited, told by diesel's instrumentation.
/// One call at a time is tracked, as diesel issues them on a pooled connection; a call whose
/// future was dropped leaves its start behind, so an idle connection may be closed for it,
/// which costs only a reconnect.
#[derive(Clone, Default)]
struct CallWatch(Arc<Mutex<Option<Instant>>>);

impl CallWatch {
    fn overdue(&self, deadline: Duration) -> Option<Duration> {
        let started = *self.0.lock().unwrap_or_else(|poison| poison.into_inner());
        started
            .map(|at| at.elapsed())
            .filter(|waited| *waited >= deadline)
    }
}

impl Instrumentation for CallWatch {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        let mut started = self.0.lock().unwrap_or_else(|poison| poison.into_inner());
        match event {
            InstrumentationEvent::StartQuery { .. } => *started = Some(Instant::now()),
            InstrumentationEvent::FinishQuery { .. } => *started = None,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmodes_follow_libpq() {
        for (url, tls, mode) in [
            ("postgres://u@h/d", true, SslMode::Prefer),
            ("postgres://u@h/d?sslmode=disable", false, SslMode::Disable),
            // Loopback: prefer and allow do not encrypt; the stricter modes do.
            ("postgres://u@127.0.0.1/d", false, SslMode::Disable),
            (
                "postgres://u@localhost:5433/d?sslmode=prefer",
                false,
                SslMode::Disable,
            ),
            (
                "postgres://u@[::1]/d?sslmode=allow",
                false,
                SslMode::Disable,
            ),
            (
                "postgres://u@127.0.0.1/d?sslmode=require",
                true,
                SslMode::Require,
            ),
            (
                "postgres://u@127.0.0.2,db.internal/d",
                true,
                SslMode::Prefer,
            ),
            ("postgres://u@h/d?sslmode=require", true, SslMode::Require),
            (
                "postgres://u@h/d?sslmode=verify-full",
                true,
                SslMode::Require,
            ),
            (
                "postgres://u@h/d?sslmode=verify-ca&sslrootcert=system",
                true,
                SslMode::Require,
            ),
        ] {
            let target = Target::parse(url).unwrap();
            assert_eq!(target.tls.is_some(), tls, "{url}");
            assert_eq!(target.config.get_ssl_mode(), mode, "{url}");
        }
        let err = Target::parse("postgres://u@h/d?sslmode=always").unwrap_err();
        assert!(err.to_string().contains("sslmode"), "{err}");
        let err = Target::parse("postgres://u@h/d?sslmode=verify-full&sslrootcert=/nope.pem")
            .unwrap_err();
        assert!(err.to_string().contains("/nope.pem"), "{err}");
    }

    #[test]
    fn other_parameters_are_kept() {
        let target =
            Target::parse("postgres://u@h:6543/d?sslmode=disable&application_name=x").unwrap();
        assert_eq!(target.config.get_application_name(), Some("x"));
        assert_eq!(target.config.get_ports(), [6543]);
        assert_eq!(target.config.get_connect_timeout(), Some(&CONNECT_TIMEOUT));
    }

    #[test]
    fn a_call_is_overdue_only_while_it_waits() {
        let mut watch = CallWatch::default();
        assert_eq!(watch.overdue(Duration::ZERO), None);
        let query = diesel::sql_query("SELECT 1");
        let shown = diesel::debug_query::<diesel::pg::Pg, _>(&query);
        watch.on_connection_event(InstrumentationEvent::start_query(&shown));
        assert!(watch.overdue(Duration::ZERO).is_some());
        assert_eq!(watch.overdue(Duration::from_secs(60)), None);
        watch.on_connection_event(InstrumentationEvent::finish_query(&shown, None));
        assert_eq!(watch.overdue(Duration::ZERO), None);
    }
}
