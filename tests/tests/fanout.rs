//! A message to several endpoints travels through the broker as one group of first attempts:
//! one broker message per fan-out, each endpoint still with its own attempt record, retries and
//! fate, and a slow receiver does not hold its group's broker message.

use std::collections::HashMap;
use std::time::Duration;

use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use octohooks_tests::app::AMQP_URL;
use octohooks_tests::proxy::Proxy;
use octohooks_tests::{eventually, series_value, Options, Receiver, TestApp};
use serde_json::json;

/// Messages waiting in `queue`, as the broker counts them.
async fn waiting_in(queue: &str) -> u32 {
    let connection = lapin::Connection::connect(AMQP_URL, lapin::ConnectionProperties::default())
        .await
        .expect("connect to RabbitMQ");
    let channel = connection.create_channel().await.expect("a channel");
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    let state = channel
        .queue_declare(queue, passive, FieldTable::default())
        .await
        .expect("the queue exists");
    let _ = connection.close(200, "bye").await;
    state.message_count()
}

/// Requests received per path.
fn per_path(receiver: &Receiver) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for request in receiver.received() {
        *counts.entry(request.path).or_default() += 1;
    }
    counts
}

#[tokio::test]
async fn a_fan_out_is_one_broker_message_and_each_endpoint_keeps_its_own_fate() {
    let mut app = TestApp::spawn_with(Options {
        dispatcher: false,
        ..Options::default()
    })
    .await;
    let (receiver, failing) = (Receiver::start().await, Receiver::start().await);
    // The third endpoint fails its first attempt of every message and is retried.
    failing.respond_with(&[500; 5]);
    app.create_app("app").await;
    for url in [
        receiver.url("/a"),
        receiver.url("/b"),
        failing.url("/failing"),
    ] {
        app.create_endpoint("app", json!({"url": url})).await;
    }
    app.send_messages("app", 5).await;
    let published = eventually(10, || async { app.waiting_jobs().await == 0 }).await;
    assert!(published, "the jobs were published");
    assert_eq!(
        waiting_in(&format!("{}.fanout", app.queue)).await,
        5,
        "one broker message per message, not one per endpoint"
    );
    assert_eq!(waiting_in(&app.queue).await, 0);

    app.start_dispatcher().await;
    let all = eventually(20, || async {
        let counts = per_path(&receiver);
        counts.get("/a") == Some(&5)
            && counts.get("/b") == Some(&5)
            && failing.received_on("/failing").len() >= 10
    })
    .await;
    assert!(
        all,
        "every endpoint got every message, the failing one on a retry: {:?}",
        per_path(&receiver)
    );
    let delivered = eventually(10, || async {
        app.count("SELECT count(*) FROM message_destinations WHERE status = 'success'")
            .await
            == 15
    })
    .await;
    assert!(delivered, "every destination is delivered");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        per_path(&receiver),
        HashMap::from([("/a".to_owned(), 5), ("/b".to_owned(), 5)]),
        "no endpoint got a message twice"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM attempts WHERE status = 'failed'")
            .await,
        5,
        "the failing endpoint's first attempts are recorded"
    );
    assert_eq!(app.count("SELECT count(*) FROM attempts").await, 20);
    app.stop().await;
}

#[tokio::test]
async fn a_slow_receiver_is_handed_off_and_its_group_goes_on() {
    // Attempts time out after 4 s; a job still running after 2 s is handed off to the outbox,
    // its copy due 10 s after that timeout.
    let app = TestApp::spawn_with(Options {
        delivery_timeout: "4s".into(),
        ..Options::default()
    })
    .await;
    let (fast, slow) = (Receiver::start().await, Receiver::start().await);
    slow.delay(Duration::from_secs(3));
    app.create_app("app").await;
    app.create_endpoint("app", json!({"url": fast.url("/fast")}))
        .await;
    app.create_endpoint("app", json!({"url": slow.url("/slow")}))
        .await;
    app.send_messages("app", 1).await;
    assert_eq!(fast.wait_for("/fast", 1, 10).await.len(), 1);
    let handed_off = eventually(10, || async {
        app.count("SELECT count(*) FROM outbox WHERE deferrals = 1")
            .await
            == 1
    })
    .await;
    assert!(
        handed_off,
        "the slow job has a copy in the outbox while its attempt runs"
    );
    let metrics = app.dispatcher_metrics().await;
    assert!(
        series_value(
            &metrics,
            "octohooks_deliveries_deferred_total{reason=\"handed_off\"}"
        ) >= 1.0,
        "{metrics}"
    );
    assert_eq!(slow.wait_for("/slow", 1, 10).await.len(), 1);
    // The copy comes due, finds the attempt recorded, and is dropped.
    let dropped = eventually(30, || async { app.waiting_jobs().await == 0 }).await;
    assert!(dropped, "the copy left the outbox");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        slow.received_on("/slow").len(),
        1,
        "the slow endpoint got the message once"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM attempts WHERE status = 'success'")
            .await,
        2
    );
    app.stop().await;
}

