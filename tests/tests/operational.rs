//! Operational webhooks through the real services: the operators' endpoints are managed apart
//! from the customers', receive signed events about endpoint changes and failing deliveries,
//! exactly once per cause, and only for changes that committed.

use std::collections::HashMap;

use octohooks_api::dto::OperationalEvent;
use octohooks_domain::signing::EndpointSecret;
use octohooks_tests::{eventually, Options, Receiver, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const OPS: &str = "/api/v1/operational-webhooks/endpoints";

async fn patch(app: &TestApp, path: &str, body: Value) -> (StatusCode, Value) {
    let answer = app
        .request(
            Method::PATCH,
            path,
            Some(&app.api_key.clone()),
            Some(body.to_string()),
            &[("content-type", "application/merge-patch+json")],
        )
        .await;
    (answer.status, answer.json)
}

/// Creates an operational endpoint and returns its signing secret.
async fn operator(app: &TestApp, body: Value) -> EndpointSecret {
    let created = app.post(OPS, body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let id = created.json["id"].as_str().expect("id");
    let secret = app.get(&format!("{OPS}/{id}/secret")).await;
    EndpointSecret::parse("key", secret.json["key"].as_str().expect("key")).expect("secret")
}

/// The events a receiver got on `path`, each checked against its signature and read as the
/// documented shape (unknown fields refused).
fn events(receiver: &Receiver, path: &str, secret: &EndpointSecret) -> Vec<OperationalEvent> {
    receiver
        .received_on(path)
        .iter()
        .map(|received| {
            assert!(received.signed_by(secret), "bad signature on {path}");
            serde_json::from_slice(&received.body)
                .unwrap_or_else(|err| panic!("{err}: {}", String::from_utf8_lossy(&received.body)))
        })
        .collect()
}

fn count_of(events: &[OperationalEvent]) -> HashMap<&str, usize> {
    let mut counts = HashMap::new();
    for event in events {
        *counts.entry(event.event_type.as_str()).or_insert(0) += 1;
    }
    counts
}

async fn send(app: &TestApp, application: &str) -> String {
    let sent = app
        .post(
            &format!("/api/v1/applications/{application}/messages"),
            json!({"eventType": "t", "payload": {}}),
        )
        .await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.text);
    sent.json["id"].as_str().expect("id").to_owned()
}

#[tokio::test]
async fn operational_endpoints_are_kept_apart_from_applications() {
    let app = TestApp::spawn_with(Options::api_only()).await;
    let stored = "SELECT count(*) FROM endpoints e JOIN applications a \
                  ON a.id = e.application_id WHERE a.operational";

    // Filters name operational event types only, and no channels: refused, nothing stored.
    for (body, field) in [
        (
            json!({"url": "http://127.0.0.1:9/ops", "eventTypes": ["invoice.paid"]}),
            "eventTypes",
        ),
        (
            json!({"url": "http://127.0.0.1:9/ops", "channels": ["eu"]}),
            "channels",
        ),
    ] {
        let refused = app.post(OPS, body).await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(refused.json["code"], "validation_error", "{}", refused.text);
        assert!(refused.text.contains(field), "{}", refused.text);
    }
    assert_eq!(app.count(stored).await, 0);

    let created = app
        .post(
            OPS,
            json!({"uid": "ops", "url": "http://127.0.0.1:9/ops",
                   "eventTypes": ["endpoint.disabled", "message.attempt.exhausted"]}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(
        created.json["eventTypes"],
        json!(["endpoint.disabled", "message.attempt.exhausted"])
    );
    let listed = app.get(OPS).await;
    assert_eq!(
        listed.json.as_array().map(Vec::len),
        Some(1),
        "{}",
        listed.text
    );
    assert_eq!(app.get(&format!("{OPS}/ops")).await.json["uid"], "ops");
    let secret = app.get(&format!("{OPS}/ops/secret")).await;
    assert!(secret.json["key"].as_str().unwrap().starts_with("whsec_"));
    let rotated = app
        .call(Method::POST, &format!("{OPS}/ops/secret/rotate"), None)
        .await;
    assert_eq!(rotated.status, StatusCode::NO_CONTENT, "{}", rotated.text);
    let (status, patched) = patch(
        &app,
        &format!("{OPS}/ops"),
        json!({"description": "pager", "eventTypes": ["invoice.paid"]}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{patched}");
    let (status, patched) =
        patch(&app, &format!("{OPS}/ops"), json!({"description": "pager"})).await;
    assert_eq!(
        (status, &patched["description"]),
        (StatusCode::OK, &json!("pager"))
    );
    let attempts = app.get(&format!("{OPS}/ops/attempts")).await;
    assert_eq!(
        (attempts.status, attempts.json.clone()),
        (StatusCode::OK, json!([]))
    );

    // The operational application is no application of the environment: not listed, not found
    // by id, no messages can be sent to it, and its endpoints are not the customers'.
    app.create_app("shop").await;
    let apps = app.get("/api/v1/applications").await;
    assert_eq!(apps.json.as_array().map(Vec::len), Some(1), "{}", apps.text);
    let hidden = app
        .count("SELECT count(*) FROM applications WHERE operational")
        .await;
    assert_eq!(hidden, 1);
    let endpoint_id = app.get(&format!("{OPS}/ops")).await.json["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ops_app = app
        .text("SELECT id FROM applications WHERE operational")
        .await;
    assert_eq!(
        app.get(&format!("/api/v1/applications/{ops_app}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let forged = app
        .post(
            &format!("/api/v1/applications/{ops_app}/messages"),
            json!({"eventType": "endpoint.disabled", "payload": {}}),
        )
        .await;
    assert_eq!(forged.status, StatusCode::NOT_FOUND, "{}", forged.text);
    assert_eq!(
        app.get(&format!(
            "/api/v1/applications/shop/endpoints/{endpoint_id}"
        ))
        .await
        .status,
        StatusCode::NOT_FOUND
    );

    // A portal token of a customer's application does not open them.
    let link = app
        .post("/api/v1/applications/shop/portal-access", json!({}))
        .await;
    let token = link.json["token"].as_str().expect("token").to_owned();
    let answer = app.request(Method::GET, OPS, Some(&token), None, &[]).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.text);

    let deleted = app.call(Method::DELETE, &format!("{OPS}/ops"), None).await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.text);
    assert_eq!(
        app.get(&format!("{OPS}/ops")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.count(stored).await, 0);
    app.stop().await;
}

#[tokio::test]
async fn endpoint_changes_reach_the_operators_once_each_and_only_when_committed() {
    let app = TestApp::spawn().await;
    let ops = Receiver::start().await;
    let all = operator(&app, json!({"url": ops.url("/all")})).await;
    let deletions = operator(
        &app,
        json!({"url": ops.url("/deleted"), "eventTypes": ["endpoint.deleted"]}),
    )
    .await;
    let shop = app.create_app("shop").await;
    let first = app
        .create_endpoint("shop", json!({"uid": "a", "url": "http://127.0.0.1:9/a"}))
        .await;
    app.create_endpoint("shop", json!({"uid": "b", "url": "http://127.0.0.1:9/b"}))
        .await;
    let path = "/api/v1/applications/shop/endpoints/a";
    let moved = app
        .call(
            Method::PUT,
            path,
            Some(json!({"url": "http://127.0.0.1:9/a2"})),
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.text);
    // A change that fails raises nothing; one that changes nothing raises nothing.
    let clash = app
        .call(
            Method::PUT,
            path,
            Some(json!({"url": "http://127.0.0.1:9/a2", "uid": "b"})),
        )
        .await;
    assert_eq!(clash.status, StatusCode::CONFLICT, "{}", clash.text);
    assert_eq!(
        patch(&app, path, json!({"url": "http://127.0.0.1:9/a2"}))
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        patch(&app, path, json!({"enabled": false})).await.0,
        StatusCode::OK
    );
    assert_eq!(
        patch(&app, path, json!({"enabled": true})).await.0,
        StatusCode::OK
    );
    assert_eq!(
        app.call(Method::DELETE, path, None).await.status,
        StatusCode::OK
    );
    // Deleting the application tells of its remaining endpoint.
    assert_eq!(
        app.call(Method::DELETE, "/api/v1/applications/shop", None)
            .await
            .status,
        StatusCode::OK
    );

    ops.wait_for("/all", 7, 15).await;
    ops.wait_for("/deleted", 2, 15).await;
    // Nothing more comes: every change was told once.
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    let told = events(&ops, "/all", &all);
    let counts = count_of(&told);
    let expected: HashMap<&str, usize> = [
        ("endpoint.created", 2),
        ("endpoint.updated", 1),
        ("endpoint.disabled", 1),
        ("endpoint.enabled", 1),
        ("endpoint.deleted", 2),
    ]
    .into();
    assert_eq!(counts, expected, "{told:?}");
    for event in &told {
        assert_eq!(event.data.app_id.to_string(), shop);
        assert!(event.data.msg_id.is_none() && event.data.last_attempt.is_none());
        assert!(event.timestamp > 1_700_000_000_000);
    }
    let disabled = told
        .iter()
        .find(|e| e.event_type == "endpoint.disabled")
        .unwrap();
    assert_eq!(
        disabled.data.endpoint_id.to_string(),
        first["id"].as_str().unwrap()
    );
    assert_eq!(disabled.data.endpoint_uid.as_deref(), Some("a"));
    assert_eq!(disabled.data.app_uid.as_deref(), Some("shop"));
    assert_eq!(
        disabled.data.trigger,
        Some(octohooks_api::dto::DisableTrigger::Manual)
    );
    assert_eq!(disabled.data.fail_since, None);
    let only_deletions = events(&ops, "/deleted", &deletions);
    assert_eq!(count_of(&only_deletions), [("endpoint.deleted", 2)].into());
    // The events are messages of the operational application only.
    assert_eq!(
        app.count(
            "SELECT count(*) FROM messages m JOIN applications a ON a.id = m.application_id \
             WHERE NOT a.operational"
        )
        .await,
        0
    );
    app.stop().await;
}

#[tokio::test]
async fn failing_exhausted_and_recovered_follow_the_attempts() {
    let app = TestApp::spawn_with(Options {
        retry_schedule: "100ms,100ms,100ms,100ms,100ms".into(),
        ..Options::default()
    })
    .await;
    let ops = Receiver::start().await;
    let secret = operator(
        &app,
        json!({"url": ops.url("/ops"),
               "eventTypes": ["message.attempt.failing", "message.attempt.exhausted",
                              "message.attempt.recovered"]}),
    )
    .await;
    // An operational endpoint that fails raises nothing about itself.
    let broken = Receiver::start().await;
    broken.default_status(500);
    operator(&app, json!({"url": broken.url("/broken")})).await;

    let customer = Receiver::start().await;
    app.create_app("shop").await;
    let endpoint = app
        .create_endpoint("shop", json!({"uid": "hook", "url": customer.url("/hook")}))
        .await;
    let endpoint_id = endpoint["id"].as_str().unwrap().to_owned();

    // Four failures, then a success: failing after the fourth, recovered after the fifth.
    customer.respond_with(&[500, 500, 500, 500, 200]);
    let recovering = send(&app, "shop").await;
    customer.wait_for("/hook", 5, 15).await;
    ops.wait_for("/ops", 2, 15).await;

    // Every scheduled attempt fails: failing after the fourth, exhausted after the sixth.
    customer.default_status(503);
    let lost = send(&app, "shop").await;
    customer.wait_for("/hook", 11, 15).await;
    ops.wait_for("/ops", 4, 15).await;
    // The broken operational endpoint has run out of attempts too (six of each event sent to
    // it), and nothing was raised about it.
    broken.wait_for("/broken", 6, 15).await;
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;

    let told = events(&ops, "/ops", &secret);
    let of = |msg: &str, kind: &str| -> Vec<&OperationalEvent> {
        told.iter()
            .filter(|e| {
                e.event_type == kind
                    && e.data.msg_id.map(|id| id.to_string()).as_deref() == Some(msg)
            })
            .collect()
    };
    assert_eq!(told.len(), 4, "{told:?}");
    assert_eq!(of(&recovering, "message.attempt.failing").len(), 1);
    assert_eq!(of(&recovering, "message.attempt.recovered").len(), 1);
    assert_eq!(of(&lost, "message.attempt.failing").len(), 1);
    assert_eq!(of(&lost, "message.attempt.exhausted").len(), 1);
    for event in &told {
        assert_eq!(event.data.endpoint_id.to_string(), endpoint_id);
        assert_eq!(event.data.endpoint_uid.as_deref(), Some("hook"));
        assert_eq!(event.data.msg_uid, None);
    }
    // lastAttempt is the attempt that raised it, as stored.
    let recovered = of(&recovering, "message.attempt.recovered")[0];
    let last = recovered.data.last_attempt.as_ref().unwrap();
    assert_eq!(last.response_status_code, 200);
    let attempt = app
        .get(&format!(
            "/api/v1/applications/shop/messages/{recovering}/attempts/{}",
            last.id
        ))
        .await;
    assert_eq!(attempt.status, StatusCode::OK, "{}", attempt.text);
    assert_eq!(attempt.json["responseStatusCode"], 200);
    let exhausted = of(&lost, "message.attempt.exhausted")[0];
    assert_eq!(
        exhausted
            .data
            .last_attempt
            .as_ref()
            .unwrap()
            .response_status_code,
        503
    );

    // A resend that succeeds after exhaustion tells of the recovery too.
    customer.default_status(200);
    let resent = app
        .call(
            Method::POST,
            &format!("/api/v1/applications/shop/messages/{lost}/endpoints/hook/resend"),
            None,
        )
        .await;
    assert_eq!(resent.status, StatusCode::ACCEPTED, "{}", resent.text);
    ops.wait_for("/ops", 5, 15).await;
    let told = events(&ops, "/ops", &secret);
    assert!(
        told.iter()
            .any(|e| e.event_type == "message.attempt.recovered"
                && e.data.msg_id.map(|id| id.to_string()) == Some(lost.clone())),
        "{told:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn an_endpoint_disabled_under_load_raises_exactly_one_event() {
    let options = Options {
        retry_schedule: "300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms".into(),
        ..Options::default()
    }
    .with_vars(&[("OCTOHOOKS_ENDPOINT_DISABLE_AFTER", "1s")]);
    let app = TestApp::spawn_with(options).await;
    let ops = Receiver::start().await;
    let secret = operator(
        &app,
        json!({"url": ops.url("/ops"), "eventTypes": ["endpoint.disabled"]}),
    )
    .await;
    let down = Receiver::start().await;
    down.default_status(500);
    let gone = Receiver::start().await;
    gone.default_status(410);
    app.create_app("shop").await;
    app.create_endpoint("shop", json!({"uid": "down", "url": down.url("/down")}))
        .await;
    app.create_app("other").await;
    app.create_endpoint("other", json!({"uid": "gone", "url": gone.url("/gone")}))
        .await;
    // Many deliveries failing at once, across the disable threshold.
    let sends = (0..40).map(|_| send(&app, "shop"));
    futures::future::join_all(sends).await;
    send(&app, "other").await;
    send(&app, "other").await;
    assert!(
        eventually(20, || async {
            app.get("/api/v1/applications/shop/endpoints/down")
                .await
                .json["enabled"]
                == false
        })
        .await
    );
    ops.wait_for("/ops", 2, 15).await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let told = events(&ops, "/ops", &secret);
    assert_eq!(told.len(), 2, "{told:?}");
    let by_uid = |uid: &str| {
        told.iter()
            .find(|e| e.data.endpoint_uid.as_deref() == Some(uid))
            .unwrap_or_else(|| panic!("no event for {uid}: {told:?}"))
    };
    for uid in ["down", "gone"] {
        let event = by_uid(uid);
        assert_eq!(event.event_type, "endpoint.disabled");
        assert_eq!(
            event.data.trigger,
            Some(octohooks_api::dto::DisableTrigger::Automatic)
        );
        let since = event.data.fail_since.expect("failSince");
        assert!(since <= event.timestamp, "{event:?}");
    }
    // The failing run began before the endpoint was disabled, by at least the threshold.
    let down_event = by_uid("down");
    assert!(down_event.timestamp - down_event.data.fail_since.unwrap() >= 1000);
    app.stop().await;
}
