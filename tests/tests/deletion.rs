//! Deleting an application or an environment takes its waiting retries with it (outbox jobs
//! have no foreign key to their endpoint, so nothing else would remove them), and the
//! destinations and attempts of its messages (which have no foreign key to their message: a
//! trigger on messages removes them). A large application's messages go in statements of a
//! bounded size.

use octohooks_tests::{eventually, Options, Receiver, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::json;

/// Creates application `uid` with one endpoint that always fails, sends it a message, and waits
/// until its first attempt failed and the retry (an hour away) waits in the outbox. Returns the
/// endpoint's id.
async fn app_with_a_waiting_retry(app: &TestApp, uid: &str, receiver: &Receiver) -> String {
    app.create_app(uid).await;
    let endpoint = app
        .create_endpoint(uid, json!({"url": receiver.url(&format!("/{uid}"))}))
        .await;
    let endpoint = endpoint["id"].as_str().unwrap().to_owned();
    let sent = app
        .post(
            &format!("/api/v1/applications/{uid}/messages"),
            json!({"eventType": "t", "payload": {}}),
        )
        .await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.text);
    receiver.wait_for(&format!("/{uid}"), 1, 15).await;
    let retry = retries_of(&endpoint);
    assert!(
        eventually(10, || async { app.count(&retry).await == 1 }).await,
        "the retry of {uid} waits in the outbox"
    );
    endpoint
}

fn retries_of(endpoint: &str) -> String {
    format!("SELECT count(*) FROM outbox WHERE endpoint_id = '{endpoint}'")
}

fn attempts_of(endpoint: &str) -> String {
    format!("SELECT count(*) FROM attempts WHERE endpoint_id = '{endpoint}'")
}

/// Destinations and attempts of every message, whether or not their message is there.
const DELIVERIES: &str =
    "SELECT (SELECT count(*) FROM message_destinations) + (SELECT count(*) FROM attempts)";

#[tokio::test]
async fn deleting_an_application_or_its_environment_deletes_its_retries_destinations_and_attempts()
{
    let app = TestApp::spawn_with(Options {
        retry_schedule: "1h".into(),
        ..Options::default()
    })
    .await;
    let failing = Receiver::start().await;
    failing.default_status(500);
    let doomed = app_with_a_waiting_retry(&app, "doomed", &failing).await;
    let kept = app_with_a_waiting_retry(&app, "kept", &failing).await;
    assert_eq!(app.count(&attempts_of(&doomed)).await, 1);
    assert_eq!(
        app.count(DELIVERIES).await,
        4,
        "a destination and an attempt each"
    );

    let deleted = app
        .call(Method::DELETE, "/api/v1/applications/doomed", None)
        .await;
    assert!(deleted.status.is_success(), "{}", deleted.text);
    assert_eq!(app.count(&retries_of(&doomed)).await, 0);
    assert_eq!(app.count(&attempts_of(&doomed)).await, 0);
    assert_eq!(
        app.count(&retries_of(&kept)).await,
        1,
        "another application's retry stays"
    );
    assert_eq!(app.count(&attempts_of(&kept)).await, 1);
    assert_eq!(
        app.count(DELIVERIES).await,
        2,
        "the other application's stay"
    );

    let environment = format!("/api/v1/environments/{}", app.environment_id);
    let deleted = app.admin(Method::DELETE, &environment, None).await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.text);
    assert_eq!(app.waiting_jobs().await, 0);
    assert_eq!(app.count(DELIVERIES).await, 0);
    app.stop().await;
}

/// An application `uid` with one endpoint that is never reached and one message sent to it, on
/// an API-only app; returns the endpoint's and the message's ids.
async fn one_message(app: &TestApp, uid: &str) -> (uuid::Uuid, uuid::Uuid) {
    app.create_app(uid).await;
    let endpoint = app
        .create_endpoint(uid, json!({"url": format!("http://127.0.0.1:9/{uid}")}))
        .await;
    let endpoint_id = endpoint["id"].as_str().unwrap().parse().unwrap();
    let sent = app
        .post(
            &format!("/api/v1/applications/{uid}/messages"),
            json!({"eventType": "t", "payload": {}}),
        )
        .await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.text);
    let message_id = sent.json["id"].as_str().unwrap().parse().unwrap();
    (endpoint_id, message_id)
}

