//! Embedded migrations, applied under a Postgres advisory lock so that replicas starting at the
//! same moment apply them once. Diesel's migration harness is synchronous, so it runs on a
//! blocking thread through `AsyncConnectionWrapper`.

use diesel::RunQueryDsl as _;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::AsyncPgConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::connect::Target;
use crate::{DbError, DbResult};

/// The SQL of `migrations/`, compiled into the binaries.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

/// Arbitrary but fixed key of the advisory lock that serialises migrations.
const MIGRATION_LOCK_KEY: i64 = 0x6f63_746f_686f_6f6b;

/// Creates the database named in `database_url` when it does not exist yet, so that a fresh
/// Postgres needs no manual step.
pub async fn ensure_database(database_url: &str) -> DbResult<()> {
    match Target::parse(database_url)?.open().await {
        Ok(_) => return Ok(()),
        Err(err) if err.to_string().contains("does not exist") => {}
        Err(err) => return Err(DbError::Migration(format!("cannot connect: {err}"))),
    }
    let mut url = url::Url::parse(database_url)
        .map_err(|err| DbError::Migration(format!("invalid database URL: {err}")))?;
    let name = url.path().trim_start_matches('/').to_owned();
    if name.is_empty() || name.contains('"') {
        return Err(DbError::Migration(
            "the database URL names no usable database".into(),
        ));
    }
    url.set_path("/postgres");
    let mut conn = Target::parse(url.as_str())?
        .open_diesel()
        .await
        .map_err(|err| DbError::Migration(format!("cannot connect: {err}")))?;
    let create = diesel::sql_query(format!("CREATE DATABASE \"{name}\""));
    match diesel_async::RunQueryDsl::execute(create, &mut conn).await {
        Ok(_) => {
            tracing::info!(database = %name, "created the database");
            Ok(())
        }
        // Another replica created it at the same moment.
        Err(err) if err.to_string().contains("already exists") => Ok(()),
        Err(err) => Err(err.into()),
    }
}

/// Creates the database if needed, then applies pending migrations and returns the versions
/// applied.
pub async fn run_pending(database_url: &str) -> DbResult<Vec<String>> {
    ensure_database(database_url).await?;
    let conn = Target::parse(database_url)?
        .open_diesel()
        .await
        .map_err(|err| DbError::Migration(format!("cannot connect: {err}")))?;
    tokio::task::spawn_blocking(move || {
        let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::from(conn);
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
