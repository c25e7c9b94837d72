//! The storage layer's one classification of failures, against the real Postgres: a statement
//! timeout and a deadlock are transient (retry later), a unique violation is not.

use diesel_async::{AsyncConnection, RunQueryDsl, SimpleAsyncConnection};
use octohooks_db::{pool, DbError};
use octohooks_tests::database;

#[tokio::test]
async fn real_failures_are_classified_as_the_retry_logic_needs() {
    let (name, url) = database::fresh().await;
    let db = pool::build_pool(&url, &pool::PoolOptions::default()).unwrap();

    let mut conn = pool::connection(&db).await.unwrap();
    conn.batch_execute("SET statement_timeout = 20")
        .await
        .unwrap();
    let timed_out = diesel::sql_query("SELECT pg_sleep(1)")
        .execute(&mut conn)
        .await
        .map_err(DbError::from)
        .expect_err("statement timeout");
    assert!(timed_out.is_transient(), "{timed_out}");
    conn.batch_execute("SET statement_timeout = 0")
        .await
        .unwrap();

    conn.batch_execute("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1), (2)")
        .await
        .unwrap();
    let duplicate = diesel::sql_query("INSERT INTO t VALUES (1)")
        .execute(&mut conn)
        .await
        .map_err(DbError::from)
        .expect_err("unique violation");
    assert!(!duplicate.is_transient(), "{duplicate}");
    assert!(duplicate.is_unique_violation());

    // Two transactions locking the same two rows in opposite order: Postgres aborts one.
    let mut other = diesel_async::AsyncPgConnection::establish(&url)
        .await
        .unwrap();
    conn.batch_execute("BEGIN; UPDATE t SET id = id WHERE id = 1")
        .await
        .unwrap();
    other
        .batch_execute("BEGIN; UPDATE t SET id = id WHERE id = 2")
        .await
        .unwrap();
    let (first, second) = tokio::join!(
        conn.batch_execute("UPDATE t SET id = id WHERE id = 2"),
        other.batch_execute("UPDATE t SET id = id WHERE id = 1"),
    );
    let deadlock = first
        .err()
        .or(second.err())
        .map(DbError::from)
        .expect("one side deadlocked");
    assert!(deadlock.is_transient(), "{deadlock}");
    drop((conn, other));
    database::drop_database(&name).await;
}
