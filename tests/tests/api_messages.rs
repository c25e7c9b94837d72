//! Messages: acceptance, exact payload bytes, size limit, listing and filters.

use octohooks_tests::{Options, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn payload_is_stored_and_returned_byte_for_byte() {
    let app = TestApp::spawn_with(Options::api_only()).await;
    app.create_app("app").await;
    let payload = "{ \"z\": 1.50,\n  \"a\":12345678901234567890, \"nested\": {\"k\" : [1, 2 ,3]}, \"u\": \"\\u00e9é\" }";
    let body = format!("{{\"eventType\":\"user.created\",\"uid\":\"m-1\",\"payload\":{payload}}}");
    let accepted = app.send_raw("app", &body).await;
    assert_eq!(accepted["eventType"], "user.created");
    assert_eq!(accepted["channels"], json!([]));
    assert_eq!(accepted["uid"], "m-1");
    let id = accepted["id"].as_str().unwrap();

    let stored = app
        .count(&format!(
            "SELECT count(*) FROM messages WHERE id = '{id}' AND payload = $${payload}$$"
        ))
        .await;
    assert_eq!(stored, 1, "the payload text is stored as sent");
    for path in [
        format!("/api/v1/applications/app/messages/{id}"),
        "/api/v1/applications/app/messages/m-1".into(),
    ] {
        let got = app.get(&path).await;
        assert_eq!(got.status, StatusCode::OK);
        assert!(got.text.contains(payload), "{}", got.text);
    }
    app.stop().await;
}

#[tokio::test]
async fn any_json_value_is_a_payload_and_large_ones_are_refused() {
    let app = TestApp::spawn_with(Options::api_only()).await;
    app.create_app("app").await;
    for payload in ["[1,2]", "\"text\"", "42", "null"] {
        app.send_raw(
            "app",
            &format!("{{\"eventType\":\"t\",\"payload\":{payload}}}"),
        )
        .await;
    }
    let just_fits = format!("\"{}\"", "x".repeat(350 * 1024 - 2));
    app.send_raw(
        "app",
        &format!("{{\"eventType\":\"t\",\"payload\":{just_fits}}}"),
    )
    .await;
    let key = app.api_key.clone();
    for size in [350 * 1024 + 10, 2 * 1024 * 1024] {
        let payload = format!("\"{}\"", "x".repeat(size));
        let answer = app
            .request(
                Method::POST,
                "/api/v1/applications/app/messages",
                Some(&key),
                Some(format!("{{\"eventType\":\"t\",\"payload\":{payload}}}")),
                &[],
            )
            .await;
        assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE, "{size}");
        assert_eq!(answer.json["code"], "payload_too_large");
    }
    assert_eq!(app.count("SELECT count(*) FROM messages").await, 5);
    app.stop().await;
}

