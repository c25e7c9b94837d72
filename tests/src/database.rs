//! Fresh databases. The first test to run migrates a template database (named after a hash of
//! the migrations, under an advisory lock so that parallel test processes agree); each test
//! then gets `CREATE DATABASE … TEMPLATE`, which takes milliseconds.

use std::hash::{Hash, Hasher};

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

/// The server every test uses.
pub const SERVER_URL: &str = "postgres://postgres@127.0.0.1:5432";

fn migrations_hash() -> u64 {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
    let mut entries: Vec<_> = walk(&dir);
    entries.sort();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for path in entries {
        path.to_string_lossy().hash(&mut hasher);
        std::fs::read(&path).unwrap_or_default().hash(&mut hasher);
    }
    hasher.finish()
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

async fn admin_connection() -> AsyncPgConnection {
    AsyncPgConnection::establish(&format!("{SERVER_URL}/postgres"))
        .await
        .expect("connect to Postgres at 127.0.0.1:5432 as postgres (run `make deps`)")
}

/// Creates a migrated database of its own and returns its name and URL.
pub async fn fresh() -> (String, String) {
    let template = format!("octohooks_template_{:x}", migrations_hash());
    let mut conn = admin_connection().await;
    diesel::sql_query("SELECT pg_advisory_lock(4242)")
        .execute(&mut conn)
        .await
        .expect("lock");
    let exists = diesel::sql_query(format!(
        "SELECT 1 AS one FROM pg_database WHERE datname = '{template}'"
    ))
    .execute(&mut conn)
    .await
    .expect("look up template");
    if exists == 0 {
        let url = format!("{SERVER_URL}/{template}");
        octohooks_db::migrate::run_pending(&url)
            .await
            .expect("migrate the template");
    }
    // Cloning needs the template to have no other session: clone under the lock too.
    let name = format!("octohooks_test_{}", uuid::Uuid::new_v4().simple());
    diesel::sql_query(format!("CREATE DATABASE {name} TEMPLATE {template}"))
        .execute(&mut conn)
        .await
        .expect("create test database");
    diesel::sql_query("SELECT pg_advisory_unlock(4242)")
        .execute(&mut conn)
        .await
        .expect("unlock");
    let url = format!("{SERVER_URL}/{name}");
    (name, url)
}

/// Drops a test database.
pub async fn drop_database(name: &str) {
    let mut conn = admin_connection().await;
    let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut conn)
        .await;
}

/// A connection as the services open it, TLS settings of the URL included.
async fn connect(url: &str) -> AsyncPgConnection {
    octohooks_db::connect::Target::parse(url)
        .expect("database URL")
        .open_diesel()
        .await
        .expect("connect")
}

/// Counts the rows of both tables of jobs waiting to be published: the outbox's and the
/// fan-outs'.
pub const WAITING_JOBS: &str =
    "SELECT (SELECT count(*) FROM outbox) + (SELECT count(*) FROM outbox_fanouts)";

/// Runs one SQL query returning a single bigint (`SELECT count(*) …`) on a test database.
pub async fn count(url: &str, sql: &str) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = connect(url).await;
    let row: Row = diesel::sql_query(format!("SELECT ({sql})::bigint AS n"))
        .get_result(&mut conn)
        .await
        .expect("query");
    row.n
}

/// Runs one SQL query returning a single value on a test database, as text.
pub async fn text(url: &str, sql: &str) -> String {
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        value: String,
    }
    let mut conn = connect(url).await;
    let row: Row = diesel::sql_query(format!("SELECT ({sql})::text AS value"))
        .get_result(&mut conn)
        .await
        .expect("query");
    row.value
}

/// Runs one SQL statement on a test database and returns the rows it touched.
pub async fn execute(url: &str, sql: &str) -> usize {
    let mut conn = connect(url).await;
    diesel::sql_query(sql)
        .execute(&mut conn)
        .await
        .expect("statement")
}
