//! Load for the fault tests (`make chaos`, `make chaos-cluster`): closed-loop clients that post
//! messages through whatever is being broken, and the count at the end of what was accepted,
//! delivered, duplicated and lost.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::{eventually, Receiver};

/// Ids accepted, requests refused, and the client tasks of a load run.
pub type LoadRun = (
    Arc<Mutex<HashSet<String>>>,
    Arc<Mutex<u64>>,
    Vec<tokio::task::JoinHandle<()>>,
);

/// Posts messages with `workers` concurrent clients until cancelled; collects accepted ids.
pub fn load(base: &str, key: &str, workers: usize, stop: CancellationToken) -> LoadRun {
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

/// True when `url` answers 200.
pub async fn ready(url: &str) -> bool {
    reqwest::get(url)
        .await
        .map(|r| r.status() == StatusCode::OK)
        .unwrap_or(false)
}

/// The distinct `webhook-id`s `receiver` got.
pub fn delivered(receiver: &Receiver) -> HashSet<String> {
    receiver
        .received()
        .iter()
        .map(|r| r.header("webhook-id").to_owned())
        .collect()
}

/// Waits up to 90 s for every accepted message to arrive, prints the counts under `name`, and
/// fails if one was lost.
pub async fn settle_and_report(
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