#[tokio::test]
async fn bad_messages_are_refused_and_change_nothing() {
    let app = TestApp::spawn_with(Options::api_only()).await;
    app.create_app("app").await;
    app.post(
        "/api/v1/applications/app/messages",
        json!({"eventType": "t", "payload": {}, "uid": "dup"}),
    )
    .await;
    let cases = [
        (json!({"payload": {}}), StatusCode::UNPROCESSABLE_ENTITY),
        (json!({"eventType": "t"}), StatusCode::UNPROCESSABLE_ENTITY),
        (
            json!({"eventType": "", "payload": {}}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"eventType": "t", "payload": {}, "channels": ["a b"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"eventType": "t", "payload": {}, "uid": "dup"}),
            StatusCode::CONFLICT,
        ),
    ];
    for (body, status) in cases {
        let answer = app
            .post("/api/v1/applications/app/messages", body.clone())
            .await;
        assert_eq!(answer.status, status, "{body}: {}", answer.text);
    }
    let deep = format!(
        "{{\"eventType\":\"t\",\"payload\":{}{}}}",
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let key = app.api_key.clone();
    let answer = app
        .request(
            Method::POST,
            "/api/v1/applications/app/messages",
            Some(&key),
            Some(deep),
            &[],
        )
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.json["code"], "json_too_deep");
    let missing = app
        .post(
            "/api/v1/applications/nope/messages",
            json!({"eventType": "t", "payload": {}}),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(app.count("SELECT count(*) FROM messages").await, 1);
    app.stop().await;
}

#[tokio::test]
async fn messages_list_newest_first_with_filters() {
    let app = TestApp::spawn_with(Options::api_only()).await;
    app.create_app("app").await;
    let mut ids = Vec::new();
    for (event, channels) in [
        ("a.created", json!(["eu"])),
        ("b.deleted", json!([])),
        ("a.created", json!(["us", "eu"])),
    ] {
        let answer = app
            .post(
                "/api/v1/applications/app/messages",
                json!({"eventType": event, "payload": {}, "channels": channels}),
            )
            .await;
        assert_eq!(answer.status, StatusCode::ACCEPTED);
        ids.push(answer.json["id"].as_str().unwrap().to_owned());
    }
    let all = app.get("/api/v1/applications/app/messages").await;
    assert_eq!(ids_of(&all.json), [&ids[2], &ids[1], &ids[0]]);

    let by_type = app
        .get("/api/v1/applications/app/messages?eventType=a.created")
        .await;
    assert_eq!(by_type.json.as_array().unwrap().len(), 2);
    let by_channel = app
        .get("/api/v1/applications/app/messages?channel=us")
        .await;
    assert_eq!(by_channel.json.as_array().unwrap().len(), 1);
    assert_eq!(by_channel.json[0]["id"], ids[2].as_str());
    let future = app
        .get("/api/v1/applications/app/messages?after=2999-01-01T00:00:00Z")
        .await;
    assert_eq!(future.json, json!([]));
    let past = app
        .get("/api/v1/applications/app/messages?before=1000")
        .await;
    assert_eq!(past.json, json!([]));
    let bad = app
        .get("/api/v1/applications/app/messages?before=yesterday")
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    app.stop().await;
}

#[tokio::test]
async fn messages_list_by_several_event_types_and_without_content() {
    let app = TestApp::spawn_with(Options::api_only()).await;
    app.create_app("app").await;
    let mut ids = Vec::new();
    for event in ["a.created", "b.deleted", "c.paid"] {
        let answer = app
            .post(
                "/api/v1/applications/app/messages",
                json!({"eventType": event, "payload": {"event": event}}),
            )
            .await;
        assert_eq!(answer.status, StatusCode::ACCEPTED);
        ids.push(answer.json["id"].as_str().unwrap().to_owned());
    }
    let two = app
        .get("/api/v1/applications/app/messages?eventType=a.created,c.paid")
        .await;
    assert_eq!(two.status, StatusCode::OK, "{}", two.text);
    assert_eq!(ids_of(&two.json), [&ids[2], &ids[0]]);
    assert_eq!(two.json[0]["payload"], json!({"event": "c.paid"}));

    let bare = app
        .get("/api/v1/applications/app/messages?withContent=false")
        .await;
    assert_eq!(bare.json.as_array().unwrap().len(), 3);
    assert!(bare
        .json
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["payload"] == json!({})));
    assert_eq!(bare.json[0]["eventType"], "c.paid");
    // The stored payloads are untouched.
    let one = app
        .get(&format!("/api/v1/applications/app/messages/{}", ids[1]))
        .await;
    assert_eq!(one.json["payload"], json!({"event": "b.deleted"}));

    for query in [
        "withContent=maybe",
        "eventType=a.created,not%20a%20name",
        &format!("eventType={}", vec!["a"; 21].join(",")),
    ] {
        let refused = app
            .get(&format!("/api/v1/applications/app/messages?{query}"))
            .await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        assert_eq!(refused.json["code"], "validation_error", "{}", refused.text);
    }
    app.stop().await;
}

#[tokio::test]
async fn the_seed_quickstart_works_with_a_uuid_as_uid() {
    let app = TestApp::spawn_with(Options::api_only()).await;
    let app_id = app.create_app("application-name").await;
    let uid = "774fa91a-510b-4a35-9799-6c233f6af790";
    let sent = app
        .post(&format!("/api/v1/applications/{app_id}/messages"), json!({
            "channels": [], "eventType": "customer.created", "uid": uid,
            "payload": {"email": "customer@email.com", "integration": 100032, "identifications": null}
        }))
        .await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.text);
    let id = sent.json["id"].as_str().unwrap();
    let by_uid = app
        .get(&format!(
            "/api/v1/applications/application-name/messages/{uid}"
        ))
        .await;
    assert_eq!(by_uid.status, StatusCode::OK);
    assert_eq!(by_uid.json["id"], id);
    let by_id = app
        .get(&format!(
            "/api/v1/applications/application-name/messages/{id}"
        ))
        .await;
    assert_eq!(by_id.json["uid"], uid);
    app.stop().await;
}

/// The ids of a message list, in its order.
fn ids_of(list: &serde_json::Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect()
}
