//! A RabbitMQ cluster of three nodes on loopback (`scripts/rabbitmq-cluster.sh`), reached
//! through a load balancer as a Kubernetes Service reaches one: under load, the node that leads
//! the delivery queue's quorum is killed with SIGKILL during delivery and started again, and
//! every accepted message is delivered. `#[ignore]`d: `make chaos-cluster` starts the cluster
//! and runs it.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use octohooks_tests::balancer::Balancer;
use octohooks_tests::load::{load, ready, settle_and_report};
use octohooks_tests::{eventually, process, Options, Receiver, TestApp};
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// AMQP ports of the cluster's nodes 1, 2 and 3.
const NODES: [u16; 3] = [5701, 5702, 5703];

fn cluster_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/rabbitmq-cluster.sh")
}

fn cluster(args: &[&str]) -> String {
    let output = Command::new(cluster_script())
        .args(args)
        .output()
        .expect("run scripts/rabbitmq-cluster.sh");
    assert!(
        output.status.success(),
        "rabbitmq-cluster.sh {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The number (1–3) of the node that leads `queue`'s quorum, asked of `ask` (a node that is up).
fn leader_of(queue: &str, ask: usize) -> usize {
    let output = Command::new("/usr/lib/rabbitmq/bin/rabbitmqctl")
        .args(["-q", "-n", &format!("octo{ask}@localhost")])
        .args(["list_queues", "name", "leader"])
        .env("ERL_EPMD_ADDRESS", "127.0.0.1")
        .output()
        .expect("rabbitmqctl list_queues");
    let listing = String::from_utf8_lossy(&output.stdout);
    let leader = listing
        .lines()
        .filter_map(|line| line.split_once('\t'))
        .find(|(name, _)| *name == queue)
        .map(|(_, leader)| leader.trim().to_owned())
        .unwrap_or_else(|| panic!("{queue} is not in the cluster's queues: {listing}"));
    (1..=3)
        .find(|n| leader == format!("octo{n}@localhost"))
        .unwrap_or_else(|| panic!("unknown leader {leader}"))
}

#[tokio::test]
#[ignore = "needs the loopback RabbitMQ cluster; run with make chaos-cluster"]
async fn a_cluster_node_killed_during_delivery_loses_nothing() {
    let backends: Vec<String> = NODES
        .iter()
        .map(|port| format!("127.0.0.1:{port}"))
        .collect();
    let broker = Balancer::start(&backends).await;
    let amqp_url = format!(
        "amqp://guest:guest@{}/%2f",
        broker.base.trim_start_matches("http://")
    );
    let app = TestApp::spawn_with(Options {
        amqp_url,
        ..Options::api_only()
    })
    .await;
    let receiver = Receiver::start().await;
    app.create_app("app").await;
    app.create_endpoint("app", json!({"url": receiver.url("/hook")}))
        .await;
    let vars = app.env_vars();
    let dispatchers: Vec<_> = (0..2).map(|_| process::spawn_dispatcher(&vars)).collect();
    for (_, health) in &dispatchers {
        let health = format!("{health}/health/ready");
        assert!(
            eventually(30, || ready(&health)).await,
            "a dispatcher starts"
        );
    }
    let queue = octohooks_broker::delivery_queues(&app.queue)
        .into_iter()
        .next()
        .expect("a delivery queue");
    let leader = leader_of(&queue, 1);
    let witness = if leader == 1 { 2 } else { 1 };

    let stop = CancellationToken::new();
    let (accepted, refused, workers) = load(&app.base, &app.api_key, 8, stop.clone());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before_kill = accepted.lock().unwrap().len();
    cluster(&["kill", &leader.to_string()]);
    tokio::time::sleep(Duration::from_secs(8)).await;
    let new_leader = leader_of(&queue, witness);
    assert_ne!(new_leader, leader, "another node leads the queue");
    let while_down = accepted.lock().unwrap().len() - before_kill;
    cluster(&["start-node", &leader.to_string()]);
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.cancel();
    futures::future::join_all(workers).await;
    let accepted = accepted.lock().unwrap().clone();
    assert!(while_down > 0, "messages are accepted while a node is down");
    let refused = *refused.lock().unwrap();
    println!(
        "node octo{leader} (the queue's leader) killed; octo{new_leader} took over; \
         {while_down} accepted while it was down"
    );
    settle_and_report(
        "3-node RabbitMQ cluster, the leader node SIGKILLed and restarted",
        &receiver,
        &accepted,
        refused,
    )
    .await;
    for (mut dispatcher, _) in dispatchers {
        let _ = dispatcher.kill().await;
    }
    app.stop().await;
}
