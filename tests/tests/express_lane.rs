//! The express lane for first attempts (`octohooks_broker::express`): jobs go to an in-memory
//! queue while a dispatcher reads it, and their outbox rows stay until a dispatcher is done
//! with them, so a job the lane loses is still delivered; with no dispatcher reading the lane,
//! or the lane turned off (`OCTOHOOKS_EXPRESS_LANE=false`), jobs go durably as before.

use futures::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use octohooks_tests::app::AMQP_URL;
use octohooks_tests::{eventually, Options, Receiver, TestApp};
use reqwest::StatusCode;
use serde_json::json;

const EXPRESS: &str = "octohooks_jobs_published_total{lane=\"express\"}";
const DURABLE: &str = "octohooks_jobs_published_total{lane=\"durable\"}";

async fn send(app: &TestApp, order: usize) -> String {
    send_payload(app, json!({"order": order})).await
}

/// Sends an `order.paid` message with `payload` to the application `shop`; its id.
async fn send_payload(app: &TestApp, payload: serde_json::Value) -> String {
    let sent = app
        .post(
            "/api/v1/applications/shop/messages",
            json!({"eventType": "order.paid", "payload": payload}),
        )
        .await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.text);
    sent.json["id"].as_str().unwrap().to_owned()
}

async fn shop_with_endpoint(app: &TestApp, receiver: &Receiver) {
    app.create_app("shop").await;
    app.create_endpoint("shop", json!({"uid": "hook", "url": receiver.url("/hook")}))
        .await;
}

async fn outbox_rows(app: &TestApp) -> i64 {
    app.count("SELECT count(*) FROM outbox").await
}

#[tokio::test]
async fn first_attempts_go_by_the_express_lane_and_leave_no_outbox_row_behind() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    shop_with_endpoint(&app, &receiver).await;
    app.wait_for_express_lane().await;
    for order in 0..30 {
        send(&app, order).await;
    }
    let received = receiver.wait_for("/hook", 30, 20).await;
    assert_eq!(received.len(), 30, "every message arrives");
    assert_eq!(app.metric(EXPRESS).await, 30.0, "all 30 went by the lane");
    assert_eq!(app.metric(DURABLE).await, 0.0, "none went durably");
    assert!(
        eventually(10, || async { outbox_rows(&app).await == 0 }).await,
        "the dispatcher removed every express job's outbox row once done"
    );

    let attempts = app
        .count("SELECT count(*) FROM attempts WHERE status = 'success'")
        .await;
    assert_eq!(attempts, 30, "one attempt recorded per message");
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert_eq!(
        receiver.received_on("/hook").len(),
        30,
        "nothing was sent twice"
    );

    // A fan-out travels as one group, durably: its jobs take slots one by one, which the
    // lane's claim does not cover.
    app.create_app("wide").await;
    for path in ["/a", "/b"] {
        app.create_endpoint("wide", json!({"url": receiver.url(path)}))
            .await;
    }
    let fanned = app
        .post(
            "/api/v1/applications/wide/messages",
            json!({"eventType": "order.paid", "payload": {"order": "wide"}}),
        )
        .await;
    assert_eq!(fanned.status, StatusCode::ACCEPTED, "{}", fanned.text);
    assert_eq!(receiver.wait_for("/a", 1, 20).await.len(), 1);
    assert_eq!(receiver.wait_for("/b", 1, 20).await.len(), 1);
    assert_eq!(app.metric(DURABLE).await, 2.0, "the group went durably");
    assert_eq!(app.metric(EXPRESS).await, 30.0);
    assert!(eventually(10, || async { outbox_rows(&app).await == 0 }).await);
    app.stop().await;
}

#[tokio::test]
async fn with_the_lane_turned_off_jobs_go_durably_though_a_dispatcher_reads_it() {
    let app =
        TestApp::spawn_with(Options::default().with_vars(&[("OCTOHOOKS_EXPRESS_LANE", "false")]))
            .await;
    let receiver = Receiver::start().await;
    shop_with_endpoint(&app, &receiver).await;
    app.wait_ready().await;
    // Longer than the API takes to see the lane open when it may use it.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    for order in 0..5 {
        send(&app, order).await;
    }
    assert_eq!(receiver.wait_for("/hook", 5, 20).await.len(), 5);
    assert_eq!(app.metric(DURABLE).await, 5.0, "the jobs went durably");
    assert_eq!(app.metric(EXPRESS).await, 0.0, "nothing went by the lane");
    assert_eq!(app.metric("octohooks_express_lane_open").await, 0.0);
    assert!(eventually(10, || async { outbox_rows(&app).await == 0 }).await);
    app.stop().await;
}

