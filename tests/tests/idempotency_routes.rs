//! `Idempotency-Key` on every POST route: the routes that joined the first four (rotating a
//! secret, resending, and the admin routes) replay their first answer and act once.

use base64::Engine as _;
use octohooks_tests::{Options, Receiver, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::json;

const ENCRYPTION_KEY: [u8; 32] = [7; 32];

fn sealing_api_only() -> Options {
    Options {
        dispatcher: false,
        extra: vec![(
            "OCTOHOOKS_SECRET_ENCRYPTION_KEY".into(),
            base64::engine::general_purpose::STANDARD.encode(ENCRYPTION_KEY),
        )],
        ..Options::default()
    }
}

/// POSTs `body` twice with the same key and token; both answers.
async fn post_twice(
    app: &TestApp,
    token: &str,
    path: &str,
    body: Option<&str>,
    key: &str,
) -> (octohooks_tests::app::Answer, octohooks_tests::app::Answer) {
    let headers = [("idempotency-key", key)];
    let send = || {
        app.request(
            Method::POST,
            path,
            Some(token),
            body.map(str::to_owned),
            &headers,
        )
    };
    let first = send().await;
    let second = send().await;
    (first, second)
}

#[tokio::test]
async fn rotating_a_secret_with_a_key_rotates_once() {
    let app = TestApp::spawn_with(sealing_api_only()).await;
    app.create_app("app").await;
    app.create_endpoint("app", json!({"url": "http://127.0.0.1:9/", "uid": "ep"}))
        .await;
    let before = app
        .get("/api/v1/applications/app/endpoints/ep/secret")
        .await;
    let key = app.api_key.clone();
    let (first, second) = post_twice(
        &app,
        &key,
        "/api/v1/applications/app/endpoints/ep/secret/rotate",
        None,
        "rotate-1",
    )
    .await;
    assert_eq!(first.status, StatusCode::NO_CONTENT, "{}", first.text);
    assert_eq!(second.status, StatusCode::NO_CONTENT, "{}", second.text);
    assert_eq!(second.header("idempotent-replayed"), "true");
    assert_eq!(second.text, "");
    assert_eq!(second.header("content-type"), "");
    // One rotation: the first secret and one new one, not two.
    assert_eq!(app.count("SELECT count(*) FROM endpoint_secrets").await, 2);
    let after = app
        .get("/api/v1/applications/app/endpoints/ep/secret")
        .await;
    assert_ne!(before.json["key"], after.json["key"]);
    app.stop().await;
}

#[tokio::test]
async fn resending_with_a_key_makes_one_attempt() {
    let receiver = Receiver::start().await;
    let app = TestApp::spawn().await;
    app.create_app("app").await;
    app.create_endpoint("app", json!({"url": receiver.url("/hook"), "uid": "ep"}))
        .await;
    let message = app
        .send_raw("app", r#"{"eventType":"t","payload":{"n":1}}"#)
        .await;
    receiver.wait_for("/hook", 1, 10).await;
    let id = message["id"].as_str().expect("id");
    let key = app.api_key.clone();
    let (first, second) = post_twice(
        &app,
        &key,
        &format!("/api/v1/applications/app/messages/{id}/endpoints/ep/resend"),
        None,
        "resend-1",
    )
    .await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.text);
    assert_eq!(second.status, StatusCode::ACCEPTED);
    assert_eq!(first.text, second.text);
    assert_eq!(second.header("idempotent-replayed"), "true");
    assert_eq!(first.json["status"], "queued");
    assert_eq!(receiver.wait_for("/hook", 2, 10).await.len(), 2);
    // Both jobs, had there been two, were queued before the first one arrived.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(receiver.received_on("/hook").len(), 2);
    let manual = "SELECT count(*) FROM attempts WHERE trigger_type = 'manual'";
    assert_eq!(app.count(manual).await, 1);
    app.stop().await;
    receiver.stop().await;
}

#[tokio::test]
async fn creating_an_environment_with_a_key_creates_one_and_replays_its_api_key() {
    let app = TestApp::spawn_with(sealing_api_only()).await;
    let admin = octohooks_tests::app::ADMIN_TOKEN;
    let body = json!({"name": "Staging"}).to_string();
    let (first, second) =
        post_twice(&app, admin, "/api/v1/environments", Some(&body), "env-1").await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    assert_eq!(second.status, StatusCode::CREATED);
    assert_eq!(first.text, second.text);
    assert_eq!(second.header("idempotent-replayed"), "true");
    let name = "SELECT count(*) FROM environments WHERE name = 'Staging'";
    assert_eq!(app.count(name).await, 1);
    // The key shown once is stored sealed, not readable in the replay table.
    let api_key = first.json["apiKey"].as_str().expect("apiKey");
    let plaintext = format!(
        "SELECT count(*) FROM idempotency_keys WHERE position('{api_key}' in convert_from(response_body, 'UTF8')) > 0"
    );
    assert_eq!(app.count(&plaintext).await, 0);
    let sealed = "SELECT count(*) FROM idempotency_keys WHERE key = 'env-1' AND convert_from(response_body, 'UTF8') LIKE 'enc2:%'";
    assert_eq!(app.count(sealed).await, 1);
    // The replayed key works.
    let listed = app
        .request(
            Method::GET,
            "/api/v1/applications",
            Some(api_key),
            None,
            &[],
        )
        .await;
    assert_eq!(listed.status, StatusCode::OK);
    // The admin scope is its own: the same key in a tenant environment is a new request.
    let tenant = app
        .request(
            Method::POST,
            "/api/v1/applications",
            Some(&app.api_key.clone()),
            Some(json!({"name": "n"}).to_string()),
            &[("idempotency-key", "env-1")],
        )
        .await;
    assert_eq!(tenant.status, StatusCode::CREATED, "{}", tenant.text);
    app.stop().await;
}

#[tokio::test]
async fn adding_an_api_key_with_a_key_adds_one() {
    let app = TestApp::spawn_with(sealing_api_only()).await;
    let admin = octohooks_tests::app::ADMIN_TOKEN;
    let path = format!("/api/v1/environments/{}/api-keys", app.environment_id);
    let (first, second) = post_twice(&app, admin, &path, None, "key-1").await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    assert_eq!(second.status, StatusCode::CREATED);
    assert_eq!(first.json["id"], second.json["id"]);
    assert_eq!(second.json["apiKey"], first.json["apiKey"]);
    assert_eq!(app.count("SELECT count(*) FROM api_keys").await, 2);
    // A key used on another admin route is refused.
    let reused = app
        .request(
            Method::POST,
            "/api/v1/environments",
            Some(admin),
            Some(json!({"name": "x"}).to_string()),
            &[("idempotency-key", "key-1")],
        )
        .await;
    assert_eq!(reused.status, StatusCode::CONFLICT);
    assert_eq!(reused.json["code"], "idempotency_key_reused");
    app.stop().await;
}

#[tokio::test]
async fn deleting_an_environment_deletes_its_idempotency_keys() {
    let app = TestApp::spawn_with(sealing_api_only()).await;
    let created = app
        .request(
            Method::POST,
            "/api/v1/applications",
            Some(&app.api_key.clone()),
            Some(json!({"name": "n"}).to_string()),
            &[("idempotency-key", "app-1")],
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let keys = "SELECT count(*) FROM idempotency_keys WHERE key = 'app-1'";
    assert_eq!(app.count(keys).await, 1);
    let deleted = app
        .admin(
            Method::DELETE,
            &format!("/api/v1/environments/{}", app.environment_id),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.text);
    assert_eq!(app.count(keys).await, 0);
    app.stop().await;
}

#[tokio::test]
async fn a_key_reused_with_another_body_is_refused_and_changes_nothing() {
    let app = TestApp::spawn_with(sealing_api_only()).await;
    app.create_app("app").await;
    let key = app.api_key.clone();
    let path = "/api/v1/applications/app/messages";
    let send = |body: serde_json::Value| {
        app.request(
            Method::POST,
            path,
            Some(&key),
            Some(body.to_string()),
            &[("idempotency-key", "order-1")],
        )
    };
    let first = send(json!({"eventType": "order.paid", "payload": {"amount": 10}})).await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.text);

    let other = send(json!({"eventType": "order.paid", "payload": {"amount": 99}})).await;
    assert_eq!(other.status, StatusCode::CONFLICT, "{}", other.text);
    assert_eq!(other.json["code"], "idempotency_key_reused");
    assert_eq!(app.count("SELECT count(*) FROM messages").await, 1);

    let again = send(json!({"eventType": "order.paid", "payload": {"amount": 10}})).await;
    assert_eq!(again.status, StatusCode::ACCEPTED);
    assert_eq!(again.header("idempotent-replayed"), "true");
    assert_eq!(again.json["id"], first.json["id"]);
    assert_eq!(app.count("SELECT count(*) FROM messages").await, 1);
    app.stop().await;
}
