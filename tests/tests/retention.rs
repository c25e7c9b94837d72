//! Retention and expunge through the real services: a payload removed on request or by age
//! keeps its message and attempts; history older than the retention goes with its attempts;
//! nothing still waiting to be delivered is touched.

use std::time::Duration;

use octohooks_tests::{eventually, Options, Receiver, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// A test app with `vars`, retrying once after 100 ms and then after a minute, and an
/// application `shop` whose endpoint `ok` (event type `ok`) answers 200 and `down` (event type
/// `down`) answers 500.
async fn shop(vars: &[(&str, &str)]) -> (TestApp, Receiver, Receiver) {
    let app = TestApp::spawn_with(
        Options {
            retry_schedule: "100ms,60s".into(),
            ..Options::default()
        }
        .with_vars(vars),
    )
    .await;
    let ok = Receiver::start().await;
    let down = Receiver::start().await;
    down.default_status(500);
    app.create_app("shop").await;
    app.create_endpoint(
        "shop",
        json!({"uid": "ok", "url": ok.url("/ok"), "eventTypes": ["ok"]}),
    )
    .await;
    app.create_endpoint(
        "shop",
        json!({"uid": "down", "url": down.url("/down"), "eventTypes": ["down"]}),
    )
    .await;
    (app, ok, down)
}

async fn send(app: &TestApp, body: Value) -> String {
    let sent = app.post("/api/v1/applications/shop/messages", body).await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.text);
    sent.json["id"].as_str().expect("id").to_owned()
}

async fn message(app: &TestApp, id: &str) -> (StatusCode, Value) {
    let answer = app
        .get(&format!("/api/v1/applications/shop/messages/{id}"))
        .await;
    (answer.status, answer.json)
}

async fn stored(app: &TestApp, table_filter: &str) -> i64 {
    app.count(&format!("SELECT count(*) FROM {table_filter}"))
        .await
}

#[tokio::test]
async fn an_expunged_message_keeps_its_history_and_is_not_sent_again() {
    let (mut app, ok, down) = shop(&[]).await;

    let delivered = send(
        &app,
        json!({"eventType": "ok", "payload": {"card": "4242"}}),
    )
    .await;
    ok.wait_for("/ok", 1, 10).await;
    // A resend queued before the expunge (no dispatcher takes it meanwhile) sends nothing after.
    app.stop_dispatcher().await;
    let queued = app
        .call(
            Method::POST,
            &format!("/api/v1/applications/shop/messages/{delivered}/endpoints/ok/resend"),
            None,
        )
        .await;
    assert_eq!(queued.status, StatusCode::ACCEPTED, "{}", queued.text);
    let path = format!("/api/v1/applications/shop/messages/{delivered}/content");
    let expunged = app.call(Method::DELETE, &path, None).await;
    assert_eq!(expunged.status, StatusCode::NO_CONTENT, "{}", expunged.text);
    app.start_dispatcher().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        ok.received_on("/ok").len(),
        1,
        "the queued resend sent nothing"
    );
    let (status, read) = message(&app, &delivered).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (&read["payload"], &read["expunged"]),
        (&json!({}), &json!(true))
    );
    let raw = app
        .get(&format!(
            "/api/v1/applications/shop/messages/{delivered}/payload"
        ))
        .await;
    assert_eq!(raw.text, "{}");
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM messages WHERE payload LIKE '%4242%' OR id = '{delivered}' AND NOT expunged"
        ))
        .await,
        0,
        "the payload is gone from storage"
    );
    let listed = app.get("/api/v1/applications/shop/messages").await;
    assert_eq!(listed.json[0]["expunged"], true, "{}", listed.text);
    let attempts = app
        .get(&format!(
            "/api/v1/applications/shop/messages/{delivered}/attempts"
        ))
        .await;
    assert_eq!(
        attempts.json.as_array().map(Vec::len),
        Some(1),
        "{}",
        attempts.text
    );
    let resend = app
        .call(
            Method::POST,
            &format!("/api/v1/applications/shop/messages/{delivered}/endpoints/ok/resend"),
            None,
        )
        .await;
    assert_eq!(resend.status, StatusCode::CONFLICT, "{}", resend.text);
    assert_eq!(resend.json["code"], "message_expunged");

    // A message still being retried: its delivery ends as failed, its waiting job is dropped,
    // and the receiver hears nothing more of it.
    let waiting = send(&app, json!({"eventType": "down", "payload": {"n": 1}})).await;
    down.wait_for("/down", 1, 10).await;
    assert!(
        eventually(10, || async {
            stored(&app, &format!("outbox WHERE message_id = '{waiting}'")).await == 1
        })
        .await,
        "the retry waits in the outbox"
    );
    let path = format!("/api/v1/applications/shop/messages/{waiting}/content");
    assert_eq!(
        app.call(Method::DELETE, &path, None).await.status,
        StatusCode::NO_CONTENT
    );
    let destinations = app
        .get(&format!(
            "/api/v1/applications/shop/messages/{waiting}/endpoints"
        ))
        .await;
    assert_eq!(
        destinations.json[0]["status"], "failed",
        "{}",
        destinations.text
    );
    assert_eq!(
        stored(&app, &format!("outbox WHERE message_id = '{waiting}'")).await,
        0
    );

    // Unknown messages and bad periods.
    let missing = app
        .call(
            Method::DELETE,
            "/api/v1/applications/shop/messages/nope/content",
            None,
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    for bad in [json!(0), json!(3651), json!("7")] {
        let refused = app
            .post(
                "/api/v1/applications/shop/messages",
                json!({"eventType": "ok", "payload": {}, "payloadRetentionPeriod": bad}),
            )
            .await;
        assert_eq!(refused.status.as_u16() / 100, 4, "{bad}: {}", refused.text);
    }
    let asked = send(
        &app,
        json!({"eventType": "ok", "payload": {}, "payloadRetentionPeriod": 7}),
    )
    .await;
    let days = app
        .count(&format!(
            "SELECT round(extract(epoch FROM payload_expires - created) / 86400)::bigint \
             FROM messages WHERE id = '{asked}'"
        ))
        .await;
    assert_eq!(days, 7);
    app.stop().await;
}

