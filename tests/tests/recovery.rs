//! Recovery after an outage and the numbers that show it: endpoint statistics from counters,
//! `recover` (resend what failed in a window) and `replay-missing` (send what an endpoint never
//! got), run as background tasks by the dispatchers, each message queued once per task, also
//! when the dispatcher running the task is killed.

use std::collections::{HashMap, HashSet};

use octohooks_tests::{eventually, process, Options, Receiver, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Sends `count` messages of `event_type` to the application and returns their ids.
async fn send(app: &TestApp, application: &str, event_type: &str, count: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for n in 0..count {
        let sent = app
            .post(
                &format!("/api/v1/applications/{application}/messages"),
                json!({"eventType": event_type, "payload": {"n": n}}),
            )
            .await;
        assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.text);
        ids.push(sent.json["id"].as_str().expect("id").to_owned());
    }
    ids
}

/// Waits until the task is finished and returns it.
async fn finished(app: &TestApp, task: &Value, secs: u64) -> Value {
    let path = format!("/api/v1/background-tasks/{}", task["id"].as_str().unwrap());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        let answer = app.get(&path).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        if answer.json["status"] == "finished" {
            return answer.json;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the task did not finish: {}",
            answer.text
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Message ids the receiver got on `path`, with how many times each came.
fn arrivals(receiver: &Receiver, path: &str) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    for request in receiver.received_on(path) {
        *seen
            .entry(request.header("webhook-id").to_owned())
            .or_insert(0) += 1;
    }
    seen
}

async fn stats(app: &TestApp, endpoint: &str) -> Value {
    let answer = app
        .get(&format!(
            "/api/v1/applications/app/endpoints/{endpoint}/stats"
        ))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    answer.json
}

#[tokio::test]
async fn stats_count_attempts_and_what_waits_without_reading_attempts() {
    let app = TestApp::spawn_with(Options {
        retry_schedule: "200ms,200ms,30s".into(),
        ..Options::default()
    })
    .await;
    let receiver = Receiver::start().await;
    app.create_app("app").await;
    app.create_endpoint("app", json!({"uid": "busy", "url": receiver.url("/busy")}))
        .await;
    app.create_endpoint(
        "app",
        json!({"uid": "quiet", "url": receiver.url("/quiet"), "eventTypes": ["never.sent"]}),
    )
    .await;

    send(&app, "app", "t", 3).await;
    receiver.wait_for("/busy", 3, 10).await;
    // An attempt is recorded after its receiver answered: the counts follow within moments.
    eventually(10, || async { stats(&app, "busy").await["success"] == 3 }).await;
    let ok = stats(&app, "busy").await;
    assert_eq!(
        (
            &ok["success"],
            &ok["failure"],
            &ok["pending"],
            &ok["inFlight"]
        ),
        (&json!(3), &json!(0), &json!(0), &json!(0)),
        "{ok}"
    );
    assert!(ok["lastSuccess"].as_i64().is_some(), "{ok}");
    assert_eq!(ok["lastFailure"], Value::Null);

    // Three failed attempts, then a retry 30 s away: one delivery waits.
    receiver.default_status(500);
    send(&app, "app", "t", 1).await;
    receiver.wait_for("/busy", 6, 10).await;
    let waiting = eventually(10, || async {
        let now = stats(&app, "busy").await;
        now["failure"] == 3 && now["pending"] == 1 && now["inFlight"] == 0
    })
    .await;
    assert!(waiting, "{}", stats(&app, "busy").await);
    let failing = stats(&app, "busy").await;
    assert!(failing["lastFailure"].as_i64() >= failing["lastSuccess"].as_i64());

    // The counts are those stored: the same as counting the attempts themselves.
    assert_eq!(
        app.count("SELECT count(*) FROM attempts WHERE status = 'failed'")
            .await,
        3
    );
    let quiet = stats(&app, "quiet").await;
    assert_eq!(
        (&quiet["success"], &quiet["failure"]),
        (&json!(0), &json!(0))
    );

    // A window of the past holds none of them; windows are whole hours.
    let old = app
        .get("/api/v1/applications/app/endpoints/busy/stats?since=2026-01-01T00:30:00Z&until=2026-01-02T00:00:00Z")
        .await;
    assert_eq!(old.status, StatusCode::OK, "{}", old.text);
    assert_eq!(
        (&old.json["success"], &old.json["failure"]),
        (&json!(0), &json!(0))
    );
    assert_eq!(old.json["since"], json!(1_767_225_600_000_i64));
    for bad in [
        "since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z",
        "since=tomorrow",
        "since=2020-01-01T00:00:00Z&until=2026-01-01T00:00:00Z",
    ] {
        let refused = app
            .get(&format!(
                "/api/v1/applications/app/endpoints/busy/stats?{bad}"
            ))
            .await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad}: {}",
            refused.text
        );
        assert_eq!(refused.json["code"], "validation_error");
    }
    let missing = app
        .get("/api/v1/applications/app/endpoints/nope/stats")
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    // Deleting the endpoint removes its counts with it.
    let deleted = app
        .call(
            Method::DELETE,
            "/api/v1/applications/app/endpoints/busy",
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.text);
    assert_eq!(
        app.count("SELECT count(*) FROM endpoint_attempt_counts")
            .await,
        0
    );
    app.stop().await;
}

