//! The broker's limits never drop a job: a job (or a group of a fan-out's jobs) the dispatcher
//! keeps requeueing (here, because Postgres is away) moves to another delivery queue when it
//! reaches the delivery limit, and is parked in the outbox once the database is back; queues
//! declared by an earlier version, without a limit, keep working; a full express lane refuses
//! only the jobs it has no room for, each told apart.

use std::time::Duration;

use lapin::options::{QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::{AMQPValue, FieldTable};
use octohooks_broker::{AmqpLink, Outgoing, Topology};
use octohooks_domain::job::{Carried, DeliveryJob, TriggerType, JOB_VERSION};
use octohooks_tests::app::AMQP_URL;
use octohooks_tests::proxy::Proxy;
use octohooks_tests::{eventually, Options, Receiver, TestApp};
use reqwest::StatusCode;
use serde_json::json;

/// An application with an endpoint per path on a new receiver, and one message sent to it
/// (with several endpoints, its first attempts travel as one group).
async fn one_message_to_a_receiver(app: &TestApp, paths: &[&str]) -> (Receiver, serde_json::Value) {
    let receiver = Receiver::start().await;
    app.create_app("app").await;
    for path in paths {
        app.create_endpoint("app", json!({"url": receiver.url(path)}))
            .await;
    }
    let sent = app
        .post(
            "/api/v1/applications/app/messages",
            json!({"eventType": "t", "payload": {"n": 1}}),
        )
        .await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.text);
    (receiver, sent.json)
}

#[tokio::test]
async fn a_job_requeued_past_the_delivery_limit_is_still_delivered() {
    requeued_past_the_delivery_limit(&["/hook"]).await;
}

#[tokio::test]
async fn a_group_requeued_past_the_delivery_limit_is_still_delivered_to_each_endpoint() {
    requeued_past_the_delivery_limit(&["/one", "/two", "/three"]).await;
}

/// The dispatcher takes the message's jobs but cannot read or record them while Postgres is
/// away: each is delivered once it returns, parked in the outbox on the way, not attempted twice.
async fn requeued_past_the_delivery_limit(paths: &[&str]) {
    let proxy = Proxy::start("127.0.0.1:5432").await;
    let mut app = TestApp::spawn_with(Options {
        dispatcher: false,
        database_via: Some(proxy.addr.clone()),
        extra: vec![
            ("OCTOHOOKS_QUEUE_DELIVERY_LIMIT".into(), "2".into()),
            ("OCTOHOOKS_STATEMENT_TIMEOUT".into(), "2s".into()),
        ],
        ..Options::default()
    })
    .await;
    let (receiver, sent) = one_message_to_a_receiver(&app, paths).await;
    let published = eventually(10, || async { app.waiting_jobs().await == 0 }).await;
    assert!(published, "the job was not published");

    // The dispatcher takes the broker message but cannot read or record its jobs: it requeues
    // it, again and again, until the broker's limit of 2 deliveries is passed (deliveries after
    // about 0, 1, 3 and 7 seconds).
    proxy.cut();
    app.start_dispatcher().await;
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert!(
        receiver.received().is_empty(),
        "delivered without a database"
    );
    proxy.restore();

    for path in paths {
        let got = receiver.wait_for(path, 1, 60).await;
        assert!(!got.is_empty(), "{path}: dropped at the delivery limit");
        assert_eq!(got[0].header("webhook-id"), sent["id"]);
    }
    let every = paths.len() as i64;
    let recorded = eventually(10, || async {
        app.count("SELECT count(*) FROM message_destinations WHERE status = 'success'")
            .await
            == every
    })
    .await;
    assert!(recorded);
    // They came back through the outbox, parked, not by luck before the limit.
    let metrics = app.dispatcher_metrics().await;
    let parked = format!("octohooks_deliveries_deferred_total{{reason=\"redelivered\"}} {every}");
    assert!(metrics.lines().any(|line| line == parked), "{metrics}");
    assert_eq!(
        app.count("SELECT count(*) FROM attempts").await,
        every,
        "parking is not an attempt"
    );
    assert_eq!(
        receiver.received().len(),
        paths.len(),
        "each endpoint got it once"
    );
    app.stop().await;
}

