//! The web console in a real browser: `console/tests` drive Debian's Chromium with
//! playwright-core against a test app whose API serves the console built into it
//! (`scripts/console.sh` builds it before `cargo build`, as `make test` does).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use octohooks_tests::app::ADMIN_TOKEN;
use octohooks_tests::{Options, TestApp};

#[tokio::test]
async fn the_console_works_in_a_real_browser() {
    // The browser test mints an expired portal token with this key (as an injected clock would).
    let portal_key = base64::engine::general_purpose::STANDARD.encode([5u8; 32]);
    let app = TestApp::spawn_with(Options {
        extra: vec![("OCTOHOOKS_PORTAL_SIGNING_KEY".into(), portal_key.clone())],
        ..Options::default()
    })
    .await;
    let page = app.get("/dashboard/").await;
    assert!(
        page.text.contains("/console/assets/"),
        "this build of the API has no console: run scripts/console.sh (make console), then build again"
    );
    let console = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../console");
    // Its report goes straight to this process's output, as it runs: a run that stalls shows
    // where.
    let run = tokio::process::Command::new("npm")
        .args(["run", "--silent", "test:browser"])
        .current_dir(console)
        .env("OCTOHOOKS_CONSOLE_URL", &app.base)
        .env("OCTOHOOKS_TEST_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("OCTOHOOKS_TEST_PORTAL_SIGNING_KEY", &portal_key)
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .status();
    let status = tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .expect("the browser tests ran longer than 5 minutes (their report is above)")
        .expect("npm could not start (is Node.js installed?)");
    assert!(
        status.success(),
        "browser tests failed (their report is above): {status}"
    );
    app.stop().await;
}
