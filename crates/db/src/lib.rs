//! Octohooks storage: the diesel schema, the queries both services run, the connection pool
//! and the embedded migrations. Every query that reads tenant data takes the environment id,
//! so isolation between environments is enforced here once rather than in every handler.
//!
//! # Layout
//! - [`pool`]: the bounded diesel-async pool with timeouts and `statement_timeout`.
//! - [`prepared`]: keeps the plans of fixed hand-written SQL.
//! - [`invalidation`]: `LISTEN` for changes to what API processes cache.
//! - [`migrate`]: embedded migrations applied under a Postgres advisory lock.
//! - [`schema`], [`models`]: tables and row types.
//! - one module per resource: [`environments`], [`applications`], [`endpoints`],
//!   [`event_types`], [`messages`], [`deliveries`], [`outbox`], [`idempotency`].

pub mod applications;
pub mod deliveries;
pub mod endpoints;
pub mod environments;
pub mod event_types;
pub mod idempotency;
pub mod invalidation;
pub mod messages;
pub mod migrate;
pub mod models;
pub mod outbox;
pub mod pool;
pub mod prepared;
pub mod schema;

pub use pool::{Conn, DbPool};

/// Now, to the microsecond, as Postgres stores a `timestamptz`: a time written and later
/// compared (an outbox claim) must read back equal.
pub fn stored_now() -> chrono::DateTime<chrono::Utc> {
    use chrono::SubsecRound;
    chrono::Utc::now().trunc_subsecs(6)
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
}