#[tokio::test]
async fn queues_declared_without_a_limit_are_used_as_they_are() {
    let queue = format!("octohooks.test.legacy.{}", uuid::Uuid::new_v4().simple());
    let connection = lapin::Connection::connect(AMQP_URL, lapin::ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    for name in [queue.clone(), format!("{queue}.retry")] {
        let mut arguments = FieldTable::default();
        arguments.insert(
            "x-queue-type".into(),
            AMQPValue::LongString("quorum".into()),
        );
        channel
            .queue_declare(
                &name,
                QueueDeclareOptions {
                    durable: true,
                    ..QueueDeclareOptions::default()
                },
                arguments,
            )
            .await
            .unwrap();
    }

    let app = TestApp::spawn_with(Options {
        extra: vec![("OCTOHOOKS_QUEUE_NAME".into(), queue.clone())],
        ..Options::default()
    })
    .await;
    let (receiver, _) = one_message_to_a_receiver(&app, &["/hook"]).await;
    assert_eq!(receiver.wait_for("/hook", 1, 15).await.len(), 1);
    app.stop().await;
    for name in octohooks_broker::delivery_queues(&queue) {
        let _ = channel
            .queue_delete(&name, QueueDeleteOptions::default())
            .await;
    }
}

/// A first attempt for the express lane, alone (no context).
fn express_job(job_id: i64) -> Outgoing {
    Outgoing {
        carried: Carried::Job(DeliveryJob {
            v: JOB_VERSION,
            job_id,
            message_id: uuid::Uuid::new_v4(),
            endpoint_id: uuid::Uuid::new_v4(),
            attempt: 0,
            trigger: TriggerType::Scheduled,
            deferrals: 0,
            context: None,
        }),
        traceparent: None,
    }
}

#[tokio::test]
async fn a_full_express_lane_refuses_only_the_jobs_it_has_no_room_for() {
    // The lane keeps at most 1,000 jobs waiting and refuses the rest at once: with 998 waiting,
    // of five more jobs published together the first two are taken and the last three refused,
    // each told apart, so that the publisher sends exactly those three durably.
    let queue = format!("octohooks.test.lane.{}", uuid::Uuid::new_v4().simple());
    let stop = tokio_util::sync::CancellationToken::new();
    let link = AmqpLink::start_with_lane(
        AMQP_URL.into(),
        Topology {
            queue: queue.clone(),
            delivery_limit: 20,
        },
        stop.clone(),
    );
    let ready = eventually(15, || async {
        link.publish_express(&[express_job(0)]).await == [true]
    })
    .await;
    assert!(ready, "the lane is declared and takes a job");
    let waiting = u32::try_from(octohooks_broker::express::MOST_WAITING).unwrap();
    let fill: Vec<Outgoing> = (1..i64::from(waiting) - 2).map(express_job).collect();
    let taken = link.publish_express(&fill).await;
    assert!(taken.iter().all(|taken| *taken), "room for all of them");
    let last: Vec<Outgoing> = (0..5).map(|n| express_job(10_000 + n)).collect();
    assert_eq!(
        link.publish_express(&last).await,
        [true, true, false, false, false]
    );

    let connection = lapin::Connection::connect(AMQP_URL, lapin::ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    let lane = channel
        .queue_declare(
            &octohooks_broker::express::express_queue(&queue),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        lane.message_count(),
        waiting,
        "the lane is full, nothing beyond"
    );
    stop.cancel();
    link.stopped(Duration::from_secs(2)).await;
    for name in octohooks_broker::delivery_queues(&queue) {
        let _ = channel
            .queue_delete(&name, QueueDeleteOptions::default())
            .await;
    }
}
