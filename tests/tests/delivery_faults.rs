//! Nothing accepted is lost: a dispatcher killed mid-stream, the broker gone while messages are
//! posted, an API that stops before publishing, and a SIGTERM drain.

use std::collections::HashSet;
use std::time::Duration;

use octohooks_tests::proxy::Proxy;
use octohooks_tests::{eventually, process, Options, Receiver, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::json;

fn unique_ids(receiver: &Receiver) -> HashSet<String> {
    receiver
        .received()
        .iter()
        .map(|r| r.header("webhook-id").to_owned())
        .collect()
}

fn report(name: &str, accepted: &HashSet<String>, receiver: &Receiver) -> usize {
    let delivered = unique_ids(receiver);
    let total = receiver.received().len();
    let lost = accepted.difference(&delivered).count();
    println!(
        "{name}: accepted={} delivered={} duplicates={} lost={lost}",
        accepted.len(),
        delivered.len(),
        total - delivered.len()
    );
    lost
}

#[tokio::test]
async fn a_dispatcher_killed_mid_stream_loses_nothing() {
    let app = TestApp::spawn_with(Options {
        dispatcher: false,
        ..Options::default()
    })
    .await;
    let receiver = Receiver::start().await;
    receiver.delay(Duration::from_millis(300));
    app.create_app("app").await;
    app.create_endpoint("app", json!({"url": receiver.url("/hook")}))
        .await;
    let accepted = app.send_messages("app", 60).await;
    let mut first = process::spawn("octohooks-dispatcher", &app.env_vars());
    receiver.wait_for("/hook", 5, 30).await;
    first.kill().await.expect("SIGKILL the dispatcher");
    let in_flight_when_killed = 60 - receiver.received().len();
    assert!(in_flight_when_killed > 0, "the kill happened mid-stream");

    let mut second = process::spawn("octohooks-dispatcher", &app.env_vars());
    assert!(
        eventually(60, || async {
            unique_ids(&receiver).len() == accepted.len()
        })
        .await
    );
    assert_eq!(report("dispatcher SIGKILL", &accepted, &receiver), 0);
    assert!(
        eventually(20, || async {
            app.count("SELECT count(*) FROM message_destinations WHERE status = 'success'")
                .await
                == 60
        })
        .await
    );
    // Before the queues go, or it declares them again.
    let _ = second.kill().await;
    app.stop().await;
}

#[tokio::test]
async fn messages_posted_while_the_broker_is_down_are_delivered_when_it_returns() {
    let proxy = Proxy::start("127.0.0.1:5672").await;
    let mut app = TestApp::spawn_with(Options {
        amqp_url: proxy.amqp_url(),
        ..Options::default()
    })
    .await;
    let receiver = Receiver::start().await;
    app.create_app("app").await;
    app.create_endpoint("app", json!({"url": receiver.url("/hook")}))
        .await;
    let dispatcher_ready = app.dispatcher_health().unwrap();
    let ready = |url: String| async move {
        reqwest::get(url)
            .await
            .map(|r| r.status() == StatusCode::OK)
            .unwrap_or(false)
    };
    let api_ready = format!("{}/health/ready", app.base);
    assert!(eventually(10, || ready(api_ready.clone())).await);
    assert!(eventually(10, || ready(dispatcher_ready.clone())).await);

    proxy.cut();
    assert!(
        eventually(10, || async { !ready(api_ready.clone()).await }).await,
        "API readiness drops"
    );
    assert!(
        eventually(10, || async { !ready(dispatcher_ready.clone()).await }).await,
        "dispatcher readiness drops"
    );
    let accepted = app.send_messages("app", 25).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(receiver.received().is_empty());

    proxy.restore();
    assert!(
        eventually(20, || ready(api_ready.clone())).await,
        "API readiness returns"
    );
    assert!(
        eventually(20, || ready(dispatcher_ready.clone())).await,
        "dispatcher readiness returns"
    );
    assert!(
        eventually(30, || async {
            unique_ids(&receiver).len() == accepted.len()
        })
        .await
    );
    assert_eq!(report("broker outage", &accepted, &receiver), 0);
    app.stop_dispatcher().await;
    app.stop().await;
}

#[tokio::test]
async fn jobs_of_an_api_that_stopped_before_publishing_are_published_by_another_relay() {
    let proxy = Proxy::start("127.0.0.1:5672").await;
    let mut app = TestApp::spawn_with(Options::api_behind(&proxy)).await;
    let receiver = Receiver::start().await;
    app.create_app("app").await;
    app.create_endpoint("app", json!({"url": receiver.url("/hook")}))
        .await;
    proxy.cut();
    let accepted = app.send_messages("app", 10).await;
    assert_eq!(
        app.count("SELECT count(*) FROM outbox").await,
        10,
        "jobs wait in the outbox"
    );
    // The accepting API goes away; a dispatcher (with its own relay) comes up.
    app.options.amqp_url = octohooks_tests::app::AMQP_URL.to_owned();
    app.start_dispatcher().await;
    assert!(
        eventually(30, || async {
            unique_ids(&receiver).len() == accepted.len()
        })
        .await
    );
    assert_eq!(report("relay takeover", &accepted, &receiver), 0);
    assert!(eventually(10, || async { app.waiting_jobs().await == 0 }).await);
    app.stop().await;
}

#[tokio::test]
async fn sigterm_drain_finishes_and_records_in_flight_deliveries() {
    let mut app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    receiver.delay(Duration::from_millis(700));
    app.create_app("app").await;
    app.create_endpoint("app", json!({"url": receiver.url("/slow")}))
        .await;
    app.send_messages("app", 5).await;
    receiver.wait_for("/slow", 5, 15).await;
    app.stop_dispatcher().await;
    let received = receiver.received().len() as i64;
    assert_eq!(received, 5);
    assert_eq!(
        app.count("SELECT count(*) FROM attempts WHERE status = 'success'")
            .await,
        received,
        "every request in flight at shutdown was finished and recorded"
    );
    let ready = app
        .request(Method::GET, "/health/live", None, None, &[])
        .await;
    assert_eq!(ready.status, StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn deliveries_whose_job_the_broker_lost_are_requeued() {
    let mut app = TestApp::spawn_with(Options {
        dispatcher: false,
        ..Options::default()
    })
    .await;
    let receiver = Receiver::start().await;
    app.create_app("app").await;
    app.create_endpoint("app", json!({"url": receiver.url("/hook")}))
        .await;
    let accepted = app.send_messages("app", 3).await;
    assert!(eventually(10, || async { app.waiting_jobs().await == 0 }).await);
    // The broker loses the queue's contents; the deliveries are long overdue.
    let connection = lapin::Connection::connect(
        octohooks_tests::app::AMQP_URL,
        lapin::ConnectionProperties::default(),
    )
    .await
    .unwrap();
    let channel = connection.create_channel().await.unwrap();
    let purged = channel
        .queue_purge(&app.queue, lapin::options::QueuePurgeOptions::default())
        .await
        .unwrap();
    assert_eq!(purged, 3);
    let moved = app
        .execute("UPDATE message_destinations SET next_attempt = now() - interval '1 hour'")
        .await;
    assert_eq!(moved, 3);
    app.start_dispatcher().await;
    assert!(
        eventually(30, || async {
            unique_ids(&receiver).len() == accepted.len()
        })
        .await
    );
    assert_eq!(report("broker data loss", &accepted, &receiver), 0);
    app.stop().await;
}

#[tokio::test]
async fn a_deleted_queue_is_declared_again_and_nothing_is_lost() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    app.create_app("app").await;
    app.create_endpoint("app", json!({"url": receiver.url("/hook")}))
        .await;
    let connection = lapin::Connection::connect(
        octohooks_tests::app::AMQP_URL,
        lapin::ConnectionProperties::default(),
    )
    .await
    .unwrap();
    let channel = connection.create_channel().await.unwrap();
    for queue in [
        app.queue.clone(),
        format!("{}.retry", app.queue),
        format!("{}.express", app.queue),
        octohooks_broker::express::batch_queue(&app.queue),
    ] {
        channel
            .queue_delete(&queue, lapin::options::QueueDeleteOptions::default())
            .await
            .unwrap();
    }
    let accepted = app.send_messages("app", 5).await;
    // The dispatcher may hold a stale subscription to the deleted queue (RabbitMQ does not
    // always cancel it) and replaces it once it has been idle for 20 s.
    assert!(
        eventually(60, || async {
            unique_ids(&receiver).len() == accepted.len()
        })
        .await
    );
    assert_eq!(report("queue deleted", &accepted, &receiver), 0);
    app.stop().await;
}

#[tokio::test]
async fn a_job_delivered_twice_is_attempted_once() {
    let app = TestApp::spawn_with(Options {
        retry_schedule: String::new(),
        ..Options::default()
    })
    .await;
    let receiver = Receiver::start().await;
    app.create_app("app").await;
    let endpoint = app
        .create_endpoint("app", json!({"url": receiver.url("/hook"), "uid": "ep"}))
        .await;
    let message = app
        .post(
            "/api/v1/applications/app/messages",
            json!({"eventType": "t", "payload": {}, "uid": "m"}),
        )
        .await;
    receiver.wait_for("/hook", 1, 15).await;
    let resend = app
        .call(
            reqwest::Method::POST,
            "/api/v1/applications/app/messages/m/endpoints/ep/resend",
            None,
        )
        .await;
    assert_eq!(resend.status, StatusCode::ACCEPTED);
    receiver.wait_for("/hook", 2, 15).await;
    assert!(
        eventually(10, || async {
            app.count("SELECT count(*) FROM attempts").await == 2
        })
        .await
    );
    // The broker hands both jobs out once more (a lost ack, a republished claim).
    #[derive(diesel::QueryableByName)]
    struct Job {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        job_id: i64,
        #[diesel(sql_type = diesel::sql_types::Text)]
        trigger_type: String,
    }
    use diesel_async::{AsyncConnection, RunQueryDsl};
    let mut conn = diesel_async::AsyncPgConnection::establish(&app.database_url)
        .await
        .unwrap();
    let jobs: Vec<Job> = diesel::sql_query("SELECT job_id, trigger_type FROM attempts")
        .load(&mut conn)
        .await
        .unwrap();
    let connection = lapin::Connection::connect(
        octohooks_tests::app::AMQP_URL,
        lapin::ConnectionProperties::default(),
    )
    .await
    .unwrap();
    let channel = connection.create_channel().await.unwrap();
    for job in &jobs {
        let body = json!({
            "v": 1, "jobId": job.job_id, "messageId": message.json["id"], "endpointId": endpoint["id"],
            "attempt": 0, "trigger": job.trigger_type,
        });
        channel
            .basic_publish(
                "",
                &app.queue,
                lapin::options::BasicPublishOptions::default(),
                body.to_string().as_bytes(),
                lapin::BasicProperties::default(),
            )
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.received().len(), 2, "no request was sent again");
    assert_eq!(
        app.count("SELECT count(*) FROM attempts").await,
        2,
        "no attempt was recorded twice"
    );
    app.stop().await;
}

/// Both binaries stop on SIGTERM, as a rollout asks them to, and log no error while they do:
/// an operator reads an ERROR line at every deploy as something to look into.
#[tokio::test]
async fn the_binaries_stop_on_sigterm_with_no_error_in_their_logs() {
    let app = TestApp::spawn_with(Options::api_only()).await;
    let receiver = Receiver::start().await;
    app.create_app("app").await;
    app.create_endpoint("app", json!({"url": receiver.url("/hook")}))
        .await;
    let vars = app.env_vars();
    let started = |name: &str, listen: (&str, u16)| {
        process::command(name, &vars)
            .env(listen.0, format!("127.0.0.1:{}", listen.1))
            .env("OCTOHOOKS_LOG_FORMAT", "json")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect(name)
    };
    let dispatcher = started(
        "octohooks-dispatcher",
        ("OCTOHOOKS_DISPATCHER_LISTEN_ADDR", process::free_port()),
    );
    let port = process::free_port();
    let api = started("octohooks-api", ("OCTOHOOKS_LISTEN_ADDR", port));
    let base = format!("http://127.0.0.1:{port}");
    let ready = eventually(30, || async {
        reqwest::get(format!("{base}/health/ready"))
            .await
            .is_ok_and(|response| response.status().is_success())
    })
    .await;
    assert!(ready, "the API process became ready");
    let client = reqwest::Client::new();
    for _ in 0..3 {
        let answer = client
            .post(format!("{base}/api/v1/applications/app/messages"))
            .bearer_auth(&app.api_key)
            .json(&json!({"eventType": "invoice.paid", "payload": {"n": 1}}))
            .send()
            .await
            .expect("a message posted");
        assert_eq!(answer.status(), StatusCode::ACCEPTED);
    }
    receiver.wait_for("/hook", 3, 15).await;
    for child in [&dispatcher, &api] {
        let pid = child.id().expect("still running").to_string();
        let signalled = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(signalled.success());
    }
    for (name, child) in [("dispatcher", dispatcher), ("API", api)] {
        let output = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
            .await
            .expect("it stops within its grace period")
            .expect("its output");
        assert!(output.status.success(), "the {name} exits cleanly");
        let logs = [output.stdout, output.stderr].concat();
        let logs = String::from_utf8_lossy(&logs);
        let errors: Vec<&str> = logs
            .lines()
            .filter(|line| line.contains(r#""level":"ERROR""#))
            .collect();
        eprintln!("LOGS {name}: {logs}");
        assert!(errors.is_empty(), "the {name} logged errors: {errors:#?}");
        assert!(
            logs.contains("SIGTERM"),
            "the {name} logged its stop: {logs}"
        );
    }
    app.stop().await;
}