/// A successful attempt of `message_id` to `endpoint_id`, as a dispatcher records it.
fn successful_attempt(
    message_id: uuid::Uuid,
    endpoint_id: uuid::Uuid,
    trigger_type: octohooks_domain::job::TriggerType,
    job_id: Option<i64>,
) -> octohooks_db::models::Attempt {
    octohooks_db::models::Attempt {
        id: uuid::Uuid::now_v7(),
        message_id,
        endpoint_id,
        url: "http://127.0.0.1:9/".into(),
        status: octohooks_domain::status::AttemptStatus::Success,
        response_status_code: 200,
        response: String::new(),
        response_duration_ms: 1,
        trigger_type,
        created: chrono::Utc::now(),
        job_id,
    }
}

/// A connection of its own to the app's database, for calling the storage layer directly.
async fn storage(app: &TestApp) -> octohooks_db::pool::Conn {
    let db = octohooks_db::pool::build_pool(
        &app.database_url,
        &octohooks_db::pool::PoolOptions::default(),
    )
    .unwrap();
    octohooks_db::pool::connection(&db).await.unwrap()
}

/// An attempt that a dispatcher records after its message was deleted (retention removed it
/// while a resend was under way; its endpoint stays) leaves nothing behind: no attempt, no
/// destination.
#[tokio::test]
async fn an_attempt_recorded_after_its_message_went_leaves_nothing() {
    use octohooks_db::deliveries::{
        record_manual, record_scheduled, ScheduledOutcome, ScheduledRecord,
    };
    use octohooks_domain::job::TriggerType;

    let app = TestApp::spawn_with(Options::api_only()).await;
    let (endpoint_id, message_id) = one_message(&app, "gone").await;
    assert_eq!(
        app.execute(&format!("DELETE FROM messages WHERE id = '{message_id}'"))
            .await,
        1
    );
    assert_eq!(
        app.count(DELIVERIES).await,
        0,
        "the trigger took its destination"
    );

    let mut conn = storage(&app).await;
    let attempt = |trigger_type| successful_attempt(message_id, endpoint_id, trigger_type, None);
    let scheduled = ScheduledRecord {
        attempt: attempt(TriggerType::Scheduled),
        attempts_before: 0,
        outcome: ScheduledOutcome::Delivered,
        traceparent: None,
        remove_job: false,
    };
    let recorded = record_scheduled(&mut conn, &[&scheduled]).await.unwrap();
    assert_eq!(
        recorded,
        vec![false],
        "nothing to record for a message that is gone"
    );
    let manual = record_manual(&mut conn, &attempt(TriggerType::Manual))
        .await
        .unwrap();
    assert!(!manual, "the manual record says it stored nothing");
    assert_eq!(
        app.count(DELIVERIES).await,
        0,
        "neither record stored an attempt or a destination"
    );
    app.stop().await;
}

/// A manual attempt is stored once per job: its second record answers false and stores nothing
/// (so the dispatcher counts nothing for it). `TRUNCATE messages` takes every destination and
/// attempt with it, as a statement deleting them all would.
#[tokio::test]
async fn a_manual_attempt_is_recorded_once_and_truncating_messages_empties_deliveries() {
    use octohooks_db::deliveries::record_manual;
    use octohooks_domain::job::TriggerType;

    let app = TestApp::spawn_with(Options::api_only()).await;
    let (endpoint_id, message_id) = one_message(&app, "once").await;

    let mut conn = storage(&app).await;
    let attempt = || successful_attempt(message_id, endpoint_id, TriggerType::Manual, Some(7));
    assert!(
        record_manual(&mut conn, &attempt()).await.unwrap(),
        "the first record of the job stores its attempt"
    );
    assert!(
        !record_manual(&mut conn, &attempt()).await.unwrap(),
        "the same job recorded again stores nothing"
    );
    let attempts = format!("SELECT count(*) FROM attempts WHERE message_id = '{message_id}'");
    assert_eq!(app.count(&attempts).await, 1);

    assert!(app.count(DELIVERIES).await > 0);
    app.execute("TRUNCATE messages").await;
    assert_eq!(
        app.count(DELIVERIES).await,
        0,
        "the destination and the attempt went with the messages"
    );
    app.stop().await;
}

