//! Faults of the real dependencies, under load: RabbitMQ stopped and started, Postgres
//! restarted, the API killed with SIGKILL, and replicas (two APIs behind a load balancer, three
//! dispatchers) losing one of each and then the broker, and a rolling upgrade from the previous
//! version. They stop shared services of the machine, so they
//! are `#[ignore]`d by `make test` and run one at a time by `make chaos`. Each prints what it
//! counted and fails if an accepted message was lost.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use octohooks_tests::balancer::Balancer;
use octohooks_tests::load::{load, ready, settle_and_report};
use octohooks_tests::{eventually, process, Options, Receiver, TestApp};
use serde_json::json;
use tokio_util::sync::CancellationToken;

fn run(command: &str, args: &[&str]) {
    let status = Command::new(command).args(args).status().expect(command);
    assert!(status.success(), "{command} {args:?}");
}

fn postgres_version() -> String {
    std::fs::read_dir("/etc/postgresql")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .max()
        .unwrap()
}

/// Takes a dependency down with `stop` and back with `start` while messages are posted; checks
/// that readiness follows, and that every accepted message is delivered.
async fn outage(
    name: &str,
    stop_cmd: (&str, &[&str]),
    start_cmd: (&str, &[&str]),
    accepts_while_down: bool,
) {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    app.create_app("app").await;
    app.create_endpoint("app", json!({"url": receiver.url("/hook")}))
        .await;
    let api_ready = format!("{}/health/ready", app.base);
    let dispatcher_ready = app.dispatcher_health().unwrap();
    assert!(eventually(20, || ready(&api_ready)).await);
    let stop = CancellationToken::new();
    let (accepted, refused, workers) = load(&app.base, &app.api_key, 4, stop.clone());
    tokio::time::sleep(Duration::from_secs(2)).await;

    run(stop_cmd.0, stop_cmd.1);
    assert!(
        eventually(20, || async { !ready(&api_ready).await }).await,
        "{name}: API readiness drops"
    );
    assert!(
        eventually(20, || async { !ready(&dispatcher_ready).await }).await,
        "{name}: dispatcher readiness drops"
    );
    let before = accepted.lock().unwrap().len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    if accepts_while_down {
        assert!(
            accepted.lock().unwrap().len() > before,
            "{name}: messages are still accepted while it is down"
        );
    }
    run(start_cmd.0, start_cmd.1);
    assert!(
        eventually(60, || ready(&api_ready)).await,
        "{name}: API readiness returns"
    );
    assert!(
        eventually(60, || ready(&dispatcher_ready)).await,
        "{name}: dispatcher readiness returns"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.cancel();
    futures::future::join_all(workers).await;
    let accepted = accepted.lock().unwrap().clone();
    assert!(!accepted.is_empty());
    let refused = *refused.lock().unwrap();
    settle_and_report(name, &receiver, &accepted, refused).await;
    app.stop().await;
}

#[tokio::test]
#[ignore = "stops the machine's RabbitMQ; run with make chaos"]
async fn rabbitmq_stopped_and_started_under_load() {
    outage(
        "rabbitmq stop/start",
        ("rabbitmqctl", &["-q", "stop_app"]),
        ("rabbitmqctl", &["-q", "start_app"]),
        true,
    )
    .await;
}

#[tokio::test]
#[ignore = "restarts the machine's PostgreSQL; run with make chaos"]
async fn postgres_restarted_under_load() {
    let version = postgres_version();
    let stop = [
        "--skip-systemctl-redirect",
        &version,
        "main",
        "stop",
        "-m",
        "fast",
    ];
    let start = ["--skip-systemctl-redirect", &version, "main", "start"];
    outage(
        "postgres restart",
        ("pg_ctlcluster", &stop),
        ("pg_ctlcluster", &start),
        false,
    )
    .await;
}

#[tokio::test]
#[ignore = "part of make chaos"]
async fn api_killed_under_load_loses_nothing() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    app.create_app("app").await;
    app.create_endpoint("app", json!({"url": receiver.url("/hook")}))
        .await;
    // A second API, as a process, takes the same load and is killed mid-stream.
    let (mut doomed, doomed_base) = process::spawn_api(&app.env_vars()).await;
    let stop = CancellationToken::new();
    let (accepted, refused, workers) = load(&doomed_base, &app.api_key, 8, stop.clone());
    tokio::time::sleep(Duration::from_secs(3)).await;
    doomed.kill().await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.cancel();
    futures::future::join_all(workers).await;
    let accepted = accepted.lock().unwrap().clone();
    assert!(!accepted.is_empty());
    let refused = *refused.lock().unwrap();
    settle_and_report("API SIGKILL", &receiver, &accepted, refused).await;
    app.stop().await;
}

