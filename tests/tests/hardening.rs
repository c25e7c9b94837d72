//! Other people's servers misbehave and clients send anything: hostile receivers, endpoint
//! health, rate limits, secrets at rest, oversized and slow requests.

use std::time::Duration;

use octohooks_domain::sealing::Sealer;
use octohooks_tests::hostile::{self, Misbehaviour};
use octohooks_tests::{eventually, Options, Receiver, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

const KEY_A: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const KEY_B: &str = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";

async fn attempts(app: &TestApp, message_id: &str) -> Vec<Value> {
    app.get(&format!(
        "/api/v1/applications/app/messages/{message_id}/attempts"
    ))
    .await
    .json
    .as_array()
    .cloned()
    .unwrap_or_default()
}

#[tokio::test]
async fn hostile_receivers_become_failed_attempts_without_harm() {
    let app = TestApp::spawn_with(Options {
        retry_schedule: String::new(),
        delivery_timeout: "1s".into(),
        ..Options::default()
    })
    .await;
    app.create_app("app").await;
    let mut endpoints = std::collections::HashMap::new();
    for (uid, kind) in [
        ("reset", Misbehaviour::Reset),
        ("hang", Misbehaviour::Hang),
        ("trickle", Misbehaviour::Trickle),
        ("huge", Misbehaviour::Huge),
        ("binary", Misbehaviour::Binary),
    ] {
        let url = hostile::start(kind).await;
        let endpoint = app
            .create_endpoint("app", json!({"url": url, "uid": uid}))
            .await;
        endpoints.insert(uid, endpoint["id"].clone());
    }
    let message = app
        .post(
            "/api/v1/applications/app/messages",
            json!({"eventType": "t", "payload": {}}),
        )
        .await;
    let id = message.json["id"].as_str().unwrap().to_owned();
    assert!(eventually(20, || async { attempts(&app, &id).await.len() == 5 }).await);
    let listed = attempts(&app, &id).await;
    let find = |uid: &str| {
        listed
            .iter()
            .find(|a| a["endpointId"] == endpoints[uid])
            .unwrap()
            .clone()
    };
    let reset = find("reset");
    assert_eq!(
        (
            reset["status"].as_str(),
            reset["responseStatusCode"].as_i64()
        ),
        (Some("failed"), Some(0))
    );
    for uid in ["hang", "trickle"] {
        let attempt = find(uid);
        assert_eq!(attempt["status"], "failed", "{uid}");
        assert!(
            attempt["response"].as_str().unwrap().contains("timed out"),
            "{uid}: {attempt}"
        );
        assert!(
            attempt["responseDurationMs"].as_i64().unwrap() < 3000,
            "{uid}"
        );
    }
    let binary = find("binary");
    assert_eq!(
        binary["status"], "success",
        "a binary answer is stored, not retried forever"
    );
    assert!(binary["response"].as_str().unwrap().contains("binary"));
    let huge = find("huge");
    assert_eq!(huge["status"], "success");
    assert!(
        huge["response"].as_str().unwrap().len() <= 64 * 1024,
        "the stored response is capped"
    );
    app.stop().await;
}

#[tokio::test]
async fn an_endpoint_answering_410_is_disabled_until_enabled_again() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    receiver.default_status(410);
    app.create_app("app").await;
    app.create_endpoint("app", json!({"url": receiver.url("/gone"), "uid": "ep"}))
        .await;
    app.post(
        "/api/v1/applications/app/messages",
        json!({"eventType": "t", "payload": {}}),
    )
    .await;
    assert!(
        eventually(15, || async {
            app.get("/api/v1/applications/app/endpoints/ep").await.json["enabled"] == false
        })
        .await
    );
    let endpoint = app.get("/api/v1/applications/app/endpoints/ep").await.json;
    assert_eq!(endpoint["disabledReason"], "the endpoint answered 410 Gone");
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        receiver.received().len(),
        1,
        "no retries to a disabled endpoint"
    );
    app.post(
        "/api/v1/applications/app/messages",
        json!({"eventType": "t", "payload": {}}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.received().len(), 1, "no new deliveries either");

    let enabled = app
        .call(
            Method::PUT,
            "/api/v1/applications/app/endpoints/ep",
            Some(json!({"url": receiver.url("/gone"), "enabled": true})),
        )
        .await;
    assert_eq!(enabled.json["enabled"], true);
    assert!(enabled.json.get("disabledReason").is_none());
    app.stop().await;
}

