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

#[tokio::test]
async fn deliveries_go_through_the_proxy_to_the_address_the_dispatcher_checked() {
    // base64("hooks:s3cret")
    let proxy = ConnectProxy::start(Some("Basic aG9va3M6czNjcmV0")).await;
    let proxy_url = proxy.url.replace("http://", "http://hooks:s3cret@");
    let app =
        TestApp::spawn_with(Options::default().with_vars(&[("OCTOHOOKS_PROXY_URL", &proxy_url)]))
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
    let refusing = TestApp::spawn_with(Options::default().with_vars(&[(
        "OCTOHOOKS_PROXY_URL",
        &proxy.url.replace("http://", "http://hooks:wrong@"),
    )]))
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
    let app = TestApp::spawn_with(
        Options {
            allow_private: false,
            retry_schedule: String::new(),
            ..Options::default()
        }
        .with_vars(&[("OCTOHOOKS_PROXY_URL", &proxy.url)]),
    )
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
    let trusting = TestApp::spawn_with(Options::default().with_vars(&[
        ("OCTOHOOKS_EXTRA_CA_FILE", ca_file.to_str().unwrap()),
        ("OCTOHOOKS_PROXY_URL", &proxy.url),
    ]))
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

#[tokio::test]
async fn a_client_certificate_is_presented_to_receivers_that_ask_for_one() {
    let authority = Authority::new("Octohooks test mTLS");
    let (server_cert, server_key) = authority.issue(&["localhost"]);
    let (client_cert, client_key) = authority.issue(&["client.example"]);
    let (_, stranger_key) = authority.issue(&["stranger.example"]);
    let receiver =
        TlsReceiver::start_requiring_clients(&server_cert, &server_key, &authority.pem).await;
    let ca_file = std::env::temp_dir().join(format!("octohooks-ca-{}.pem", uuid::Uuid::new_v4()));
    std::fs::write(&ca_file, &authority.pem).expect("write the CA");
    let app = TestApp::spawn_with(
        Options {
            retry_schedule: String::new(),
            ..Options::default()
        }
        .with_vars(&[("OCTOHOOKS_EXTRA_CA_FILE", ca_file.to_str().unwrap())]),
    )
    .await;
    app.create_app("app").await;
    app.create_endpoint(
        "app",
        json!({"uid": "mtls", "url": format!("{}/hook", receiver.base)}),
    )
    .await;
    let path = "/api/v1/applications/app/endpoints/mtls/client-certificate";

    // Without a certificate the receiver refuses the handshake.
    let first = send(&app).await;
    assert_eq!(attempts(&app, &first, 1).await[0]["status"], "failed");
    assert!(receiver.bodies().is_empty());
    assert_eq!(app.get(path).await.status, StatusCode::NOT_FOUND);

    // Pairs that cannot be presented are refused and store nothing.
    for (body, field) in [
        (
            json!({"certificate": "nope", "privateKey": client_key}),
            "certificate",
        ),
        (
            json!({"certificate": client_cert, "privateKey": "nope"}),
            "privateKey",
        ),
        (
            json!({"certificate": client_cert, "privateKey": stranger_key}),
            "privateKey",
        ),
    ] {
        let refused = app.call(reqwest::Method::PUT, path, Some(body)).await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            refused.text
        );
        assert!(
            refused.json["detail"].as_str().unwrap().contains(field),
            "{}",
            refused.text
        );
    }
    assert_eq!(
        app.count("SELECT count(*) FROM endpoints WHERE client_certificate IS NOT NULL")
            .await,
        0
    );

    let set = app
        .call(
            reqwest::Method::PUT,
            path,
            Some(json!({"certificate": client_cert, "privateKey": client_key})),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.text);
    let fingerprint = set.json["fingerprintSha256"].as_str().unwrap().to_owned();
    assert_eq!(fingerprint.len(), 95);
    let read = app.get(path).await;
    assert_eq!(read.json["fingerprintSha256"], fingerprint.as_str());
    assert_eq!(read.json["certificate"], client_cert.as_str());
    assert!(read.json.get("privateKey").is_none());
    // The key is sealed at rest.
    assert_eq!(
        app.count("SELECT count(*) FROM endpoints WHERE client_key LIKE '%PRIVATE KEY%'")
            .await,
        0
    );

    // Its private key stays in Postgres: a first attempt by the express lane carries no
    // context for it, and the dispatcher reads the endpoint.
    app.wait_for_express_lane().await;
    let carried = app.job_contexts("carried").await;
    let read_before = app.job_contexts("read").await;
    let second = send(&app).await;
    assert_eq!(attempts(&app, &second, 1).await[0]["status"], "success");
    assert_eq!(receiver.bodies().len(), 1);
    assert_eq!(app.job_contexts("carried").await, carried, "none carried");
    assert_eq!(
        app.job_contexts("read").await,
        read_before + 1.0,
        "its context was read"
    );

    // Removed: deliveries present none again.
    let removed = app.call(reqwest::Method::DELETE, path, None).await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get(path).await.status, StatusCode::NOT_FOUND);
    let third = send(&app).await;
    assert_eq!(attempts(&app, &third, 1).await[0]["status"], "failed");
    assert_eq!(receiver.bodies().len(), 1);
    app.stop().await;
    let _ = std::fs::remove_file(ca_file);
}