#[tokio::test]
#[ignore = "stops the machine's RabbitMQ; run with make chaos"]
async fn replicas_behind_a_balancer_lose_one_of_each_and_the_broker_and_lose_nothing() {
    // The in-process API only prepares the data; the load goes through the balancer.
    let app = TestApp::spawn_with(Options::api_only()).await;
    let receiver = Receiver::start().await;
    app.create_app("app").await;
    app.create_endpoint("app", json!({"url": receiver.url("/hook")}))
        .await;
    let vars = app.env_vars();
    let (mut doomed_api, doomed_base) = process::spawn_api(&vars).await;
    let (mut api, api_base) = process::spawn_api(&vars).await;
    let balancer = Balancer::start(&[doomed_base, api_base.clone()]).await;
    let mut dispatchers: Vec<_> = (0..3).map(|_| process::spawn_dispatcher(&vars)).collect();
    for (_, health) in &dispatchers {
        let health = format!("{health}/health/ready");
        assert!(
            eventually(30, || ready(&health)).await,
            "a dispatcher starts"
        );
    }

    let stop = CancellationToken::new();
    let (accepted, refused, workers) = load(&balancer.base, &app.api_key, 8, stop.clone());
    tokio::time::sleep(Duration::from_secs(3)).await;
    doomed_api.kill().await.unwrap();
    let (mut doomed_dispatcher, _) = dispatchers.remove(0);
    doomed_dispatcher.kill().await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;

    run("rabbitmqctl", &["-q", "stop_app"]);
    tokio::time::sleep(Duration::from_secs(3)).await;
    run("rabbitmqctl", &["-q", "start_app"]);
    let api_ready = format!("{api_base}/health/ready");
    assert!(
        eventually(60, || ready(&api_ready)).await,
        "the surviving API is ready again"
    );
    for (_, health) in &dispatchers {
        let health = format!("{health}/health/ready");
        assert!(
            eventually(60, || ready(&health)).await,
            "the surviving dispatchers are ready again"
        );
    }
    let after_broker = accepted.lock().unwrap().len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.cancel();
    futures::future::join_all(workers).await;
    let accepted = accepted.lock().unwrap().clone();
    assert!(
        accepted.len() > after_broker,
        "the balancer keeps taking messages after the faults"
    );
    let refused = *refused.lock().unwrap();
    settle_and_report(
        "2 APIs + 3 dispatchers, one of each SIGKILLed, then RabbitMQ stop/start",
        &receiver,
        &accepted,
        refused,
    )
    .await;
    // Before the queues go, or they declare them again.
    let _ = api.kill().await;
    for (mut dispatcher, _) in dispatchers {
        let _ = dispatcher.kill().await;
    }
    app.stop().await;
}

/// A binary of the previous version, built by `scripts/previous.sh` (which `make chaos` runs).
fn previous(name: &str) -> PathBuf {
    let dir = std::env::var("OCTOHOOKS_PREVIOUS_BIN_DIR")
        .expect("OCTOHOOKS_PREVIOUS_BIN_DIR: make chaos builds the previous version and sets it");
    PathBuf::from(dir).join(name)
}

/// Asks a process to stop as Kubernetes does during a rollout (SIGTERM), and waits for it.
async fn terminate(child: &mut tokio::process::Child) {
    let pid = child.id().expect("still running").to_string();
    run("kill", &["-TERM", &pid]);
    let stopped = tokio::time::timeout(Duration::from_secs(60), child.wait()).await;
    assert!(stopped.is_ok(), "it stops within its grace period");
}

