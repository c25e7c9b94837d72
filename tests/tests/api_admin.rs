//! Environments, API keys, authentication and isolation between environments.

use octohooks_tests::app::ADMIN_TOKEN;
use octohooks_tests::{Options, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn admin_routes_need_the_admin_token() {
    let app = TestApp::spawn_with(Options::api_only()).await;
    let path = "/api/v1/environments";
    for token in [None, Some("wrong"), Some(app.api_key.as_str())] {
        let answer = app.request(Method::GET, path, token, None, &[]).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(answer.header("content-type"), "application/problem+json");
        assert_eq!(answer.json["code"], "unauthorized");
    }
    let listed = app.admin(Method::GET, path, None).await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(listed.json.as_array().unwrap().len(), 1);
    assert!(
        listed.json[0].get("apiKey").is_none(),
        "keys are shown once"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_admin_token_never_reads_tenant_data() {
    let app = TestApp::spawn_with(Options::api_only()).await;
    app.create_app("tenant-app").await;
    let answer = app
        .request(
            Method::GET,
            "/api/v1/applications",
            Some(ADMIN_TOKEN),
            None,
            &[],
        )
        .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    app.stop().await;
}

#[tokio::test]
async fn tenant_routes_refuse_missing_and_unknown_keys() {
    let app = TestApp::spawn_with(Options::api_only()).await;
    for token in [None, Some("ohk_unknown"), Some("garbage")] {
        let answer = app
            .request(Method::GET, "/api/v1/applications", token, None, &[])
            .await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(answer.json["code"], "unauthorized");
    }
    app.stop().await;
}

#[tokio::test]
async fn keys_can_be_added_and_revoked_at_once() {
    let app = TestApp::spawn_with(Options::api_only()).await;
    let path = format!("/api/v1/environments/{}/api-keys", app.environment_id);
    let created = app.admin(Method::POST, &path, None).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let second_key = created.json["apiKey"].as_str().unwrap().to_owned();
    assert!(second_key.starts_with("ohk_") && second_key.len() > 40);
    let key_id = created.json["id"].as_str().unwrap().to_owned();

    let ok = app
        .request(
            Method::GET,
            "/api/v1/applications",
            Some(&second_key),
            None,
            &[],
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK);

    let revoked = app
        .admin(Method::DELETE, &format!("{path}/{key_id}"), None)
        .await;
    assert_eq!(revoked.status, StatusCode::OK);
    let refused = app
        .request(
            Method::GET,
            "/api/v1/applications",
            Some(&second_key),
            None,
            &[],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    // The first key still works.
    assert_eq!(app.get("/api/v1/applications").await.status, StatusCode::OK);
    // Revoking again, or in another environment, is a 404.
    let again = app
        .admin(Method::DELETE, &format!("{path}/{key_id}"), None)
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    // The database holds only a hash of the key.
    let plain = app
        .count(&format!(
            "SELECT count(*) FROM api_keys WHERE encode(key_hash, 'escape') LIKE '%{}%'",
            &app.api_key[4..20]
        ))
        .await;
    assert_eq!(plain, 0);
    app.stop().await;
}

#[tokio::test]
async fn environments_are_isolated() {
    let app = TestApp::spawn_with(Options::api_only()).await;
    let app_id = app.create_app("shared-uid").await;
    let other = app
        .admin(
            Method::POST,
            "/api/v1/environments",
            Some(json!({"name": "other"})),
        )
        .await;
    assert_eq!(other.status, StatusCode::CREATED);
    let other_key = other.json["apiKey"].as_str().unwrap().to_owned();

    let listed = app
        .request(
            Method::GET,
            "/api/v1/applications",
            Some(&other_key),
            None,
            &[],
        )
        .await;
    assert_eq!(listed.json, json!([]));
    for path in [
        format!("/api/v1/applications/{app_id}"),
        "/api/v1/applications/shared-uid".to_owned(),
        format!("/api/v1/applications/{app_id}/endpoints"),
        format!("/api/v1/applications/{app_id}/messages"),
    ] {
        let answer = app
            .request(Method::GET, &path, Some(&other_key), None, &[])
            .await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{path}");
    }
    let deleted = app
        .request(
            Method::DELETE,
            &format!("/api/v1/applications/{app_id}"),
            Some(&other_key),
            None,
            &[],
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NOT_FOUND);
    // The same uid is free in the other environment.
    let same_uid = app
        .request(
            Method::POST,
            "/api/v1/applications",
            Some(&other_key),
            Some(json!({"name": "mine", "uid": "shared-uid"}).to_string()),
            &[],
        )
        .await;
    assert_eq!(same_uid.status, StatusCode::CREATED);
    // And the original is untouched.
    assert_eq!(
        app.get(&format!("/api/v1/applications/{app_id}"))
            .await
            .status,
        StatusCode::OK
    );
    app.stop().await;
}

#[tokio::test]
async fn deleting_an_environment_removes_its_keys_and_data() {
    let app = TestApp::spawn_with(Options::api_only()).await;
    app.create_app("doomed").await;
    let path = format!("/api/v1/environments/{}", app.environment_id);
    let deleted = app.admin(Method::DELETE, &path, None).await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert_eq!(deleted.json["id"], app.environment_id.as_str());
    assert_eq!(
        app.get("/api/v1/applications").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.count("SELECT count(*) FROM applications").await, 0);
    assert_eq!(
        app.admin(Method::DELETE, &path, None).await.status,
        StatusCode::NOT_FOUND
    );
    let bad = app
        .admin(
            Method::POST,
            "/api/v1/environments",
            Some(json!({"name": " "})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    app.stop().await;
}

/// What the API's lookup cache has counted so far under `result` (`hit`, `forget`, …).
async fn cache_count(app: &TestApp, result: &str) -> f64 {
    app.metric(&format!(
        "octohooks_lookup_cache_total{{result=\"{result}\"}}"
    ))
    .await
}

/// Waits until the API has heard of a change committed after it counted `forgotten` clearings.
async fn until_forgotten(app: &TestApp, forgotten: f64) {
    for _ in 0..200 {
        if cache_count(app, "forget").await > forgotten {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the API never heard of the change");
}

async fn send(app: &TestApp, key: &str, to: &str) -> StatusCode {
    app.request(
        Method::POST,
        &format!("/api/v1/applications/{to}/messages"),
        Some(key),
        Some(json!({"eventType": "a.b", "payload": {}}).to_string()),
        &[],
    )
    .await
    .status
}

/// Sends until a lookup is served from the cache (the listener connects in the background).
async fn until_cached(app: &TestApp, key: &str, to: &str) {
    let hits = cache_count(app, "hit").await;
    for _ in 0..500 {
        assert_eq!(send(app, key, to).await, StatusCode::ACCEPTED);
        if cache_count(app, "hit").await > hits {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the lookup cache never served a hit");
}

#[tokio::test]
async fn cached_keys_and_applications_follow_every_change() {
    let app = TestApp::spawn_with(Options::api_only()).await;
    let first = app.create_app("shop").await;
    let key = app.api_key.clone();
    until_cached(&app, &key, "shop").await;
    let in_first = format!("SELECT count(*) FROM messages WHERE application_id = '{first}'");
    let before = app.count(&in_first).await;

    // The uid moves to another application: the cached path must follow it.
    let forgotten = cache_count(&app, "forget").await;
    let renamed = app
        .call(
            Method::PUT,
            &format!("/api/v1/applications/{first}"),
            Some(json!({"name": "old", "uid": "old-shop"})),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.text);
    until_forgotten(&app, forgotten).await;
    let second = app.create_app("shop").await;
    assert_eq!(send(&app, &key, "shop").await, StatusCode::ACCEPTED);
    assert_eq!(
        app.count(&in_first).await,
        before,
        "the message went to the old application"
    );
    let in_second = format!("SELECT count(*) FROM messages WHERE application_id = '{second}'");
    assert_eq!(app.count(&in_second).await, 1);

    // An application deleted by hand (no API call) is forgotten too.
    until_cached(&app, &key, "shop").await;
    let forgotten = cache_count(&app, "forget").await;
    app.execute(&format!("DELETE FROM applications WHERE id = '{second}'"))
        .await;
    until_forgotten(&app, forgotten).await;
    assert_eq!(send(&app, &key, "shop").await, StatusCode::NOT_FOUND);

    // So is a key removed by hand.
    until_cached(&app, &key, "old-shop").await;
    let forgotten = cache_count(&app, "forget").await;
    app.execute("DELETE FROM api_keys").await;
    until_forgotten(&app, forgotten).await;
    assert_eq!(send(&app, &key, "old-shop").await, StatusCode::UNAUTHORIZED);
    app.stop().await;
}

#[tokio::test]
async fn the_cache_listener_reconnects_after_its_connection_is_killed() {
    let app = TestApp::spawn_with(Options::api_only()).await;
    app.create_app("shop").await;
    let key = app.api_key.clone();
    until_cached(&app, &key, "shop").await;

    let forgotten = cache_count(&app, "forget").await;
    let killed = app
        .count(&format!(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = current_database() AND application_name = '{}'",
            octohooks_db::invalidation::APPLICATION_NAME
        ))
        .await;
    assert_eq!(killed, 1, "one listening connection per API process");
    // Losing the connection clears the cache: a change made meanwhile is not missed.
    until_forgotten(&app, forgotten).await;
    app.execute("DELETE FROM applications WHERE uid = 'shop'")
        .await;
    assert_eq!(send(&app, &key, "shop").await, StatusCode::NOT_FOUND);

    // On its new connection the cache serves again and hears changes again.
    app.create_app("shop").await;
    until_cached(&app, &key, "shop").await;
    let forgotten = cache_count(&app, "forget").await;
    app.execute("DELETE FROM applications WHERE uid = 'shop'")
        .await;
    until_forgotten(&app, forgotten).await;
    assert_eq!(send(&app, &key, "shop").await, StatusCode::NOT_FOUND);
    app.stop().await;
}
