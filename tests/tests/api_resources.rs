//! Applications, endpoints, secrets and event types through every route of the seed.

use octohooks_tests::{Options, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    keys
}

#[tokio::test]
async fn application_lifecycle_by_id_and_uid() {
    let app = TestApp::spawn_with(Options::api_only()).await;
    let created = app
        .post(
            "/api/v1/applications",
            json!({"name": "My App", "uid": "my-app"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(
        keys(&created.json),
        ["created", "id", "name", "uid", "updated"]
    );
    assert_eq!(created.json["name"], "My App");
    assert_eq!(created.json["uid"], "my-app");
    let id = created.json["id"].as_str().unwrap().to_owned();
    assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 7);
    assert!(created.json["created"].as_i64().unwrap() > 1_600_000_000_000);

    for path in [
        format!("/api/v1/applications/{id}"),
        "/api/v1/applications/my-app".into(),
    ] {
        let got = app.get(&path).await;
        assert_eq!(got.status, StatusCode::OK);
        assert_eq!(got.json, created.json);
    }

    let updated = app
        .call(
            Method::PUT,
            "/api/v1/applications/my-app",
            Some(json!({"name": "Renamed"})),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.text);
    assert_eq!(updated.json["name"], "Renamed");
    assert_eq!(updated.json["uid"], "my-app", "a uid left out is kept");

    let listed = app.get("/api/v1/applications").await;
    assert_eq!(listed.json.as_array().unwrap().len(), 1);

    let deleted = app
        .call(Method::DELETE, &format!("/api/v1/applications/{id}"), None)
        .await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert_eq!(deleted.json["id"], id.as_str());
    let gone = app.get(&format!("/api/v1/applications/{id}")).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(gone.json["code"], "not_found");
    app.stop().await;
}

#[tokio::test]
async fn application_input_is_validated_and_changes_nothing() {
    let app = TestApp::spawn_with(Options::api_only()).await;
    app.create_app("taken").await;
    let cases = [
        (
            json!({"name": "", "uid": "a"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "name",
        ),
        (
            json!({"name": "x", "uid": "not valid"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "uid",
        ),
        (
            json!({"name": "x", "uid": "a".repeat(257)}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "uid",
        ),
        (json!({"name": 5}), StatusCode::UNPROCESSABLE_ENTITY, "name"),
        (
            json!({"uid": "no-name"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "name",
        ),
        (
            json!({"name": "x", "uid": "taken"}),
            StatusCode::CONFLICT,
            "uid",
        ),
    ];
    for (body, status, field) in cases {
        let answer = app.post("/api/v1/applications", body.clone()).await;
        assert_eq!(answer.status, status, "{body}: {}", answer.text);
        assert_eq!(answer.header("content-type"), "application/problem+json");
        assert!(
            answer.json["detail"].as_str().unwrap().contains(field),
            "{}",
            answer.text
        );
        assert!(answer.json["code"].is_string());
    }
    let malformed = app
        .request(
            Method::POST,
            "/api/v1/applications",
            Some(&app.api_key.clone()),
            Some("{\"name\":".into()),
            &[],
        )
        .await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    assert_eq!(malformed.json["code"], "invalid_json");
    assert_eq!(app.count("SELECT count(*) FROM applications").await, 1);
    // A 256-character uid and unicode names are fine.
    let long = app
        .post(
            "/api/v1/applications",
            json!({"name": "Ünïcødé ✓ 应用", "uid": "u".repeat(256)}),
        )
        .await;
    assert_eq!(long.status, StatusCode::CREATED);
    assert_eq!(long.json["name"], "Ünïcødé ✓ 应用");
    app.stop().await;
}

#[tokio::test]
async fn endpoint_lifecycle_defaults_and_secret() {
    let app = TestApp::spawn_with(Options::api_only()).await;
    app.create_app("app").await;
    let created = app
        .create_endpoint(
            "app",
            json!({
                "url": "https://example.com/hook", "name": "My Endpoint", "uid": "my-endpoint",
                "eventTypes": ["user.created"]
            }),
        )
        .await;
    assert_eq!(
        keys(&created),
        [
            "channels",
            "created",
            "description",
            "enabled",
            "eventTypes",
            "headers",
            "id",
            "name",
            "rateLimit",
            "secrets",
            "uid",
            "updated",
            "url"
        ]
    );
    assert_eq!(created["enabled"], true);
    assert_eq!(created["channels"], json!([]));
    assert_eq!(created["headers"], json!({}));
    assert_eq!(created["eventTypes"], json!(["user.created"]));
    let id = created["id"].as_str().unwrap();

    let by_uid = app
        .get("/api/v1/applications/app/endpoints/my-endpoint")
        .await;
    assert_eq!(by_uid.json, created);
    let secret = app
        .get(&format!("/api/v1/applications/app/endpoints/{id}/secret"))
        .await;
    let key = secret.json["key"].as_str().unwrap();
    assert!(key.starts_with("whsec_"));
    assert!(octohooks_domain::signing::EndpointSecret::parse("key", key).is_ok());

    let updated = app
        .call(
            Method::PUT,
            "/api/v1/applications/app/endpoints/my-endpoint",
            Some(json!({
                "url": "https://example.com/other", "enabled": false, "channels": ["eu"],
                "headers": {"X-Tenant": "acme"}
            })),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.text);
    assert_eq!(updated.json["url"], "https://example.com/other");
    assert_eq!(updated.json["enabled"], false);
    assert_eq!(updated.json["channels"], json!(["eu"]));
    assert_eq!(
        updated.json["eventTypes"],
        json!(["user.created"]),
        "kept when left out"
    );
    assert_eq!(updated.json["headers"], json!({"x-tenant": "acme"}));
    assert_eq!(updated.json["uid"], "my-endpoint");

    let listed = app.get("/api/v1/applications/app/endpoints").await;
    assert_eq!(listed.json.as_array().unwrap().len(), 1);
    let deleted = app
        .call(
            Method::DELETE,
            "/api/v1/applications/app/endpoints/my-endpoint",
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert_eq!(deleted.json["id"], id);
    assert_eq!(
        app.get("/api/v1/applications/app/endpoints/my-endpoint")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.count("SELECT count(*) FROM endpoint_secrets").await, 0);
    app.stop().await;
}

#[tokio::test]
async fn endpoint_input_is_validated() {
    let app = TestApp::spawn_with(Options::api_only()).await;
    app.create_app("app").await;
    app.create_endpoint("app", json!({"url": "https://example.com", "uid": "taken"}))
        .await;
    let path = "/api/v1/applications/app/endpoints";
    let cases = [
        (
            json!({"url": "ftp://example.com"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "url",
        ),
        (
            json!({"url": "not a url"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "url",
        ),
        (
            json!({"url": format!("https://example.com/{}", "a".repeat(3000))}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "url",
        ),
        (json!({}), StatusCode::UNPROCESSABLE_ENTITY, "url"),
        (
            json!({"url": "https://e.com", "headers": {"X-A": "a\r\nInjected: 1"}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "headers",
        ),
        (
            json!({"url": "https://e.com", "headers": {"Transfer-Encoding": "chunked"}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "headers",
        ),
        (
            json!({"url": "https://e.com", "headers": {"webhook-signature": "v1,x"}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "headers",
        ),
        (
            json!({"url": "https://e.com", "eventTypes": ["bad type"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "eventTypes",
        ),
        (
            json!({"url": "https://e.com", "secret": "nope"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "secret",
        ),
        (
            json!({"url": "https://e.com", "uid": "taken"}),
            StatusCode::CONFLICT,
            "uid",
        ),
        (
            json!({"url": "https://e.com", "enabled": "yes"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "enabled",
        ),
    ];
    for (body, status, field) in cases {
        let answer = app.post(path, body.clone()).await;
        assert_eq!(answer.status, status, "{body}: {}", answer.text);
        assert!(
            answer.json["detail"].as_str().unwrap().contains(field),
            "{}",
            answer.text
        );
    }
    assert_eq!(app.count("SELECT count(*) FROM endpoints").await, 1);
    let missing_app = app
        .post(
            "/api/v1/applications/nope/endpoints",
            json!({"url": "https://e.com"}),
        )
        .await;
    assert_eq!(missing_app.status, StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test]
async fn given_secret_is_used_and_rotation_keeps_the_old_one_for_a_day() {
    let app = TestApp::spawn_with(Options::api_only()).await;
    app.create_app("app").await;
    let given = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    app.create_endpoint(
        "app",
        json!({"url": "https://e.com", "uid": "ep", "secret": given}),
    )
    .await;
    let path = "/api/v1/applications/app/endpoints/ep/secret";
    assert_eq!(app.get(path).await.json["key"], given);

    let rotated = app
        .call(Method::POST, &format!("{path}/rotate"), None)
        .await;
    assert_eq!(rotated.status, StatusCode::NO_CONTENT, "{}", rotated.text);
    let new_key = app.get(path).await.json["key"].as_str().unwrap().to_owned();
    assert_ne!(new_key, given);
    let chosen = "whsec_QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODk=";
    let rotated = app
        .call(
            Method::POST,
            &format!("{path}/rotate"),
            Some(json!({"key": chosen})),
        )
        .await;
    assert_eq!(rotated.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get(path).await.json["key"], chosen);
    // Both previous secrets still sign, each until about 24 hours from its rotation.
    let live = app
        .count("SELECT count(*) FROM endpoint_secrets WHERE expires > now() + interval '23 hours'")
        .await;
    assert_eq!(live, 2);
    // Rotating on: at most four former secrets keep signing, the oldest retire first.
    for _ in 0..4 {
        let rotated = app
            .call(Method::POST, &format!("{path}/rotate"), None)
            .await;
        assert_eq!(rotated.status, StatusCode::NO_CONTENT);
    }
    let current = app.get(path).await.json["key"].as_str().unwrap().to_owned();
    assert_eq!(
        app.count("SELECT count(*) FROM endpoint_secrets WHERE expires IS NULL")
            .await,
        1,
        "one current secret"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM endpoint_secrets WHERE expires IS NOT NULL")
            .await,
        4,
        "four former ones"
    );
    assert_ne!(current, chosen);
    let bad = app
        .call(
            Method::POST,
            &format!("{path}/rotate"),
            Some(json!({"key": "whsec_x"})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    app.stop().await;
}

#[tokio::test]
async fn event_type_lifecycle() {
    let app = TestApp::spawn_with(Options::api_only()).await;
    let created = app
        .post(
            "/api/v1/event-types",
            json!({"name": "invoice.paid", "description": "Paid"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(
        keys(&created.json),
        [
            "archived",
            "created",
            "deprecated",
            "description",
            "groupName",
            "name",
            "schemaValidation",
            "schemas",
            "updated"
        ]
    );
    assert_eq!(created.json["archived"], false);
    let duplicate = app
        .post("/api/v1/event-types", json!({"name": "invoice.paid"}))
        .await;
    assert_eq!(duplicate.status, StatusCode::CONFLICT);
    let invalid = app
        .post("/api/v1/event-types", json!({"name": "has space"}))
        .await;
    assert_eq!(invalid.status, StatusCode::UNPROCESSABLE_ENTITY);

    let updated = app
        .call(
            Method::PUT,
            "/api/v1/event-types/invoice.paid",
            Some(json!({"archived": true})),
        )
        .await;
    assert_eq!(updated.json["archived"], true);
    assert_eq!(updated.json["description"], "Paid");
    assert_eq!(
        app.get("/api/v1/event-types/invoice.paid").await.json["archived"],
        true
    );
    assert_eq!(
        app.get("/api/v1/event-types")
            .await
            .json
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let deleted = app
        .call(Method::DELETE, "/api/v1/event-types/invoice.paid", None)
        .await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert_eq!(
        app.get("/api/v1/event-types/invoice.paid").await.status,
        StatusCode::NOT_FOUND
    );
    app.stop().await;
}
