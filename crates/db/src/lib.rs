//! Octohooks storage: the diesel schema, the queries both services run, the connection pool
//! and the embedded migrations. Every query that reads tenant data takes the environment id,
//! or a [`scope::AppScope`] that only a lookup by environment makes, so isolation between
//! environments is enforced here once rather than in every handler.
//!
//! # Layout
//! - [`pool`]: the bounded diesel-async pool with timeouts and `statement_timeout`.
//! - [`prepared`]: keeps the plans of fixed hand-written SQL.
//! - [`invalidation`]: `LISTEN` for changes to what API processes cache.
//! - [`migrate`]: embedded migrations applied under a Postgres advisory lock.
//! - [`schema`], [`models`]: tables and row types.
//! - one module per resource: [`environments`], [`applications`], [`endpoints`],
//!   [`event_types`], [`messages`], [`deliveries`], [`outbox`], [`idempotency`].
//! - [`fairness`]: limits per endpoint that all dispatchers share.
//! - [`client_identities`]: endpoints' client certificates (mutual TLS).
//! - [`stats`]: figures per endpoint from counters, flat as history grows.
//! - [`tasks`]: recover and replay, run in bounded batches by any dispatcher.
//! - [`operational`]: the environment's operational endpoints and the endpoint events.
//! - [`retention`]: history and payloads removed after their time, in small batches.
//! - [`scope`]: the application scope that endpoint, message and attempt queries require.

/// The active signing secrets of the endpoint `$endpoint` (an SQL expression), current first:
/// the one definition of which secrets sign, shared by every statement that reads them for an
/// attempt.
macro_rules! active_secrets {
    ($endpoint:literal) => {
        concat!(
            "ARRAY(SELECT s.secret FROM endpoint_secrets s WHERE s.endpoint_id = ",
            $endpoint,
            " AND (s.expires IS NULL OR s.expires > now()) \
             ORDER BY s.expires IS NOT NULL, s.created DESC)"
        )
    };
}

pub mod applications;
pub mod attempts;
pub mod client_identities;
pub mod connect;
pub mod deliveries;
pub mod endpoints;
pub mod environments;
pub mod event_types;
pub mod fairness;
pub mod idempotency;
pub mod invalidation;
pub mod messages;
pub mod migrate;
pub mod models;
pub mod operational;
pub mod outbox;
pub mod pool;
pub mod prepared;
pub mod retention;
pub mod schema;
pub mod scope;
pub mod stats;
pub mod tasks;
mod tls;

pub use pool::{Conn, DbPool};

/// Now, to the microsecond, as Postgres stores a `timestamptz`: a time written and later
/// compared (an outbox claim) must read back equal.
pub fn stored_now() -> chrono::DateTime<chrono::Utc> {
    use chrono::SubsecRound;
    chrono::Utc::now().trunc_subsecs(6)
}

/// `Ok(None)` for a row that is not there, as diesel's `optional()` does for its own errors:
/// the one place that tells "absent" from a failure for callers of this crate.
pub trait Found<T> {
    /// `NotFound` becomes `Ok(None)`; every other error stays.
    fn found(self) -> DbResult<Option<T>>;
}

impl<T> Found<T> for DbResult<T> {
    fn found(self) -> DbResult<Option<T>> {
        match self {
            Ok(row) => Ok(Some(row)),
            Err(DbError::Query(diesel::result::Error::NotFound)) => Ok(None),
            Err(err) => Err(err),
        }
    }
}

/// What can go wrong in the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No connection could be had in time: the caller should answer 503 and retry later.
    #[error("no database connection available: {0}")]
    Unavailable(String),
    /// A query failed; `NotFound` and unique violations are told apart by the API.
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
    /// Migrations could not be applied.
    #[error("migrations failed: {0}")]
    Migration(String),
}

impl DbError {
    /// True when the same call may well succeed if made again a little later: no connection,
    /// a lost or closed one, a timeout, a deadlock or serialization failure, a read-only or
    /// shutting-down server, a full disk. The one place that decides it: the API answers 503
    /// for these (and 500 for the rest), the ingest does not split a batch over them, and the
    /// dispatcher requeues a job over them instead of dropping it.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unavailable(_) => true,
            Self::Migration(_) => false,
            Self::Query(err) => query_error_is_transient(err),
        }
    }

    /// True when a row refers to one that is gone (an endpoint inserted for an application
    /// deleted meanwhile).
    pub fn is_foreign_key_violation(&self) -> bool {
        matches!(
            self,
            Self::Query(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::ForeignKeyViolation,
                _
            ))
        )
    }

    /// True when the failure is a unique-constraint violation (a uid or key clash).
    pub fn is_unique_violation(&self) -> bool {
        matches!(
            self,
            Self::Query(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _
            ))
        )
    }
}

/// Server messages of the transient classes that diesel-async reports without their SQLSTATE
/// (it keeps the code of a few classes only): deadlock 40P01, query cancelled 57014 (statement
/// timeout), admin shutdown 57P01, crash shutdown 57P02, cannot connect now 57P03, disk full
/// 53100 and out of memory 53200, the client's own view of a lost connection, and the refusals
/// of a new connection that pass by themselves (a full server, 53300; nothing listening yet).
/// Postgres writes them in English unless `lc_messages` is changed, which the services never do.
const TRANSIENT_MESSAGES: &[&str] = &[
    "deadlock detected",
    "canceling statement due to",
    "terminating connection",
    "the database system is",
    "could not extend file",
    "no space left on device",
    "out of memory",
    "connection closed",
    "connection reset",
    "broken pipe",
    "timed out",
    "too many",
    "remaining connection slots",
    "connection refused",
];

