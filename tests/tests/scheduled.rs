//! `deliverAt`: a message is stored at once and attempted at the time it names, through the
//! same outbox, relay and dispatcher as any other; a time in the past means now, one beyond 90
//! days is refused and stores nothing.

use std::time::{Duration, Instant};

use octohooks_tests::{Receiver, TestApp};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn a_message_waits_for_its_delivery_time() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    app.create_app("app").await;
    app.create_endpoint("app", json!({"url": receiver.url("/hook")}))
        .await;
    let at = chrono::Utc::now() + chrono::Duration::seconds(5);
    let sent_at = Instant::now();
    let later = app
        .post(
            "/api/v1/applications/app/messages",
            json!({"eventType": "t", "payload": {"n": 1}, "deliverAt": at.timestamp_millis()}),
        )
        .await;
    assert_eq!(later.status, StatusCode::ACCEPTED, "{}", later.text);
    let id = later.json["id"].as_str().unwrap().to_owned();
    // Stored, with its destination due at that time and its job waiting in the outbox.
    let destinations = app
        .get(&format!("/api/v1/applications/app/messages/{id}/endpoints"))
        .await;
    assert_eq!(destinations.json[0]["status"], "pending");
    let next = destinations.json[0]["nextAttempt"].as_i64().unwrap();
    assert!(
        (next - at.timestamp_millis()).abs() <= 1,
        "{next} vs {}",
        at.timestamp_millis()
    );
    assert_eq!(app.count("SELECT count(*) FROM outbox").await, 1);

    // A time in the past (RFC 3339) is now.
    let now = app
        .post(
            "/api/v1/applications/app/messages",
            json!({"eventType": "t", "payload": {"n": 2}, "deliverAt": "2020-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(now.status, StatusCode::ACCEPTED, "{}", now.text);
    let first = receiver.wait_for("/hook", 1, 10).await;
    assert_eq!(first[0].header("webhook-id"), now.json["id"]);
    // Before the other's time, with seconds to spare: no timing of the host's speed.
    assert!(
        first[0].at.duration_since(sent_at) < Duration::from_millis(4900),
        "the message due now came before the one due later"
    );
    assert_eq!(receiver.received().len(), 1, "the later message waited");

    let both = receiver.wait_for("/hook", 2, 15).await;
    let scheduled = both
        .iter()
        .find(|r| r.header("webhook-id") == id)
        .expect("the scheduled message arrived");
    assert!(
        scheduled.at.duration_since(sent_at) >= Duration::from_millis(4900),
        "arrived {:?} after sending",
        scheduled.at.duration_since(sent_at)
    );
    app.stop().await;
}

#[tokio::test]
async fn a_delivery_time_too_far_ahead_or_unreadable_is_refused() {
    let app = TestApp::spawn_with(octohooks_tests::Options::api_only()).await;
    app.create_app("app").await;
    let too_far = chrono::Utc::now() + chrono::Duration::days(91);
    for deliver_at in [
        json!(too_far.to_rfc3339()),
        json!("next tuesday"),
        json!(true),
    ] {
        let refused = app
            .post(
                "/api/v1/applications/app/messages",
                json!({"eventType": "t", "payload": {}, "deliverAt": deliver_at}),
            )
            .await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{deliver_at}: {}",
            refused.text
        );
        assert!(refused.text.contains("deliverAt"), "{}", refused.text);
    }
    assert_eq!(app.count("SELECT count(*) FROM messages").await, 0);
    app.stop().await;
}

#[tokio::test]
async fn a_message_to_several_endpoints_waits_as_one_row_until_its_time() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    app.create_app("app").await;
    for path in ["/a", "/b"] {
        app.create_endpoint("app", json!({"url": receiver.url(path)}))
            .await;
    }
    let at = chrono::Utc::now() + chrono::Duration::seconds(3);
    let sent_at = Instant::now();
    let later = app
        .post(
            "/api/v1/applications/app/messages",
            json!({"eventType": "t", "payload": {}, "deliverAt": at.to_rfc3339()}),
        )
        .await;
    assert_eq!(later.status, StatusCode::ACCEPTED, "{}", later.text);
    assert_eq!(
        app.count(
            "SELECT count(*) FROM outbox_fanouts WHERE claimed_until IS NULL \
             AND abs(extract(epoch FROM due) * 1000 - extract(epoch FROM (SELECT max(next_attempt) \
               FROM message_destinations))::numeric * 1000) < 1"
        )
        .await,
        1,
        "one unclaimed row, due when its destinations are"
    );
    assert_eq!(app.count("SELECT count(*) FROM outbox").await, 0);

    let arrived = receiver.wait_for("/a", 1, 15).await;
    receiver.wait_for("/b", 1, 15).await;
    assert!(
        arrived[0].at.duration_since(sent_at) >= Duration::from_millis(2900),
        "arrived {:?} after sending",
        arrived[0].at.duration_since(sent_at)
    );
    assert!(
        octohooks_tests::eventually(10, || async { app.waiting_jobs().await == 0 }).await,
        "the row goes once published"
    );
    assert_eq!(receiver.received().len(), 2, "each endpoint once");
    app.stop().await;
}

#[tokio::test]
async fn a_fan_out_sent_for_later_goes_with_its_application_or_its_payload() {
    let app = TestApp::spawn_with(octohooks_tests::Options::api_only()).await;
    let receiver = Receiver::start().await;
    let at = chrono::Utc::now() + chrono::Duration::hours(1);
    for uid in ["doomed", "kept"] {
        app.create_app(uid).await;
        for path in ["/a", "/b"] {
            app.create_endpoint(uid, json!({"url": receiver.url(path)}))
                .await;
        }
        let later = app
            .post(
                &format!("/api/v1/applications/{uid}/messages"),
                json!({"eventType": "t", "payload": {}, "deliverAt": at.to_rfc3339()}),
            )
            .await;
        assert_eq!(later.status, StatusCode::ACCEPTED, "{}", later.text);
    }
    assert_eq!(app.count("SELECT count(*) FROM outbox_fanouts").await, 2);

    let deleted = app
        .call(reqwest::Method::DELETE, "/api/v1/applications/doomed", None)
        .await;
    assert!(deleted.status.is_success(), "{}", deleted.text);
    assert_eq!(
        app.count("SELECT count(*) FROM outbox_fanouts").await,
        1,
        "the deleted application's row went, the other's stayed"
    );
    assert_eq!(
        app.count(
            "SELECT count(*) FROM outbox_fanouts f JOIN messages m ON m.id = f.message_id \
             JOIN applications a ON a.id = m.application_id WHERE a.uid = 'kept'"
        )
        .await,
        1
    );

    // Its payload expunged, the other message has nothing left to send: its row goes too.
    let kept = app.text("SELECT id::text FROM messages").await;
    let expunged = app
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/applications/kept/messages/{kept}/content"),
            None,
        )
        .await;
    assert!(expunged.status.is_success(), "{}", expunged.text);
    assert_eq!(app.count("SELECT count(*) FROM outbox_fanouts").await, 0);
    assert_eq!(
        app.count("SELECT count(*) FROM message_destinations WHERE status = 'failed'")
            .await,
        2
    );
    app.stop().await;
}