/// Application `large` with 12,000 messages to its 10 endpoints (a destination and an attempt
/// each) and 100 fan-out rows, beside application `kept` with one message; and a statement
/// trigger of the test's own that logs how many messages each statement removes (table
/// `removals`). Returns the kept message's id.
async fn large_application_with_logged_removals(app: &TestApp) -> uuid::Uuid {
    app.create_app("large").await;
    for i in 0..10 {
        app.create_endpoint(
            "large",
            json!({"url": format!("http://127.0.0.1:9/large/{i}")}),
        )
        .await;
    }
    let (_, kept_message) = one_message(app, "kept").await;
    let of_large = "JOIN applications a ON a.id = m.application_id WHERE a.uid = 'large'";
    app.execute(
        "INSERT INTO messages (id, application_id, event_type, channels, payload, created) \
         SELECT gen_random_uuid(), a.id, 'old', '{}', '{}', now() \
         FROM applications a, generate_series(1, 12000) WHERE a.uid = 'large'",
    )
    .await;
    app.execute(&format!(
        "INSERT INTO message_destinations \
           (message_id, endpoint_id, status, scheduled_attempts, attempt_count, updated) \
         SELECT m.id, e.id, 'success', 1, 1, now() FROM messages m \
           JOIN endpoints e ON e.application_id = m.application_id {of_large}"
    ))
    .await;
    app.execute(&format!(
        "INSERT INTO attempts (id, message_id, endpoint_id, url, status, response_status_code, \
           response, response_duration_ms, trigger_type, created) \
         SELECT gen_random_uuid(), m.id, e.id, e.url, 'success', 200, '', 1, 'scheduled', now() \
         FROM messages m JOIN endpoints e ON e.application_id = m.application_id {of_large}"
    ))
    .await;
    app.execute(&format!(
        "INSERT INTO outbox_fanouts (message_id, due) \
         SELECT m.id, now() + interval '1 hour' FROM messages m {of_large} LIMIT 100"
    ))
    .await;
    assert_eq!(app.count(DELIVERIES).await, 240_001);
    app.execute("CREATE TABLE removals (messages bigint)").await;
    app.execute(
        "CREATE FUNCTION log_removal() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN INSERT INTO removals SELECT count(*) FROM removed; RETURN NULL; END $$",
    )
    .await;
    app.execute(
        "CREATE TRIGGER messages_removal_logged AFTER DELETE ON messages \
         REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION log_removal()",
    )
    .await;
    kept_message
}

/// No statement removed more than 5,000 messages (50,000 destinations over 10 endpoints),
/// and the large application's 12,000 took at least three.
async fn assert_removed_in_bounded_statements(app: &TestApp) {
    assert!(
        app.count("SELECT count(*) FROM removals WHERE messages > 0")
            .await
            >= 3,
        "5,000, 5,000 and 2,000 messages at least"
    );
    assert_eq!(app.count("SELECT max(messages) FROM removals").await, 5_000);
}

/// A large application's messages go oldest first in statements of a bounded number of
/// destinations, with their destinations, attempts and fan-out rows, before the application;
/// another application's stay. Removed in one statement with the application, two million
/// messages took 7.5 s, and near 2.7 million it met the statement timeout.
#[tokio::test]
async fn a_large_application_goes_in_statements_of_a_bounded_size() {
    let app = TestApp::spawn_with(Options::api_only()).await;
    let kept_message = large_application_with_logged_removals(&app).await;

    let deleted = app
        .call(Method::DELETE, "/api/v1/applications/large", None)
        .await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.text);
    assert_removed_in_bounded_statements(&app).await;
    assert_eq!(app.count("SELECT count(*) FROM messages").await, 1);
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM message_destinations WHERE message_id = '{kept_message}'"
        ))
        .await,
        1,
        "the other application's destination stays"
    );
    assert_eq!(app.count(DELIVERIES).await, 1);
    assert_eq!(app.count("SELECT count(*) FROM outbox_fanouts").await, 0);
    let gone = app
        .call(Method::GET, "/api/v1/applications/large", None)
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    app.stop().await;
}

/// The same when the environment goes: every application's messages first, in bounded
/// statements.
#[tokio::test]
async fn an_environment_with_a_large_application_goes_in_statements_of_a_bounded_size() {
    let app = TestApp::spawn_with(Options::api_only()).await;
    large_application_with_logged_removals(&app).await;

    let environment = format!("/api/v1/environments/{}", app.environment_id);
    let deleted = app.admin(Method::DELETE, &environment, None).await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.text);
    assert_removed_in_bounded_statements(&app).await;
    assert_eq!(app.count("SELECT count(*) FROM messages").await, 0);
    assert_eq!(app.count(DELIVERIES).await, 0);
    assert_eq!(app.count("SELECT count(*) FROM outbox_fanouts").await, 0);
    app.stop().await;
}
