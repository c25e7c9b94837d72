//! Replicas that start together on a database that is not migrated yet: one applies the
//! migrations, the other waits for it, and both start. Migration 000026 builds an index
//! `CONCURRENTLY`, which waits for every older snapshot of its database; a replica waiting for
//! the migration lock inside one statement held such a snapshot, and Postgres failed one of the
//! two as a deadlock.

use futures::future::join;
use octohooks_tests::database;

#[tokio::test]
async fn replicas_starting_together_both_apply_the_migrations() {
    let name = format!("octohooks_test_{}", uuid::Uuid::new_v4().simple());
    let url = format!("{}/{name}", database::SERVER_URL);
    let (first, second) = join(
        octohooks_db::migrate::run_pending(&url),
        octohooks_db::migrate::run_pending(&url),
    )
    .await;
    let first = first.expect("the first replica migrates");
    let second = second.expect("the second replica migrates");
    let embedded = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../migrations"))
        .expect("the migrations directory")
        .filter(|entry| entry.as_ref().is_ok_and(|entry| entry.path().is_dir()))
        .count();
    assert_eq!(
        first.len() + second.len(),
        embedded,
        "every migration applied once, by one replica or the other"
    );
    let recorded = database::count(&url, "SELECT count(*) FROM __diesel_schema_migrations").await;
    assert_eq!(recorded, embedded as i64);
    database::drop_database(&name).await;
}
