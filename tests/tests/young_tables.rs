//! A new deployment under load, before Postgres has any statistics of its tables (autovacuum
//! first analyzes a table up to a minute after it fills): recording attempts finds each
//! destination by its key from the first message on, and never reads the destinations table
//! whole, which a plan made on the young table and kept by the prepared statement did, once per
//! batch, longer with every message. The same for the outbox, whose statistics say it is empty
//! whenever autovacuum analyzed it between bursts. A fan-out's jobs each find their own
//! destination, not every destination of their message. And a connection of the batch pool
//! plans each prepared statement once, not again on every call, while the general pool leaves
//! that to Postgres.

use diesel::sql_types::{BigInt, Text};
use diesel_async::RunQueryDsl;
use futures::future::join_all;
use octohooks_db::deliveries::{self, JobKey};
use octohooks_db::pool;
use octohooks_tests::{database, eventually, Receiver, TestApp};
use serde_json::json;

/// Messages sent: enough for the table to outgrow by far what a plan made on its first rows
/// expected.
const MESSAGES: usize = 2_000;
/// Clients sending at once, so that the dispatcher records its attempts in batches.
const CLIENTS: usize = 8;

/// One of Postgres's counters of a table (`pg_stat_user_tables`).
async fn table_counter(app: &TestApp, table: &str, counter: &str) -> i64 {
    app.count(&format!(
        "SELECT coalesce({counter}, 0) FROM pg_stat_user_tables WHERE relname = '{table}'"
    ))
    .await
}

/// A table's rows changed (the `changes` counter: updated, deleted) and its live rows read by
/// sequential scans, as Postgres's statistics report them.
async fn changes_and_whole_reads(app: &TestApp, table: &str, changes: &str) -> (i64, i64) {
    let changed = table_counter(app, table, changes).await;
    let read_whole = table_counter(app, table, "seq_tup_read").await;
    (changed, read_whole)
}

/// A test application with one endpoint, at the receiver's `/hook`.
async fn one_endpoint() -> (TestApp, Receiver) {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    app.create_app("app").await;
    app.create_endpoint("app", json!({"url": receiver.url("/hook")}))
        .await;
    (app, receiver)
}

/// Sends [`MESSAGES`] from [`CLIENTS`] clients at once and waits until the receiver has them
/// all.
async fn deliver_from_clients(app: &TestApp, receiver: &Receiver) {
    join_all((0..CLIENTS).map(|_| app.send_messages("app", MESSAGES / CLIENTS))).await;
    let delivered = receiver.wait_for("/hook", MESSAGES, 60).await;
    assert_eq!(delivered.len(), MESSAGES, "every message was delivered");
}

#[tokio::test]
async fn attempts_are_recorded_by_key_on_a_young_table() {
    let (app, receiver) = one_endpoint().await;
    let analyzed = app
        .count(
            "SELECT count(*) FROM pg_stat_user_tables WHERE relname = 'message_destinations' \
             AND (last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL)",
        )
        .await;
    assert_eq!(analyzed, 0, "the test's database is new: no statistics yet");

    deliver_from_clients(&app, &receiver).await;
    let recorded = eventually(30, || async {
        app.count("SELECT count(*) FROM attempts WHERE status = 'success'")
            .await
            == MESSAGES as i64
    })
    .await;
    assert!(recorded, "every attempt was recorded");

    // A backend reports its counters at most once a second, and an idle one within ten: wait
    // until the statistics count every destination's update by the recording statement.
    let reported = eventually(30, || async {
        changes_and_whole_reads(&app, "message_destinations", "n_tup_upd")
            .await
            .0
            >= MESSAGES as i64
    })
    .await;
    let (updated, read_whole) =
        changes_and_whole_reads(&app, "message_destinations", "n_tup_upd").await;
    assert!(reported, "the statistics count {updated} updates");
    // Found by key, the recording reads no destination beyond its own; other work may read the
    // table whole now and then (the sweep for stranded deliveries, once a minute per process).
    // Reading it whole once per batch of a few attempts read over 700,000 rows for these
    // messages.
    assert!(
        read_whole < 10 * MESSAGES as i64,
        "the destinations were read whole: {read_whole} rows for {MESSAGES} messages"
    );
    app.stop().await;
}

#[tokio::test]
async fn finished_jobs_leave_the_outbox_by_key_after_it_was_analyzed_empty() {
    let (app, receiver) = one_endpoint().await;
    app.wait_for_express_lane().await;
    // An empty outbox's statistics, as autovacuum leaves them after a quiet spell: a plan made
    // now expects a table of no rows, which the outbox is not once messages flow.
    TestApp::execute(&app, "ANALYZE outbox").await;

    deliver_from_clients(&app, &receiver).await;
    let emptied = eventually(30, || async { app.waiting_jobs().await == 0 }).await;
    assert!(emptied, "every job left the outbox");
    let reported = eventually(30, || async {
        changes_and_whole_reads(&app, "outbox", "n_tup_del").await.0 >= MESSAGES as i64
    })
    .await;
    let (deleted, read_whole) = changes_and_whole_reads(&app, "outbox", "n_tup_del").await;
    assert!(reported, "the statistics count {deleted} deletions");
    // Each record removes its jobs by key. The plan kept from the analyzed empty table read
    // the outbox whole for every batch of records, every job in flight each time; other work
    // (the relay's passes) may read it whole now and then.
    assert!(
        read_whole < MESSAGES as i64,
        "the outbox was read whole: {read_whole} rows for {MESSAGES} messages"
    );
    app.stop().await;
}