#[tokio::test]
async fn with_no_dispatcher_reading_the_lane_jobs_go_durably() {
    let mut app = TestApp::spawn_with(Options::api_only()).await;
    let receiver = Receiver::start().await;
    shop_with_endpoint(&app, &receiver).await;
    app.wait_ready().await;
    for order in 0..5 {
        send(&app, order).await;
    }
    assert!(
        eventually(10, || async { app.metric(DURABLE).await == 5.0 }).await,
        "the jobs were published durably"
    );
    assert_eq!(app.metric(EXPRESS).await, 0.0, "nothing went by the lane");
    assert_eq!(app.metric("octohooks_express_lane_open").await, 0.0);
    assert!(
        eventually(10, || async { outbox_rows(&app).await == 0 }).await,
        "confirmed durable jobs leave the outbox"
    );
    app.start_dispatcher().await;
    assert_eq!(receiver.wait_for("/hook", 5, 20).await.len(), 5);
    app.stop().await;
}

#[tokio::test]
async fn an_express_job_the_lane_loses_is_delivered_once_its_claim_lapses() {
    // A delivery timeout of 1 s makes the express claim 10 + 10 + 2 + 5 = 27 s.
    let mut app = TestApp::spawn_with(Options {
        delivery_timeout: "1s".into(),
        ..Options::api_only()
    })
    .await;
    let receiver = Receiver::start().await;
    shop_with_endpoint(&app, &receiver).await;

    // A reader of the lane that takes jobs and acknowledges them without doing anything: what
    // a broker restart or a lost dispatcher does to an express job.
    let connection = lapin::Connection::connect(AMQP_URL, lapin::ConnectionProperties::default())
        .await
        .unwrap();
    let express_queue = format!("{}.express", app.queue);
    let declared = eventually(10, || async {
        // A passive declaration of a missing queue closes its channel: one channel per look.
        let probe = connection.create_channel().await.unwrap();
        let passive = lapin::options::QueueDeclareOptions {
            passive: true,
            ..Default::default()
        };
        probe
            .queue_declare(&express_queue, passive, FieldTable::default())
            .await
            .is_ok()
    })
    .await;
    assert!(declared, "the API declares the express queue");
    let channel = connection.create_channel().await.unwrap();
    channel
        .basic_qos(100, BasicQosOptions::default())
        .await
        .unwrap();
    let mut lost = channel
        .basic_consume(
            &express_queue,
            "loses-jobs",
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    app.wait_for_express_lane().await;
    let sent = 3;
    for order in 0..sent {
        send(&app, order).await;
    }
    assert!(
        eventually(10, || async { app.metric(EXPRESS).await == sent as f64 }).await,
        "the jobs went by the lane"
    );
    let mut swallowed = 0;
    while swallowed < sent {
        let delivery = tokio::time::timeout(std::time::Duration::from_secs(10), lost.next())
            .await
            .expect("the lane hands over the jobs")
            .unwrap()
            .unwrap();
        delivery.ack(BasicAckOptions::default()).await.unwrap();
        swallowed += 1;
    }
    channel.close(200, "bye").await.unwrap();
    let kept = app
        .count(
            "SELECT count(*) FROM outbox \
             WHERE claimed_until > now() + interval '10 seconds'",
        )
        .await;
    assert_eq!(kept, sent as i64, "the lost jobs' rows stay, claimed");

    app.start_dispatcher().await;
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    assert!(
        receiver.received_on("/hook").is_empty(),
        "a lost job waits for its claim to lapse"
    );
    let received = receiver.wait_for("/hook", sent, 40).await;
    assert_eq!(received.len(), sent, "every job the lane lost is delivered");
    assert!(
        eventually(10, || async { outbox_rows(&app).await == 0 }).await,
        "and leaves the outbox"
    );
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert_eq!(receiver.received_on("/hook").len(), sent, "once each");
    app.stop().await;
}

/// Holds every first-attempt slot of a dispatcher with three slow attempts, then sends one
/// message by the lane: it must leave the lane for the durable queue, and its outbox row go,
/// before a slot frees. `slow_by_lane`: the slow attempts came by the lane too, so they also
/// fill the lane's prefetch and the job waits in the lane; otherwise (a fan-out, which goes
/// durably) the job waits in the dispatcher for a slot.
async fn a_job_that_cannot_run_soon_leaves_the_lane(slow_by_lane: bool) {
    // Three first-attempt slots (a quarter of 4 goes to retries).
    let app = TestApp::spawn_with(
        Options {
            delivery_timeout: "30s".into(),
            ..Options::default()
        }
        .with_vars(&[("OCTOHOOKS_DISPATCHER_CONCURRENCY", "4")]),
    )
    .await;
    let slow = Receiver::start().await;
    slow.delay(std::time::Duration::from_secs(14));
    let fast = Receiver::start().await;
    shop_with_endpoint(&app, &fast).await;
    let slow_apps: Vec<String> = if slow_by_lane {
        vec!["slow-1".into(), "slow-2".into(), "slow-3".into()]
    } else {
        vec!["slow".into()]
    };
    for (index, app_uid) in slow_apps.iter().enumerate() {
        app.create_app(app_uid).await;
        let endpoints = if slow_by_lane { 1 } else { 3 };
        for endpoint in 0..endpoints {
            let path = format!("/{index}-{endpoint}");
            app.create_endpoint(app_uid, json!({"url": slow.url(&path)}))
                .await;
        }
    }
    app.wait_for_express_lane().await;
    for app_uid in &slow_apps {
        let sent = app
            .post(
                &format!("/api/v1/applications/{app_uid}/messages"),
                json!({"eventType": "order.paid", "payload": {}}),
            )
            .await;
        assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.text);
    }
    assert!(
        eventually(10, || async { slow.received().len() == 3 }).await,
        "the slow receivers hold every slot"
    );
    let by_lane = if slow_by_lane { 3.0 } else { 0.0 };
    assert_eq!(app.metric(EXPRESS).await, by_lane);
    let message = send(&app, 1).await;
    assert!(
        eventually(5, || async { app.metric(EXPRESS).await == by_lane + 1.0 }).await,
        "the message goes by the lane"
    );
    let row = format!("SELECT count(*) FROM outbox WHERE message_id = '{message}'");
    assert_eq!(
        app.count(&row).await,
        1,
        "the express job keeps its row while it waits"
    );
    // After 10 s (in the lane, or for a slot) the job moves to the durable queue, and its row
    // goes, before any slot frees (14 s).
    assert!(
        eventually(13, || async { app.count(&row).await == 0 }).await,
        "the waiting job left the lane and its row"
    );
    assert!(fast.received().is_empty(), "no slot was free yet");
    assert_eq!(fast.wait_for("/hook", 1, 20).await.len(), 1);
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert_eq!(fast.received().len(), 1, "delivered once");
    app.stop().await;
}

