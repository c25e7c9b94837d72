//! Secure by default: the API does not start with endpoint secrets in plaintext unless the
//! operator chose it, refuses a short admin token, and says at start-up how many secrets a
//! reseal would still encrypt.

use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;

use octohooks_platform::Settings;
use octohooks_tests::{process, Options, Receiver, TestApp};
use serde_json::json;
use tokio::io::AsyncReadExt;

/// `vars` without the encryption key.
fn without_key(mut vars: HashMap<String, String>) -> HashMap<String, String> {
    vars.remove("OCTOHOOKS_SECRET_ENCRYPTION_KEY");
    vars
}

#[tokio::test]
async fn the_api_refuses_to_start_without_an_encryption_key_unless_told_to() {
    let app = TestApp::spawn_with(Options::api_only()).await;
    let vars = without_key(app.env_vars());
    let refused = octohooks_api::build(Settings::load_from(vars.clone()).unwrap(), 1).await;
    let err = refused.err().expect("no key, no start").to_string();
    assert!(err.contains("OCTOHOOKS_SECRET_ENCRYPTION_KEY"), "{err}");
    assert!(err.contains("OCTOHOOKS_ALLOW_PLAINTEXT_SECRETS"), "{err}");

    // The real binary exits non-zero with the same message.
    let mut child = process::command("octohooks-api", &vars);
    child.arg("serve").stderr(Stdio::piped());
    let output = tokio::time::timeout(Duration::from_secs(30), child.output())
        .await
        .expect("exits at once")
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("OCTOHOOKS_SECRET_ENCRYPTION_KEY"),
        "{stderr}"
    );

    let mut opted_out = vars;
    opted_out.insert("OCTOHOOKS_ALLOW_PLAINTEXT_SECRETS".into(), "true".into());
    opted_out.insert("OCTOHOOKS_LISTEN_ADDR".into(), "127.0.0.1:0".into());
    let started = octohooks_api::build(Settings::load_from(opted_out).unwrap(), 1).await;
    let running = started.expect("an explicit opt-out starts");
    running.shutdown.cancel();
    app.stop().await;
}

#[tokio::test]
async fn a_short_admin_token_is_refused() {
    let mut vars = HashMap::new();
    vars.insert(
        "OCTOHOOKS_ADMIN_TOKEN".to_owned(),
        "change-me-0123456789".to_owned(),
    );
    let err = Settings::load_from(vars).expect_err("refused").to_string();
    assert!(err.contains("OCTOHOOKS_ADMIN_TOKEN"), "{err}");
    assert!(err.contains("at least 32 characters"), "{err}");
}

#[tokio::test]
async fn start_up_counts_the_secrets_still_in_plaintext() {
    let app = TestApp::spawn_with(Options::api_only()).await;
    let receiver = Receiver::start().await;
    app.create_app("app").await;
    for _ in 0..2 {
        app.create_endpoint("app", json!({"url": receiver.url("/hook")}))
            .await;
    }
    // One of them as if written before the key was configured.
    let unsealed = app
        .execute(
            "UPDATE endpoint_secrets SET secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' \
             WHERE id = (SELECT min(id::text)::uuid FROM endpoint_secrets)",
        )
        .await;
    assert_eq!(unsealed, 1);

    let mut command = process::command("octohooks-api", &app.env_vars());
    command
        .arg("serve")
        .env("OCTOHOOKS_LISTEN_ADDR", "127.0.0.1:0")
        .env("OCTOHOOKS_LOG_FORMAT", "json")
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let mut logged = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !logged.contains("reseal-secrets") && tokio::time::Instant::now() < deadline {
        let mut chunk = [0u8; 4096];
        match tokio::time::timeout(Duration::from_millis(500), stderr.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => logged.push_str(&String::from_utf8_lossy(&chunk[..n])),
            Err(_) => {}
        }
    }
    let _ = child.kill().await;
    let warning = logged
        .lines()
        .find(|line| line.contains("reseal-secrets"))
        .unwrap_or_else(|| panic!("no warning in: {logged}"));
    assert!(warning.contains(r#""count":1"#), "{warning}");
    app.stop().await;
}
