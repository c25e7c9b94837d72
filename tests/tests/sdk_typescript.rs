//! The `octohooks` TypeScript SDK (`clients/typescript`), tested against the real API and
//! dispatcher: its suite runs with `npm test` against a test app, and the product docs'
//! TypeScript samples run as printed against the packed package.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use octohooks_tests::app::ADMIN_TOKEN;
use octohooks_tests::{Options, TestApp};
use reqwest::StatusCode;
use serde_json::json;

fn sdk_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../clients/typescript")
}

/// The longest a Node run may take before the test fails (and the process is killed).
const NODE_DEADLINE: Duration = Duration::from_secs(300);

/// Runs `program args` in the SDK folder with `vars`; panics with its output unless it exits 0.
async fn run_in_sdk(program: &str, args: &[&str], vars: &[(&str, &str)]) {
    let run = tokio::process::Command::new(program)
        .args(args)
        .current_dir(sdk_dir())
        .envs(vars.iter().copied())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(NODE_DEADLINE, run)
        .await
        .unwrap_or_else(|_| panic!("{program} {args:?} ran longer than {NODE_DEADLINE:?}"))
        .unwrap_or_else(|err| panic!("{program} could not start (is Node.js installed?): {err}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{program} {args:?} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    println!("{stdout}");
}

#[tokio::test]
async fn the_sdk_suite_passes_against_the_real_services() {
    let app = TestApp::spawn().await;
    run_in_sdk(
        "npm",
        &["test", "--silent"],
        &[
            ("OCTOHOOKS_SERVER_URL", app.base.as_str()),
            ("OCTOHOOKS_TEST_API_KEY", app.api_key.as_str()),
            ("OCTOHOOKS_TEST_ADMIN_TOKEN", ADMIN_TOKEN),
        ],
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn the_docs_typescript_samples_run_as_printed() {
    // No dispatcher: the quickstart's endpoint points at api.example.com, and nothing may leave
    // this machine. What the samples did is read back from the API.
    let app = TestApp::spawn_with(Options {
        dispatcher: false,
        ..Options::default()
    })
    .await;
    for uid in ["app_teexfqn3o09y1fnmm631r0fo8uq", "some-user"] {
        app.create_app(uid).await;
    }
    run_in_sdk(
        "node",
        &["scripts/run-docs-samples.mjs"],
        &[
            ("OCTOHOOKS_SERVER_URL", app.base.as_str()),
            ("OCTOHOOKS_DOCS_TOKEN", app.api_key.as_str()),
        ],
    )
    .await;

    let created = app.get("/api/v1/applications/application-name").await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text);
    assert_eq!(created.json["name"], "Application name");
    let message = app
        .get("/api/v1/applications/app_teexfqn3o09y1fnmm631r0fo8uq/messages/774fa91a-510b-4a35-9799-6c233f6af790")
        .await;
    assert_eq!(message.status, StatusCode::OK, "{}", message.text);
    assert_eq!(message.json["eventType"], "customer.created");
    assert_eq!(
        message.json["payload"]["customer_code"],
        "cus_xnxdt6s1zg1f4nx"
    );
    assert_eq!(message.json["payload"]["identifications"], json!(null));
    let endpoint = app
        .get("/api/v1/applications/app_teexfqn3o09y1fnmm631r0fo8uq/endpoints/my-main-endpoint")
        .await;
    assert_eq!(endpoint.status, StatusCode::OK, "{}", endpoint.text);
    assert_eq!(endpoint.json["name"], "My main endpoint");
    assert_eq!(endpoint.json["eventTypes"], json!(["customer.created"]));
    let renamed = app.get("/api/v1/applications/some-user").await;
    assert_eq!(renamed.json["name"], "Some User Application");
    app.stop().await;
}
