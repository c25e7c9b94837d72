//! Event types with JSON Schemas, through the real API: invalid schemas are refused, enforced
//! schemas gate messages at ingest (nothing stored when refused), and every replica follows a
//! change of schema at once.

use octohooks_tests::app::{Options, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn invoice_schema() -> Value {
    json!({
        "type": "object",
        "required": ["id", "amount"],
        "properties": {
            "id": {"type": "string"},
            "amount": {"type": "integer", "minimum": 0},
            "email": {"type": "string", "format": "email"}
        },
        "examples": [{"id": "inv_1", "amount": 1200}]
    })
}

async fn send(app: &TestApp, base: &str, event_type: &str, payload: Value) -> (StatusCode, Value) {
    let answer = app
        .call(
            Method::POST,
            &format!("{base}/api/v1/applications/shop/messages"),
            Some(json!({"eventType": event_type, "payload": payload})),
        )
        .await;
    (answer.status, answer.json)
}

#[tokio::test]
async fn schemas_are_checked_when_stored_and_nothing_invalid_is_kept() {
    let app = TestApp::spawn_with(Options::api_only()).await;
    let not_a_schema = app
        .post(
            "/api/v1/event-types",
            json!({"name": "invoice.paid", "schemas": {"1": {"type": "strnig"}}}),
        )
        .await;
    assert_eq!(not_a_schema.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(not_a_schema.json["code"], "validation_error");
    let detail = not_a_schema.json["detail"].as_str().unwrap();
    assert!(detail.starts_with("schemas.1:"), "{detail}");
    for (schemas, named) in [
        (json!({"v1": {}}), "not a version"),
        (
            json!({"1": {"$ref": "http://127.0.0.1:9/remote.json"}}),
            "schemas.1",
        ),
        (json!([]), "schemas"),
    ] {
        let refused = app
            .post(
                "/api/v1/event-types",
                json!({"name": "invoice.paid", "schemas": schemas}),
            )
            .await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{schemas}"
        );
        assert!(refused.text.contains(named), "{schemas}: {}", refused.text);
    }
    let nothing_to_enforce = app
        .post(
            "/api/v1/event-types",
            json!({"name": "invoice.paid", "schemaValidation": "enforce"}),
        )
        .await;
    assert_eq!(nothing_to_enforce.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(nothing_to_enforce.text.contains("schemaValidation"));
    assert_eq!(app.count("SELECT count(*) FROM event_types").await, 0);

    let created = app
        .post(
            "/api/v1/event-types",
            json!({"name": "invoice.paid", "groupName": "billing", "deprecated": true,
                   "schemas": {"1": invoice_schema()}}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.json["schemas"]["1"], invoice_schema());
    assert_eq!(created.json["schemaValidation"], "off");
    assert_eq!(created.json["groupName"], "billing");
    assert_eq!(created.json["deprecated"], true);

    // A PUT that would break the stored schema changes nothing.
    let broken = app
        .call(
            Method::PUT,
            "/api/v1/event-types/invoice.paid",
            Some(json!({"schemas": {"1": {"minimum": "zero"}}, "groupName": "other"})),
        )
        .await;
    assert_eq!(broken.status, StatusCode::UNPROCESSABLE_ENTITY);
    let stored = app.get("/api/v1/event-types/invoice.paid").await;
    assert_eq!(stored.json["schemas"]["1"], invoice_schema());
    assert_eq!(stored.json["groupName"], "billing");
    let cleared = app
        .call(
            Method::PUT,
            "/api/v1/event-types/invoice.paid",
            Some(json!({"groupName": null})),
        )
        .await;
    assert_eq!(cleared.status, StatusCode::OK);
    assert_eq!(cleared.json["groupName"], Value::Null);
    assert_eq!(cleared.json["schemas"]["1"], invoice_schema());
    app.stop().await;
}

#[tokio::test]
async fn an_enforced_schema_refuses_bad_payloads_and_stores_nothing() {
    let app = TestApp::spawn_with(Options::api_only()).await;
    app.create_app("shop").await;
    // Not enforced yet: anything goes.
    let created = app
        .post(
            "/api/v1/event-types",
            json!({"name": "invoice.paid", "schemas": {"1": invoice_schema()}}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let (status, _) = send(&app, "", "invoice.paid", json!({"free": "form"})).await;
    assert_eq!(status, StatusCode::ACCEPTED);

    let enforced = app
        .call(
            Method::PUT,
            "/api/v1/event-types/invoice.paid",
            Some(json!({"schemaValidation": "enforce"})),
        )
        .await;
    assert_eq!(enforced.status, StatusCode::OK, "{}", enforced.text);
    assert_eq!(enforced.json["schemaValidation"], "enforce");
    let before = app.count("SELECT count(*) FROM messages").await;

    let (status, problem) = send(
        &app,
        "",
        "invoice.paid",
        json!({"amount": -5, "email": "not-an-email"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["code"], "schema_violation");
    assert!(problem["detail"].as_str().unwrap().contains("invoice.paid"));
    let pointers: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| error["pointer"].as_str().unwrap())
        .collect();
    for expected in ["", "/amount", "/email"] {
        assert!(pointers.contains(&expected), "{expected} in {problem}");
    }
    assert!(problem["errors"][0]["reason"].as_str().is_some());
    assert_eq!(
        app.count("SELECT count(*) FROM messages").await,
        before,
        "a refused message is not stored"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM outbox o LEFT JOIN messages m ON m.id = o.message_id WHERE m.id IS NULL")
            .await,
        0,
        "nor queued"
    );

    let (status, accepted) = send(
        &app,
        "",
        "invoice.paid",
        json!({"id": "inv_2", "amount": 10, "email": "a@example.com"}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    // Other event types, declared or not, are not checked.
    let (status, _) = send(&app, "", "undeclared.type", json!(["anything"])).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(app.count("SELECT count(*) FROM messages").await, before + 2);

    // Switching enforcement off takes effect at once.
    app.call(
        Method::PUT,
        "/api/v1/event-types/invoice.paid",
        Some(json!({"schemaValidation": "off"})),
    )
    .await;
    let (status, _) = send(&app, "", "invoice.paid", json!({"amount": -5})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    app.stop().await;
}

#[tokio::test]
async fn the_latest_version_is_enforced_and_every_replica_follows_a_change() {
    let app = TestApp::spawn_with(Options::api_only()).await;
    app.create_app("shop").await;
    let (_replica, replica) = octohooks_tests::process::spawn_api(&app.env_vars()).await;
    let created = app
        .post(
            "/api/v1/event-types",
            json!({"name": "user.created", "schemaValidation": "enforce", "schemas": {
                "1": {"type": "object", "required": ["id"]},
                "2": {"type": "object", "required": ["id", "email"]}
            }}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    // Version 2 is the latest: `email` is required. Both replicas agree (the replica's cache is
    // filled by this first check).
    for base in ["", replica.as_str()] {
        let (status, problem) = send(&app, base, "user.created", json!({"id": "u1"})).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{base}: {problem}"
        );
        assert!(problem["detail"].as_str().unwrap().contains("version 2"));
    }
    // A third version that drops the requirement, stored through the first process: the
    // replica hears of it through the change notice.
    let changed = app
        .call(
            Method::PUT,
            "/api/v1/event-types/user.created",
            Some(json!({"schemas": {
                "1": {"type": "object", "required": ["id"]},
                "2": {"type": "object", "required": ["id", "email"]},
                "3": {"type": "object"}
            }})),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
    let followed = octohooks_tests::eventually(10, || async {
        send(&app, &replica, "user.created", json!({"id": "u1"}))
            .await
            .0
            == StatusCode::ACCEPTED
    })
    .await;
    assert!(followed, "the replica still enforces the old version");
    // Deleting the type ends enforcement everywhere.
    app.call(Method::DELETE, "/api/v1/event-types/user.created", None)
        .await;
    let unchecked = octohooks_tests::eventually(10, || async {
        send(&app, &replica, "user.created", json!("no object"))
            .await
            .0
            == StatusCode::ACCEPTED
    })
    .await;
    assert!(unchecked, "the replica still enforces a deleted type");
    app.stop().await;
}

#[tokio::test]
async fn send_example_delivers_the_example_to_that_endpoint_only() {
    let app = TestApp::spawn().await;
    let receiver = octohooks_tests::Receiver::start().await;
    app.create_app("shop").await;
    // The target filters other event types, and a second endpoint would take everything:
    // neither filter nor fan-out applies to an example.
    let target = app
        .create_endpoint(
            "shop",
            json!({"url": receiver.url("/target"), "uid": "target", "eventTypes": ["other"]}),
        )
        .await;
    app.create_endpoint("shop", json!({"url": receiver.url("/bystander")}))
        .await;
    app.post(
        "/api/v1/event-types",
        json!({"name": "invoice.paid", "schemas": {"1": invoice_schema()},
               "schemaValidation": "enforce"}),
    )
    .await;
    app.post("/api/v1/event-types", json!({"name": "bare"}))
        .await;
    let path = "/api/v1/applications/shop/endpoints/target/send-example";

    let sent = app.post(path, json!({"eventType": "invoice.paid"})).await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.text);
    assert_eq!(sent.json["eventType"], "invoice.paid");
    assert_eq!(sent.json["payload"], json!({"id": "inv_1", "amount": 1200}));
    let id = sent.json["id"].as_str().unwrap().to_owned();
    let got = receiver.wait_for("/target", 1, 15).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].header("webhook-id"), id);
    let body: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(body, json!({"id": "inv_1", "amount": 1200}));
    // A real, recorded message: listed, with its attempt.
    let attempts_path = format!("/api/v1/applications/shop/messages/{id}/attempts");
    let recorded = octohooks_tests::eventually(10, || async {
        app.get(&attempts_path).await.json.as_array().map(Vec::len) == Some(1)
    })
    .await;
    assert!(recorded, "the example's attempt is recorded");
    assert_eq!(
        app.get(&format!("/api/v1/applications/shop/messages/{id}"))
            .await
            .status,
        StatusCode::OK
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        receiver.received_on("/bystander").is_empty(),
        "the example went to the other endpoint too"
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM message_destinations WHERE endpoint_id = '{}'",
            target["id"].as_str().unwrap()
        ))
        .await,
        1
    );

    let before = app.count("SELECT count(*) FROM messages").await;
    for (body, status, code) in [
        (
            json!({"eventType": "bare"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_error",
        ),
        (
            json!({"eventType": "undeclared"}),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            json!({"eventType": "has space"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_error",
        ),
        (
            json!({}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_error",
        ),
    ] {
        let refused = app.post(path, body.clone()).await;
        assert_eq!(refused.status, status, "{body}: {}", refused.text);
        assert_eq!(refused.json["code"], code, "{body}");
    }
    let unknown_endpoint = app
        .post(
            "/api/v1/applications/shop/endpoints/nope/send-example",
            json!({"eventType": "invoice.paid"}),
        )
        .await;
    assert_eq!(unknown_endpoint.status, StatusCode::NOT_FOUND);
    let disabled = app
        .call(
            Method::PUT,
            "/api/v1/applications/shop/endpoints/target",
            Some(json!({"url": receiver.url("/target"), "enabled": false})),
        )
        .await;
    assert_eq!(disabled.status, StatusCode::OK, "{}", disabled.text);
    let refused = app.post(path, json!({"eventType": "invoice.paid"})).await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.text);
    assert_eq!(app.count("SELECT count(*) FROM messages").await, before);
    app.stop().await;
}

#[tokio::test]
async fn import_openapi_creates_and_updates_event_types_all_or_nothing() {
    let app = TestApp::spawn_with(Options::api_only()).await;
    app.create_app("shop").await;
    let spec = |description: &str| {
        json!({
            "openapi": "3.1.0",
            "info": {"title": "Shop", "version": "1"},
            "webhooks": {
                "invoice.paid": {"post": {
                    "description": description,
                    "requestBody": {"content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/Invoice"},
                        "example": {"id": "inv_1", "amount": 5}
                    }}}
                }},
                "user.created": {"post": {"summary": "A user signed up"}}
            },
            "components": {"schemas": {"Invoice": {
                "type": "object", "required": ["id", "amount"],
                "properties": {"id": {"type": "string"}, "amount": {"type": "integer"}}
            }}}
        })
    };
    // An existing, archived and enforced type is updated in place.
    app.post(
        "/api/v1/event-types",
        json!({"name": "user.created", "archived": true, "groupName": "users",
               "schemas": {"1": {"type": "object"}}, "schemaValidation": "enforce"}),
    )
    .await;
    let imported = app
        .post(
            "/api/v1/event-types/import-openapi",
            json!({"spec": spec("An invoice was paid")}),
        )
        .await;
    assert_eq!(imported.status, StatusCode::OK, "{}", imported.text);
    let modified = imported.json["modified"].as_array().unwrap();
    assert_eq!(modified.len(), 2);
    assert_eq!(modified[0]["name"], "invoice.paid");
    assert_eq!(modified[0]["description"], "An invoice was paid");
    let schema = &modified[0]["schemas"]["1"];
    assert_eq!(schema["$ref"], "#/$defs/Invoice");
    assert_eq!(schema["examples"], json!([{"id": "inv_1", "amount": 5}]));
    let user = &modified[1];
    assert_eq!(
        (
            &user["archived"],
            &user["groupName"],
            &user["schemaValidation"]
        ),
        (&json!(false), &json!("users"), &json!("enforce"))
    );
    assert_eq!(user["description"], "A user signed up");
    assert_eq!(
        user["schemas"]["1"],
        json!({"type": "object"}),
        "a webhook without a body keeps the schemas it had"
    );

    // The imported schema works: enforced, it refuses what does not match, through $defs.
    app.call(
        Method::PUT,
        "/api/v1/event-types/invoice.paid",
        Some(json!({"schemaValidation": "enforce"})),
    )
    .await;
    let (status, problem) = send(&app, "", "invoice.paid", json!({"id": "x", "amount": "5"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["errors"][0]["pointer"], "/amount");
    // Its example can be sent at once.
    let example = app
        .post(
            "/api/v1/applications/shop/endpoints",
            json!({"url": "http://127.0.0.1:9/never", "uid": "ep"}),
        )
        .await;
    assert_eq!(example.status, StatusCode::CREATED);
    let sent = app
        .post(
            "/api/v1/applications/shop/endpoints/ep/send-example",
            json!({"eventType": "invoice.paid"}),
        )
        .await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.text);

    // Importing again updates; one bad webhook refuses the whole document.
    let again = app
        .post(
            "/api/v1/event-types/import-openapi",
            json!({"specRaw": spec("Paid, v2").to_string()}),
        )
        .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    let mut broken = spec("Never stored");
    broken["webhooks"]["bad one"] = json!({});
    let refused = app
        .post(
            "/api/v1/event-types/import-openapi",
            json!({"spec": broken}),
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.json["detail"]
        .as_str()
        .unwrap()
        .starts_with("spec.webhooks.bad one"));
    let mut dangling = spec("Never stored");
    dangling["components"] = json!({});
    let refused = app
        .post(
            "/api/v1/event-types/import-openapi",
            json!({"spec": dangling}),
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    for body in [
        json!({}),
        json!({"specRaw": "openapi: 3.1.0"}),
        json!({"spec": {"paths": {}}}),
    ] {
        let refused = app
            .post("/api/v1/event-types/import-openapi", body.clone())
            .await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    }
    assert_eq!(app.count("SELECT count(*) FROM event_types").await, 2);
    let stored = app.get("/api/v1/event-types/invoice.paid").await;
    assert_eq!(stored.json["description"], "Paid, v2");
    app.stop().await;
}
