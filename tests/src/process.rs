//! The real binaries as child processes, for tests that SIGKILL them.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;

use tokio::process::{Child, Command};

/// Path of a workspace binary built by `cargo build --bins` (`make test` builds them first).
pub fn binary(name: &str) -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR").map_or_else(
        |_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    );
    let path = target.join("debug").join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --bins` first (make test does)",
        path.display()
    );
    path
}

/// The command that runs `name` with exactly these `OCTOHOOKS_*` variables, output discarded
/// and killed when dropped; callers may still change any of it.
pub fn command(name: &str, vars: &HashMap<String, String>) -> Command {
    command_at(&binary(name), vars)
}

/// As [`command`], for the binary at `path` (another version's, say).
pub fn command_at(path: &std::path::Path, vars: &HashMap<String, String>) -> Command {
    let mut command = Command::new(path);
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(vars)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    command
}

/// A loopback port free at the moment of asking, for a process to listen on.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// Starts `name` with exactly these `OCTOHOOKS_*` variables; killed when dropped.
pub fn spawn(name: &str, vars: &HashMap<String, String>) -> Child {
    command(name, vars).spawn().expect("spawn binary")
}

/// Starts an API process with `vars` on a free loopback port and waits until it is ready;
/// returns the process (killed when dropped) and its base URL.
pub async fn spawn_api(vars: &HashMap<String, String>) -> (Child, String) {
    spawn_api_at(&binary("octohooks-api"), vars).await
}

/// As [`spawn_api`], for the API binary at `path`.
pub async fn spawn_api_at(
    path: &std::path::Path,
    vars: &HashMap<String, String>,
) -> (Child, String) {
    let port = free_port();
    let mut vars = vars.clone();
    vars.insert("OCTOHOOKS_LISTEN_ADDR".into(), format!("127.0.0.1:{port}"));
    let child = command_at(path, &vars).spawn().expect("spawn the API");
    let base = format!("http://127.0.0.1:{port}");
    let ready = format!("{base}/health/ready");
    let up = crate::eventually(30, || async {
        reqwest::get(&ready)
            .await
            .map(|response| response.status().is_success())
            .unwrap_or(false)
    })
    .await;
    assert!(up, "the API process did not become ready");
    (child, base)
}

/// Starts a dispatcher process with `vars`, its health and metrics listener on a free loopback
/// port; returns the process (killed when dropped) and that listener's base URL.
pub fn spawn_dispatcher(vars: &HashMap<String, String>) -> (Child, String) {
    spawn_dispatcher_at(&binary("octohooks-dispatcher"), vars)
}

/// As [`spawn_dispatcher`], for the dispatcher binary at `path`.
pub fn spawn_dispatcher_at(
    path: &std::path::Path,
    vars: &HashMap<String, String>,
) -> (Child, String) {
    let port = free_port();
    let mut vars = vars.clone();
    vars.insert(
        "OCTOHOOKS_DISPATCHER_LISTEN_ADDR".into(),
        format!("127.0.0.1:{port}"),
    );
    (
        command_at(path, &vars)
            .spawn()
            .expect("spawn the dispatcher"),
        format!("http://127.0.0.1:{port}"),
    )
}