/// Endpoints of the fan-out test: a job that read every destination of its message would read
/// this many rows for one.
const FAN_OUT: usize = 10;
/// Messages of the fan-out test.
const FANNED_MESSAGES: usize = 100;

#[tokio::test]
async fn a_fan_out_finds_each_destination_by_its_whole_key_on_a_young_table() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    app.create_app("app").await;
    for i in 0..FAN_OUT {
        app.create_endpoint("app", json!({"url": receiver.url(&format!("/hook/{i}"))}))
            .await;
    }
    join_all((0..CLIENTS).map(|_| app.send_messages("app", FANNED_MESSAGES / CLIENTS))).await;
    let deliveries = FANNED_MESSAGES / CLIENTS * CLIENTS * FAN_OUT;
    for i in 0..FAN_OUT {
        let path = format!("/hook/{i}");
        let delivered = receiver.wait_for(&path, deliveries / FAN_OUT, 60).await;
        assert_eq!(
            delivered.len(),
            deliveries / FAN_OUT,
            "every message reached {path}"
        );
    }
    let reported = eventually(30, || async {
        changes_and_whole_reads(&app, "message_destinations", "n_tup_upd")
            .await
            .0
            >= deliveries as i64
    })
    .await;
    assert!(reported, "the statistics count every destination's update");
    // Each delivery reads its destination twice by key: for its context and for its record.
    // Through the key's leading column alone, each read would fetch all FAN_OUT destinations of
    // the message (20 per delivery here).
    let fetched = table_counter(&app, "message_destinations", "idx_tup_fetch").await;
    assert!(
        fetched >= deliveries as i64 && fetched < 3 * deliveries as i64,
        "{fetched} destinations fetched by index for {deliveries} deliveries"
    );
    // Each context read finds its message by key. The plan kept from the young table read the
    // messages whole for every batch (13,102 rows for these 96 messages); other work may read
    // them whole now and then.
    let messages_read_whole = table_counter(&app, "messages", "seq_tup_read").await;
    assert!(
        messages_read_whole < 3 * FANNED_MESSAGES as i64,
        "the messages were read whole: {messages_read_whole} rows for {FANNED_MESSAGES} messages"
    );
    app.stop().await;
}

/// How often Postgres planned one prepared statement of this connection.
#[derive(diesel::QueryableByName)]
struct Plans {
    #[diesel(sql_type = BigInt)]
    generic_plans: i64,
    #[diesel(sql_type = BigInt)]
    custom_plans: i64,
}

#[derive(diesel::QueryableByName)]
struct Setting {
    #[diesel(sql_type = Text)]
    plan_cache_mode: String,
}

#[tokio::test]
async fn the_batch_pool_plans_a_batched_statement_once_and_the_general_pool_leaves_it_to_postgres()
{
    let (name, url) = database::fresh().await;
    let general = pool::build_pool(&url, &pool::PoolOptions::default()).unwrap();
    let mut conn = pool::connection(&general).await.unwrap();
    let setting: Setting = diesel::sql_query("SHOW plan_cache_mode")
        .get_result(&mut conn)
        .await
        .unwrap();
    // The server's default: value-dependent plans where they pay, as the API's lists need.
    assert_eq!(setting.plan_cache_mode, "auto");
    drop(conn);

    let batches = pool::build_pool(
        &url,
        &pool::PoolOptions {
            generic_plans: true,
            ..pool::PoolOptions::default()
        },
    )
    .unwrap();
    let mut conn = pool::connection(&batches).await.unwrap();
    // Batches of one, as at low load. Left to choose, Postgres plans at least the first five
    // calls for their values (here it does), and any later one for which such a plan looks
    // cheaper than the generic one; at low load that planning cost a large part of the CPU
    // per message (BENCHMARKS.md, "Planned once").
    let calls = 8;
    for _ in 0..calls {
        let job = JobKey {
            message_id: uuid::Uuid::new_v4(),
            endpoint_id: uuid::Uuid::new_v4(),
            job_id: 1,
            manual: false,
        };
        let contexts = deliveries::job_contexts(&mut conn, &[job]).await.unwrap();
        assert!(contexts[0].is_none(), "no such message");
    }
    let plans: Plans = diesel::sql_query(
        "SELECT generic_plans, custom_plans FROM pg_prepared_statements \
         WHERE statement LIKE $1",
    )
    .bind::<Text, _>("%unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::bool[]) WITH ORDINALITY%")
    .get_result(&mut conn)
    .await
    .expect("the context read is a prepared statement of this connection");
    assert_eq!(plans.custom_plans, 0, "planned for its values on some call");
    assert_eq!(
        plans.generic_plans, calls,
        "one generic plan, used by every call"
    );
    drop(conn);
    drop((general, batches));
    database::drop_database(&name).await;
}
