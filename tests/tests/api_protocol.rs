//! What every route shares: paging, idempotency, CORS, error shapes, health, OpenAPI.

use std::collections::HashSet;

use octohooks_tests::{Options, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::json;

fn next_link(link: &str) -> Option<String> {
    let start = link.find('<')? + 1;
    let end = link.find('>')?;
    link.contains("rel=\"next\"")
        .then(|| link[start..end].to_owned())
}

#[tokio::test]
async fn paging_walks_every_item_once_while_others_write() {
    let app = TestApp::spawn_with(Options::api_only()).await;
    for i in 0..7 {
        app.create_app(&format!("app-{i}")).await;
    }
    let mut seen = Vec::new();
    let mut path = "/api/v1/applications?limit=3".to_owned();
    let mut pages = 0;
    loop {
        let page = app.get(&path).await;
        assert_eq!(page.status, StatusCode::OK);
        seen.extend(
            page.json
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["id"].as_str().unwrap().to_owned()),
        );
        pages += 1;
        // Someone else writes between pages.
        app.create_app(&format!("late-{pages}")).await;
        match next_link(page.header("link")) {
            Some(next) => path = next,
            None => break,
        }
        assert!(pages < 20);
    }
    let unique: HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no item twice");
    assert!(seen.len() >= 7, "every original item");
    let all = app.get("/api/v1/applications?limit=250").await;
    assert!(all.header("link").is_empty());
    for bad in ["0", "251", "x"] {
        let answer = app.get(&format!("/api/v1/applications?limit={bad}")).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
    app.stop().await;
}

#[tokio::test]
async fn messages_page_newest_first() {
    let app = TestApp::spawn_with(Options::api_only()).await;
    app.create_app("app").await;
    for i in 0..5 {
        app.post(
            "/api/v1/applications/app/messages",
            json!({"eventType": "t", "payload": {"i": i}}),
        )
        .await;
    }
    let first = app
        .get("/api/v1/applications/app/messages?limit=2&eventType=t")
        .await;
    assert_eq!(first.json[0]["payload"]["i"], 4);
    let next = next_link(first.header("link")).expect("link");
    assert!(next.contains("eventType=t"), "filters carry over: {next}");
    let second = app.get(&next).await;
    assert_eq!(second.json[0]["payload"]["i"], 2);
    app.stop().await;
}

#[tokio::test]
async fn idempotency_key_replays_the_first_response() {
    let app = TestApp::spawn_with(Options::api_only()).await;
    app.create_app("app").await;
    let key = app.api_key.clone();
    let body = json!({"eventType": "t", "payload": {"n": 1}}).to_string();
    let path = "/api/v1/applications/app/messages";
    let first = app
        .request(
            Method::POST,
            path,
            Some(&key),
            Some(body.clone()),
            &[("idempotency-key", "k1")],
        )
        .await;
    let second = app
        .request(
            Method::POST,
            path,
            Some(&key),
            Some(body),
            &[("idempotency-key", "k1")],
        )
        .await;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    assert_eq!(second.status, StatusCode::ACCEPTED);
    assert_eq!(first.text, second.text);
    assert_eq!(second.header("idempotent-replayed"), "true");
    assert_eq!(app.count("SELECT count(*) FROM messages").await, 1);

    // A failed request does not hold the key.
    let apps = "/api/v1/applications";
    let bad = app
        .request(
            Method::POST,
            apps,
            Some(&key),
            Some("{}".into()),
            &[("idempotency-key", "k2")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let good = app
        .request(
            Method::POST,
            apps,
            Some(&key),
            Some(json!({"name": "n"}).to_string()),
            &[("idempotency-key", "k2")],
        )
        .await;
    assert_eq!(good.status, StatusCode::CREATED);
    // The same key on another route is refused.
    let reused = app
        .request(
            Method::POST,
            "/api/v1/event-types",
            Some(&key),
            Some(json!({"name": "x"}).to_string()),
            &[("idempotency-key", "k2")],
        )
        .await;
    assert_eq!(reused.status, StatusCode::CONFLICT);
    assert_eq!(reused.json["code"], "idempotency_key_reused");
    app.stop().await;
}

#[tokio::test]
async fn concurrent_requests_with_one_key_create_one_object() {
    let app = TestApp::spawn_with(Options::api_only()).await;
    let key = app.api_key.clone();
    let body = json!({"name": "once"}).to_string();
    let requests = (0..12).map(|_| {
        app.request(
            Method::POST,
            "/api/v1/applications",
            Some(&key),
            Some(body.clone()),
            &[("idempotency-key", "same")],
        )
    });
    let answers = futures::future::join_all(requests).await;
    let ids: HashSet<String> = answers
        .iter()
        .filter(|a| a.status == StatusCode::CREATED)
        .map(|a| a.json["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        ids.len(),
        1,
        "{:?}",
        answers.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    for answer in &answers {
        assert!(
            matches!(answer.status, StatusCode::CREATED | StatusCode::CONFLICT),
            "{}",
            answer.status
        );
    }
    assert_eq!(app.count("SELECT count(*) FROM applications").await, 1);
    app.stop().await;
}

#[tokio::test]
async fn cors_preflight_is_answered_on_every_route() {
    let app = TestApp::spawn_with(Options::api_only()).await;
    for path in [
        "/api/v1/applications",
        "/api/v1/applications/x/messages",
        "/api/v1/event-types/y",
    ] {
        let answer = app
            .request(
                Method::OPTIONS,
                path,
                None,
                None,
                &[
                    ("origin", "https://dashboard.example"),
                    ("access-control-request-method", "POST"),
                    (
                        "access-control-request-headers",
                        "authorization, content-type, idempotency-key",
                    ),
                ],
            )
            .await;
        assert!(answer.status.is_success(), "{path}: {}", answer.status);
        assert_eq!(answer.header("access-control-allow-origin"), "*");
        let allowed = answer.header("access-control-allow-headers").to_lowercase();
        for header in ["authorization", "content-type", "idempotency-key"] {
            assert!(allowed.contains(header), "{allowed}");
        }
    }
    let simple = app
        .request(
            Method::GET,
            "/api/v1/applications",
            Some(&app.api_key.clone()),
            None,
            &[("origin", "https://x.example")],
        )
        .await;
    assert_eq!(simple.header("access-control-allow-origin"), "*");
    app.stop().await;
}

#[tokio::test]
async fn unknown_routes_and_bad_paths_answer_problem_json() {
    let app = TestApp::spawn_with(Options::api_only()).await;
    let answer = app.get("/api/v1/nothing-here").await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.header("content-type"), "application/problem+json");
    assert_eq!(answer.json["status"], 404);
    let attempt = app
        .get("/api/v1/applications/x/messages/y/attempts/not-a-uuid")
        .await;
    assert_eq!(attempt.status, StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test]
async fn health_probes() {
    let app = TestApp::spawn_with(Options::api_only()).await;
    let live = app
        .request(Method::GET, "/health/live", None, None, &[])
        .await;
    assert_eq!(live.status, StatusCode::OK);
    let ready = octohooks_tests::eventually(10, || async {
        app.request(Method::GET, "/health/ready", None, None, &[])
            .await
            .status
            == StatusCode::OK
    })
    .await;
    assert!(ready);
    let body = app
        .request(Method::GET, "/health/ready", None, None, &[])
        .await;
    assert_eq!(
        body.json,
        json!({"status": "ok", "postgres": true, "rabbitmq": true})
    );
    app.stop().await;
}

#[test]
fn openapi_document_matches_the_checked_in_copy() {
    let generated = octohooks_api::openapi::document();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../proto-docs/openapi.json");
    let stored = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        stored.trim() == generated.trim(),
        "proto-docs/openapi.json is out of date: run `make openapi`"
    );
    let doc: serde_json::Value = serde_json::from_str(&generated).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in [
        "/api/v1/applications/{app}/messages",
        "/api/v1/environments",
        "/api/v1/applications/{app}/messages/{message}/attempts",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path}");
    }
}

#[tokio::test]
async fn a_claim_left_by_a_dead_request_is_taken_over_after_five_minutes_only() {
    let app = TestApp::spawn_with(Options::api_only()).await;
    let key = app.api_key.clone();
    let env = app.environment_id.clone();
    // A request that died holding two keys: one claimed just now, one six minutes ago.
    app.execute(&format!(
        "INSERT INTO idempotency_keys (environment_id, key, request_path, created, owner) VALUES \
         ('{env}', 'fresh', '/api/v1/applications', now(), gen_random_uuid()), \
         ('{env}', 'stale', '/api/v1/applications', now() - interval '6 minutes', gen_random_uuid())"
    ))
    .await;
    let body = json!({"name": "n"}).to_string();
    let stale = app
        .request(
            Method::POST,
            "/api/v1/applications",
            Some(&key),
            Some(body.clone()),
            &[("idempotency-key", "stale")],
        )
        .await;
    assert_eq!(stale.status, StatusCode::CREATED, "{}", stale.text);
    let replay = app
        .request(
            Method::POST,
            "/api/v1/applications",
            Some(&key),
            Some(body.clone()),
            &[("idempotency-key", "stale")],
        )
        .await;
    assert_eq!(replay.text, stale.text);
    let started = std::time::Instant::now();
    let fresh = app
        .request(
            Method::POST,
            "/api/v1/applications",
            Some(&key),
            Some(body),
            &[("idempotency-key", "fresh")],
        )
        .await;
    assert_eq!(
        fresh.status,
        StatusCode::CONFLICT,
        "a live claim is never overtaken"
    );
    assert_eq!(fresh.json["code"], "idempotency_in_progress");
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(10),
        "it waited for the first request"
    );
    assert_eq!(app.count("SELECT count(*) FROM applications").await, 1);
    app.stop().await;
}
