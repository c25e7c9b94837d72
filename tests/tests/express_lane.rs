//! The express lane for first attempts (`octohooks_broker::express`): jobs go to an in-memory
//! queue while a dispatcher reads it, and their outbox rows stay until a dispatcher is done
//! with them, so a job the lane loses is still delivered; with no dispatcher reading the lane,
//! or the lane turned off (`OCTOHOOKS_EXPRESS_LANE=false`), jobs go durably as before.

use futures::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions};
use lapin::types::FieldTable;
use octohooks_tests::app::AMQP_URL;
use octohooks_tests::{eventually, Options, Receiver, TestApp};
use reqwest::StatusCode;
use serde_json::json;

const EXPRESS: &str = "octohooks_jobs_published_total{lane=\"express\"}";
const DURABLE: &str = "octohooks_jobs_published_total{lane=\"durable\"}";
/// Broker messages of the lane: batches (the jobs of a commit), or single jobs.
const BATCHES: &str = "octohooks_express_messages_published_total{form=\"batch\"}";
const SINGLES: &str = "octohooks_express_messages_published_total{form=\"single\"}";

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

/// A reader of the lane's `queue` (as `tag`, taking up to 100 messages at once) once the API
/// has declared it, standing in for a dispatcher; keep the connection while it reads.
async fn reader_of(queue: &str, tag: &str) -> (lapin::Connection, lapin::Channel, lapin::Consumer) {
    let connection = lapin::Connection::connect(AMQP_URL, lapin::ConnectionProperties::default())
        .await
        .unwrap();
    let declared = eventually(10, || async {
        // A passive declaration of a missing queue closes its channel: one channel per look.
        let probe = connection.create_channel().await.unwrap();
        let passive = lapin::options::QueueDeclareOptions {
            passive: true,
            ..Default::default()
        };
        probe
            .queue_declare(queue, passive, FieldTable::default())
            .await
            .is_ok()
    })
    .await;
    assert!(declared, "the API declares {queue}");
    let channel = connection.create_channel().await.unwrap();
    channel
        .basic_qos(100, BasicQosOptions::default())
        .await
        .unwrap();
    let consumer = channel
        .basic_consume(
            queue,
            tag,
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    (connection, channel, consumer)
}

#[tokio::test]
async fn first_attempts_go_by_the_express_lane_and_leave_no_outbox_row_behind() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    shop_with_endpoint(&app, &receiver).await;
    app.wait_for_express_batches().await;
    for order in 0..30 {
        send(&app, order).await;
    }
    let received = receiver.wait_for("/hook", 30, 20).await;
    assert_eq!(received.len(), 30, "every message arrives");
    assert_eq!(app.metric(EXPRESS).await, 30.0, "all 30 went by the lane");
    assert_eq!(app.metric(DURABLE).await, 0.0, "none went durably");
    let batches = app.metric(BATCHES).await;
    assert!(
        (1.0..=30.0).contains(&batches),
        "they went in batches, which this dispatcher reads: {batches}"
    );
    assert_eq!(app.metric(SINGLES).await, 0.0, "none alone");
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

/// Messages accepted together travel together: the jobs of one commit (and of the commits
/// that ended while the last publication was under way) share a broker message, and each is
/// still delivered once, with its row gone.
#[tokio::test]
async fn the_jobs_of_one_commit_share_a_broker_message() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    shop_with_endpoint(&app, &receiver).await;
    app.wait_for_express_batches().await;
    let sent = 64;
    futures::future::join_all((0..sent).map(|order| send(&app, order))).await;
    assert_eq!(receiver.wait_for("/hook", sent, 30).await.len(), sent);
    assert_eq!(
        app.metric(EXPRESS).await,
        sent as f64,
        "all went by the lane"
    );
    let batches = app.metric(BATCHES).await;
    assert!(
        batches >= 1.0 && batches < sent as f64,
        "64 messages sent at once share broker messages: {batches}"
    );
    assert!(eventually(10, || async { outbox_rows(&app).await == 0 }).await);
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert_eq!(receiver.received_on("/hook").len(), sent, "once each");
    let successes = app
        .count("SELECT count(*) FROM attempts WHERE status = 'success'")
        .await;
    assert_eq!(successes, sent as i64, "one attempt recorded per message");
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
    assert_eq!(app.metric("octohooks_express_batches_open").await, 0.0);
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
    assert_eq!(app.metric("octohooks_express_batches_open").await, 0.0);
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
    let (_connection, channel, mut lost) =
        reader_of(&format!("{}.express", app.queue), "loses-jobs").await;
    app.wait_for_express_lane().await;
    assert_eq!(
        app.metric("octohooks_express_batches_open").await,
        0.0,
        "a reader of single jobs opens no batches"
    );
    let sent = 3;
    for order in 0..sent {
        send(&app, order).await;
    }
    assert!(
        eventually(10, || async { app.metric(EXPRESS).await == sent as f64 }).await,
        "the jobs went by the lane"
    );
    // What an API does while only dispatchers of the version before batches read the lane.
    assert_eq!(
        app.metric(SINGLES).await,
        sent as f64,
        "alone, as read here"
    );
    assert_eq!(
        app.metric(BATCHES).await,
        0.0,
        "no batch, which nobody reads"
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

/// A batch the lane moves on (its reader rejected it here; the broker does the same with one
/// that waited past the lane's TTL) goes to the durable first-attempt queue, where a dispatcher
/// forgets its rows and runs each of its jobs once, reading their contexts afresh.
#[tokio::test]
async fn a_batch_the_lane_dead_letters_is_delivered_from_the_durable_queue() {
    let mut app = TestApp::spawn_with(Options::api_only()).await;
    let receiver = Receiver::start().await;
    shop_with_endpoint(&app, &receiver).await;
    let batch_queue = octohooks_broker::express::batch_queue(&app.queue);
    let (_connection, channel, mut rejecting) = reader_of(&batch_queue, "rejects-batches").await;
    app.wait_for_express_lane().await;
    let sent = 5;
    futures::future::join_all((0..sent).map(|order| send(&app, order))).await;
    let mut jobs = 0;
    while jobs < sent {
        let delivery = tokio::time::timeout(std::time::Duration::from_secs(10), rejecting.next())
            .await
            .expect("the lane hands over the batches")
            .unwrap()
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&delivery.data).unwrap();
        assert_eq!(body["v"], 3, "a batch: {body}");
        for batched in body["jobs"].as_array().expect("its jobs") {
            assert!(
                batched["job"]["context"]["secrets"].is_array(),
                "each job carries its context: {batched}"
            );
            jobs += 1;
        }
        delivery
            .nack(BasicNackOptions {
                requeue: false,
                ..BasicNackOptions::default()
            })
            .await
            .unwrap();
    }
    assert_eq!(jobs, sent, "every job went in a batch");
    channel.close(200, "bye").await.unwrap();
    assert_eq!(
        outbox_rows(&app).await,
        sent as i64,
        "the rows stay meanwhile"
    );

    app.start_dispatcher().await;
    assert_eq!(receiver.wait_for("/hook", sent, 20).await.len(), sent);
    assert!(
        eventually(10, || async { outbox_rows(&app).await == 0 }).await,
        "the rows go once the jobs are in a durable queue"
    );
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert_eq!(receiver.received_on("/hook").len(), sent, "once each");
    assert_eq!(
        app.job_contexts("read").await,
        sent as f64,
        "a copy that left the lane is read afresh"
    );
    app.stop().await;
}

/// Holds every first-attempt slot of a dispatcher with a slow fan-out (a group of three, which
/// goes durably), then sends `waiting` messages by the lane, each its own batch: each job waits
/// in the dispatcher for a slot and must leave the lane for the durable queue, and its outbox
/// row go, before a slot frees.
async fn jobs_that_cannot_run_soon_leave_the_lane(waiting: usize) {
    // Three first-attempt slots (a quarter of 4 goes to retries), and three batches of the lane.
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
    app.create_app("slow").await;
    for endpoint in 0..3 {
        app.create_endpoint("slow", json!({"url": slow.url(&format!("/{endpoint}"))}))
            .await;
    }
    app.wait_for_express_lane().await;
    let sent = app
        .post(
            "/api/v1/applications/slow/messages",
            json!({"eventType": "order.paid", "payload": {}}),
        )
        .await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.text);
    assert!(
        eventually(10, || async { slow.received().len() == 3 }).await,
        "the slow receivers hold every slot"
    );
    assert_eq!(app.metric(EXPRESS).await, 0.0, "the group went durably");
    let mut messages = Vec::new();
    for order in 0..waiting {
        messages.push(format!("'{}'", send(&app, order).await));
    }
    assert!(
        eventually(5, || async { app.metric(EXPRESS).await == waiting as f64 }).await,
        "the messages go by the lane"
    );
    let rows = format!(
        "SELECT count(*) FROM outbox WHERE message_id IN ({})",
        messages.join(",")
    );
    assert_eq!(
        app.count(&rows).await,
        waiting as i64,
        "an express job keeps its row while it waits"
    );
    // After 10 s without a slot each job moves to the durable queue, and its row goes, before
    // any slot frees (14 s).
    assert!(
        eventually(13, || async { app.count(&rows).await == 0 }).await,
        "the waiting jobs left the lane and their rows"
    );
    assert!(fast.received().is_empty(), "no slot was free yet");
    assert_eq!(fast.wait_for("/hook", waiting, 20).await.len(), waiting);
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert_eq!(fast.received().len(), waiting, "delivered once each");
    app.stop().await;
}

#[tokio::test]
async fn an_express_job_waiting_for_a_slot_moves_to_the_durable_queue() {
    jobs_that_cannot_run_soon_leave_the_lane(1).await;
}

#[tokio::test]
async fn express_jobs_of_several_batches_waiting_for_slots_each_move_to_the_durable_queue() {
    jobs_that_cannot_run_soon_leave_the_lane(2).await;
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
