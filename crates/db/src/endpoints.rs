//! Endpoints, always reached through their application (their signing secrets: `secrets`).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use scoped_futures::ScopedFutureExt;
use uuid::Uuid;

mod removal;
mod secrets;

pub use secrets::*;

use crate::models::{Endpoint, EndpointSecretRow};
use crate::operational;
use crate::schema::{endpoint_secrets, endpoints};
use crate::scope::{AppScope, Scoped};
use crate::{Conn, DbError, DbResult, IdOrUid};
use octohooks_domain::operational::OperationalEventType;

/// Finds an endpoint of the application by id or uid; `NotFound` otherwise.
pub async fn find(
    conn: &mut Conn,
    app: AppScope,
    endpoint: &IdOrUid,
) -> DbResult<Scoped<Endpoint>> {
    let query = endpoints::table
        .filter(endpoints::application_id.eq(app.id()))
        .select(Endpoint::as_select())
        .into_boxed();
    let query = match endpoint {
        IdOrUid::Id { id, text } => query
            .filter(endpoints::id.eq(*id).or(endpoints::uid.eq(text)))
            .order(endpoints::id.eq(*id).desc()),
        IdOrUid::Uid(uid) => query.filter(endpoints::uid.eq(uid)),
    };
    Ok(Scoped::new(query.first(conn).await?))
}

/// Endpoints of the application, oldest first, after the cursor.
pub async fn list(
    conn: &mut Conn,
    app: AppScope,
    after: Option<Uuid>,
    limit: i64,
) -> DbResult<Vec<Endpoint>> {
    let mut query = endpoints::table
        .filter(endpoints::application_id.eq(app.id()))
        .order(endpoints::id.asc())
        .select(Endpoint::as_select())
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(endpoints::id.gt(after));
    }
    Ok(query.limit(limit + 1).load(conn).await?)
}

/// Stores a new endpoint of the application with its first secret, and raises
/// `endpoint.created`, in one transaction.
pub async fn insert(
    conn: &mut Conn,
    app: AppScope,
    endpoint: Endpoint,
    secret: String,
) -> DbResult<Endpoint> {
    let endpoint = Endpoint {
        application_id: app.id(),
        ..endpoint
    };
    conn.transaction(|conn| {
        async move {
            let stored = diesel::insert_into(endpoints::table)
                .values(&endpoint)
                .returning(Endpoint::as_returning())
                .get_result(conn)
                .await?;
            diesel::insert_into(endpoint_secrets::table)
                .values(&EndpointSecretRow {
                    id: octohooks_domain::new_id(),
                    endpoint_id: stored.id,
                    secret,
                    created: stored.created,
                    expires: None,
                })
                .execute(conn)
                .await?;
            operational::endpoint_event(
                conn,
                &stored,
                OperationalEventType::EndpointCreated,
                serde_json::json!({}),
            )
            .await?;
            Ok(stored)
        }
        .scope_boxed()
    })
    .await
}

/// The fields a `PUT` replaces.
#[derive(Debug, Clone, AsChangeset)]
#[diesel(table_name = endpoints, treat_none_as_null = true)]
pub struct EndpointChanges {
    /// New uid.
    pub uid: Option<String>,
    /// New name.
    pub name: String,
    /// New description.
    pub description: String,
    /// New URL.
    pub url: String,
    /// Enabled or not.
    pub enabled: bool,
    /// Cleared when the endpoint is enabled again.
    pub disabled_reason: Option<String>,
    /// New channel filter.
    pub channels: Vec<String>,
    /// New event type filter.
    pub event_types: Vec<String>,
    /// New custom headers.
    pub headers: serde_json::Value,
    /// Now.
    pub updated: DateTime<Utc>,
    /// Cleared when the endpoint is enabled again, so the failure clock starts afresh.
    pub failing_since: Option<DateTime<Utc>>,
    /// Messages per second, or no limit.
    pub rate_limit: Option<i32>,
}

/// Why [`update`] changed nothing.
#[derive(Debug)]
pub enum UpdateRefused<E> {
    /// The database failed or refused the change (a uid taken, say).
    Db(DbError),
    /// `build` refused the change it was asked to make of the stored endpoint.
    Rejected(E),
}

// The transaction's error type must come from diesel's.
impl<E> From<diesel::result::Error> for UpdateRefused<E> {
    fn from(err: diesel::result::Error) -> Self {
        Self::Db(err.into())
    }
}

impl<E> From<DbError> for UpdateRefused<E> {
    fn from(err: DbError) -> Self {
        Self::Db(err)
    }
}

/// Changes an endpoint and raises the operational events the change makes (see
/// [`operational::changes`]), in one transaction. The row is locked first and `build` makes the
/// change from the row as locked, so that a field the caller left alone keeps its stored value
/// even when the dispatcher changed it a moment ago (an automatic disable is never written
/// back as enabled), and the events compare against what the change really replaced.
pub async fn update<E, F>(
    conn: &mut Conn,
    endpoint: &Scoped<Endpoint>,
    build: F,
) -> Result<Endpoint, UpdateRefused<E>>
where
    E: Send,
    F: FnOnce(Endpoint) -> Result<EndpointChanges, E> + Send,
{
    let id = endpoint.id;
    conn.transaction(|conn| {
        async move {
            let before = endpoints::table
                .find(id)
                .select(Endpoint::as_select())
                .for_no_key_update()
                .first(conn)
                .await?;
            let changes = build(before.clone()).map_err(UpdateRefused::Rejected)?;
            let after = diesel::update(endpoints::table.find(id))
                .set(&changes)
                .returning(Endpoint::as_returning())
                .get_result(conn)
                .await?;
            for (event, extra) in operational::changes(&before, &after) {
                operational::endpoint_event(conn, &after, event, extra).await?;
            }
            Ok(after)
        }
        .scope_boxed()
    })
    .await
}