/// Successful attempts a dispatcher reports on its metrics.
async fn delivered_by(health_base: &str) -> f64 {
    octohooks_tests::scrape(
        health_base,
        "octohooks_delivery_attempts_total{outcome=\"success\"}",
    )
    .await
}

#[tokio::test]
#[ignore = "needs the previous version's binaries; run with make chaos"]
async fn a_rolling_upgrade_from_the_previous_version_loses_nothing() {
    // The schema is this version's, as after a rollout's migration step; the previous
    // version's replicas keep running on it until they are replaced.
    let app = TestApp::spawn_with(Options::api_only()).await;
    let receiver = Receiver::start().await;
    app.create_app("app").await;
    app.create_endpoint("app", json!({"url": receiver.url("/hook")}))
        .await;
    // A fan-out: the new API publishes it as a group, which only the new dispatcher reads.
    let fanned = Receiver::start().await;
    app.create_app("fan").await;
    for path in ["/one", "/two"] {
        app.create_endpoint("fan", json!({"url": fanned.url(path)}))
            .await;
    }
    let mut vars = app.env_vars();
    // Set, not defaulted: both versions then share the per-endpoint cap's grants in Postgres.
    vars.insert("OCTOHOOKS_ENDPOINT_MAX_IN_FLIGHT".into(), "8".into());
    let (mut old_api, old_base) = process::spawn_api_at(&previous("octohooks-api"), &vars).await;
    let (mut old_dispatcher, old_health) =
        process::spawn_dispatcher_at(&previous("octohooks-dispatcher"), &vars);
    let (mut new_api, new_base) = process::spawn_api(&vars).await;
    let balancer = Balancer::start(&[old_base, new_base]).await;

    // Old and new APIs take the load; only the old dispatcher delivers.
    let stop = CancellationToken::new();
    let (accepted, refused, workers) = load(&balancer.base, &app.api_key, 8, stop.clone());
    let client = reqwest::Client::new();
    for n in 0..20 {
        let sent = client
            .post(format!(
                "{}/api/v1/applications/fan/messages",
                balancer.base
            ))
            .bearer_auth(&app.api_key)
            .json(&json!({"eventType": "t", "payload": {"n": n}}))
            .send()
            .await
            .expect("send a fan-out");
        assert_eq!(sent.status(), reqwest::StatusCode::ACCEPTED);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    // The new dispatcher joins: both versions deliver side by side.
    let (mut new_dispatcher, new_health) = process::spawn_dispatcher(&vars);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let by_old = delivered_by(&old_health).await;
    assert!(by_old > 0.0, "the previous dispatcher delivered");
    // The old replicas are stopped as a rollout stops them.
    terminate(&mut old_api).await;
    terminate(&mut old_dispatcher).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.cancel();
    futures::future::join_all(workers).await;
    let accepted = accepted.lock().unwrap().clone();
    let refused = *refused.lock().unwrap();
    settle_and_report(
        "rolling upgrade from the previous version",
        &receiver,
        &accepted,
        refused,
    )
    .await;
    assert!(
        delivered_by(&new_health).await > 0.0,
        "the new dispatcher delivered"
    );
    let recorded = eventually(30, || async {
        app.count("SELECT count(*) FROM message_destinations WHERE status = 'success'")
            .await
            >= accepted.len() as i64
    })
    .await;
    assert!(recorded, "every delivery is recorded as delivered");
    let fanned_out = eventually(30, || async {
        ["/one", "/two"]
            .iter()
            .all(|path| fanned.received_on(path).len() >= 20)
    })
    .await;
    assert!(fanned_out, "every fan-out reached both endpoints");
    for path in ["/one", "/two"] {
        let ids: std::collections::HashSet<String> = fanned
            .received_on(path)
            .iter()
            .map(|r| r.header("webhook-id").to_owned())
            .collect();
        assert_eq!(ids.len(), 20, "{path}: every fan-out message, none lost");
    }
    println!("previous dispatcher delivered {by_old} before it stopped");
    let _ = new_api.kill().await;
    let _ = new_dispatcher.kill().await;
    app.stop().await;
}
