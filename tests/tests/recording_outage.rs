//! Postgres lost between sending a webhook and recording its attempt: the job is requeued, never
//! acknowledged and dropped. Once the database is back the job runs again, so the receiver may
//! get the webhook a second time (at-least-once, with the same `webhook-id`), and exactly one
//! attempt is recorded, for scheduled deliveries (which go by the express lane, and move to the
//! durable queue) and manual resends alike.

use std::time::Duration;

use octohooks_tests::proxy::Proxy;
use octohooks_tests::{eventually, Options, Receiver, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::json;

/// How long the receiver holds each request: the window in which the database is cut.
const ANSWER_AFTER: Duration = Duration::from_millis(1500);

/// Waits until the receiver holds its `nth` request on `path`, cuts Postgres while it is being
/// answered, and restores it once the dispatcher must have tried to record the attempt.
async fn cut_postgres_during_request(proxy: &Proxy, receiver: &Receiver, path: &str, nth: usize) {
    let arrived = eventually(20, || async { receiver.received_on(path).len() >= nth }).await;
    assert!(arrived, "request {nth} on {path} arrives");
    proxy.cut();
    // The answer comes at ANSWER_AFTER; the recording fails at once with the database cut.
    tokio::time::sleep(ANSWER_AFTER + Duration::from_secs(2)).await;
    proxy.restore();
}

async fn recorded_attempts(app: &TestApp, message: &str, trigger: &str) -> (i64, i64) {
    let all = app
        .count(&format!(
            "SELECT count(*) FROM attempts WHERE message_id = '{message}' \
             AND trigger_type = '{trigger}'"
        ))
        .await;
    let succeeded = app
        .count(&format!(
            "SELECT count(*) FROM attempts WHERE message_id = '{message}' \
             AND trigger_type = '{trigger}' AND status = 'success'"
        ))
        .await;
    (all, succeeded)
}

#[tokio::test]
async fn an_attempt_sent_while_postgres_went_away_is_recorded_once_it_is_back() {
    let proxy = Proxy::start("127.0.0.1:5432").await;
    let app = TestApp::spawn_with(Options {
        database_via: Some(proxy.addr.clone()),
        ..Options::default()
    })
    .await;
    let receiver = Receiver::start().await;
    receiver.delay(ANSWER_AFTER);
    app.create_app("shop").await;
    app.create_endpoint("shop", json!({"uid": "hook", "url": receiver.url("/hook")}))
        .await;
    // The first attempt goes by the express lane: when its record fails, the job moves to the
    // durable queue, and its outbox row goes once it is there.
    app.wait_for_express_lane().await;
    let sent = app
        .post(
            "/api/v1/applications/shop/messages",
            json!({"eventType": "order.paid", "payload": {"order": 1}}),
        )
        .await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.text);
    let message = sent.json["id"].as_str().unwrap().to_owned();

    // A scheduled delivery whose recording fails.
    cut_postgres_during_request(&proxy, &receiver, "/hook", 1).await;
    assert_eq!(
        app.metric("octohooks_jobs_published_total{lane=\"express\"}")
            .await,
        1.0,
        "the first attempt went by the express lane"
    );
    let recorded = eventually(60, || async {
        recorded_attempts(&app, &message, "scheduled").await.1 == 1
    })
    .await;
    assert!(recorded, "the attempt is recorded once Postgres is back");
    let received = receiver.received_on("/hook");
    assert!(
        received.len() >= 2,
        "the unrecorded send is made again ({} requests)",
        received.len()
    );
    assert!(
        received
            .iter()
            .all(|r| r.header("webhook-id") == received[0].header("webhook-id")),
        "every send of the message carries the same webhook-id"
    );
    let status = app
        .count(&format!(
            "SELECT count(*) FROM message_destinations WHERE message_id = '{message}' \
             AND status = 'success'"
        ))
        .await;
    assert_eq!(status, 1, "the delivery is marked delivered");

    // A manual resend whose recording fails.
    let before = receiver.received_on("/hook").len();
    let resend = app
        .call(
            Method::POST,
            &format!("/api/v1/applications/shop/messages/{message}/endpoints/hook/resend"),
            None,
        )
        .await;
    assert_eq!(resend.status, StatusCode::ACCEPTED, "{}", resend.text);
    cut_postgres_during_request(&proxy, &receiver, "/hook", before + 1).await;
    let recorded = eventually(60, || async {
        recorded_attempts(&app, &message, "manual").await.1 == 1
    })
    .await;
    assert!(
        recorded,
        "the resend's attempt is recorded once Postgres is back"
    );
    assert!(
        receiver.received_on("/hook").len() >= before + 2,
        "the unrecorded resend is made again"
    );
    // Nothing more is on its way: one attempt of each kind, and no further request.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(recorded_attempts(&app, &message, "scheduled").await, (1, 1));
    assert_eq!(recorded_attempts(&app, &message, "manual").await, (1, 1));
    assert_eq!(
        app.waiting_jobs().await,
        0,
        "no job is left to publish again"
    );
    app.stop().await;
}
