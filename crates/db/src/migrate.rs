//! Embedded migrations, applied under a Postgres advisory lock so that replicas starting at the
//! same moment apply them once. Diesel's migration harness is synchronous, so it runs on a
//! blocking thread through `AsyncConnectionWrapper`.
//!
//! A replica that finds the lock taken asks again every [`LOCK_POLL`] rather than wait inside one
//! statement: a statement waiting for the lock holds a snapshot, and an index built
//! `CONCURRENTLY` by the holder waits for every older snapshot of its database to go, so the two
//! waited for each other until Postgres broke the deadlock by failing one of them.

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

/// How often a replica asks for the migration lock again while another holds it.
const LOCK_POLL: std::time::Duration = std::time::Duration::from_millis(200);

/// Longest pause between two tries to connect while the server refuses connections.
const MOST_PATIENT: std::time::Duration = std::time::Duration::from_secs(5);

/// Creates the database named in `database_url` when it does not exist yet, so that a fresh
/// Postgres needs no manual step. While the server refuses connections for a reason that
/// passes (full, starting or stopping, not listening yet: the transient messages `DbError`
/// knows), it waits and tries again, so a replica started meanwhile does not exit.
pub async fn ensure_database(database_url: &str) -> DbResult<()> {
    let target = Target::parse(database_url)?;
    let mut pause = std::time::Duration::from_millis(250);
    loop {
        match target.open().await {
            Ok(_) => return Ok(()),
            Err(err) if err.to_string().contains("does not exist") => break,
            Err(err) if crate::message_is_transient(&err.to_string()) => {
                tracing::warn!(error = %err, retry_in_ms = pause.as_millis() as u64,
                    "Postgres refuses connections for now; waiting for one");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MOST_PATIENT);
            }
            Err(err) => return Err(DbError::Migration(format!("cannot connect: {err}"))),
        }
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
    match diesel_async::RunQueryDsl::execute(create, &mut conn)
        .await
        .map_err(DbError::from)
    {
        Ok(_) => {
            tracing::info!(database = %name, "created the database");
            Ok(())
        }
        // Another replica created it at the same moment: once it committed, "already exists";
        // while both were creating it, the catalog's unique index on database names.
        Err(err) if err.to_string().contains("already exists") || err.is_unique_violation() => {
            Ok(())
        }
        Err(err) => Err(err),
    }
}

/// Creates the database if needed, then applies pending migrations and returns the versions
/// applied.
pub async fn run_pending(database_url: &str) -> DbResult<Vec<String>> {
    let conn = loop {
        ensure_database(database_url).await?;
        // The slot ensure_database found may be taken again by now.
        match Target::parse(database_url)?.open_diesel().await {
            Ok(conn) => break conn,
            Err(err) if crate::message_is_transient(&err.to_string()) => {
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
            Err(err) => return Err(DbError::Migration(format!("cannot connect: {err}"))),
        }
    };
    tokio::task::spawn_blocking(move || {
        let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::from(conn);
        while !try_lock(&mut conn)? {
            std::thread::sleep(LOCK_POLL);
        }
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

/// Takes the migration lock if no other session holds it, in a statement that returns at once.
fn try_lock(conn: &mut AsyncConnectionWrapper<AsyncPgConnection>) -> DbResult<bool> {
    #[derive(diesel::QueryableByName)]
    struct Taken {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        taken: bool,
    }
    let answer: Taken = diesel::sql_query(format!(
        "SELECT pg_try_advisory_lock({MIGRATION_LOCK_KEY}) AS taken"
    ))
    .get_result(conn)?;
    Ok(answer.taken)
}

#[cfg(test)]
mod tests {
    use crate::message_is_transient as passes;

    #[test]
    fn a_full_or_starting_server_is_waited_for_and_a_wrong_one_is_not() {
        for error in [
            "FATAL: sorry, too many clients already",
            "FATAL: too many connections for role \"octohooks\"",
            "FATAL: remaining connection slots are reserved for roles with the SUPERUSER attribute",
            "FATAL: the database system is starting up",
            "error connecting to server: Connection refused (os error 111)",
        ] {
            assert!(passes(error), "{error}");
        }
        for error in [
            "FATAL: password authentication failed for user \"octohooks\"",
            "FATAL: role \"nobody\" does not exist",
            "FATAL: no pg_hba.conf entry for host",
        ] {
            assert!(!passes(error), "{error}");
        }
    }
}