#[tokio::test]
async fn history_older_than_the_retention_goes_and_what_waits_stays() {
    let (app, ok, down) = shop(&[("OCTOHOOKS_RETENTION", "3s")]).await;
    let done = send(&app, json!({"eventType": "ok", "payload": {"n": 1}})).await;
    let retrying = send(&app, json!({"eventType": "down", "payload": {"n": 2}})).await;
    let later = send(
        &app,
        json!({"eventType": "ok", "payload": {"n": 3}, "deliverAt": chrono_ms(60_000)}),
    )
    .await;
    let asked = send(
        &app,
        json!({"eventType": "ok", "payload": {"n": 4}, "payloadRetentionPeriod": 1}),
    )
    .await;
    ok.wait_for("/ok", 2, 10).await;
    down.wait_for("/down", 1, 10).await;

    // A payload whose time has come (as if a day had passed) is expunged, the rest kept.
    app.execute(&format!(
        "UPDATE messages SET payload_expires = now() - interval '1 second' WHERE id = '{asked}'"
    ))
    .await;
    assert!(
        eventually(5, || async {
            message(&app, &asked).await.1["expunged"] == true
        })
        .await,
        "the payload that asked to go went"
    );
    assert_eq!(message(&app, &done).await.1["expunged"], false);

    // Past the retention: the delivered messages go with their attempts and destinations.
    assert!(
        eventually(10, || async {
            message(&app, &done).await.0 == StatusCode::NOT_FOUND
                && message(&app, &asked).await.0 == StatusCode::NOT_FOUND
        })
        .await,
        "old messages were removed"
    );
    for table in ["attempts", "message_destinations"] {
        assert_eq!(
            stored(
                &app,
                &format!("{table} WHERE message_id IN ('{done}', '{asked}')")
            )
            .await,
            0,
            "{table}"
        );
    }
    // What still waits is kept whole: a retry under way and a delivery scheduled ahead.
    for waiting in [&retrying, &later] {
        let (status, read) = message(&app, waiting).await;
        assert_eq!(status, StatusCode::OK, "{waiting}");
        assert_eq!(read["expunged"], false);
    }
    assert_eq!(
        stored(&app, &format!("attempts WHERE message_id = '{retrying}'")).await,
        2
    );
    // Hourly counts older than the retention go too.
    app.execute(
        "INSERT INTO endpoint_attempt_counts (endpoint_id, hour, shard, successes, failures) \
         SELECT id, date_trunc('hour', now()) - interval '2 hours', 0, 1, 0 FROM endpoints LIMIT 1",
    )
    .await;
    assert!(
        eventually(5, || async {
            stored(
                &app,
                "endpoint_attempt_counts WHERE hour < now() - interval '1 hour'",
            )
            .await
                == 0
        })
        .await
    );
    app.stop().await;
}