/// Why an endpoint was disabled after answering 410 Gone.
pub const GONE_REASON: &str = "the endpoint answered 410 Gone";

/// Keeps an endpoint's health up to date after an attempt, writing only when something changes:
/// a success ends a failing run; a 410 disables the endpoint at once; a failure starts a failing
/// run, or disables the endpoint when the run has lasted `disable_after_secs`. Returns true when
/// the endpoint was disabled now, which raises `endpoint.disabled` (`trigger: automatic`) in
/// the same statement: the endpoint's row lock makes it exactly one, however many attempts
/// fail at once.
pub async fn note_outcome(
    conn: &mut Conn,
    endpoint_id: Uuid,
    success: bool,
    status_code: i32,
    disable_after_secs: i64,
) -> DbResult<bool> {
    use diesel::sql_types::{BigInt, Bool, Text, Uuid as SqlUuid};
    if success {
        diesel::update(
            endpoints::table
                .find(endpoint_id)
                .filter(endpoints::failing_since.is_not_null()),
        )
        .set(endpoints::failing_since.eq(None::<DateTime<Utc>>))
        .execute(conn)
        .await?;
        return Ok(false);
    }
    #[derive(QueryableByName)]
    struct Disabled {
        #[diesel(sql_type = Bool)]
        disabled: bool,
    }
    let changed: Option<Disabled> = crate::prepared::prepared(
        diesel::sql_query(NOTE_FAILURE)
            .bind::<SqlUuid, _>(endpoint_id)
            .bind::<BigInt, _>(disable_after_secs)
            .bind::<Bool, _>(status_code == 410)
            .bind::<Text, _>(GONE_REASON),
    )
    .get_result(conn)
    .await
    .optional()?;
    Ok(changed.is_some_and(|row| row.disabled))
}

/// A failed attempt's effect on its endpoint ($1 endpoint, $2 seconds of failing that disable
/// it, $3 the receiver answered 410 Gone, $4 the reason then): `cur` locks the row and decides,
/// on the values before the change, whether this failure disables it; `changed` writes only
/// when the run starts or the endpoint is disabled; `raised` tells the operators when it was.
const NOTE_FAILURE: &str = "\
WITH cur AS ( \
  SELECT id, failing_since, \
    coalesce(enabled AND ($3 OR failing_since < now() - make_interval(secs => $2)), false) \
      AS disable \
  FROM endpoints WHERE id = $1 FOR NO KEY UPDATE), \
changed AS ( \
  UPDATE endpoints e SET \
    failing_since = COALESCE(e.failing_since, now()), \
    enabled = CASE WHEN cur.disable THEN false ELSE e.enabled END, \
    disabled_reason = CASE WHEN NOT cur.disable THEN e.disabled_reason WHEN $3 THEN $4 \
      ELSE 'every delivery failed since ' || \
        to_char(e.failing_since AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') END, \
    updated = CASE WHEN cur.disable THEN now() ELSE e.updated END \
  FROM cur WHERE e.id = cur.id AND (cur.failing_since IS NULL OR cur.disable) \
  RETURNING e.id, e.application_id, e.uid, e.failing_since, cur.disable AS disabled), \
raised AS ( \
  SELECT octohooks_emit_operational(a.environment_id, 'endpoint.disabled', \
    jsonb_build_object('appId', a.id, 'appUid', a.uid, 'endpointId', changed.id, \
      'endpointUid', changed.uid, 'trigger', 'automatic', \
      'failSince', (extract(epoch FROM changed.failing_since) * 1000)::bigint)) AS queued \
  FROM changed JOIN applications a ON a.id = changed.application_id \
  WHERE changed.disabled AND NOT a.operational) \
SELECT changed.disabled, coalesce(raised.queued, 0) AS queued FROM changed LEFT JOIN raised ON true";

/// Deletes an endpoint, its secrets and destinations (by cascade), and its attempts and waiting
/// jobs (which have no foreign key to it, see migration 000008), and raises `endpoint.deleted`,
/// in one transaction. Its history goes first, in bounded statements
/// ([`removal::remove_history`]); a deletion cut short there leaves the endpoint with the rest
/// of it, and deleting it again goes on.
pub async fn delete(conn: &mut Conn, endpoint: &Scoped<Endpoint>) -> DbResult<Endpoint> {
    use crate::schema::{attempts, outbox};
    let id = endpoint.id;
    removal::remove_history(conn, id).await?;
    conn.transaction(|conn| {
        async move {
            let endpoint = diesel::delete(endpoints::table.find(id))
                .returning(Endpoint::as_returning())
                .get_result(conn)
                .await?;
            diesel::delete(attempts::table.filter(attempts::endpoint_id.eq(id)))
                .execute(conn)
                .await?;
            diesel::delete(outbox::table.filter(outbox::endpoint_id.eq(id)))
                .execute(conn)
                .await?;
            operational::endpoint_event(
                conn,
                &endpoint,
                OperationalEventType::EndpointDeleted,
                serde_json::json!({}),
            )
            .await?;
            Ok(endpoint)
        }
        .scope_boxed()
    })
    .await
}
