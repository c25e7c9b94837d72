//! `PATCH` with a JSON Merge Patch (RFC 7396) on applications, endpoints and event types,
//! through the real API: only the given fields change, objects merge key by key, `null`
//! clears, and what a `PUT` would refuse is refused with nothing changed.

use diesel_async::{AsyncConnection, SimpleAsyncConnection};
use octohooks_tests::app::{Options, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

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

#[tokio::test]
async fn patching_an_application_changes_only_what_is_given() {
    let app = TestApp::spawn_with(Options::api_only()).await;
    app.create_app("shop").await;
    app.create_app("taken").await;
    let (status, patched) =
        patch(&app, "/api/v1/applications/shop", json!({"name": "Shop 2"})).await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(
        (&patched["name"], &patched["uid"]),
        (&json!("Shop 2"), &json!("shop"))
    );
    let id = patched["id"].as_str().unwrap().to_owned();

    let (status, problem) = patch(
        &app,
        &format!("/api/v1/applications/{id}"),
        json!({"uid": "taken"}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    for refused in [
        json!({"name": null}),
        json!({"id": "x"}),
        json!({"uid": "has space"}),
        json!([1]),
    ] {
        let (status, problem) =
            patch(&app, &format!("/api/v1/applications/{id}"), refused.clone()).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{refused}: {problem}"
        );
        assert_eq!(problem["code"], "validation_error");
    }
    let (status, cleared) = patch(
        &app,
        &format!("/api/v1/applications/{id}"),
        json!({"uid": null}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (&cleared["uid"], &cleared["name"]),
        (&Value::Null, &json!("Shop 2"))
    );
    // The uid is free again, and the cleared application no longer answers to it.
    assert_eq!(
        app.get("/api/v1/applications/shop").await.status,
        StatusCode::NOT_FOUND
    );
    app.stop().await;
}

#[tokio::test]
async fn patching_an_endpoint_merges_headers_and_clears_with_null() {
    let app = TestApp::spawn_with(Options::api_only()).await;
    app.create_app("shop").await;
    app.create_endpoint(
        "shop",
        json!({"url": "https://hooks.example/a", "uid": "ep", "description": "first",
               "headers": {"X-A": "1", "X-B": "2"}, "rateLimit": 5, "eventTypes": ["a.b"],
               "channels": ["eu"]}),
    )
    .await;
    let path = "/api/v1/applications/shop/endpoints/ep";
    let (status, patched) = patch(
        &app,
        path,
        json!({"headers": {"X-B": null, "X-C": "3"}, "description": "second"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["headers"], json!({"x-a": "1", "x-c": "3"}));
    assert_eq!(patched["description"], "second");
    assert_eq!(patched["url"], "https://hooks.example/a");
    assert_eq!(patched["rateLimit"], 5);
    assert_eq!(patched["eventTypes"], json!(["a.b"]));

    let (status, cleared) = patch(
        &app,
        path,
        json!({"rateLimit": null, "eventTypes": null, "channels": ["us"], "enabled": false}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{cleared}");
    assert_eq!(cleared["rateLimit"], Value::Null);
    assert_eq!(cleared["eventTypes"], json!([]));
    assert_eq!(cleared["channels"], json!(["us"]));
    assert_eq!(cleared["enabled"], false);
    assert_eq!(cleared["headers"], json!({"x-a": "1", "x-c": "3"}));

    for refused in [
        json!({"url": null}),
        json!({"url": "ftp://hooks.example/"}),
        json!({"enabled": null}),
        json!({"headers": {"X-A": 1}}),
        json!({"rateLimit": 0}),
        json!({"secret": "whsec_x"}),
    ] {
        let (status, problem) = patch(&app, path, refused.clone()).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{refused}: {problem}"
        );
    }
    let stored = app.get(path).await.json;
    assert_eq!(
        stored["url"], "https://hooks.example/a",
        "nothing refused was stored"
    );
    assert_eq!(stored["headers"], json!({"x-a": "1", "x-c": "3"}));
    let (status, _) = patch(&app, "/api/v1/applications/shop/endpoints/nope", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, emptied) = patch(&app, path, json!({"headers": null, "uid": null})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (&emptied["headers"], &emptied["uid"]),
        (&json!({}), &Value::Null)
    );
    app.stop().await;
}

/// The dispatcher disables a failing endpoint while a PATCH and a PUT of other fields wait for
/// its row: both apply to the endpoint as disabled, and neither writes `enabled: true` back.
#[tokio::test]
async fn a_change_racing_an_automatic_disable_keeps_the_endpoint_disabled() {
    let app = TestApp::spawn_with(Options::api_only()).await;
    app.create_app("shop").await;
    app.create_endpoint(
        "shop",
        json!({"url": "https://hooks.example/a", "uid": "ep", "description": "first"}),
    )
    .await;
    let path = "/api/v1/applications/shop/endpoints/ep";
    // The automatic disable, caught after it changed the row and before it committed.
    let mut disabling = diesel_async::AsyncPgConnection::establish(&app.database_url)
        .await
        .expect("a connection");
    disabling
        .batch_execute(
            "BEGIN; UPDATE endpoints SET enabled = false, disabled_reason = 'failing' \
             WHERE uid = 'ep'",
        )
        .await
        .expect("the disable");
    let put_body = json!({"url": "https://hooks.example/b", "description": "first"});
    let key = app.api_key.clone();
    let (patched, put, ()) = tokio::join!(
        patch(&app, path, json!({"description": "second"})),
        app.request(
            Method::PUT,
            path,
            Some(&key),
            Some(put_body.to_string()),
            &[("content-type", "application/json")]
        ),
        async {
            // Long enough for both requests to read the endpoint and wait for its lock.
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            disabling.batch_execute("COMMIT").await.expect("commit");
        },
    );
    assert_eq!(patched.0, StatusCode::OK, "{}", patched.1);
    assert_eq!(put.status, StatusCode::OK, "{}", put.json);
    assert_eq!(
        patched.1["enabled"], false,
        "the PATCH kept the disable: {}",
        patched.1
    );
    assert_eq!(
        put.json["enabled"], false,
        "the PUT kept the disable: {}",
        put.json
    );
    let stored = app.get(path).await.json;
    assert_eq!(stored["enabled"], false, "{stored}");
    assert_eq!(stored["url"], "https://hooks.example/b");
    assert_eq!(
        app.text("SELECT disabled_reason FROM endpoints WHERE uid = 'ep'")
            .await,
        "failing"
    );
    app.stop().await;
}

#[tokio::test]
async fn patching_an_event_type_merges_schemas_by_version() {
    let app = TestApp::spawn_with(Options::api_only()).await;
    app.create_app("shop").await;
    app.post(
        "/api/v1/event-types",
        json!({"name": "user.created", "groupName": "users",
               "schemas": {"1": {"type": "object", "required": ["id"]}}}),
    )
    .await;
    let path = "/api/v1/event-types/user.created";
    let (status, patched) = patch(
        &app,
        path,
        json!({"schemas": {"2": {"type": "object", "required": ["id", "email"]}},
               "schemaValidation": "enforce"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["schemas"]["1"]["required"], json!(["id"]));
    assert_eq!(patched["schemas"]["2"]["required"], json!(["id", "email"]));
    assert_eq!(patched["groupName"], "users");
    // Version 2 is enforced at once.
    let refused = app
        .post(
            "/api/v1/applications/shop/messages",
            json!({"eventType": "user.created", "payload": {"id": "u1"}}),
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);

    let (status, patched) = patch(
        &app,
        path,
        json!({"schemas": {"2": null}, "groupName": null}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(
        patched["schemas"],
        json!({"1": {"type": "object", "required": ["id"]}})
    );
    assert_eq!(patched["groupName"], Value::Null);
    let accepted = app
        .post(
            "/api/v1/applications/shop/messages",
            json!({"eventType": "user.created", "payload": {"id": "u1"}}),
        )
        .await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED);
    // Removing the last schema of an enforced type is refused, as a PUT is.
    let (status, problem) = patch(&app, path, json!({"schemas": null})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(problem["detail"]
        .as_str()
        .unwrap()
        .starts_with("schemaValidation"));
    let (status, _) = patch(&app, path, json!({"archived": null})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    app.stop().await;
}

#[tokio::test]
async fn cors_allows_patch() {
    let app = TestApp::spawn_with(Options::api_only()).await;
    let answer = app
        .request(
            Method::OPTIONS,
            "/api/v1/applications/x",
            None,
            None,
            &[
                ("origin", "https://dashboard.example"),
                ("access-control-request-method", "PATCH"),
                (
                    "access-control-request-headers",
                    "authorization, content-type",
                ),
            ],
        )
        .await;
    assert!(answer.status.is_success(), "{}", answer.status);
    assert!(answer
        .header("access-control-allow-methods")
        .contains("PATCH"));
    app.stop().await;
}
