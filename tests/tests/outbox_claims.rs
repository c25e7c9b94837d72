//! Outbox claims against the real Postgres: a relay that gives up its claim after a failed
//! publish frees only the claim it holds, never one another relay took after it lapsed; a
//! pass over fan-out rows holds a bounded number of jobs; and the stranded sweep counts a
//! message's fan-out row as its destinations' job and finds pending deliveries by index.

use octohooks_db::{outbox, pool};
use octohooks_tests::database;

const CLAIM_SECS: i32 = 30;

async fn claimed_until(url: &str) -> i64 {
    database::count(
        url,
        "SELECT count(*) FROM outbox WHERE claimed_until IS NOT NULL",
    )
    .await
}

#[tokio::test]
async fn a_release_frees_the_callers_claim_only() {
    let (name, url) = database::fresh().await;
    let db = pool::build_pool(&url, &pool::PoolOptions::default()).unwrap();
    let mut conn = pool::connection(&db).await.unwrap();
    database::execute(
        &url,
        "INSERT INTO outbox (message_id, endpoint_id, attempt, trigger_type, due) \
         VALUES (gen_random_uuid(), gen_random_uuid(), 0, 'scheduled', now())",
    )
    .await;

    // A relay claims the job, its publish fails, it releases: the job is free at once.
    let mine = outbox::claim_due(&mut conn, 10, CLAIM_SECS).await.unwrap();
    assert_eq!(mine.len(), 1);
    assert!(mine[0].claimed_until.is_some());
    assert_eq!(claimed_until(&url).await, 1);
    outbox::release(&mut conn, &mine).await.unwrap();
    assert_eq!(
        claimed_until(&url).await,
        0,
        "the caller's own claim is freed"
    );

    // Claimed again; this time the claim lapses and another relay claims the job before the
    // first one's release arrives: that release must leave the other relay's claim alone.
    let stale = outbox::claim_due(&mut conn, 10, CLAIM_SECS).await.unwrap();
    assert_eq!(stale.len(), 1);
    database::execute(
        &url,
        "UPDATE outbox SET claimed_until = now() - interval '1 second'",
    )
    .await;
    let theirs = outbox::claim_due(&mut conn, 10, CLAIM_SECS).await.unwrap();
    assert_eq!(
        theirs.len(),
        1,
        "the lapsed claim is taken by another relay"
    );
    outbox::release(&mut conn, &stale).await.unwrap();
    assert_eq!(
        claimed_until(&url).await,
        1,
        "a stale release leaves the other claim"
    );
    assert!(
        outbox::claim_due(&mut conn, 10, CLAIM_SECS)
            .await
            .unwrap()
            .is_empty(),
        "nobody else can take the job while it is claimed"
    );
    outbox::release(&mut conn, &theirs).await.unwrap();
    assert_eq!(claimed_until(&url).await, 0);

    drop(conn);
    database::drop_database(&name).await;
}

/// An API alone with the broker cut away, and `messages` messages sent to application `app`'s
/// `endpoints` endpoints (never reached): each waits as a fan-out row. The proxy is returned so
/// that the broker stays away while the test runs.
async fn fan_out_rows_waiting(
    endpoints: usize,
    messages: usize,
) -> (octohooks_tests::proxy::Proxy, octohooks_tests::TestApp) {
    let proxy = octohooks_tests::proxy::Proxy::start("127.0.0.1:5672").await;
    let app =
        octohooks_tests::TestApp::spawn_with(octohooks_tests::Options::api_behind(&proxy)).await;
    app.create_app("app").await;
    for i in 0..endpoints {
        app.create_endpoint(
            "app",
            serde_json::json!({"url": format!("http://127.0.0.1:9/{i}")}),
        )
        .await;
    }
    proxy.cut();
    app.send_messages("app", messages).await;
    assert_eq!(
        app.count("SELECT count(*) FROM outbox_fanouts").await,
        messages as i64
    );
    (proxy, app)
}

