//! End to end: real API, real dispatcher, real RabbitMQ, real receivers on 127.0.0.1.

use std::time::Duration;

use octohooks_domain::signing::EndpointSecret;
use octohooks_tests::{eventually, Options, Receiver, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn secret_of(app: &TestApp, app_uid: &str, endpoint_id: &str) -> EndpointSecret {
    let answer = app
        .get(&format!(
            "/api/v1/applications/{app_uid}/endpoints/{endpoint_id}/secret"
        ))
        .await;
    EndpointSecret::parse("key", answer.json["key"].as_str().unwrap()).unwrap()
}

async fn attempts(app: &TestApp, app_uid: &str, message_id: &str) -> Vec<Value> {
    app.get(&format!(
        "/api/v1/applications/{app_uid}/messages/{message_id}/attempts"
    ))
    .await
    .json
    .as_array()
    .cloned()
    .unwrap_or_default()
}

async fn destination_status(app: &TestApp, app_uid: &str, message_id: &str) -> Value {
    app.get(&format!(
        "/api/v1/applications/{app_uid}/messages/{message_id}/endpoints"
    ))
    .await
    .json
}

#[tokio::test]
async fn delivers_exact_bytes_signed_with_standard_webhooks_headers() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    app.create_app("app").await;
    let endpoint = app
        .create_endpoint(
            "app",
            json!({"url": receiver.url("/hook"), "headers": {"X-Tenant": "acme"}}),
        )
        .await;
    let endpoint_id = endpoint["id"].as_str().unwrap();
    let payload = "{\"z\": 1.50,  \"a\":12345678901234567890,\n\"s\":\"é\\u00e9\"}";
    let message = app
        .send_raw(
            "app",
            &format!("{{\"eventType\":\"user.created\",\"payload\":{payload}}}"),
        )
        .await;
    let message_id = message["id"].as_str().unwrap();

    let got = receiver.wait_for("/hook", 1, 15).await;
    assert_eq!(got.len(), 1);
    let request = &got[0];
    assert_eq!(
        request.body,
        payload.as_bytes(),
        "body delivered byte for byte"
    );
    assert_eq!(request.header("content-type"), "application/json");
    assert!(request.header("user-agent").starts_with("octohooks/"));
    assert_eq!(request.header("webhook-id"), message_id);
    assert_eq!(request.header("x-tenant"), "acme");
    let timestamp: i64 = request.header("webhook-timestamp").parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((now - timestamp).abs() < 60);
    assert!(request.signed_by(&secret_of(&app, "app", endpoint_id).await));

    assert!(
        eventually(10, || async {
            attempts(&app, "app", message_id).await.len() == 1
        })
        .await
    );
    let attempt = &attempts(&app, "app", message_id).await[0];
    assert_eq!(attempt["status"], "success");
    assert_eq!(attempt["responseStatusCode"], 200);
    assert_eq!(attempt["response"], "answer 200");
    assert_eq!(attempt["triggerType"], "scheduled");
    assert_eq!(attempt["endpointId"], endpoint_id);
    assert_eq!(attempt["url"], receiver.url("/hook"));
    let one = app
        .get(&format!(
            "/api/v1/applications/app/messages/{message_id}/attempts/{}",
            attempt["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(one.json, *attempt);
    let by_endpoint = app
        .get(&format!(
            "/api/v1/applications/app/endpoints/{endpoint_id}/attempts"
        ))
        .await;
    assert_eq!(by_endpoint.json.as_array().unwrap().len(), 1);
    let status = destination_status(&app, "app", message_id).await;
    assert_eq!(status[0]["status"], "success");
    assert_eq!(status[0]["attempts"], 1);
    app.stop().await;
}

#[tokio::test]
async fn fans_out_to_matching_enabled_endpoints_only() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    app.create_app("app").await;
    for (path, filters) in [
        ("/all", json!({})),
        ("/created", json!({"eventTypes": ["user.created"]})),
        ("/deleted", json!({"eventTypes": ["user.deleted"]})),
        ("/eu", json!({"channels": ["eu"]})),
        ("/us", json!({"channels": ["us"]})),
        (
            "/created-eu",
            json!({"eventTypes": ["user.created"], "channels": ["eu", "asia"]}),
        ),
        ("/disabled", json!({"enabled": false})),
    ] {
        let mut body = filters;
        body["url"] = json!(receiver.url(path));
        app.create_endpoint("app", body).await;
    }
    app.post(
        "/api/v1/applications/app/messages",
        json!({"eventType": "user.created", "channels": ["eu"], "payload": {"n": 1}}),
    )
    .await;
    receiver.wait_for("/created-eu", 1, 15).await;
    receiver.wait_for("/all", 1, 5).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut paths: Vec<String> = receiver.received().into_iter().map(|r| r.path).collect();
    paths.sort();
    assert_eq!(paths, ["/all", "/created", "/created-eu", "/eu"]);
    let ids: std::collections::HashSet<String> = receiver
        .received()
        .iter()
        .map(|r| r.header("webhook-id").to_owned())
        .collect();
    assert_eq!(ids.len(), 1, "one webhook-id for every endpoint");
    app.stop().await;
}

#[tokio::test]
async fn a_message_without_matching_endpoints_is_stored_and_not_sent() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    app.create_app("app").await;
    app.create_endpoint(
        "app",
        json!({"url": receiver.url("/x"), "eventTypes": ["other"]}),
    )
    .await;
    let message = app
        .post(
            "/api/v1/applications/app/messages",
            json!({"eventType": "t", "payload": {}}),
        )
        .await;
    assert_eq!(message.status, StatusCode::ACCEPTED);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(receiver.received().is_empty());
    assert_eq!(app.count("SELECT count(*) FROM attempts").await, 0);
    assert_eq!(app.waiting_jobs().await, 0);
    assert_eq!(app.count("SELECT count(*) FROM messages").await, 1);
    app.stop().await;
}

#[tokio::test]
async fn failures_are_retried_until_success() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    receiver.respond_with(&[500, 503]);
    app.create_app("app").await;
    app.create_endpoint("app", json!({"url": receiver.url("/hook")}))
        .await;
    let message = app
        .post(
            "/api/v1/applications/app/messages",
            json!({"eventType": "t", "payload": {}}),
        )
        .await;
    let id = message.json["id"].as_str().unwrap().to_owned();
    let got = receiver.wait_for("/hook", 3, 20).await;
    assert_eq!(got.len(), 3);
    assert!(
        got.iter().all(|r| r.header("webhook-id") == id),
        "same webhook-id on every retry"
    );
    assert!(eventually(10, || async { attempts(&app, "app", &id).await.len() == 3 }).await);
    let listed = attempts(&app, "app", &id).await;
    let statuses: Vec<(&str, i64)> = listed
        .iter()
        .map(|a| {
            (
                a["status"].as_str().unwrap(),
                a["responseStatusCode"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [("success", 200), ("failed", 503), ("failed", 500)],
        "newest first"
    );
    let status = destination_status(&app, "app", &id).await;
    assert_eq!(status[0]["status"], "success");
    assert_eq!(status[0]["attempts"], 3);
    assert_eq!(status[0]["nextAttempt"], Value::Null);
    app.stop().await;
}

#[tokio::test]
async fn exhausted_retries_mark_the_delivery_failed() {
    let app = TestApp::spawn_with(Options {
        retry_schedule: "100ms,100ms".into(),
        ..Options::default()
    })
    .await;
    let receiver = Receiver::start().await;
    receiver.default_status(500);
    app.create_app("app").await;
    app.create_endpoint("app", json!({"url": receiver.url("/down")}))
        .await;
    let message = app
        .post(
            "/api/v1/applications/app/messages",
            json!({"eventType": "t", "payload": {}}),
        )
        .await;
    let id = message.json["id"].as_str().unwrap().to_owned();
    assert!(
        eventually(20, || async {
            destination_status(&app, "app", &id).await[0]["status"] == "failed"
        })
        .await
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        receiver.received_on("/down").len(),
        3,
        "1 + 2 retries, then nothing more"
    );
    assert_eq!(attempts(&app, "app", &id).await.len(), 3);
    assert_eq!(app.waiting_jobs().await, 0);
    app.stop().await;
}

#[tokio::test]
async fn timeouts_refused_connections_and_redirects_are_failed_attempts() {
    let app = TestApp::spawn_with(Options {
        retry_schedule: String::new(),
        delivery_timeout: "500ms".into(),
        ..Options::default()
    })
    .await;
    let slow = Receiver::start().await;
    slow.delay(Duration::from_secs(3));
    let redirect = Receiver::start().await;
    redirect.default_status(302);
    redirect.response_header("location", &slow.url("/elsewhere"));
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    app.create_app("app").await;
    for (uid, url) in [
        ("slow", slow.url("/slow")),
        ("redirect", redirect.url("/moved")),
        ("closed", format!("http://{closed}/nobody")),
    ] {
        app.create_endpoint("app", json!({"url": url, "uid": uid}))
            .await;
    }
    let message = app
        .post(
            "/api/v1/applications/app/messages",
            json!({"eventType": "t", "payload": {}}),
        )
        .await;
    let id = message.json["id"].as_str().unwrap().to_owned();
    assert!(eventually(20, || async { attempts(&app, "app", &id).await.len() == 3 }).await);
    let listed = attempts(&app, "app", &id).await;
    let by_url = |part: &str| {
        listed
            .iter()
            .find(|a| a["url"].as_str().unwrap().contains(part))
            .unwrap()
            .clone()
    };
    let timed_out = by_url("/slow");
    assert_eq!(timed_out["status"], "failed");
    assert_eq!(timed_out["responseStatusCode"], 0);
    assert!(
        timed_out["response"]
            .as_str()
            .unwrap()
            .contains("timed out"),
        "{timed_out}"
    );
    let moved = by_url("/moved");
    assert_eq!(moved["status"], "failed");
    assert_eq!(moved["responseStatusCode"], 302);
    assert!(
        slow.received_on("/elsewhere").is_empty(),
        "redirects are not followed"
    );
    let refused = by_url("/nobody");
    assert_eq!(refused["responseStatusCode"], 0);
    assert!(
        refused["response"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("refused"),
        "{refused}"
    );
    let statuses = destination_status(&app, "app", &id).await;
    assert!(statuses
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["status"] == "failed"));
    app.stop().await;
}

#[tokio::test]
async fn private_destinations_are_refused_by_default() {
    let app = TestApp::spawn_with(Options {
        allow_private: false,
        retry_schedule: String::new(),
        ..Options::default()
    })
    .await;
    let receiver = Receiver::start().await;
    app.create_app("app").await;
    let port = receiver.base.rsplit(':').next().unwrap().to_owned();
    for (uid, url) in [
        ("literal", receiver.url("/literal")),
        ("name", format!("http://localhost:{port}/name")),
        ("mapped", format!("http://[::ffff:127.0.0.1]:{port}/mapped")),
        (
            "metadata",
            "http://169.254.169.254/latest/meta-data".to_owned(),
        ),
    ] {
        app.create_endpoint("app", json!({"url": url, "uid": uid}))
            .await;
    }
    let message = app
        .post(
            "/api/v1/applications/app/messages",
            json!({"eventType": "t", "payload": {}}),
        )
        .await;
    let id = message.json["id"].as_str().unwrap().to_owned();
    assert!(eventually(20, || async { attempts(&app, "app", &id).await.len() == 4 }).await);
    for attempt in attempts(&app, "app", &id).await {
        assert_eq!(attempt["status"], "failed");
        assert!(
            attempt["response"]
                .as_str()
                .unwrap()
                .contains("destination refused"),
            "{attempt}"
        );
    }
    assert!(receiver.received().is_empty());
    app.stop().await;
}

#[tokio::test]
async fn rotated_secrets_both_sign_during_the_grace_period() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    app.create_app("app").await;
    let endpoint = app
        .create_endpoint("app", json!({"url": receiver.url("/hook"), "uid": "ep"}))
        .await;
    let old = secret_of(&app, "app", "ep").await;
    let rotate = app
        .call(
            Method::POST,
            "/api/v1/applications/app/endpoints/ep/secret/rotate",
            None,
        )
        .await;
    assert_eq!(rotate.status, StatusCode::NO_CONTENT);
    let new = secret_of(&app, "app", endpoint["id"].as_str().unwrap()).await;
    assert_ne!(old, new);
    app.post(
        "/api/v1/applications/app/messages",
        json!({"eventType": "t", "payload": {"r": 1}}),
    )
    .await;
    let got = receiver.wait_for("/hook", 1, 15).await;
    let signatures: Vec<&str> = got[0].header("webhook-signature").split(' ').collect();
    assert_eq!(signatures.len(), 2, "{signatures:?}");
    assert!(
        got[0].signed_by(&old),
        "receivers on the old secret still verify"
    );
    assert!(got[0].signed_by(&new));
    app.stop().await;
}

#[tokio::test]
async fn resend_makes_one_manual_attempt() {
    let app = TestApp::spawn_with(Options {
        retry_schedule: String::new(),
        ..Options::default()
    })
    .await;
    let receiver = Receiver::start().await;
    receiver.respond_with(&[500]);
    app.create_app("app").await;
    app.create_endpoint("app", json!({"url": receiver.url("/hook"), "uid": "ep"}))
        .await;
    let message = app
        .post(
            "/api/v1/applications/app/messages",
            json!({"eventType": "t", "payload": {}, "uid": "m"}),
        )
        .await;
    let id = message.json["id"].as_str().unwrap().to_owned();
    assert!(
        eventually(15, || async {
            destination_status(&app, "app", &id).await[0]["status"] == "failed"
        })
        .await
    );

    let resend = app
        .call(
            Method::POST,
            "/api/v1/applications/app/messages/m/endpoints/ep/resend",
            None,
        )
        .await;
    assert_eq!(resend.status, StatusCode::ACCEPTED, "{}", resend.text);
    let got = receiver.wait_for("/hook", 2, 15).await;
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].header("webhook-id"), id);
    assert!(eventually(10, || async { attempts(&app, "app", &id).await.len() == 2 }).await);
    let newest = &attempts(&app, "app", &id).await[0];
    assert_eq!(newest["triggerType"], "manual");
    assert_eq!(newest["status"], "success");
    let status = destination_status(&app, "app", &id).await;
    assert_eq!(status[0]["status"], "success");
    assert_eq!(status[0]["attempts"], 2);
    let unknown = app
        .call(
            Method::POST,
            "/api/v1/applications/app/messages/m/endpoints/nope/resend",
            None,
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test]
async fn deleting_an_endpoint_deletes_its_attempts_and_waiting_retries() {
    let app = TestApp::spawn_with(Options {
        retry_schedule: "1h".into(),
        ..Options::default()
    })
    .await;
    let failing = Receiver::start().await;
    failing.default_status(500);
    let healthy = Receiver::start().await;
    app.create_app("app").await;
    let doomed = app
        .create_endpoint("app", json!({"url": failing.url("/hook")}))
        .await;
    let doomed = doomed["id"].as_str().unwrap().to_owned();
    let kept = app
        .create_endpoint("app", json!({"url": healthy.url("/hook")}))
        .await;
    let message = app
        .post(
            "/api/v1/applications/app/messages",
            json!({"eventType": "t", "payload": {}}),
        )
        .await;
    let id = message.json["id"].as_str().unwrap().to_owned();
    assert!(eventually(10, || async { attempts(&app, "app", &id).await.len() == 2 }).await);
    let retries = format!("SELECT count(*) FROM outbox WHERE endpoint_id = '{doomed}'");
    assert_eq!(app.count(&retries).await, 1, "the retry waits an hour");

    let deleted = app
        .call(
            Method::DELETE,
            &format!("/api/v1/applications/app/endpoints/{doomed}"),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.text);
    assert_eq!(app.count(&retries).await, 0);
    let left = attempts(&app, "app", &id).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["endpointId"], kept["id"]);
    let doomed_rows = format!(
        "SELECT (SELECT count(*) FROM attempts WHERE endpoint_id = '{doomed}') \
         + (SELECT count(*) FROM message_destinations WHERE endpoint_id = '{doomed}')"
    );
    assert_eq!(app.count(&doomed_rows).await, 0);
    app.stop().await;
}