#[tokio::test]
async fn a_dispatcher_killed_with_groups_in_hand_loses_nothing() {
    let app = TestApp::spawn_with(Options {
        dispatcher: false,
        ..Options::default()
    })
    .await;
    let receiver = Receiver::start().await;
    receiver.delay(Duration::from_millis(300));
    app.create_app("app").await;
    for path in ["/a", "/b", "/c"] {
        app.create_endpoint("app", json!({"url": receiver.url(path)}))
            .await;
    }
    app.send_messages("app", 20).await;
    let mut first = octohooks_tests::process::spawn("octohooks-dispatcher", &app.env_vars());
    receiver.wait_for("/a", 1, 30).await;
    first.kill().await.expect("SIGKILL the dispatcher");

    let mut second = octohooks_tests::process::spawn("octohooks-dispatcher", &app.env_vars());
    let pairs = || -> std::collections::HashSet<(String, String)> {
        receiver
            .received()
            .iter()
            .map(|r| (r.path.clone(), r.header("webhook-id").to_owned()))
            .collect()
    };
    let all = eventually(60, || async { pairs().len() == 60 }).await;
    assert!(all, "{} of 60 deliveries arrived", pairs().len());
    let recorded = eventually(20, || async {
        app.count("SELECT count(*) FROM message_destinations WHERE status = 'success'")
            .await
            == 60
    })
    .await;
    assert!(recorded, "every destination is recorded as delivered");
    println!(
        "dispatcher SIGKILL with groups in hand: deliveries=60 arrived={} duplicates={}",
        pairs().len(),
        receiver.received().len() - pairs().len()
    );
    // Before the queues go, or it declares them again.
    let _ = second.kill().await;
    app.stop().await;
}

#[tokio::test]
async fn a_fan_out_waits_as_one_row_and_any_relay_publishes_its_jobs() {
    let proxy = Proxy::start("127.0.0.1:5672").await;
    let mut app = TestApp::spawn_with(Options::api_behind(&proxy)).await;
    let receiver = Receiver::start().await;
    app.create_app("app").await;
    for path in ["/a", "/b", "/c"] {
        app.create_endpoint("app", json!({"url": receiver.url(path)}))
            .await;
    }
    app.create_app("single").await;
    app.create_endpoint("single", json!({"url": receiver.url("/single")}))
        .await;
    proxy.cut();
    app.send_messages("app", 10).await;
    app.send_messages("single", 2).await;
    assert_eq!(
        app.count("SELECT count(*) FROM outbox_fanouts").await,
        10,
        "one row per message to several endpoints"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM outbox").await,
        2,
        "a row per job only for messages to one endpoint"
    );
    // The failed publication gave the claims up at once.
    assert!(
        eventually(10, || async {
            app.count("SELECT count(*) FROM outbox_fanouts WHERE claimed_until IS NULL")
                .await
                == 10
        })
        .await,
        "the fan-out rows' claims are released"
    );
    // A row whose message has nothing left to send (its jobs were done, its removal lost).
    app.execute("INSERT INTO outbox_fanouts (message_id, due) VALUES (gen_random_uuid(), now())")
        .await;

    // The accepting API cannot publish; a dispatcher (with its own relay) comes up.
    app.options.amqp_url = octohooks_tests::app::AMQP_URL.to_owned();
    app.start_dispatcher().await;
    let expected: HashMap<String, usize> = [("/a", 10), ("/b", 10), ("/c", 10), ("/single", 2)]
        .into_iter()
        .map(|(path, n)| (path.to_owned(), n))
        .collect();
    assert!(
        eventually(30, || async { per_path(&receiver) == expected }).await,
        "every endpoint got every message: {:?}",
        per_path(&receiver)
    );
    assert!(
        eventually(10, || async { app.waiting_jobs().await == 0 }).await,
        "published rows are removed, and the row with nothing to send too"
    );
    assert_eq!(
        app.count("SELECT count(DISTINCT job_id) FROM attempts WHERE status = 'success'")
            .await,
        32,
        "each attempt records a job of its own"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(per_path(&receiver), expected, "and none arrived twice");
    app.stop().await;
}

#[tokio::test]
async fn a_job_waiting_for_its_record_leaves_its_slot_to_the_next() {
    use diesel_async::{AsyncConnection, SimpleAsyncConnection};
    // One first-attempt slot: a group's jobs take it in turn.
    let mut app = TestApp::spawn_with(
        Options {
            dispatcher: false,
            ..Options::default()
        }
        .with_vars(&[("OCTOHOOKS_DISPATCHER_CONCURRENCY", "1")]),
    )
    .await;
    let receiver = Receiver::start().await;
    app.create_app("app").await;
    for path in ["/a", "/b"] {
        app.create_endpoint("app", json!({"url": receiver.url(path)}))
            .await;
    }
    app.send_messages("app", 1).await;
    // Both destinations are locked: the record of whichever job goes first waits.
    let mut locker = diesel_async::AsyncPgConnection::establish(&app.database_url)
        .await
        .expect("connect to Postgres");
    locker
        .batch_execute("BEGIN; SELECT 1 FROM message_destinations FOR UPDATE")
        .await
        .expect("lock the destinations");
    app.start_dispatcher().await;
    let both_sent = eventually(5, || async { receiver.received().len() == 2 }).await;
    let recorded_meanwhile = app.count("SELECT count(*) FROM attempts").await;
    locker
        .batch_execute("ROLLBACK")
        .await
        .expect("release the destinations");
    assert!(
        both_sent,
        "the second request went out while the first job waited for its record: {:?}",
        per_path(&receiver)
    );
    assert_eq!(recorded_meanwhile, 0, "no record got through the lock");
    let recorded = eventually(10, || async {
        app.count("SELECT count(*) FROM message_destinations WHERE status = 'success'")
            .await
            == 2
    })
    .await;
    assert!(
        recorded,
        "both deliveries are recorded once the lock is gone"
    );
    assert_eq!(
        per_path(&receiver),
        HashMap::from([("/a".to_owned(), 1), ("/b".to_owned(), 1)])
    );
    app.stop().await;
}