#[tokio::test]
async fn an_express_job_waiting_for_a_slot_moves_to_the_durable_queue() {
    a_job_that_cannot_run_soon_leaves_the_lane(false).await;
}

#[tokio::test]
async fn an_express_job_no_dispatcher_takes_in_time_moves_to_the_durable_queue() {
    a_job_that_cannot_run_soon_leaves_the_lane(true).await;
}

/// A first attempt by the lane carries what it needs, read with the message's commit: the
/// dispatcher reads nothing before sending, and the request is the one a read would have made
/// (the body, the custom header, a signature by each secret of a rotation). A payload too large
/// to carry goes by the lane without it, and is read.
#[tokio::test]
async fn the_lane_carries_what_a_first_attempt_needs_and_the_request_is_the_same() {
    use octohooks_domain::signing::EndpointSecret;
    use reqwest::Method;

    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    app.create_app("shop").await;
    app.create_endpoint(
        "shop",
        json!({"uid": "hook", "url": receiver.url("/hook"), "headers": {"X-Shop": "eu-1"}}),
    )
    .await;
    let secret = || async {
        let answer = app
            .get("/api/v1/applications/shop/endpoints/hook/secret")
            .await;
        EndpointSecret::parse("key", answer.json["key"].as_str().unwrap()).unwrap()
    };
    let old = secret().await;
    let rotated = app
        .call(
            Method::POST,
            "/api/v1/applications/shop/endpoints/hook/secret/rotate",
            None,
        )
        .await;
    assert_eq!(rotated.status, StatusCode::NO_CONTENT);
    let new = secret().await;
    app.wait_for_express_lane().await;
    for order in 0..5 {
        send(&app, order).await;
    }
    let got = receiver.wait_for("/hook", 5, 20).await;
    let mut orders: Vec<i64> = got
        .iter()
        .map(|request| {
            assert!(request.signed_by(&old) && request.signed_by(&new));
            assert_eq!(request.header("x-shop"), "eu-1");
            let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
            body["order"].as_i64().expect("the payload as sent")
        })
        .collect();
    orders.sort_unstable();
    assert_eq!(orders, vec![0, 1, 2, 3, 4]);
    assert_eq!(app.metric(EXPRESS).await, 5.0, "all went by the lane");
    assert_eq!(
        app.job_contexts("carried").await,
        5.0,
        "each carried its context"
    );
    assert_eq!(app.job_contexts("read").await, 0.0, "none was read");

    let large = "x".repeat(70 * 1024);
    send_payload(&app, json!({"note": large})).await;
    let got = receiver.wait_for("/hook", 6, 20).await;
    let last = got
        .iter()
        .find(|request| request.body.len() > 70 * 1024)
        .expect("the large payload arrived");
    assert!(last.signed_by(&new));
    assert_eq!(app.metric(EXPRESS).await, 6.0, "it went by the lane too");
    assert_eq!(app.job_contexts("read").await, 1.0, "its context was read");
    assert!(eventually(10, || async { outbox_rows(&app).await == 0 }).await);
    app.stop().await;
}
