//! Consumer portal tokens: what they open (one application, read-only or not), what they are
//! refused (403 outside their scope, 401 when expired, forged or revoked), that every replica
//! accepts them; the API key list of the console; and the console pages' headers.

use base64::Engine as _;
use octohooks_domain::portal::{PortalClaims, PortalSigner};
use octohooks_tests::{Options, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const SIGNING_KEY: [u8; 32] = [42; 32];

fn portal_options() -> Options {
    Options {
        dispatcher: false,
        extra: vec![
            (
                "OCTOHOOKS_PORTAL_SIGNING_KEY".into(),
                base64::engine::general_purpose::STANDARD.encode(SIGNING_KEY),
            ),
            (
                "OCTOHOOKS_PUBLIC_URL".into(),
                "https://hooks.example.test/".into(),
            ),
            (
                "OCTOHOOKS_PORTAL_FRAME_ANCESTORS".into(),
                "https://app.example.test".into(),
            ),
        ],
        ..Options::default()
    }
}

async fn portal_link(app: &TestApp, application: &str, body: Value) -> Value {
    let answer = app
        .post(
            &format!("/api/v1/applications/{application}/portal-access"),
            body,
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
    answer.json
}

/// Sends `method path` with `token` and returns the status and the problem code, if any.
async fn call(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, String) {
    let answer = app
        .request(method, path, Some(token), body.map(|b| b.to_string()), &[])
        .await;
    let code = answer.json["code"].as_str().unwrap_or_default().to_owned();
    (answer.status, code)
}

#[tokio::test]
async fn a_portal_token_opens_its_application_and_nothing_else() {
    let app = TestApp::spawn_with(portal_options()).await;
    let own = app.create_app("own").await;
    app.create_app("other").await;
    app.create_endpoint(
        "other",
        json!({"url": "http://127.0.0.1:9/o", "uid": "theirs"}),
    )
    .await;
    let message = app
        .send_raw("own", r#"{"eventType":"t","payload":{"n":1}}"#)
        .await;
    let link = portal_link(&app, "own", json!({})).await;
    let token = link["token"].as_str().expect("token");
    assert_eq!(
        link["url"],
        format!("https://hooks.example.test/portal/#token={token}")
    );
    let msg = message["id"].as_str().expect("id");

    // Its own application, by id and by uid: endpoints, secret, messages, attempts.
    let opened = [
        (Method::GET, "/api/v1/applications/own".to_owned(), None),
        (Method::GET, format!("/api/v1/applications/{own}"), None),
        (
            Method::POST,
            "/api/v1/applications/own/endpoints".to_owned(),
            Some(json!({"url": "http://127.0.0.1:9/mine", "uid": "mine"})),
        ),
        (
            Method::PUT,
            "/api/v1/applications/own/endpoints/mine".to_owned(),
            Some(json!({"url": "http://127.0.0.1:9/mine2"})),
        ),
        (
            Method::GET,
            "/api/v1/applications/own/endpoints/mine/secret".to_owned(),
            None,
        ),
        (
            Method::POST,
            "/api/v1/applications/own/endpoints/mine/secret/rotate".to_owned(),
            None,
        ),
        (
            Method::GET,
            "/api/v1/applications/own/endpoints/mine/attempts".to_owned(),
            None,
        ),
        (
            Method::GET,
            "/api/v1/applications/own/messages".to_owned(),
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/applications/own/messages/{msg}/attempts"),
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/applications/own/messages/{msg}/payload"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/applications/own/messages/{msg}/endpoints/mine/resend"),
            None,
        ),
        (Method::GET, "/api/v1/event-types".to_owned(), None),
    ];
    for (method, path, body) in opened {
        let (status, code) = call(&app, token, method.clone(), &path, body).await;
        assert!(status.is_success(), "{method} {path}: {status} {code}");
    }

    // Everything else: 403 forbidden, and nothing changes.
    let refused = [
        (Method::GET, "/api/v1/applications/other/endpoints", None),
        (Method::GET, "/api/v1/applications/other", None),
        (
            Method::DELETE,
            "/api/v1/applications/other/endpoints/theirs",
            None,
        ),
        (
            Method::GET,
            "/api/v1/applications/no-such-app/endpoints",
            None,
        ),
        (Method::GET, "/api/v1/applications", None),
        (Method::DELETE, "/api/v1/applications/own", None),
        (
            Method::POST,
            "/api/v1/applications/own/messages",
            Some(json!({"eventType": "t", "payload": {}})),
        ),
        (
            Method::POST,
            "/api/v1/event-types",
            Some(json!({"name": "x"})),
        ),
        (
            Method::POST,
            "/api/v1/applications/own/portal-access",
            Some(json!({})),
        ),
    ];
    for (method, path, body) in refused {
        let (status, code) = call(&app, token, method.clone(), path, body).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::FORBIDDEN, "forbidden"),
            "{method} {path}"
        );
    }
    assert_eq!(
        app.count("SELECT count(*) FROM endpoints WHERE uid = 'theirs'")
            .await,
        1
    );
    assert_eq!(app.count("SELECT count(*) FROM messages").await, 1);
    // Not an admin token either.
    let (status, _) = call(&app, token, Method::GET, "/api/v1/environments", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    app.stop().await;
}

#[tokio::test]
async fn a_read_only_token_reads_and_changes_nothing() {
    let app = TestApp::spawn_with(portal_options()).await;
    app.create_app("own").await;
    app.create_endpoint("own", json!({"url": "http://127.0.0.1:9/e", "uid": "e"}))
        .await;
    let link = portal_link(&app, "own", json!({"readOnly": true, "expiry": 60})).await;
    let token = link["token"].as_str().expect("token");
    let (status, _) = call(
        &app,
        token,
        Method::GET,
        "/api/v1/applications/own/endpoints/e",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    for (method, path) in [
        (Method::PUT, "/api/v1/applications/own/endpoints/e"),
        (Method::DELETE, "/api/v1/applications/own/endpoints/e"),
        (Method::POST, "/api/v1/applications/own/endpoints"),
        (
            Method::POST,
            "/api/v1/applications/own/endpoints/e/secret/rotate",
        ),
    ] {
        let body = json!({"url": "http://127.0.0.1:9/changed"});
        let (status, code) = call(&app, token, method.clone(), path, Some(body)).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::FORBIDDEN, "forbidden"),
            "{method} {path}"
        );
    }
    let url = app.get("/api/v1/applications/own/endpoints/e").await.json["url"].clone();
    assert_eq!(url, "http://127.0.0.1:9/e");
    app.stop().await;
}