#[tokio::test]
async fn a_delivery_whose_message_waits_as_a_fan_out_row_is_not_stranded() {
    let (_proxy, app) = fan_out_rows_waiting(2, 1).await;
    // Long overdue, as if the broker had been away for an hour.
    app.execute("UPDATE message_destinations SET next_attempt = now() - interval '1 hour'")
        .await;
    let db = pool::build_pool(&app.database_url, &pool::PoolOptions::default()).unwrap();
    let mut conn = pool::connection(&db).await.unwrap();
    assert_eq!(
        outbox::requeue_stranded(&mut conn, 60).await.unwrap(),
        0,
        "the fan-out row is their job"
    );
    app.execute("DELETE FROM outbox_fanouts").await;
    assert_eq!(
        outbox::requeue_stranded(&mut conn, 60).await.unwrap(),
        2,
        "without it, each destination is stranded"
    );
    assert_eq!(app.count("SELECT count(*) FROM outbox").await, 2);
    drop(conn);
    app.stop().await;
}

#[tokio::test]
async fn the_stranded_sweep_reads_pending_deliveries_only() {
    let (_proxy, app) = fan_out_rows_waiting(2, 2).await;
    app.execute("UPDATE message_destinations SET next_attempt = now() - interval '1 hour'")
        .await;
    app.execute("DELETE FROM outbox_fanouts").await;
    // A history of delivered destinations beside the four stranded ones.
    app.execute(
        "INSERT INTO message_destinations (message_id, endpoint_id, status, attempt_count, updated) \
         SELECT gen_random_uuid(), e.id, 'success', 1, now() \
         FROM endpoints e CROSS JOIN generate_series(1, 10000)",
    )
    .await;
    app.execute("ANALYZE message_destinations").await;
    let db = pool::build_pool(&app.database_url, &pool::PoolOptions::default()).unwrap();
    let mut conn = pool::connection(&db).await.unwrap();
    #[derive(diesel::QueryableByName)]
    struct Read {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        sequentially: i64,
    }
    let read = {
        use diesel_async::RunQueryDsl;
        diesel::sql_query("BEGIN").execute(&mut conn).await.unwrap();
        assert_eq!(outbox::requeue_stranded(&mut conn, 60).await.unwrap(), 4);
        let read: Read = diesel::sql_query(
            "SELECT coalesce(sum(seq_tup_read), 0)::bigint AS sequentially \
             FROM pg_stat_xact_user_tables WHERE relname = 'message_destinations'",
        )
        .get_result(&mut conn)
        .await
        .unwrap();
        diesel::sql_query("ROLLBACK")
            .execute(&mut conn)
            .await
            .unwrap();
        read
    };
    assert_eq!(
        read.sequentially, 0,
        "the pending ones are found by index, not among 20,000 delivered"
    );
    drop(conn);
    app.stop().await;
}

#[tokio::test]
async fn a_pass_over_fan_out_rows_stops_taking_rows_once_their_jobs_reach_the_batch() {
    let (_proxy, app) = fan_out_rows_waiting(30, 5).await;
    // Due and free, as after the publisher gave up on the broker.
    app.execute(
        "UPDATE outbox_fanouts SET claimed_until = NULL, due = now() - interval '1 second'",
    )
    .await;
    let db = pool::build_pool(&app.database_url, &pool::PoolOptions::default()).unwrap();
    let mut conn = pool::connection(&db).await.unwrap();

    // A batch of 40 may take 4 fan-out rows of 30 jobs each: the first two go (the second
    // starts below 40 jobs), the others wait for the next pass.
    let mut passes = Vec::new();
    loop {
        let jobs = outbox::claim_due(&mut conn, 40, CLAIM_SECS).await.unwrap();
        if jobs.is_empty() {
            break;
        }
        let messages: std::collections::HashSet<_> = jobs.iter().map(|j| j.message_id).collect();
        assert!(jobs.iter().all(|j| j.fanout_id.is_some()));
        passes.push((jobs.len(), messages.len()));
    }
    assert_eq!(
        passes,
        [(60, 2), (60, 2), (30, 1)],
        "jobs and messages per pass"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM outbox_fanouts WHERE claimed_until IS NULL")
            .await,
        0,
        "every row was claimed once"
    );
    drop(conn);
    app.stop().await;
}