#[tokio::test]
async fn a_backlog_of_several_batches_goes_and_a_message_passed_over_goes_once_settled() {
    let (app, _ok, _down) = shop(&[("OCTOHOOKS_RETENTION", "3s")]).await;
    // 2,500 delivered messages two days old (several passes of the sweep), the oldest of which
    // still waits for a delivery a day ahead.
    for statement in [
        "CREATE TABLE old_times AS \
           SELECT octohooks_uuid_v7(t) AS id, t FROM (SELECT now() - interval '2 days' \
             + g * interval '1 millisecond' AS t FROM generate_series(1, 2500) AS g) AS times",
        // One statement: a message stored without its destinations would be settled, and the
        // sweep could take it before they are written.
        "WITH stored_messages AS (INSERT INTO messages (id, application_id, event_type, \
             channels, payload, created) \
           SELECT o.id, a.id, 'ok', '{}', '{}', o.t FROM old_times o, applications a \
           WHERE a.uid = 'shop' RETURNING id) \
         INSERT INTO message_destinations (message_id, endpoint_id, status, \
             scheduled_attempts, attempt_count, next_attempt, updated) \
           SELECT o.id, e.id, CASE WHEN first THEN 'pending' ELSE 'success' END, 1, 1, \
             CASE WHEN first THEN now() + interval '1 day' END, o.t \
           FROM (SELECT *, t = min(t) OVER () AS first FROM old_times) o, endpoints e \
           WHERE e.uid = 'ok'",
    ] {
        app.execute(statement).await;
    }
    let waiting = "message_destinations WHERE status = 'pending' \
                   AND message_id = (SELECT id FROM old_times ORDER BY t LIMIT 1)";
    assert_eq!(stored(&app, waiting).await, 1);
    assert!(
        eventually(20, || async {
            stored(&app, "messages WHERE id IN (SELECT id FROM old_times)").await == 1
        })
        .await,
        "every settled old message went, over several passes"
    );
    assert_eq!(stored(&app, waiting).await, 1, "the waiting one stayed");

    // Once its delivery is done, a later pass (starting over from the oldest) takes it too.
    app.execute(&format!(
        "UPDATE message_destinations SET status = 'success', next_attempt = NULL \
         WHERE (message_id, status) IN (SELECT message_id, status FROM {waiting})"
    ))
    .await;
    assert!(
        eventually(10, || async {
            stored(&app, "messages WHERE id IN (SELECT id FROM old_times)").await == 0
        })
        .await,
        "the message passed over while it waited was removed once it was settled"
    );
    app.stop().await;
}

#[tokio::test]
async fn payloads_can_go_before_their_messages() {
    let (app, ok, _down) = shop(&[
        ("OCTOHOOKS_RETENTION", "1h"),
        ("OCTOHOOKS_PAYLOAD_RETENTION", "1s"),
    ])
    .await;
    let delivered: Vec<String> = {
        let mut ids = Vec::new();
        for n in 0..5 {
            ids.push(send(&app, json!({"eventType": "ok", "payload": {"n": n}})).await);
        }
        ids
    };
    let retrying = send(
        &app,
        json!({"eventType": "down", "payload": {"keep": true}}),
    )
    .await;
    ok.wait_for("/ok", 5, 10).await;
    assert!(
        eventually(10, || async {
            stored(&app, "messages WHERE expunged").await == 5
        })
        .await,
        "every delivered payload older than a second was expunged"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    for id in &delivered {
        let (status, read) = message(&app, id).await;
        assert_eq!((status, &read["payload"]), (StatusCode::OK, &json!({})));
    }
    assert_eq!(stored(&app, "attempts WHERE status = 'success'").await, 5);
    let (_, kept) = message(&app, &retrying).await;
    assert_eq!(
        kept["payload"],
        json!({"keep": true}),
        "a waiting delivery keeps its payload"
    );
    app.stop().await;
}

/// Epoch milliseconds `ahead` ms from now.
fn chrono_ms(ahead: i64) -> i64 {
    chrono::Utc::now().timestamp_millis() + ahead
}
