//! The dispatcher's read of a job's context looks the job up among the recorded attempts only
//! when it is manual: a scheduled job's destination, read in the same statement, tells whether
//! it ran.

use diesel::sql_types::BigInt;
use diesel_async::RunQueryDsl;
use octohooks_db::deliveries::{self, JobKey};
use octohooks_db::pool;
use octohooks_tests::{Options, TestApp};
use reqwest::StatusCode;
use serde_json::json;

#[derive(diesel::QueryableByName)]
struct Scans {
    #[diesel(sql_type = BigInt)]
    scans: i64,
}

/// Reads the context of `key` in a transaction of its own; returns whether it was found and how
/// often that read scanned the attempts' job index.
async fn read_counting_job_lookups(conn: &mut pool::Conn, key: JobKey) -> (bool, i64) {
    diesel::sql_query("BEGIN").execute(conn).await.unwrap();
    let contexts = deliveries::job_contexts(conn, &[key]).await.unwrap();
    let scans: Scans =
        diesel::sql_query("SELECT pg_stat_get_xact_numscans('attempts_job'::regclass) AS scans")
            .get_result(conn)
            .await
            .unwrap();
    diesel::sql_query("ROLLBACK").execute(conn).await.unwrap();
    (contexts[0].is_some(), scans.scans)
}

#[tokio::test]
async fn only_a_manual_job_is_looked_up_among_the_attempts() {
    let app = TestApp::spawn_with(Options::api_only()).await;
    app.create_app("app").await;
    let endpoint = app
        .create_endpoint("app", json!({"url": "http://127.0.0.1:9/hook"}))
        .await;
    let sent = app
        .post(
            "/api/v1/applications/app/messages",
            json!({"eventType": "t", "payload": {}}),
        )
        .await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.text);
    let db = pool::build_pool(&app.database_url, &pool::PoolOptions::default()).unwrap();
    let mut conn = pool::connection(&db).await.unwrap();
    let key = |manual| JobKey {
        message_id: sent.json["id"].as_str().unwrap().parse().unwrap(),
        endpoint_id: endpoint["id"].as_str().unwrap().parse().unwrap(),
        job_id: 1,
        manual,
    };
    assert_eq!(
        read_counting_job_lookups(&mut conn, key(false)).await,
        (true, 0),
        "a scheduled job's context, read without a lookup among the attempts"
    );
    assert_eq!(
        read_counting_job_lookups(&mut conn, key(true)).await,
        (true, 1),
        "a manual job is looked up once"
    );
    drop(conn);
    app.stop().await;
}
