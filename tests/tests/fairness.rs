//! Fairness between endpoints: a cap on the attempts one endpoint has running that holds across
//! dispatchers, a rate limit per endpoint enforced across dispatchers, and an endpoint that hangs
//! not slowing the others. Jobs over a limit wait and are delivered later, none is lost.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use diesel_async::{AsyncConnection, SimpleAsyncConnection};
use octohooks_tests::hostile::{self, Misbehaviour};
use octohooks_tests::{eventually, process, scrape, series_value, Options, Receiver, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::json;

fn delivered(receiver: &Receiver, path: &str) -> HashSet<String> {
    receiver
        .received_on(path)
        .iter()
        .map(|r| r.header("webhook-id").to_owned())
        .collect()
}

/// An app whose dispatcher has 8 slots (6 for first attempts, 2 for failing endpoints), at
/// most 2 per endpoint, and attempts that time out after 6 s; a receiver that never answers and
/// one that does, at `/healthy` of an application `healthy`.
async fn small_dispatcher_and_a_hanging_receiver() -> (TestApp, String, Receiver) {
    let app = TestApp::spawn_with(Options {
        delivery_timeout: "6s".into(),
        ..Options::default().with_vars(&[
            ("OCTOHOOKS_DISPATCHER_CONCURRENCY", "8"),
            ("OCTOHOOKS_ENDPOINT_MAX_IN_FLIGHT", "2"),
        ])
    })
    .await;
    let hanging = hostile::start(Misbehaviour::Hang).await;
    let receiver = Receiver::start().await;
    app.create_app("healthy").await;
    app.create_endpoint("healthy", json!({"url": receiver.url("/healthy")}))
        .await;
    (app, hanging, receiver)
}

/// Half a second after the hanging endpoints got their messages, how long 5 messages to the
/// healthy endpoint take to arrive.
async fn healthy_delivery_time(app: &TestApp, receiver: &Receiver) -> Duration {
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    let sent = app.send_messages("healthy", 5).await;
    let all = eventually(20, || async { delivered(receiver, "/healthy") == sent }).await;
    assert!(all, "the healthy endpoint got every message");
    started.elapsed()
}

/// An app with the cap at 8 and an application `name` whose endpoint, at `/<name>` of the
/// receiver, answers each request after `delay`.
async fn capped_at_8(name: &str, delay: Duration) -> (TestApp, Receiver) {
    let app = TestApp::spawn_with(
        Options::default().with_vars(&[("OCTOHOOKS_ENDPOINT_MAX_IN_FLIGHT", "8")]),
    )
    .await;
    let receiver = Receiver::start().await;
    receiver.delay(delay);
    app.create_app(name).await;
    app.create_endpoint(name, json!({"url": receiver.url(&format!("/{name}"))}))
        .await;
    (app, receiver)
}

#[tokio::test]
async fn the_cap_on_attempts_in_flight_holds_across_two_dispatchers() {
    let mut app = TestApp::spawn_with(
        Options::default().with_vars(&[("OCTOHOOKS_ENDPOINT_MAX_IN_FLIGHT", "2")]),
    )
    .await;
    let mut second = process::spawn("octohooks-dispatcher", &app.env_vars());
    let receiver = Receiver::start().await;
    receiver.delay(Duration::from_millis(400));
    app.create_app("capped").await;
    app.create_endpoint("capped", json!({"url": receiver.url("/slow")}))
        .await;
    let sent = app.send_messages("capped", 16).await;
    let all = eventually(60, || async { delivered(&receiver, "/slow") == sent }).await;
    assert!(all, "every message arrives in the end");
    assert!(
        receiver.most_at_once() <= 2,
        "at most 2 attempts at once across both dispatchers, saw {}",
        receiver.most_at_once()
    );
    let recorded = eventually(10, || async {
        app.count("SELECT count(*) FROM attempts WHERE status = 'success'")
            .await
            == 16
    })
    .await;
    assert!(recorded, "every delivery is recorded");
    assert_eq!(
        app.count("SELECT count(*) FROM attempts").await,
        16,
        "one attempt per message: waiting is not an attempt"
    );
    let metrics = app.dispatcher_metrics().await;
    assert!(
        series_value(&metrics, PUT_BACK_FOR_CONCURRENCY) > 0.0,
        "the in-process dispatcher put jobs back:\n{metrics}"
    );
    app.stop_dispatcher().await;
    let grants = app.count("SELECT count(*) FROM endpoint_slot_grants").await;
    assert!(grants <= 1, "a drained dispatcher gives its grants back");
    // Before the queues go, or it declares them again.
    let _ = second.kill().await;
    app.stop().await;
}

/// The series of jobs a dispatcher put back because their endpoint was at its cap.
const PUT_BACK_FOR_CONCURRENCY: &str =
    "octohooks_deliveries_deferred_total{reason=\"concurrency\"}";

#[tokio::test]
async fn a_backlog_for_one_endpoint_drains_through_two_dispatchers_under_a_cap_of_8() {
    // The backlog is queued before either dispatcher starts, so both take their prefetch of it
    // at once; whichever asks second finds every slot granted to the other and must wait for
    // its share. What neither has room to hold goes round the outbox in turns and comes back.
    let app = TestApp::spawn_with(Options {
        dispatcher: false,
        ..Options::default().with_vars(&[("OCTOHOOKS_ENDPOINT_MAX_IN_FLIGHT", "8")])
    })
    .await;
    let receiver = Receiver::start().await;
    // Fast, but slow enough that the backlog lasts about a second at the cap.
    receiver.delay(Duration::from_millis(10));
    app.create_app("backlog").await;
    app.create_endpoint("backlog", json!({"url": receiver.url("/fast")}))
        .await;
    let sent = app.send_messages("backlog", 800).await;
    let published = eventually(30, || async { app.waiting_jobs().await == 0 }).await;
    assert!(published, "the backlog is in the queue");
    let (dispatchers, bases): (Vec<_>, Vec<_>) = (0..2)
        .map(|_| process::spawn_dispatcher(&app.env_vars()))
        .unzip();
    let all = eventually(60, || async { delivered(&receiver, "/fast") == sent }).await;
    assert!(all, "every message arrives");
    assert!(
        receiver.most_at_once() <= 8,
        "the cap of 8 holds across both dispatchers, saw {}",
        receiver.most_at_once()
    );
    let recorded = eventually(10, || async {
        app.count("SELECT count(*) FROM attempts WHERE status = 'success'")
            .await
            == 800
    })
    .await;
    assert!(recorded, "every delivery is recorded");
    assert_eq!(app.count("SELECT count(*) FROM attempts").await, 800);
    for base in &bases {
        let succeeded = scrape(
            base,
            "octohooks_delivery_attempts_total{outcome=\"success\"}",
        )
        .await;
        assert!(
            succeeded > 0.0,
            "both dispatchers deliver part of the backlog; {base} delivered none"
        );
    }
    for mut dispatcher in dispatchers {
        let _ = dispatcher.kill().await;
    }
    app.stop().await;
}

#[tokio::test]
async fn a_backlog_for_one_capped_endpoint_does_not_hold_back_the_others() {
    // 16 slots (12 for first attempts), at most 2 attempts per endpoint: 300 jobs for an
    // endpoint answering in 50 ms need 7.5 s at its cap. Five jobs for another endpoint queued
    // behind them must not wait for that, nor for the backlog to cycle through the dispatcher
    // a prefetch at a time.
    let app = TestApp::spawn_with(Options {
        dispatcher: false,
        ..Options::default().with_vars(&[
            ("OCTOHOOKS_DISPATCHER_CONCURRENCY", "16"),
            ("OCTOHOOKS_ENDPOINT_MAX_IN_FLIGHT", "2"),
        ])
    })
    .await;
    let (busy, other) = (Receiver::start().await, Receiver::start().await);
    busy.delay(Duration::from_millis(50));
    for (application, receiver) in [("busy", &busy), ("other", &other)] {
        app.create_app(application).await;
        app.create_endpoint(application, json!({"url": receiver.url("/")}))
            .await;
    }
    let backlog = app.send_messages("busy", 300).await;
    let behind = app.send_messages("other", 5).await;
    let published = eventually(30, || async { app.waiting_jobs().await == 0 }).await;
    assert!(published, "the backlog and the jobs behind it are queued");
    let started = Instant::now();
    let (mut dispatcher, _base) = process::spawn_dispatcher(&app.env_vars());
    let through = eventually(30, || async { delivered(&other, "/") == behind }).await;
    let waited = started.elapsed();
    assert!(through, "the other endpoint got its messages");
    assert!(
        waited < Duration::from_secs(3),
        "the other endpoint waited {waited:?} behind the busy one's backlog"
    );
    let all = eventually(90, || async { delivered(&busy, "/") == backlog }).await;
    assert!(all, "the backlog arrives in the end, none lost");
    assert!(
        busy.most_at_once() <= 2,
        "the cap holds, saw {}",
        busy.most_at_once()
    );
    let recorded = eventually(10, || async {
        app.count("SELECT count(*) FROM attempts").await == 305
    })
    .await;
    assert!(
        recorded,
        "one attempt per message: waiting is not an attempt"
    );
    let _ = dispatcher.kill().await;
    app.stop().await;
}

#[tokio::test]
async fn a_burst_beyond_the_grant_goes_through_freed_slots_while_postgres_is_slow_to_grant_more() {
    // A cap of 8, but the dispatcher holds a grant of one slot, busy with an attempt, when
    // four more jobs arrive; Postgres then answers no change of the grants (a transaction
    // holds their table). Each job takes the slot the attempt before it frees, one after the
    // other, instead of every one of them waiting for Postgres's answer.
    let (app, receiver) = capped_at_8("burst", Duration::from_millis(200)).await;
    let first = app.send_messages("burst", 1).await;
    let answered = eventually(20, || async {
        app.count("SELECT count(*) FROM attempts").await == 1
    })
    .await;
    assert!(answered, "the endpoint answered once: its pace is known");
    // Long enough for the renewals to shrink the grant to nothing.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let running = app.send_messages("burst", 1).await;
    let started = eventually(20, || async {
        delivered(&receiver, "/burst").is_superset(&running)
    })
    .await;
    assert!(started, "an attempt runs on a grant of one slot");
    let mut holding = diesel_async::AsyncPgConnection::establish(&app.database_url)
        .await
        .expect("a connection");
    holding
        .batch_execute("BEGIN; LOCK TABLE endpoint_slot_grants IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("the lock");
    let burst = app.send_messages("burst", 4).await;
    let through = eventually(5, || async {
        delivered(&receiver, "/burst").is_superset(&burst)
    })
    .await;
    holding.batch_execute("COMMIT").await.expect("commit");
    assert!(
        through,
        "the burst went through the freed slot while Postgres held the grants back"
    );
    assert_eq!(receiver.most_at_once(), 1, "never beyond the grant held");
    let all: HashSet<String> = first
        .iter()
        .chain(&running)
        .chain(&burst)
        .cloned()
        .collect();
    assert_eq!(delivered(&receiver, "/burst"), all);
    // The first job and the one after the grant shrank to nothing each asked Postgres for a
    // slot and waited for the answer; the metrics say so.
    let metrics = app.dispatcher_metrics().await;
    let grown = series_value(
        &metrics,
        r#"octohooks_slot_grant_asks_total{answer="grown"}"#,
    );
    assert!(grown >= 2.0, "asks that grew the grant: {grown}");
    let waited = series_value(&metrics, "octohooks_slot_ask_wait_seconds_count");
    assert!(waited >= 2.0, "jobs that waited on an ask: {waited}");
    app.stop().await;
}

#[tokio::test]
async fn a_new_endpoint_gets_two_attempts_until_one_is_answered() {
    // A cap of 8; a receiver that holds every request for 3 s looks, until it answers, like one
    // that accepts connections and never answers.
    let (app, receiver) = capped_at_8("new", Duration::from_secs(3)).await;
    let sent = app.send_messages("new", 6).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        receiver.most_at_once(),
        2,
        "before any answer, two attempts run and the others wait"
    );
    let all = eventually(60, || async { delivered(&receiver, "/new") == sent }).await;
    assert!(all, "every message arrives once the endpoint answers");
    assert!(receiver.most_at_once() <= 8);
    app.stop().await;
}

#[tokio::test]
async fn a_rate_limit_spreads_deliveries_across_two_dispatchers() {
    let app = TestApp::spawn().await;
    let mut second = process::spawn("octohooks-dispatcher", &app.env_vars());
    let receiver = Receiver::start().await;
    app.create_app("limited").await;
    let endpoint = app
        .create_endpoint(
            "limited",
            json!({"url": receiver.url("/limited"), "rateLimit": 4}),
        )
        .await;
    assert_eq!(endpoint["rateLimit"], 4);
    let sent = app.send_messages("limited", 20).await;
    let all = eventually(60, || async { delivered(&receiver, "/limited") == sent }).await;
    assert!(all, "every message arrives in the end");
    let mut times: Vec<Instant> = receiver
        .received_on("/limited")
        .iter()
        .map(|r| r.at)
        .collect();
    times.sort();
    // A bucket of 4 tokens refilled at 4/s: 20 messages need at least 4 s.
    let span = times[times.len() - 1].duration_since(times[0]);
    assert!(span >= Duration::from_millis(3500), "took only {span:?}");
    for (i, start) in times.iter().enumerate() {
        let within_a_second = times[i..]
            .iter()
            .take_while(|t| t.duration_since(*start) < Duration::from_secs(1))
            .count();
        assert!(
            within_a_second <= 8,
            "{within_a_second} deliveries within one second at a limit of 4/s"
        );
    }
    // Before the queues go, or it declares them again.
    let _ = second.kill().await;
    app.stop().await;
}

#[tokio::test]
async fn a_hanging_endpoint_does_not_hold_the_slots_of_the_others() {
    // 8 slots (6 for first attempts), at most 2 per endpoint, attempts time out after 6 s.
    let (app, hanging, receiver) = small_dispatcher_and_a_hanging_receiver().await;
    app.create_app("stuck").await;
    app.create_endpoint("stuck", json!({"url": hanging})).await;
    app.send_messages("stuck", 30).await;
    let waited = healthy_delivery_time(&app, &receiver).await;
    assert!(
        waited < Duration::from_secs(3),
        "the healthy endpoint waited {waited:?} behind the hanging one"
    );
    // The hanging endpoint's jobs wait their turn instead of failing or vanishing.
    let waiting = app
        .count("SELECT count(*) FROM message_destinations WHERE status = 'pending'")
        .await;
    assert!(
        waiting >= 20,
        "{waiting} of the hanging endpoint's deliveries still pending"
    );
    app.stop().await;
}

#[tokio::test]
async fn endpoints_in_a_run_of_failures_share_a_quarter_of_the_slots() {
    // 8 slots, 2 of them for failing endpoints; 4 hanging endpoints at 2 each would hold all
    // 6 first-attempt slots without that share.
    let (app, hanging, receiver) = small_dispatcher_and_a_hanging_receiver().await;
    for i in 0..4 {
        let application = format!("stuck{i}");
        app.create_app(&application).await;
        app.create_endpoint(&application, json!({"url": hanging}))
            .await;
    }
    app.execute(
        "UPDATE endpoints SET failing_since = now() - interval '1 hour' \
         WHERE url NOT LIKE '%/healthy'",
    )
    .await;
    for i in 0..4 {
        app.send_messages(&format!("stuck{i}"), 4).await;
    }
    let waited = healthy_delivery_time(&app, &receiver).await;
    assert!(
        waited < Duration::from_secs(3),
        "the healthy endpoint waited {waited:?} behind the failing ones"
    );
    app.stop().await;
}

#[tokio::test]
async fn rate_limit_is_validated_shown_and_cleared() {
    let app = TestApp::spawn_with(Options::api_only()).await;
    app.create_app("rl").await;
    let too_high = app
        .post(
            "/api/v1/applications/rl/endpoints",
            json!({"url": "https://example.com/a", "rateLimit": 70000}),
        )
        .await;
    assert_eq!(
        too_high.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        too_high.text
    );
    assert!(too_high.text.contains("rateLimit"), "{}", too_high.text);
    let zero = app
        .post(
            "/api/v1/applications/rl/endpoints",
            json!({"url": "https://example.com/a", "rateLimit": 0}),
        )
        .await;
    assert_eq!(zero.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(app.count("SELECT count(*) FROM endpoints").await, 0);

    let plain = app
        .create_endpoint("rl", json!({"url": "https://example.com/a"}))
        .await;
    assert_eq!(plain["rateLimit"], serde_json::Value::Null);
    let id = plain["id"].as_str().unwrap();
    let path = format!("/api/v1/applications/rl/endpoints/{id}");
    let set = app
        .call(
            Method::PUT,
            &path,
            Some(json!({"url": "https://example.com/a", "rateLimit": 10})),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.text);
    assert_eq!(set.json["rateLimit"], 10);
    let kept = app
        .call(
            Method::PUT,
            &path,
            Some(json!({"url": "https://example.com/b"})),
        )
        .await;
    assert_eq!(kept.json["rateLimit"], 10, "left out: kept");
    let cleared = app
        .call(
            Method::PUT,
            &path,
            Some(json!({"url": "https://example.com/b", "rateLimit": null})),
        )
        .await;
    assert_eq!(cleared.json["rateLimit"], serde_json::Value::Null);
    assert_eq!(
        app.get(&path).await.json["rateLimit"],
        serde_json::Value::Null
    );
    app.stop().await;
}