#[tokio::test]
async fn an_endpoint_failing_for_the_whole_period_is_disabled() {
    let options = Options {
        retry_schedule: "300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms".into(),
        ..Options::default()
    }
    .with_vars(&[("OCTOHOOKS_ENDPOINT_DISABLE_AFTER", "1s")]);
    let app = TestApp::spawn_with(options).await;
    let receiver = Receiver::start().await;
    receiver.default_status(500);
    app.create_app("app").await;
    app.create_endpoint("app", json!({"url": receiver.url("/down"), "uid": "ep"}))
        .await;
    app.post(
        "/api/v1/applications/app/messages",
        json!({"eventType": "t", "payload": {}}),
    )
    .await;
    assert!(
        eventually(20, || async {
            app.get("/api/v1/applications/app/endpoints/ep").await.json["enabled"] == false
        })
        .await
    );
    let reason =
        app.get("/api/v1/applications/app/endpoints/ep").await.json["disabledReason"].clone();
    assert!(
        reason
            .as_str()
            .unwrap()
            .starts_with("every delivery failed since"),
        "{reason}"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_rate_limit_answers_429_per_environment() {
    let options = Options {
        dispatcher: false,
        ..Options::default()
    }
    .with_vars(&[
        ("OCTOHOOKS_RATE_LIMIT_PER_SECOND", "5"),
        ("OCTOHOOKS_RATE_LIMIT_BURST", "5"),
    ]);
    let app = TestApp::spawn_with(options).await;
    let mut limited = None;
    for _ in 0..20 {
        let answer = app.get("/api/v1/applications").await;
        if answer.status == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(answer);
            break;
        }
    }
    let limited = limited.expect("the limit was reached");
    assert_eq!(limited.json["code"], "rate_limited");
    assert!(limited.header("retry-after").parse::<u64>().unwrap() >= 1);
    let other = app
        .admin(
            Method::POST,
            "/api/v1/environments",
            Some(json!({"name": "other"})),
        )
        .await;
    let other_key = other.json["apiKey"].as_str().unwrap().to_owned();
    let fine = app
        .request(
            Method::GET,
            "/api/v1/applications",
            Some(&other_key),
            None,
            &[],
        )
        .await;
    assert_eq!(
        fine.status,
        StatusCode::OK,
        "another environment has its own budget"
    );
    app.stop().await;
}

#[tokio::test]
async fn signing_secrets_are_encrypted_at_rest_and_can_be_resealed() {
    let app = TestApp::spawn_with(
        Options::default().with_vars(&[("OCTOHOOKS_SECRET_ENCRYPTION_KEY", KEY_A)]),
    )
    .await;
    let receiver = Receiver::start().await;
    app.create_app("app").await;
    let given = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    app.create_endpoint(
        "app",
        json!({"url": receiver.url("/hook"), "uid": "ep", "secret": given}),
    )
    .await;
    assert_eq!(
        app.count("SELECT count(*) FROM endpoint_secrets WHERE secret LIKE 'enc2:%'")
            .await,
        1
    );
    assert_eq!(
        app.count("SELECT count(*) FROM endpoint_secrets WHERE secret LIKE '%whsec_%'")
            .await,
        0
    );
    assert_eq!(
        app.get("/api/v1/applications/app/endpoints/ep/secret")
            .await
            .json["key"],
        given
    );
    assert_signed_with(&app, &receiver, given).await;
    // A client certificate's key is sealed the same way, and resealed with the secrets.
    let client_key = rcgen::KeyPair::generate().unwrap();
    let client_cert = rcgen::CertificateParams::new(vec!["client.example".to_owned()])
        .unwrap()
        .self_signed(&client_key)
        .unwrap();
    let set = app
        .call(
            Method::PUT,
            "/api/v1/applications/app/endpoints/ep/client-certificate",
            Some(
                json!({"certificate": client_cert.pem(), "privateKey": client_key.serialize_pem()}),
            ),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.text);

    // Rotate the key: reseal every secret under the new one.
    let mut vars = app.env_vars();
    vars.insert("OCTOHOOKS_SECRET_ENCRYPTION_KEY".into(), KEY_B.into());
    vars.insert("OCTOHOOKS_SECRET_DECRYPTION_KEYS".into(), KEY_A.into());
    let status = tokio::process::Command::new(octohooks_tests::process::binary("octohooks-api"))
        .arg("reseal-secrets")
        .env_clear()
        .envs(&vars)
        .status()
        .await
        .unwrap();
    assert!(status.success());
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        secret: String,
    }
    use diesel_async::{AsyncConnection, RunQueryDsl};
    let mut conn = diesel_async::AsyncPgConnection::establish(&app.database_url)
        .await
        .unwrap();
    let rows: Vec<Row> = diesel::sql_query("SELECT secret FROM endpoint_secrets")
        .load(&mut conn)
        .await
        .unwrap();
    let new_only = Sealer::new(KEY_B, "").unwrap();
    let endpoint_id = endpoint_id(&app, "ep").await;
    assert_eq!(
        new_only.open(&rows[0].secret, &endpoint_id).unwrap(),
        given,
        "opens with the new key alone"
    );
    #[derive(diesel::QueryableByName)]
    struct KeyRow {
        #[diesel(sql_type = diesel::sql_types::Text)]
        client_key: String,
    }
    let keys: Vec<KeyRow> =
        diesel::sql_query("SELECT client_key FROM endpoints WHERE client_key IS NOT NULL")
            .load(&mut conn)
            .await
            .unwrap();
    let owner = octohooks_domain::client_identity::key_owner(endpoint_id.parse().unwrap());
    assert_eq!(
        new_only.open(&keys[0].client_key, &owner).unwrap(),
        client_key.serialize_pem(),
        "the client key opens with the new key alone"
    );
    app.stop().await;
}

