//! Deliveries from a locked-down network: through an HTTP `CONNECT` proxy (with credentials),
//! where the destination rule still holds for the receiver behind the proxy, and to receivers
//! whose certificates a private authority issued (`OCTOHOOKS_EXTRA_CA_FILE`).

use octohooks_tests::outbound::{ConnectProxy, TlsReceiver};
use octohooks_tests::tls_postgres::Authority;
use octohooks_tests::{eventually, Options, Receiver, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// The attempts of the message, once there are `count`.
async fn attempts(app: &TestApp, message: &str, count: usize) -> Vec<Value> {
    let path = format!("/api/v1/applications/app/messages/{message}/attempts");
    let arrived = eventually(20, || async {
        app.get(&path).await.json.as_array().map_or(0, Vec::len) >= count
    })
    .await;
    assert!(
        arrived,
        "no {count} attempts: {}",
        app.get(&path).await.text
    );
    app.get(&path)
        .await
        .json
        .as_array()
        .cloned()
        .unwrap_or_default()
}

async fn send(app: &TestApp) -> String {
    let sent = app
        .post(
            "/api/v1/applications/app/messages",
            json!({"eventType": "t", "payload": {"through": "proxy"}}),
        )
        .await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.text);
    sent.json["id"].as_str().unwrap().to_owned()
}

fn with(options: Options, vars: &[(&str, &str)]) -> Options {
    let mut options = options;
    options
        .extra
        .extend(vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    options
}

#[tokio::test]
async fn deliveries_go_through_the_proxy_to_the_address_the_dispatcher_checked() {
    // base64("hooks:s3cret")
    let proxy = ConnectProxy::start(Some("Basic aG9va3M6czNjcmV0")).await;
    let proxy_url = proxy.url.replace("http://", "http://hooks:s3cret@");
    let app = TestApp::spawn_with(with(
        Options::default(),
        &[("OCTOHOOKS_PROXY_URL", &proxy_url)],
    ))
    .await;
    let receiver = Receiver::start().await;
    let port = receiver.base.rsplit(':').next().unwrap().to_owned();
    app.create_app("app").await;
    app.create_endpoint("app", json!({"url": receiver.url("/literal")}))
        .await;
    app.create_endpoint(
        "app",
        json!({"url": format!("http://localhost:{port}/name")}),
    )
    .await;
    send(&app).await;
    receiver.wait_for("/literal", 1, 10).await;
    receiver.wait_for("/name", 1, 10).await;
    // The proxy was asked for the checked address, never for the name.
    let targets = proxy.targets();
    assert!(!targets.is_empty());
    assert!(
        targets
            .iter()
            .all(|target| target == &format!("127.0.0.1:{port}")),
        "{targets:?}"
    );

    // Wrong credentials: the proxy refuses, and the attempt says so.
    let refusing = TestApp::spawn_with(with(
        Options::default(),
        &[(
            "OCTOHOOKS_PROXY_URL",
            &proxy.url.replace("http://", "http://hooks:wrong@"),
        )],
    ))
    .await;
    refusing.create_app("app").await;
    refusing
        .create_endpoint("app", json!({"url": receiver.url("/refused")}))
        .await;
    let message = send(&refusing).await;
    let failed = attempts(&refusing, &message, 1).await;
    assert_eq!(failed[0]["status"], "failed");
    assert_eq!(failed[0]["responseStatusCode"], 0);
    assert!(
        failed[0]["response"]
            .as_str()
            .unwrap()
            .contains("proxy authorization required"),
        "{}",
        failed[0]
    );
    assert!(receiver.received_on("/refused").is_empty());
    refusing.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn behind_the_proxy_the_destination_rule_still_holds() {
    let proxy = ConnectProxy::start(None).await;
    let app = TestApp::spawn_with(with(
        Options {
            allow_private: false,
            retry_schedule: String::new(),
            ..Options::default()
        },
        &[("OCTOHOOKS_PROXY_URL", &proxy.url)],
    ))
    .await;
    let receiver = Receiver::start().await;
    let port = receiver.base.rsplit(':').next().unwrap().to_owned();
    app.create_app("app").await;
    for url in [
        receiver.url("/literal"),
        format!("http://localhost:{port}/name"),
        "http://169.254.169.254/latest/meta-data".to_owned(),
    ] {
        app.create_endpoint("app", json!({"url": url})).await;
    }
    let message = send(&app).await;
    for attempt in attempts(&app, &message, 3).await {
        assert_eq!(attempt["status"], "failed");
        assert!(
            attempt["response"]
                .as_str()
                .unwrap()
                .contains("destination refused"),
            "{attempt}"
        );
    }
    assert!(proxy.targets().is_empty(), "{:?}", proxy.targets());
    assert!(receiver.received().is_empty());
    app.stop().await;
}

#[tokio::test]
async fn an_extra_authority_lets_in_receivers_with_private_certificates() {
    let authority = Authority::new("Octohooks test receivers");
    let (cert, key) = authority.issue(&["localhost"]);
    let receiver = TlsReceiver::start(&cert, &key).await;
    let ca_file = std::env::temp_dir().join(format!("octohooks-ca-{}.pem", uuid::Uuid::new_v4()));
    std::fs::write(&ca_file, &authority.pem).expect("write the CA");
    let url = format!("{}/hook", receiver.base);

    // Public roots only: the certificate is refused.
    let strict = TestApp::spawn_with(Options {
        retry_schedule: String::new(),
        ..Options::default()
    })
    .await;
    strict.create_app("app").await;
    strict.create_endpoint("app", json!({"url": url})).await;
    let message = send(&strict).await;
    let refused = attempts(&strict, &message, 1).await;
    assert_eq!(refused[0]["status"], "failed");
    assert!(
        refused[0]["response"]
            .as_str()
            .unwrap()
            .contains("certificate"),
        "{}",
        refused[0]
    );
    assert!(receiver.bodies().is_empty());
    strict.stop().await;

    // With the authority, and through a proxy (TLS end to end through the tunnel).
    let proxy = ConnectProxy::start(None).await;
    let trusting = TestApp::spawn_with(with(
        Options::default(),
        &[
            ("OCTOHOOKS_EXTRA_CA_FILE", ca_file.to_str().unwrap()),
            ("OCTOHOOKS_PROXY_URL", &proxy.url),
        ],
    ))
    .await;
    trusting.create_app("app").await;
    trusting.create_endpoint("app", json!({"url": url})).await;
    let message = send(&trusting).await;
    let delivered = attempts(&trusting, &message, 1).await;
    assert_eq!(delivered[0]["status"], "success", "{}", delivered[0]);
    assert_eq!(receiver.bodies(), vec![br#"{"through":"proxy"}"#.to_vec()]);
    assert_eq!(proxy.targets().len(), 1);
    trusting.stop().await;
    let _ = std::fs::remove_file(ca_file);
}
