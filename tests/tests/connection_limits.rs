//! More replicas than Postgres has connections for: a replica that cannot get a connection
//! answers 503 (`service_unavailable`), stays up, and serves again once connections are to be
//! had; one that starts meanwhile waits for a connection instead of exiting. Nothing accepted is
//! lost. Postgres refuses a connection over a role's `CONNECTION LIMIT` as it refuses one over
//! `max_connections` (SQLSTATE 53300), so a role of the test's own stands for a full server
//! without touching the machine's.

use std::collections::HashSet;
use std::time::Duration;

use octohooks_tests::database::{self, SERVER_URL};
use octohooks_tests::{eventually, process, Options, Receiver, TestApp};
use reqwest::StatusCode;
use serde_json::json;

/// Connections the role of the replicas may hold while connections are scarce.
const SCARCE: u32 = 3;

async fn status_of(client: &reqwest::Client, url: &str) -> Option<u16> {
    client
        .get(url)
        .send()
        .await
        .ok()
        .map(|r| r.status().as_u16())
}

/// Posts `rounds` rounds of 4 concurrent messages to each replica; every answer must be 202 or a
/// 503 `service_unavailable`. Returns how many of each.
async fn post_rounds(
    client: &reqwest::Client,
    apis: &[(tokio::process::Child, String)],
    key: &str,
    rounds: usize,
    accepted: &mut HashSet<String>,
) -> (usize, usize) {
    let (mut ok, mut unavailable) = (0, 0);
    for round in 0..rounds {
        let posts = apis.iter().flat_map(|(_, base)| {
            (0..4).map(move |i| {
                client
                    .post(format!("{base}/api/v1/applications/app/messages"))
                    .bearer_auth(key)
                    .json(&json!({"eventType": "full", "payload": {"round": round, "i": i}}))
                    .send()
            })
        });
        for answer in futures::future::join_all(posts).await {
            let answer = answer.expect("a replica answers, even without a connection");
            let status = answer.status();
            let body: serde_json::Value = answer.json().await.unwrap();
            match status {
                StatusCode::ACCEPTED => {
                    accepted.insert(body["id"].as_str().unwrap().to_owned());
                    ok += 1;
                }
                StatusCode::SERVICE_UNAVAILABLE => {
                    assert_eq!(body["code"], "service_unavailable", "{body}");
                    unavailable += 1;
                }
                other => panic!("a replica short of connections answered {other}: {body}"),
            }
        }
    }
    (ok, unavailable)
}

#[tokio::test]
async fn replicas_beyond_the_connection_limit_answer_503_and_recover() {
    let app = TestApp::spawn_with(Options::api_only()).await;
    let receiver = Receiver::start().await;
    app.create_app("app").await;
    app.create_endpoint("app", json!({"url": receiver.url("/hook")}))
        .await;
    let role = format!("few_{}", app.database_name);
    database::execute(
        &format!("{SERVER_URL}/postgres"),
        &format!("CREATE ROLE {role} LOGIN"),
    )
    .await;
    for objects in [
        "SCHEMA public",
        "ALL TABLES IN SCHEMA public",
        "ALL SEQUENCES IN SCHEMA public",
    ] {
        database::execute(
            &app.database_url,
            &format!("GRANT ALL ON {objects} TO {role}"),
        )
        .await;
    }
    let mut vars = app.env_vars();
    vars.insert(
        "OCTOHOOKS_DATABASE_URL".into(),
        format!("postgres://{role}@127.0.0.1:5432/{}", app.database_name),
    );
    let mut apis = Vec::new();
    for _ in 0..3 {
        apis.push(process::spawn_api(&vars).await);
    }
    let (mut dispatcher, _) = process::spawn_dispatcher(&vars);

    // The server is full: no connection for the replicas' role, and the ones they had are gone.
    let admin = format!("{SERVER_URL}/postgres");
    database::execute(&admin, &format!("ALTER ROLE {role} CONNECTION LIMIT 0")).await;
    database::count(
        &admin,
        &format!(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE usename = '{role}'"
        ),
    )
    .await;
    // A replica started now must wait for a connection, not exit.
    let late_port = process::free_port();
    let mut late_vars = vars.clone();
    late_vars.insert(
        "OCTOHOOKS_LISTEN_ADDR".into(),
        format!("127.0.0.1:{late_port}"),
    );
    let mut late = process::spawn("octohooks-api", &late_vars);
    // Long enough for it to have been refused a few times.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let key = app.api_key.clone();
    let mut accepted = HashSet::new();
    let (full, _) = post_rounds(&client, &apis, &key, 2, &mut accepted).await;
    assert_eq!(
        full, 0,
        "nothing is accepted while no connection can be had"
    );
    assert!(accepted.is_empty());
    let late_ready = format!("http://127.0.0.1:{late_port}/health/ready");
    assert_ne!(
        status_of(&client, &late_ready).await,
        Some(200),
        "the late replica has had no connection to start with"
    );
    assert!(late.try_wait().unwrap().is_none(), "the late replica waits");
    // Then scarce: a few connections for four replicas and a dispatcher.
    database::execute(
        &admin,
        &format!("ALTER ROLE {role} CONNECTION LIMIT {SCARCE}"),
    )
    .await;
    let (scarce, unavailable) = post_rounds(&client, &apis, &key, 10, &mut accepted).await;
    println!("connections scarce: {scarce} accepted, {unavailable} answered 503");
    for (api, _) in &mut apis {
        assert!(api.try_wait().unwrap().is_none(), "a replica exited");
    }
    assert!(
        late.try_wait().unwrap().is_none(),
        "the late replica exited"
    );

    // Connections are to be had again: every replica serves, the late one included.
    database::execute(&admin, &format!("ALTER ROLE {role} CONNECTION LIMIT -1")).await;
    let mut bases: Vec<String> = apis.iter().map(|(_, base)| base.clone()).collect();
    bases.push(format!("http://127.0.0.1:{late_port}"));
    for base in &bases {
        let list = format!("{base}/api/v1/applications/app/messages");
        let serves = eventually(60, || async {
            client
                .get(&list)
                .bearer_auth(&key)
                .send()
                .await
                .is_ok_and(|r| r.status() == StatusCode::OK)
        })
        .await;
        assert!(serves, "{base} serves again");
    }
    let stored = app.count("SELECT count(*) FROM messages").await;
    assert_eq!(
        stored,
        accepted.len() as i64,
        "exactly the accepted messages are stored"
    );
    let delivered = eventually(60, || async {
        let got: HashSet<String> = receiver
            .received_on("/hook")
            .iter()
            .map(|r| r.header("webhook-id").to_owned())
            .collect();
        accepted.is_subset(&got)
    })
    .await;
    assert!(delivered, "every accepted message is delivered");

    for (mut api, _) in apis {
        let _ = api.kill().await;
    }
    let _ = late.kill().await;
    let _ = dispatcher.kill().await;
    app.stop().await;
    database::execute(&admin, &format!("DROP ROLE {role}")).await;
}