#[tokio::test]
async fn expired_forged_and_revoked_tokens_are_refused() {
    let app = TestApp::spawn_with(portal_options()).await;
    let own: uuid::Uuid = app.create_app("own").await.parse().expect("uuid");
    let env: uuid::Uuid = app.environment_id.parse().expect("uuid");
    let path = "/api/v1/applications/own/endpoints";
    let now = chrono::Utc::now().timestamp_millis();
    let claims = |iat: i64, exp: i64| PortalClaims {
        v: 1,
        env,
        app: own,
        iat,
        exp,
        ro: false,
    };
    // Minted with the deployment's key, as the API would have an hour ago: expired now.
    let signer = PortalSigner::new(&SIGNING_KEY);
    let expired = signer.mint(&claims(now - 3_600_000, now - 1));
    let (status, code) = call(&app, &expired, Method::GET, path, None).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );
    let valid = signer.mint(&claims(now, now + 60_000));
    assert_eq!(
        call(&app, &valid, Method::GET, path, None).await.0,
        StatusCode::OK
    );
    // Signed with another key.
    let forged = PortalSigner::new(&[1; 32]).mint(&claims(now, now + 60_000));
    assert_eq!(
        call(&app, &forged, Method::GET, path, None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(&app, "ohp_garbage", Method::GET, path, None).await.0,
        StatusCode::UNAUTHORIZED
    );

    // Expire all: the links made before stop working, at once; a new one works.
    let link = portal_link(&app, "own", json!({})).await;
    let token = link["token"].as_str().expect("token").to_owned();
    assert_eq!(
        call(&app, &token, Method::GET, path, None).await.0,
        StatusCode::OK
    );
    let expired_all = app
        .post(
            "/api/v1/applications/own/portal-access/expire-all",
            json!({}),
        )
        .await;
    assert_eq!(expired_all.status, StatusCode::NO_CONTENT);
    for old in [&token, &valid] {
        let (status, code) = call(&app, old, Method::GET, path, None).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::UNAUTHORIZED, "unauthorized")
        );
    }
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let fresh = portal_link(&app, "own", json!({})).await;
    let fresh = fresh["token"].as_str().expect("token");
    assert_eq!(
        call(&app, fresh, Method::GET, path, None).await.0,
        StatusCode::OK
    );

    // Lifetimes out of range are refused.
    for expiry in [59, 604_801] {
        let answer = app
            .post(
                "/api/v1/applications/own/portal-access",
                json!({ "expiry": expiry }),
            )
            .await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{expiry}");
    }
    app.stop().await;
}

