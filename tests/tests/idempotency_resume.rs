//! A keyed POST whose first try committed its object but died before storing the answer (the
//! database went away in between, then the process): the claim lapses, a retry of the key takes
//! it over and must answer with the object that try made, not create a second one. The lost
//! answer is staged by clearing the stored reply and ageing the claim past its lapse.

use base64::Engine as _;
use octohooks_tests::app::{Answer, ADMIN_TOKEN};
use octohooks_tests::{Options, TestApp};
use reqwest::{Method, StatusCode};

fn sealing_api_only() -> Options {
    Options {
        dispatcher: false,
        extra: vec![(
            "OCTOHOOKS_SECRET_ENCRYPTION_KEY".into(),
            base64::engine::general_purpose::STANDARD.encode([7u8; 32]),
        )],
        ..Options::default()
    }
}

async fn post_with_key(app: &TestApp, token: &str, path: &str, body: &str, key: &str) -> Answer {
    app.request(
        Method::POST,
        path,
        Some(token),
        Some(body.to_owned()),
        &[("idempotency-key", key)],
    )
    .await
}

/// Makes the key look like the first try's: its object written, no answer stored, the claim
/// older than the lapse.
async fn lose_answer(app: &TestApp, key: &str) {
    let changed = app
        .execute(&format!(
            "UPDATE idempotency_keys SET status_code = NULL, response_body = NULL, \
             created = now() - interval '10 minutes' WHERE key = '{key}'"
        ))
        .await;
    assert_eq!(changed, 1, "the key {key} was stored");
}

/// Sends, loses the answer, sends again: both answers.
async fn retried_after_a_lost_answer(
    app: &TestApp,
    token: &str,
    path: &str,
    body: &str,
    key: &str,
) -> (Answer, Answer) {
    let first = post_with_key(app, token, path, body, key).await;
    assert!(first.status.is_success(), "{}", first.text);
    lose_answer(app, key).await;
    let again = post_with_key(app, token, path, body, key).await;
    (first, again)
}

#[tokio::test]
async fn tenant_objects_are_found_not_made_twice() {
    let app = TestApp::spawn_with(sealing_api_only()).await;
    let key = app.api_key.clone();

    let (first, again) = retried_after_a_lost_answer(
        &app,
        &key,
        "/api/v1/applications",
        r#"{"name":"Shop","uid":"shop"}"#,
        "k-app",
    )
    .await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.text);
    assert_eq!(again.json["id"], first.json["id"]);
    assert_eq!(app.count("SELECT count(*) FROM applications").await, 1);
    let object_id = app
        .count(&format!(
            "SELECT count(*) FROM idempotency_keys WHERE key = 'k-app' AND object_id = '{}'",
            first.json["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(object_id, 1, "the claim names the object it made");

    // Another body under the stale key is another request: refused, and nothing is made.
    lose_answer(&app, "k-app").await;
    let other = post_with_key(
        &app,
        &key,
        "/api/v1/applications",
        r#"{"name":"Other"}"#,
        "k-app",
    )
    .await;
    assert_eq!(other.status, StatusCode::CONFLICT, "{}", other.text);
    assert_eq!(other.json["code"], "idempotency_key_reused");
    assert_eq!(app.count("SELECT count(*) FROM applications").await, 1);

    let (first, again) = retried_after_a_lost_answer(
        &app,
        &key,
        "/api/v1/applications/shop/endpoints",
        r#"{"url":"https://example.com/hook"}"#,
        "k-endpoint",
    )
    .await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.text);
    assert_eq!(again.json["id"], first.json["id"]);
    assert_eq!(app.count("SELECT count(*) FROM endpoints").await, 1);
    let endpoint = first.json["id"].as_str().unwrap().to_owned();

    let (first, again) = retried_after_a_lost_answer(
        &app,
        &key,
        "/api/v1/applications/shop/messages",
        r#"{"eventType":"order.paid","payload":{"n":1}}"#,
        "k-message",
    )
    .await;
    assert_eq!(again.status, StatusCode::ACCEPTED, "{}", again.text);
    assert_eq!(again.json["id"], first.json["id"]);
    assert_eq!(again.json["created"], first.json["created"]);
    assert_eq!(app.count("SELECT count(*) FROM messages").await, 1);
    assert_eq!(
        app.count("SELECT count(*) FROM message_destinations").await,
        1
    );

    let rotate = format!("/api/v1/applications/shop/endpoints/{endpoint}/secret/rotate");
    let (_, again) = retried_after_a_lost_answer(&app, &key, &rotate, "", "k-rotate").await;
    assert_eq!(again.status, StatusCode::NO_CONTENT, "{}", again.text);
    assert_eq!(
        app.count("SELECT count(*) FROM endpoint_secrets").await,
        2,
        "rotated once: the first secret and one new one"
    );
    app.stop().await;
}

/// Status of a request made with `token`.
async fn status_with(app: &TestApp, token: &str) -> StatusCode {
    app.request(Method::GET, "/api/v1/applications", Some(token), None, &[])
        .await
        .status
}

#[tokio::test]
async fn a_key_shown_in_a_lost_answer_is_replaced_not_doubled() {
    let app = TestApp::spawn_with(sealing_api_only()).await;
    let keys_path = format!("/api/v1/environments/{}/api-keys", app.environment_id);
    let keys_before = app.count("SELECT count(*) FROM api_keys").await;
    let (first, again) =
        retried_after_a_lost_answer(&app, ADMIN_TOKEN, &keys_path, "", "k-api-key").await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.text);
    assert_ne!(again.json["id"], first.json["id"]);
    let (lost, replacement) = (
        first.json["apiKey"].as_str().unwrap(),
        again.json["apiKey"].as_str().unwrap(),
    );
    assert_eq!(
        app.count("SELECT count(*) FROM api_keys").await,
        keys_before + 1,
        "one live key from one request"
    );
    assert_eq!(status_with(&app, replacement).await, StatusCode::OK);
    assert_eq!(status_with(&app, lost).await, StatusCode::UNAUTHORIZED);

    let (first, again) = retried_after_a_lost_answer(
        &app,
        ADMIN_TOKEN,
        "/api/v1/environments",
        r#"{"name":"Staging"}"#,
        "k-environment",
    )
    .await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.text);
    assert_eq!(again.json["id"], first.json["id"]);
    assert_eq!(
        app.count("SELECT count(*) FROM environments WHERE name = 'Staging'")
            .await,
        1
    );
    let environment = first.json["id"].as_str().unwrap();
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM api_keys WHERE environment_id = '{environment}'"
        ))
        .await,
        1
    );
    let (lost, replacement) = (
        first.json["apiKey"].as_str().unwrap(),
        again.json["apiKey"].as_str().unwrap(),
    );
    assert_eq!(status_with(&app, replacement).await, StatusCode::OK);
    assert_eq!(status_with(&app, lost).await, StatusCode::UNAUTHORIZED);
    app.stop().await;
}