/// Whether a server or connection message names a transient failure (see
/// [`TRANSIENT_MESSAGES`]): the one place that reads messages, for the errors that carry no
/// SQLSTATE, query errors and connection refusals alike.
pub(crate) fn message_is_transient(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    TRANSIENT_MESSAGES
        .iter()
        .any(|transient| message.contains(transient))
}

fn query_error_is_transient(err: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind as Kind, Error};
    match err {
        Error::DatabaseError(kind, info) => match kind {
            Kind::SerializationFailure
            | Kind::ReadOnlyTransaction
            | Kind::ClosedConnection
            | Kind::UnableToSendCommand => true,
            Kind::UniqueViolation
            | Kind::ForeignKeyViolation
            | Kind::NotNullViolation
            | Kind::CheckViolation => false,
            _ => message_is_transient(info.message()),
        },
        Error::BrokenTransactionManager => true,
        _ => false,
    }
}

/// Result of a storage call.
pub type DbResult<T> = Result<T, DbError>;

/// A page of rows plus whether more rows follow it.
#[derive(Debug)]
pub struct Page<T> {
    /// At most `limit` rows.
    pub items: Vec<T>,
    /// True when at least one more row exists after the last one.
    pub has_more: bool,
}

impl<T> Page<T> {
    /// Builds a page from `limit + 1` fetched rows.
    pub fn from_overfetch(mut items: Vec<T>, limit: i64) -> Self {
        let limit = usize::try_from(limit).unwrap_or(0);
        let has_more = items.len() > limit;
        items.truncate(limit);
        Self { items, has_more }
    }
}

/// Either a UUID id or a user uid, as taken by every `{app}`, `{endpoint}` or `{message}` path
/// segment. A uid may itself look like a UUID (the seed quickstart uses one), so a segment that
/// parses as a UUID matches the entity with that id first and the one with that uid otherwise:
/// an id wins over a uid.
#[derive(Debug, Clone)]
pub enum IdOrUid {
    /// A UUID: the entity's id, or else a uid spelled like one.
    Id {
        /// The parsed id.
        id: uuid::Uuid,
        /// The segment as given, for the uid comparison.
        text: String,
    },
    /// Anything else: the entity's uid.
    Uid(String),
}

impl IdOrUid {
    /// Interprets a path segment.
    pub fn parse(segment: &str) -> Self {
        match uuid::Uuid::try_parse(segment) {
            Ok(id) => Self::Id {
                id,
                text: segment.to_owned(),
            },
            Err(_) => Self::Uid(segment.to_owned()),
        }
    }

    /// The entity with this id alone (no uid is empty, so none matches the empty text).
    pub fn id(id: uuid::Uuid) -> Self {
        Self::Id {
            id,
            text: String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::DbError;
    use diesel::result::{DatabaseErrorKind as Kind, Error};

    fn database(kind: Kind, message: &str) -> DbError {
        DbError::Query(Error::DatabaseError(kind, Box::new(message.to_owned())))
    }

    #[test]
    fn each_transient_class_is_transient() {
        for (kind, message) in [
            (Kind::SerializationFailure, "could not serialize access"),
            (
                Kind::ReadOnlyTransaction,
                "cannot execute INSERT in a read-only transaction",
            ),
            (
                Kind::ClosedConnection,
                "server closed the connection unexpectedly",
            ),
            (Kind::UnableToSendCommand, "could not send"),
            (Kind::Unknown, "deadlock detected"),
            (
                Kind::Unknown,
                "canceling statement due to statement timeout",
            ),
            (
                Kind::Unknown,
                "terminating connection due to administrator command",
            ),
            (Kind::Unknown, "the database system is shutting down"),
            (Kind::Unknown, "the database system is starting up"),
            (
                Kind::Unknown,
                "could not extend file \"base/1/2\": No space left on device",
            ),
            (Kind::Unknown, "out of memory"),
            (Kind::Unknown, "connection closed"),
        ] {
            assert!(database(kind, message).is_transient(), "{kind:?} {message}");
        }
        assert!(DbError::Unavailable("pool timed out".into()).is_transient());
        assert!(DbError::Query(Error::BrokenTransactionManager).is_transient());
    }

    #[test]
    fn refusals_that_would_fail_again_are_not() {
        for (kind, message) in [
            (
                Kind::UniqueViolation,
                "duplicate key value violates unique constraint",
            ),
            (Kind::ForeignKeyViolation, "violates foreign key constraint"),
            (Kind::NotNullViolation, "null value in column"),
            (Kind::CheckViolation, "violates check constraint"),
            (
                Kind::Unknown,
                "invalid byte sequence for encoding \"UTF8\": 0x00",
            ),
            (Kind::Unknown, "syntax error at or near"),
        ] {
            assert!(
                !database(kind, message).is_transient(),
                "{kind:?} {message}"
            );
        }
        assert!(!DbError::Query(Error::NotFound).is_transient());
        assert!(!DbError::Migration("bad".into()).is_transient());
    }
}