#[tokio::test]
async fn every_replica_accepts_a_token_and_hears_its_revocation() {
    let app = TestApp::spawn_with(portal_options()).await;
    app.create_app("own").await;
    let (_replica, replica) = octohooks_tests::process::spawn_api(&app.env_vars()).await;
    let link = portal_link(&app, "own", json!({})).await;
    let token = link["token"].as_str().expect("token");
    let path = format!("{replica}/api/v1/applications/own/endpoints");
    assert_eq!(
        call(&app, token, Method::GET, &path, None).await.0,
        StatusCode::OK
    );
    let expired_all = app
        .post(
            "/api/v1/applications/own/portal-access/expire-all",
            json!({}),
        )
        .await;
    assert_eq!(expired_all.status, StatusCode::NO_CONTENT);
    let refused = octohooks_tests::eventually(10, || async {
        call(&app, token, Method::GET, &path, None).await.0 == StatusCode::UNAUTHORIZED
    })
    .await;
    assert!(refused, "the other replica still accepts a revoked token");
    app.stop().await;
}

#[tokio::test]
async fn api_keys_are_listed_by_prefix_with_their_last_use() {
    let app = TestApp::spawn_with(portal_options()).await;
    let path = format!("/api/v1/environments/{}/api-keys", app.environment_id);
    let listed = app.admin(Method::GET, &path, None).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    let keys = listed.json.as_array().expect("array").clone();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["prefix"], app.api_key[..8]);
    assert!(!listed.text.contains(&app.api_key));
    // The test app has used its key (creating the environment aside, the next request does).
    app.get("/api/v1/applications").await;
    let used = octohooks_tests::eventually(15, || async {
        app.admin(Method::GET, &path, None).await.json[0]["lastUsed"].is_i64()
    })
    .await;
    assert!(used, "lastUsed was not recorded");
    let missing = app
        .admin(
            Method::GET,
            "/api/v1/environments/01900000-0000-7000-8000-000000000000/api-keys",
            None,
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test]
async fn console_pages_carry_a_strict_policy() {
    let app = TestApp::spawn_with(portal_options()).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let root = client.get(&app.base).send().await.expect("GET /");
    assert_eq!(root.status(), StatusCode::FOUND);
    assert_eq!(root.headers()["location"], "/dashboard/");
    for (page, ancestors) in [
        ("/dashboard/", "frame-ancestors 'none'"),
        ("/portal/", "frame-ancestors https://app.example.test"),
    ] {
        let answer = app.get(page).await;
        assert_eq!(answer.status, StatusCode::OK, "{page}");
        assert!(answer.header("content-type").starts_with("text/html"));
        let policy = answer.header("content-security-policy");
        assert!(policy.contains("script-src 'self'"), "{policy}");
        assert!(!policy.contains("unsafe-inline") && !policy.contains("unsafe-eval"));
        assert!(policy.ends_with(ancestors), "{policy}");
        assert_eq!(answer.header("x-content-type-options"), "nosniff");
        assert_eq!(answer.header("referrer-policy"), "no-referrer");
    }
    let missing = app.get("/console/assets/nothing.js").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    app.stop().await;
}
