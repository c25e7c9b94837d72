//! Deleting an application or an environment takes its waiting retries with it: outbox jobs
//! have no foreign key to their endpoint, so nothing else would remove them.

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

#[tokio::test]
async fn deleting_an_application_or_its_environment_deletes_its_waiting_retries() {
    let app = TestApp::spawn_with(Options {
        retry_schedule: "1h".into(),
        ..Options::default()
    })
    .await;
    let failing = Receiver::start().await;
    failing.default_status(500);
    let doomed = app_with_a_waiting_retry(&app, "doomed", &failing).await;
    let kept = app_with_a_waiting_retry(&app, "kept", &failing).await;

    let deleted = app
        .call(Method::DELETE, "/api/v1/applications/doomed", None)
        .await;
    assert!(deleted.status.is_success(), "{}", deleted.text);
    assert_eq!(app.count(&retries_of(&doomed)).await, 0);
    assert_eq!(
        app.count(&retries_of(&kept)).await,
        1,
        "another application's retry stays"
    );

    let environment = format!("/api/v1/environments/{}", app.environment_id);
    let deleted = app.admin(Method::DELETE, &environment, None).await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.text);
    assert_eq!(app.count("SELECT count(*) FROM outbox").await, 0);
    app.stop().await;
}