async fn endpoint_id(app: &TestApp, uid: &str) -> String {
    app.get(&format!("/api/v1/applications/app/endpoints/{uid}"))
        .await
        .json["id"]
        .as_str()
        .expect("endpoint id")
        .to_owned()
}

/// A secret copied from one endpoint's row into another's does not open there: the API does
/// not reveal it and the dispatcher does not sign with it.
#[tokio::test]
async fn a_sealed_secret_opens_only_in_its_own_endpoint_row() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    app.create_app("app").await;
    let given = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    for (uid, secret) in [("a", Some(given)), ("b", None)] {
        let mut body = json!({"url": receiver.url(&format!("/{uid}")), "uid": uid});
        if let Some(secret) = secret {
            body["secret"] = json!(secret);
        }
        app.create_endpoint("app", body).await;
    }
    let (a, b) = (endpoint_id(&app, "a").await, endpoint_id(&app, "b").await);
    let copied = app
        .execute(&format!(
            "UPDATE endpoint_secrets SET secret = \
             (SELECT secret FROM endpoint_secrets WHERE endpoint_id = '{a}') \
             WHERE endpoint_id = '{b}'"
        ))
        .await;
    assert_eq!(copied, 1);

    let revealed = app.get("/api/v1/applications/app/endpoints/b/secret").await;
    assert_eq!(revealed.status, 500, "{}", revealed.text);
    assert!(!revealed.text.contains(given), "{}", revealed.text);
    assert_eq!(
        app.get("/api/v1/applications/app/endpoints/a/secret")
            .await
            .json["key"],
        given
    );

    app.post(
        "/api/v1/applications/app/messages",
        json!({"eventType": "t", "payload": {"a": 1}}),
    )
    .await;
    assert_eq!(receiver.wait_for("/a", 1, 15).await.len(), 1);
    let recorded = octohooks_tests::eventually(15, || async {
        app.count(&format!(
            "SELECT count(*) FROM attempts WHERE endpoint_id = '{b}' \
             AND response LIKE 'not sent: no signing secret%'"
        ))
        .await
            > 0
    })
    .await;
    assert!(recorded, "the attempt to b was not recorded as unsigned");
    assert!(
        receiver.received_on("/b").is_empty(),
        "b got an unsigned or wrongly signed request"
    );
    app.stop().await;
}

