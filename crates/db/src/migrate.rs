//! Embedded migrations, applied under a Postgres advisory lock so that replicas starting at the
//! same moment apply them once. Diesel's migration harness is synchronous, so it runs on a
//! blocking thread through `AsyncConnectionWrapper`.

use diesel::Connection as _;
use diesel::RunQueryDsl as _;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::AsyncPgConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::{DbError, DbResult};

/// The SQL of `migrations/`, compiled into the binaries.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

/// Arbitrary but fixed key of the advisory lock that serialises migrations.
const MIGRATION_LOCK_KEY: i64 = 0x6f63_746f_686f_6f6b;

/// Applies pending migrations and returns the versions applied.
pub async fn run_pending(database_url: &str) -> DbResult<Vec<String>> {
    let url = database_url.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::establish(&url)
            .map_err(|err| DbError::Migration(format!("cannot connect: {err}")))?;
        diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))
            .execute(&mut conn)?;
        let applied = conn
            .run_pending_migrations(MIGRATIONS)
            .map(|versions| versions.iter().map(ToString::to_string).collect())
            .map_err(|err| DbError::Migration(err.to_string()));
        diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"))
            .execute(&mut conn)?;
        applied
    })
    .await
    .map_err(|err| DbError::Migration(err.to_string()))?
}
