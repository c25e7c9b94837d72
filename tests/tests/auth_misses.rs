//! Authentication misses are cheap: a wrong API key repeated is looked up once, made-up keys
//! of the wrong shape never reach the database, and a flood of distinct made-up keys leaves
//! the pool to everyone else.

use futures::stream::{self, StreamExt};
use octohooks_tests::{eventually, Options, TestApp};
use reqwest::{Method, StatusCode};

fn made_up_key(i: usize) -> String {
    // The shape of a real key (prefix and 43 base64url characters), not a real one.
    format!("ohk_{:0>43}", format!("madeup{i}"))
}

async fn lookups(app: &TestApp, result: &str) -> f64 {
    app.metric(&format!(
        r#"octohooks_lookup_cache_total{{result="{result}"}}"#
    ))
    .await
}

async fn status_with(app: &TestApp, key: &str) -> StatusCode {
    app.request(Method::GET, "/api/v1/applications", Some(key), None, &[])
        .await
        .status
}

#[tokio::test]
async fn a_wrong_key_repeated_is_looked_up_once() {
    let app = TestApp::spawn_with(Options::api_only()).await;
    let key = app.api_key.clone();
    // The cache is used once its invalidation listener is live.
    assert!(
        eventually(10, || async {
            status_with(&app, &key).await == StatusCode::OK
                && lookups(&app, "hit").await + lookups(&app, "miss").await > 0.0
        })
        .await
    );
    let misses_before = lookups(&app, "miss").await;
    let wrong = made_up_key(1);
    for _ in 0..200 {
        assert_eq!(status_with(&app, &wrong).await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(lookups(&app, "miss").await - misses_before, 1.0);
    assert!(lookups(&app, "unknown_hit").await >= 199.0);

    // Wrong shapes are refused before any lookup.
    let before = lookups(&app, "miss").await + lookups(&app, "bypass").await;
    for token in [
        "ohk_short",
        "ohk_+++++++++++++++++++++++++++++++++++++++++++",
    ] {
        assert_eq!(status_with(&app, token).await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        lookups(&app, "miss").await + lookups(&app, "bypass").await,
        before
    );

    // A key made after its hash was remembered as unknown works at once.
    let path = format!("/api/v1/environments/{}/api-keys", app.environment_id);
    let created = app
        .admin(Method::POST, &path, Some(serde_json::json!({})))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let fresh = created.json["apiKey"].as_str().unwrap().to_owned();
    assert_eq!(status_with(&app, &fresh).await, StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn a_flood_of_made_up_keys_leaves_the_pool_to_real_requests() {
    let app = TestApp::spawn_with(Options::api_only()).await;
    let key = app.api_key.clone();
    assert_eq!(status_with(&app, &key).await, StatusCode::OK);
    let flood = stream::iter(0..2000)
        .map(|i| {
            let app = &app;
            async move { status_with(app, &made_up_key(1000 + i)).await }
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>();
    let real = async {
        let mut answers = Vec::new();
        for _ in 0..50 {
            answers.push(status_with(&app, &key).await);
        }
        answers
    };
    let (flooded, real) = tokio::join!(flood, real);
    assert!(
        flooded.iter().all(|status| matches!(
            *status,
            StatusCode::UNAUTHORIZED | StatusCode::SERVICE_UNAVAILABLE
        )),
        "made-up keys get 401 (or 503 when too many wait)"
    );
    assert!(
        real.iter().all(|status| *status == StatusCode::OK),
        "every real request answered: {real:?}"
    );
    app.stop().await;
}
