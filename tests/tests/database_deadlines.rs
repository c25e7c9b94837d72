//! A database that stops answering without closing anything (a partition, a proxy that stops
//! forwarding) costs a request seconds, not minutes: calls give up on their own deadline with
//! a transient error (503 at the API), the dead connections are discarded, and everything
//! works again by itself once the database answers.

use std::time::{Duration, Instant};

use diesel_async::RunQueryDsl;
use octohooks_db::{pool, DbError};
use octohooks_tests::proxy::Proxy;
use octohooks_tests::{database, eventually, Options, TestApp};
use reqwest::StatusCode;

/// Longest any call may take in these tests before it counts as hanging.
const HANG: Duration = Duration::from_secs(30);

#[tokio::test]
async fn a_call_without_an_answer_fails_as_transient_and_its_connection_is_dropped() {
    let (name, _) = database::fresh().await;
    let proxy = Proxy::start("127.0.0.1:5432").await;
    let db = pool::build_pool(
        &proxy.postgres_url(&name),
        &pool::PoolOptions {
            statement_timeout: Duration::from_secs(1),
            ..pool::PoolOptions::default()
        },
    )
    .unwrap();
    let mut conn = pool::connection(&db).await.unwrap();
    diesel::sql_query("SELECT 1")
        .execute(&mut conn)
        .await
        .unwrap();

    proxy.blackhole();
    let started = Instant::now();
    let failed = tokio::time::timeout(HANG, diesel::sql_query("SELECT 1").execute(&mut conn))
        .await
        .expect("the call gave up by itself")
        .map_err(DbError::from)
        .expect_err("no answer can come");
    let waited = started.elapsed();
    assert!(failed.is_transient(), "{failed}");
    assert!(
        waited >= Duration::from_secs(1) && waited < Duration::from_secs(6),
        "gave up after {waited:?}; the deadline is 1 s + {:?}",
        pool::ANSWER_GRACE
    );
    drop(conn);

    // The pool must not hand the dead connection out again: a query on it would hang.
    proxy.restore();
    let mut next = pool::connection(&db).await.unwrap();
    tokio::time::timeout(
        Duration::from_secs(5),
        diesel::sql_query("SELECT 1").execute(&mut next),
    )
    .await
    .expect("the pool handed out the dead connection")
    .unwrap();
    drop(next);
    database::drop_database(&name).await;
}

#[tokio::test]
async fn the_api_answers_503_within_seconds_while_postgres_is_silent_and_recovers() {
    let proxy = Proxy::start("127.0.0.1:5432").await;
    let app = TestApp::spawn_with(Options {
        database_via: Some(proxy.addr.clone()),
        extra: vec![("OCTOHOOKS_STATEMENT_TIMEOUT".into(), "2s".into())],
        ..Options::api_only()
    })
    .await;
    let app_id = app.create_app("silent-db").await;
    let list = format!("/api/v1/applications/{app_id}/messages");
    assert_eq!(app.get(&list).await.status, StatusCode::OK);

    proxy.blackhole();
    // More requests than the pool (4) has connections: some wait on a dead connection, the
    // others for a free one or a new connection that never completes.
    let started = Instant::now();
    let answers = tokio::time::timeout(
        HANG,
        futures::future::join_all((0..6).map(|_| app.get(&list))),
    )
    .await
    .expect("requests hung");
    let waited = started.elapsed();
    for answer in &answers {
        assert_eq!(
            answer.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{}",
            answer.text
        );
        assert_eq!(
            answer.json["code"], "service_unavailable",
            "{}",
            answer.text
        );
    }
    assert!(
        waited < Duration::from_secs(15),
        "answered after {waited:?}"
    );
    // Writes too: nothing is accepted that could not be stored.
    let write = tokio::time::timeout(
        HANG,
        app.post(
            "/api/v1/applications",
            serde_json::json!({"name": "during"}),
        ),
    )
    .await
    .expect("the write hung");
    assert_eq!(
        write.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        write.text
    );

    proxy.restore();
    let recovered = eventually(30, || async {
        app.get(&list).await.status == StatusCode::OK
    })
    .await;
    assert!(recovered, "the API did not recover by itself");
    assert_eq!(
        app.count("SELECT count(*) FROM applications WHERE name = 'during'")
            .await,
        0
    );
    app.stop().await;
}