#[tokio::test]
async fn recover_resends_what_failed_in_the_window_once() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    app.create_app("app").await;
    app.create_endpoint("app", json!({"uid": "ep", "url": receiver.url("/hook")}))
        .await;

    // Delivered before the outage: never resent.
    let delivered = send(&app, "app", "t", 2).await;
    receiver.wait_for("/hook", 2, 10).await;
    // The outage: every attempt of these fails until the schedule is exhausted.
    receiver.default_status(503);
    let failed = send(&app, "app", "t", 5).await;
    let exhausted = eventually(20, || async {
        app.count("SELECT count(*) FROM message_destinations WHERE status = 'failed'")
            .await
            == 5
    })
    .await;
    assert!(exhausted, "the failures were not exhausted");
    receiver.default_status(200);
    let before = receiver.received().len();

    // Refused: a window that ends before it starts, an unknown field, an unknown endpoint.
    for (path, body) in [
        (
            "ep",
            json!({"since": chrono::Utc::now().timestamp_millis() + 60_000}),
        ),
        (
            "ep",
            json!({"since": "2026-01-01T00:00:00Z", "until": "2025-01-01T00:00:00Z"}),
        ),
        ("ep", json!({"since": "2026-01-01T00:00:00Z", "from": 1})),
        ("nope", json!({"since": "2026-01-01T00:00:00Z"})),
    ] {
        let refused = app
            .post(
                &format!("/api/v1/applications/app/endpoints/{path}/recover"),
                body.clone(),
            )
            .await;
        assert!(refused.status.is_client_error(), "{body}: {}", refused.text);
    }
    assert_eq!(app.count("SELECT count(*) FROM background_tasks").await, 0);

    let since = chrono::Utc::now() - chrono::Duration::hours(1);
    let started = app
        .post(
            "/api/v1/applications/app/endpoints/ep/recover",
            json!({"since": since.to_rfc3339()}),
        )
        .await;
    assert_eq!(started.status, StatusCode::ACCEPTED, "{}", started.text);
    assert_eq!(started.json["task"], "endpoint.recover");
    assert_eq!(started.json["status"], "running");
    let done = finished(&app, &started.json, 20).await;
    assert_eq!(done["messagesQueued"], 5, "{done}");
    assert_eq!(done["messagesScanned"], 7, "{done}");

    let recovered = eventually(10, || async { receiver.received().len() >= before + 5 }).await;
    assert!(recovered, "the failed messages did not come");
    // Nothing more arrives: each failed message once, the delivered ones not at all.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let after: Vec<String> = receiver.received()[before..]
        .iter()
        .map(|r| r.header("webhook-id").to_owned())
        .collect();
    let mut sorted = after.clone();
    sorted.sort();
    let mut expected = failed.clone();
    expected.sort();
    assert_eq!(sorted, expected);
    assert!(delivered.iter().all(|id| !after.contains(id)));
    let states = app
        .count("SELECT count(*) FROM message_destinations WHERE status = 'success'")
        .await;
    assert_eq!(states, 7, "recovered deliveries read as delivered");
    let manual = app
        .count("SELECT count(*) FROM attempts WHERE trigger_type = 'manual' AND status = 'success'")
        .await;
    assert_eq!(manual, 5);

    // A window before the outage finds nothing to resend.
    let nothing = app
        .post(
            "/api/v1/applications/app/endpoints/ep/recover",
            json!({"since": since.timestamp_millis(), "until": (since + chrono::Duration::minutes(1)).timestamp_millis()}),
        )
        .await;
    assert_eq!(nothing.status, StatusCode::ACCEPTED, "{}", nothing.text);
    let none = finished(&app, &nothing.json, 20).await;
    assert_eq!(
        (&none["messagesQueued"], &none["messagesScanned"]),
        (&json!(0), &json!(0))
    );

    // Listed newest first, filtered by state.
    let listed = app.get("/api/v1/background-tasks?status=finished").await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    let ids: Vec<&str> = listed
        .json
        .as_array()
        .expect("data")
        .iter()
        .map(|task| task["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            nothing.json["id"].as_str().unwrap(),
            started.json["id"].as_str().unwrap()
        ]
    );
    let bad = app.get("/api/v1/background-tasks?status=done").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let unknown = app
        .get(&format!(
            "/api/v1/background-tasks/{}",
            uuid::Uuid::now_v7()
        ))
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test]
async fn replay_missing_sends_what_a_disabled_or_new_endpoint_never_got() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    app.create_app("app").await;
    app.create_endpoint(
        "app",
        json!({"uid": "ep", "url": receiver.url("/hook"), "eventTypes": ["order.paid"], "enabled": false}),
    )
    .await;
    // Sent while it was disabled: one type it takes, one it does not.
    let missed = send(&app, "app", "order.paid", 4).await;
    send(&app, "app", "order.refunded", 2).await;
    // Sent before it existed: a second endpoint gets these too.
    app.create_endpoint("app", json!({"uid": "late", "url": receiver.url("/late")}))
        .await;

    let refused = app
        .post(
            "/api/v1/applications/app/endpoints/ep/replay-missing",
            json!({"since": "2026-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::CONFLICT,
        "disabled: {}",
        refused.text
    );
    let enabled = app
        .request(
            Method::PATCH,
            "/api/v1/applications/app/endpoints/ep",
            Some(&app.api_key),
            Some(json!({"enabled": true}).to_string()),
            &[("content-type", "application/merge-patch+json")],
        )
        .await;
    assert_eq!(enabled.status, StatusCode::OK, "{}", enabled.text);
    // Delivered to it once enabled: not missing.
    let live = send(&app, "app", "order.paid", 1).await;
    receiver.wait_for("/hook", 1, 10).await;
    // An example sent to it alone belongs to it: never replayed to another endpoint.
    let typed = app
        .post(
            "/api/v1/event-types",
            json!({"name": "order.paid", "schemas": {"1": {"type": "object", "examples": [{"order": 1}]}}}),
        )
        .await;
    assert_eq!(typed.status, StatusCode::CREATED, "{}", typed.text);
    let example = app
        .post(
            "/api/v1/applications/app/endpoints/ep/send-example",
            json!({"eventType": "order.paid"}),
        )
        .await;
    assert_eq!(example.status, StatusCode::ACCEPTED, "{}", example.text);
    let example = vec![example.json["id"].as_str().unwrap().to_owned()];
    receiver.wait_for("/hook", 2, 10).await;

    let since = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let task = app
        .post(
            "/api/v1/applications/app/endpoints/ep/replay-missing",
            json!({"since": since}),
        )
        .await;
    assert_eq!(task.status, StatusCode::ACCEPTED, "{}", task.text);
    assert_eq!(task.json["task"], "endpoint.replay");
    let done = finished(&app, &task.json, 20).await;
    assert_eq!(done["messagesQueued"], 4, "{done}");
    let late = app
        .post(
            "/api/v1/applications/app/endpoints/late/replay-missing",
            json!({"since": since}),
        )
        .await;
    assert_eq!(finished(&app, &late.json, 20).await["messagesQueued"], 6);

    receiver.wait_for("/hook", 6, 10).await;
    receiver.wait_for("/late", 7, 10).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let got = arrivals(&receiver, "/hook");
    let expected: HashSet<&String> = missed.iter().chain(&live).chain(&example).collect();
    assert_eq!(got.keys().collect::<HashSet<_>>(), expected);
    assert!(got.values().all(|&n| n == 1), "{got:?}");
    let late_got = arrivals(&receiver, "/late");
    assert!(late_got.values().all(|&n| n == 1));
    assert!(
        !late_got.contains_key(&example[0]),
        "an example went to another endpoint"
    );

    // Once replayed, nothing is missing any more.
    let again = app
        .post(
            "/api/v1/applications/app/endpoints/ep/replay-missing",
            json!({"since": since}),
        )
        .await;
    assert_eq!(finished(&app, &again.json, 20).await["messagesQueued"], 0);
    app.stop().await;
}

#[tokio::test]
async fn a_task_resumes_after_its_runner_is_killed_and_queues_each_message_once() {
    let mut app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    app.create_app("app").await;
    app.create_endpoint(
        "app",
        json!({"uid": "ep", "url": receiver.url("/hook"), "enabled": false}),
    )
    .await;
    let missed = send(&app, "app", "t", 120).await;
    let enabled = app
        .call(
            Method::PUT,
            "/api/v1/applications/app/endpoints/ep",
            Some(json!({"url": receiver.url("/hook"), "enabled": true})),
        )
        .await;
    assert_eq!(enabled.status, StatusCode::OK, "{}", enabled.text);
    // Only the process below may run the task: the in-process dispatcher stops.
    app.stop_dispatcher().await;

    // A dispatcher process that runs tasks but reaches no broker, so it sends nothing itself,
    // and examines ten messages per batch: the task is under way when it is killed.
    let mut vars = app.env_vars();
    vars.insert(
        "OCTOHOOKS_AMQP_URL".into(),
        "amqp://guest:guest@127.0.0.1:1/%2f".into(),
    );
    vars.insert("OCTOHOOKS_TASK_BATCH_SIZE".into(), "10".into());
    vars.insert(
        "OCTOHOOKS_DISPATCHER_LISTEN_ADDR".into(),
        "127.0.0.1:0".into(),
    );
    let mut runner = process::spawn("octohooks-dispatcher", &vars);

    let task = app
        .post(
            "/api/v1/applications/app/endpoints/ep/replay-missing",
            json!({"since": (chrono::Utc::now() - chrono::Duration::hours(1)).timestamp_millis()}),
        )
        .await;
    assert_eq!(task.status, StatusCode::ACCEPTED, "{}", task.text);
    let path = format!(
        "/api/v1/background-tasks/{}",
        task.json["id"].as_str().unwrap()
    );
    let under_way = eventually(30, || async {
        let now = app.get(&path).await.json;
        now["messagesQueued"].as_i64().unwrap_or(0) >= 20
    })
    .await;
    assert!(
        under_way,
        "the runner did not start: {}",
        app.get(&path).await.text
    );
    runner.kill().await.expect("kill the runner");
    let halfway = app.get(&path).await.json;
    assert_eq!(halfway["status"], "running", "{halfway}");
    assert!(
        halfway["messagesQueued"].as_i64().unwrap() < 120,
        "{halfway}"
    );

    // A new dispatcher takes the task over once the dead runner's claim lapses.
    app.start_dispatcher().await;
    let done = finished(&app, &task.json, 40).await;
    assert_eq!(done["messagesQueued"], 120, "{done}");
    receiver.wait_for("/hook", 120, 30).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let got = arrivals(&receiver, "/hook");
    assert_eq!(got.len(), 120);
    assert!(missed.iter().all(|id| got.get(id) == Some(&1)), "{got:?}");
    assert_eq!(
        app.count("SELECT count(*) FROM message_destinations WHERE status = 'success'")
            .await,
        120
    );
    app.stop().await;
}

#[tokio::test]
async fn portal_tokens_see_the_stats_and_tasks_of_their_own_application_only() {
    let app = TestApp::spawn_with(Options::api_only()).await;
    let receiver = Receiver::start().await;
    for application in ["own", "other"] {
        app.create_app(application).await;
        app.create_endpoint(
            application,
            json!({"uid": "ep", "url": receiver.url("/hook")}),
        )
        .await;
    }
    let since =
        json!({"since": (chrono::Utc::now() - chrono::Duration::hours(1)).timestamp_millis()});
    let others = app
        .post(
            "/api/v1/applications/other/endpoints/ep/recover",
            since.clone(),
        )
        .await;
    assert_eq!(others.status, StatusCode::ACCEPTED, "{}", others.text);
    let link = app
        .post("/api/v1/applications/own/portal-access", json!({}))
        .await;
    let token = link.json["token"].as_str().expect("token").to_owned();
    let as_portal = |method: Method, path: String, body: Option<Value>| {
        let token = token.clone();
        let app = &app;
        async move {
            app.request(
                method,
                &path,
                Some(&token),
                body.map(|b| b.to_string()),
                &[],
            )
            .await
        }
    };
    let own = as_portal(
        Method::POST,
        "/api/v1/applications/own/endpoints/ep/recover".into(),
        Some(since.clone()),
    )
    .await;
    assert_eq!(own.status, StatusCode::ACCEPTED, "{}", own.text);
    let stats = as_portal(
        Method::GET,
        "/api/v1/applications/own/endpoints/ep/stats".into(),
        None,
    )
    .await;
    assert_eq!(stats.status, StatusCode::OK, "{}", stats.text);
    let listed = as_portal(Method::GET, "/api/v1/background-tasks".into(), None).await;
    assert_eq!(
        listed.json.as_array().map(Vec::len),
        Some(1),
        "{}",
        listed.text
    );
    assert_eq!(listed.json[0]["id"], own.json["id"]);
    let foreign = as_portal(
        Method::GET,
        format!(
            "/api/v1/background-tasks/{}",
            others.json["id"].as_str().unwrap()
        ),
        None,
    )
    .await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    let elsewhere = as_portal(
        Method::GET,
        "/api/v1/applications/other/endpoints/ep/stats".into(),
        None,
    )
    .await;
    assert_eq!(elsewhere.status, StatusCode::FORBIDDEN);

    let read_only = app
        .post(
            "/api/v1/applications/own/portal-access",
            json!({"readOnly": true}),
        )
        .await;
    let read_only = read_only.json["token"].as_str().expect("token");
    let refused = app
        .request(
            Method::POST,
            "/api/v1/applications/own/endpoints/ep/replay-missing",
            Some(read_only),
            Some(since.to_string()),
            &[],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    app.stop().await;
}

/// The retention sweep deletes a message while a replay is about to queue it: the replay leaves
/// that message out and goes on with the rest, where the delivery's foreign key used to fail the
/// whole task.
#[tokio::test]
async fn a_replay_racing_the_removal_of_one_of_its_messages_queues_the_others() {
    use diesel_async::{AsyncConnection, SimpleAsyncConnection};
    use octohooks_db::tasks::{self, BatchOutcome};

    let app = TestApp::spawn_with(Options::api_only()).await;
    app.create_app("app").await;
    app.create_endpoint(
        "app",
        json!({"url": "https://hooks.example/ep", "uid": "ep"}),
    )
    .await;
    let sent = send(&app, "app", "invoice.paid", 3).await;
    app.create_endpoint(
        "app",
        json!({"url": "https://hooks.example/late", "uid": "late"}),
    )
    .await;
    let since = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let task = app
        .post(
            "/api/v1/applications/app/endpoints/late/replay-missing",
            json!({"since": since}),
        )
        .await;
    assert_eq!(task.status, StatusCode::ACCEPTED, "{}", task.text);

    // The removal, caught after it deleted the message and before it committed.
    let mut removing = diesel_async::AsyncPgConnection::establish(&app.database_url)
        .await
        .expect("a connection");
    removing
        .batch_execute(&format!(
            "BEGIN; DELETE FROM messages WHERE id = '{}'",
            sent[0]
        ))
        .await
        .expect("the removal");
    let db = octohooks_db::pool::build_pool(
        &app.database_url,
        &octohooks_db::pool::PoolOptions::default(),
    )
    .expect("a pool");
    let mut runner = octohooks_db::pool::connection(&db)
        .await
        .expect("a connection");
    let claimed = tasks::claim_next(&mut runner, 60)
        .await
        .expect("claim")
        .expect("the replay task");
    let (outcome, ()) = tokio::join!(tasks::run_batch(&mut runner, claimed.id, 100, 60), async {
        // Long enough for the batch to reach the deleted message's row and wait for it.
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        removing.batch_execute("COMMIT").await.expect("commit");
    });
    assert!(
        matches!(outcome, Ok(BatchOutcome::Finished)),
        "the batch ran to the end: {outcome:?}"
    );
    let done = finished(&app, &task.json, 5).await;
    assert_eq!(done["messagesQueued"], 2, "{done}");
    let late_destinations = app
        .count(
            "SELECT count(*) FROM message_destinations d JOIN endpoints e \
             ON e.id = d.endpoint_id WHERE e.uid = 'late'",
        )
        .await;
    assert_eq!(late_destinations, 2);
    app.stop().await;
}
