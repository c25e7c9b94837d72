//! Faults of the real dependencies, under load: RabbitMQ stopped and started, Postgres
//! restarted, the API killed with SIGKILL. They stop shared services of the machine, so they
//! are `#[ignore]`d by `make test` and run one at a time by `make chaos`. Each prints what it
//! counted and fails if an accepted message was lost.

use std::collections::HashSet;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use octohooks_tests::{eventually, process, Receiver, TestApp};
use reqwest::StatusCode;
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// Ids accepted, requests refused, and the client tasks of a load run.
type LoadRun = (
    Arc<Mutex<HashSet<String>>>,
    Arc<Mutex<u64>>,
    Vec<tokio::task::JoinHandle<()>>,
);

/// Posts messages with `workers` concurrent clients until cancelled; collects accepted ids.
fn load(base: &str, key: &str, workers: usize, stop: CancellationToken) -> LoadRun {
    let accepted = Arc::new(Mutex::new(HashSet::new()));
    let refused = Arc::new(Mutex::new(0u64));
    let url = format!("{base}/api/v1/applications/app/messages");
    let handles = (0..workers)
        .map(|_| {
            let (accepted, refused, stop, url, key) = (
                accepted.clone(),
                refused.clone(),
                stop.clone(),
                url.clone(),
                key.to_owned(),
            );
            tokio::spawn(async move {
                let client = reqwest::Client::builder()
                    .timeout(Duration::from_secs(5))
                    .build()
                    .unwrap();
                while !stop.is_cancelled() {
                    let answer = client
                        .post(&url)
                        .bearer_auth(&key)
                        .json(&json!({"eventType": "chaos", "payload": {"n": 1}}))
                        .send()
                        .await;
                    match answer {
                        Ok(response) if response.status() == StatusCode::ACCEPTED => {
                            let body: serde_json::Value = response.json().await.unwrap();
                            accepted
                                .lock()
                                .unwrap()
                                .insert(body["id"].as_str().unwrap().to_owned());
                        }
                        _ => {
                            *refused.lock().unwrap() += 1;
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        })
        .collect();
    (accepted, refused, handles)
}

async fn ready(url: &str) -> bool {
    reqwest::get(url)
        .await
        .map(|r| r.status() == StatusCode::OK)
        .unwrap_or(false)
}

fn delivered(receiver: &Receiver) -> HashSet<String> {
    receiver
        .received()
        .iter()
        .map(|r| r.header("webhook-id").to_owned())
        .collect()
}

async fn settle_and_report(
    name: &str,
    receiver: &Receiver,
    accepted: &HashSet<String>,
    refused: u64,
) {
    let complete = eventually(90, || async { accepted.is_subset(&delivered(receiver)) }).await;
    let got = delivered(receiver);
    let lost = accepted.difference(&got).count();
    println!(
        "{name}: accepted={} refused_while_down={refused} delivered={} duplicates={} lost={lost}",
        accepted.len(),
        got.intersection(accepted).count(),
        receiver.received().len() - got.len()
    );
    assert!(
        complete && lost == 0,
        "{name}: {lost} accepted messages were not delivered"
    );
}

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

#[tokio::test]
#[ignore = "stops the machine's RabbitMQ; run with make chaos"]
async fn rabbitmq_stopped_and_started_under_load() {
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

    run("rabbitmqctl", &["-q", "stop_app"]);
    assert!(
        eventually(20, || async { !ready(&api_ready).await }).await,
        "API readiness drops"
    );
    assert!(
        eventually(20, || async { !ready(&dispatcher_ready).await }).await,
        "dispatcher readiness drops"
    );
    let before = accepted.lock().unwrap().len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        accepted.lock().unwrap().len() > before,
        "messages are still accepted while the broker is down"
    );
    run("rabbitmqctl", &["-q", "start_app"]);
    assert!(
        eventually(60, || ready(&api_ready)).await,
        "API readiness returns"
    );
    assert!(
        eventually(60, || ready(&dispatcher_ready)).await,
        "dispatcher readiness returns"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.cancel();
    futures::future::join_all(workers).await;
    let accepted = accepted.lock().unwrap().clone();
    let refused = *refused.lock().unwrap();
    settle_and_report("rabbitmq stop/start", &receiver, &accepted, refused).await;
    app.stop().await;
}

#[tokio::test]
#[ignore = "restarts the machine's PostgreSQL; run with make chaos"]
async fn postgres_restarted_under_load() {
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

    let version = postgres_version();
    run(
        "pg_ctlcluster",
        &[
            "--skip-systemctl-redirect",
            &version,
            "main",
            "stop",
            "-m",
            "fast",
        ],
    );
    assert!(
        eventually(20, || async { !ready(&api_ready).await }).await,
        "API readiness drops"
    );
    assert!(
        eventually(20, || async { !ready(&dispatcher_ready).await }).await,
        "dispatcher readiness drops"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    run(
        "pg_ctlcluster",
        &["--skip-systemctl-redirect", &version, "main", "start"],
    );
    assert!(
        eventually(60, || ready(&api_ready)).await,
        "API readiness returns"
    );
    assert!(
        eventually(60, || ready(&dispatcher_ready)).await,
        "dispatcher readiness returns"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.cancel();
    futures::future::join_all(workers).await;
    let accepted = accepted.lock().unwrap().clone();
    assert!(!accepted.is_empty());
    let refused = *refused.lock().unwrap();
    settle_and_report("postgres restart", &receiver, &accepted, refused).await;
    app.stop().await;
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
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut vars = app.env_vars();
    vars.insert("OCTOHOOKS_LISTEN_ADDR".into(), format!("127.0.0.1:{port}"));
    let mut doomed = process::spawn("octohooks-api", &vars);
    let doomed_base = format!("http://127.0.0.1:{port}");
    let doomed_ready = format!("{doomed_base}/health/ready");
    assert!(eventually(30, || ready(&doomed_ready)).await);
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