/// Secrets sealed in the first format (bound to the key only) keep working, and
/// `reseal-secrets` binds them to their endpoint.
#[tokio::test]
async fn secrets_of_the_first_sealed_format_work_and_reseal_binds_them() {
    // `whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw` sealed with KEY_A by the first format.
    const FIRST_FORMAT: &str = "enc1:3eb1bd43:qw0i7LKmAF0vMPIhHT/1u5rQWTlbRI9NDSxvgSkmdSHW+r7cJqGx/xN6spI7VotHH55hIYYd1b5Sx5Gyqz0/8YFu";
    let given = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let app = TestApp::spawn_with(
        Options::default().with_vars(&[("OCTOHOOKS_SECRET_ENCRYPTION_KEY", KEY_A)]),
    )
    .await;
    let receiver = Receiver::start().await;
    app.create_app("app").await;
    app.create_endpoint("app", json!({"url": receiver.url("/hook"), "uid": "ep"}))
        .await;
    let id = endpoint_id(&app, "ep").await;
    app.execute(&format!(
        "UPDATE endpoint_secrets SET secret = '{FIRST_FORMAT}' WHERE endpoint_id = '{id}'"
    ))
    .await;
    assert_eq!(
        app.get("/api/v1/applications/app/endpoints/ep/secret")
            .await
            .json["key"],
        given
    );

    let status = tokio::process::Command::new(octohooks_tests::process::binary("octohooks-api"))
        .arg("reseal-secrets")
        .env_clear()
        .envs(app.env_vars())
        .status()
        .await
        .unwrap();
    assert!(status.success());
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM endpoint_secrets WHERE endpoint_id = '{id}' AND secret LIKE 'enc2:%'"
        ))
        .await,
        1
    );
    assert_signed_with(&app, &receiver, given).await;
    app.stop().await;
}

#[tokio::test]
async fn oversized_headers_and_slow_clients_do_not_hurt_the_api() {
    let app = TestApp::spawn_with(Options {
        dispatcher: false,
        ..Options::default()
    })
    .await;
    let huge = "x".repeat(128 * 1024);
    let key = app.api_key.clone();
    let client = reqwest::Client::new();
    let answer = client
        .get(format!("{}/api/v1/applications", app.base))
        .bearer_auth(&key)
        .header("x-padding", &huge)
        .send()
        .await;
    if let Ok(response) = answer {
        assert!(response.status().is_client_error(), "{}", response.status());
    }
    // Slow clients that never finish their headers hold no worker.
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut slow = Vec::new();
    for _ in 0..100 {
        let mut socket = tokio::net::TcpStream::connect(&addr).await.unwrap();
        socket
            .write_all(b"GET /api/v1/applications HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        slow.push(socket);
    }
    let started = std::time::Instant::now();
    let ok = app.get("/api/v1/applications").await;
    assert_eq!(ok.status, StatusCode::OK);
    assert!(started.elapsed() < Duration::from_secs(2));
    drop(slow);
    app.stop().await;
}

#[tokio::test]
async fn nul_characters_and_absurd_times_are_client_errors() {
    let app = TestApp::spawn_with(Options {
        dispatcher: false,
        ..Options::default()
    })
    .await;
    app.create_app("app").await;
    for path in [
        "/api/v1/applications/a%00b",
        "/api/v1/applications/app/messages?eventType=a%00b",
        "/api/v1/applications/app/messages?before=-99999999999999999",
        "/api/v1/applications/app/messages?after=300000-01-01T00:00:00Z",
        "/api/v1/event-types/x%00y",
    ] {
        let answer = app.get(path).await;
        assert!(
            answer.status.is_client_error(),
            "{path}: {} {}",
            answer.status,
            answer.text
        );
    }
    let answer = app
        .post(
            "/api/v1/event-types",
            json!({"name": "t", "description": "a\u{0}b"}),
        )
        .await;
    assert_eq!(
        answer.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        answer.text
    );
    app.stop().await;
}

/// Sends a message to the application `app` and checks that its receiver got it signed with
/// the secret `given` alone.
async fn assert_signed_with(app: &TestApp, receiver: &Receiver, given: &str) {
    app.post(
        "/api/v1/applications/app/messages",
        json!({"eventType": "t", "payload": {"a": 1}}),
    )
    .await;
    let got = receiver.wait_for("/hook", 1, 15).await;
    let secret = octohooks_domain::signing::EndpointSecret::parse("k", given).unwrap();
    let timestamp: i64 = got[0].header("webhook-timestamp").parse().unwrap();
    assert_eq!(
        got[0].header("webhook-signature"),
        secret.sign(got[0].header("webhook-id"), timestamp, &got[0].body)
    );
}
