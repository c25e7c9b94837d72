//! ed25519 endpoint secrets end to end: the receiver gets `v1a` signatures that an independent
//! ed25519 implementation verifies with the public key the secret route shows, and a rotation
//! between kinds signs with both for the grace period.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ed25519_dalek::{Signature, Verifier as _, VerifyingKey};
use octohooks_domain::signing::EndpointSecret;
use octohooks_tests::receiver::Received;
use octohooks_tests::{Receiver, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::json;

fn verifying_key(public: &str) -> VerifyingKey {
    let bytes: [u8; 32] = STANDARD
        .decode(public.strip_prefix("whpk_").expect("whpk_ prefix"))
        .unwrap()
        .try_into()
        .unwrap();
    VerifyingKey::from_bytes(&bytes).unwrap()
}

fn signed_content(received: &Received) -> Vec<u8> {
    let mut content = format!(
        "{}.{}.",
        received.header("webhook-id"),
        received.header("webhook-timestamp")
    )
    .into_bytes();
    content.extend_from_slice(&received.body);
    content
}

fn signatures<'a>(received: &'a Received, version: &str) -> Vec<&'a str> {
    received
        .header("webhook-signature")
        .split(' ')
        .filter_map(|part| part.strip_prefix(version))
        .collect()
}

#[tokio::test]
async fn ed25519_endpoints_get_v1a_signatures_that_verify_with_the_public_key() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    app.create_app("shop").await;
    let endpoint = app
        .create_endpoint(
            "shop",
            json!({"url": receiver.url("/hook"), "uid": "ep", "secretKind": "ed25519"}),
        )
        .await;
    assert_eq!(endpoint["url"], receiver.url("/hook"));
    let secret = app
        .get("/api/v1/applications/shop/endpoints/ep/secret")
        .await
        .json;
    assert!(
        secret["key"].as_str().unwrap().starts_with("whsk_"),
        "{secret}"
    );
    let key = verifying_key(secret["publicKey"].as_str().unwrap());

    app.post(
        "/api/v1/applications/shop/messages",
        json!({"eventType": "invoice.paid", "payload": {"id": 1}}),
    )
    .await;
    let got = receiver.wait_for("/hook", 1, 15).await;
    let v1a = signatures(&got[0], "v1a,");
    assert_eq!(v1a.len(), 1, "{}", got[0].header("webhook-signature"));
    assert!(signatures(&got[0], "v1,").is_empty());
    let signature = Signature::from_slice(&STANDARD.decode(v1a[0]).unwrap()).unwrap();
    key.verify(&signed_content(&got[0]), &signature)
        .expect("the v1a signature verifies with the public key");
    let mut tampered = got[0].body.clone();
    tampered.push(b' ');
    let mut content = signed_content(&got[0]);
    content.truncate(content.len() - got[0].body.len());
    content.extend_from_slice(&tampered);
    assert!(key.verify(&content, &signature).is_err());

    // Rotating to HMAC: for the grace period, both kinds sign, the new one first.
    let rotated = app
        .call(
            Method::POST,
            "/api/v1/applications/shop/endpoints/ep/secret/rotate",
            Some(json!({"kind": "hmac"})),
        )
        .await;
    assert_eq!(rotated.status, StatusCode::NO_CONTENT, "{}", rotated.text);
    let current = app
        .get("/api/v1/applications/shop/endpoints/ep/secret")
        .await
        .json;
    assert_eq!(current["publicKey"], serde_json::Value::Null);
    let hmac = EndpointSecret::parse("key", current["key"].as_str().unwrap()).unwrap();
    app.post(
        "/api/v1/applications/shop/messages",
        json!({"eventType": "invoice.paid", "payload": {"id": 2}}),
    )
    .await;
    let got = receiver.wait_for("/hook", 2, 15).await;
    let header = got[1].header("webhook-signature");
    assert!(
        header.starts_with("v1,"),
        "the new secret signs first: {header}"
    );
    let timestamp: i64 = got[1].header("webhook-timestamp").parse().unwrap();
    assert_eq!(
        header.split(' ').next().unwrap(),
        hmac.sign(got[1].header("webhook-id"), timestamp, &got[1].body)
    );
    let old =
        Signature::from_slice(&STANDARD.decode(signatures(&got[1], "v1a,")[0]).unwrap()).unwrap();
    key.verify(&signed_content(&got[1]), &old).unwrap();

    // A rotation without a kind keeps the current kind.
    app.call(
        Method::POST,
        "/api/v1/applications/shop/endpoints/ep/secret/rotate",
        None,
    )
    .await;
    let kept = app
        .get("/api/v1/applications/shop/endpoints/ep/secret")
        .await
        .json;
    assert!(kept["key"].as_str().unwrap().starts_with("whsec_"));
    app.stop().await;
}

#[tokio::test]
async fn a_given_ed25519_key_is_checked_and_kept() {
    let app = TestApp::spawn_with(octohooks_tests::Options::api_only()).await;
    app.create_app("shop").await;
    let seed = [7u8; 32];
    let public = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
    let given = format!("whsk_{}", STANDARD.encode(seed));
    app.create_endpoint(
        "shop",
        json!({"url": "https://hooks.example/a", "uid": "ep", "secret": given}),
    )
    .await;
    let secret = app
        .get("/api/v1/applications/shop/endpoints/ep/secret")
        .await
        .json;
    assert_eq!(
        secret["publicKey"],
        format!("whpk_{}", STANDARD.encode(public.as_bytes()))
    );
    let wrong_half = format!("whsk_{}", STANDARD.encode([[7u8; 32], [9u8; 32]].concat()));
    let refused = app
        .post(
            "/api/v1/applications/shop/endpoints",
            json!({"url": "https://hooks.example/b", "secret": wrong_half}),
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.json["detail"]
        .as_str()
        .unwrap()
        .starts_with("secret"));
    app.stop().await;
}
