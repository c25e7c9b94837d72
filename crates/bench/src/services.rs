//! The services under test, started as release binaries so that their memory is their own.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

/// Where the benchmark's services listen and what they use.
pub struct Environment {
    /// Postgres URL of the benchmark database.
    pub database_url: String,
    /// Queue of this run.
    pub queue: String,
    /// Admin token.
    pub admin_token: String,
}

/// Where the bench's API serves `/metrics`.
pub const API_METRICS: &str = "127.0.0.1:18183";

fn binary(name: &str) -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR").map_or_else(
        |_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"),
        PathBuf::from,
    );
    target.join("release").join(name)
}

impl Environment {
    fn vars(&self, listen: &str) -> HashMap<String, String> {
        [
            ("OCTOHOOKS_DATABASE_URL", self.database_url.clone()),
            ("OCTOHOOKS_QUEUE_NAME", self.queue.clone()),
            ("OCTOHOOKS_ADMIN_TOKEN", self.admin_token.clone()),
            // Endpoint secrets sealed, as in every deployment.
            (
                "OCTOHOOKS_SECRET_ENCRYPTION_KEY",
                "YmVuY2gtZW5jcnlwdGlvbi1rZXktMDEyMzQ1Njc4OWE=".to_owned(),
            ),
            ("OCTOHOOKS_LISTEN_ADDR", listen.to_owned()),
            ("OCTOHOOKS_DISPATCHER_LISTEN_ADDR", listen.to_owned()),
            // The API's /metrics (ignored by dispatchers).
            ("OCTOHOOKS_METRICS_LISTEN_ADDR", API_METRICS.to_owned()),
            ("OCTOHOOKS_ALLOW_PRIVATE_DESTINATIONS", "true".to_owned()),
            ("OCTOHOOKS_LOG_FORMAT", "json".to_owned()),
            ("RUST_LOG", "warn".to_owned()),
            ("OCTOHOOKS_RATE_LIMIT_PER_SECOND", "0".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// Starts a service binary listening on `listen` and waits until it is ready. Settings
    /// the bench does not fix itself (`OCTOHOOKS_DB_POOL_SIZE`, say) pass through from its own
    /// environment, so that one run can measure another configuration.
    pub async fn start(&self, name: &str, listen: &str) -> anyhow::Result<Child> {
        self.start_with(name, listen, &[]).await
    }

    /// [`Self::start`] with more settings of the phase's own (they win over the bench's).
    pub async fn start_with(
        &self,
        name: &str,
        listen: &str,
        extra: &[(&str, &str)],
    ) -> anyhow::Result<Child> {
        let mut fixed = self.vars(listen);
        fixed.extend(
            extra
                .iter()
                .map(|(key, value)| ((*key).to_owned(), (*value).to_owned())),
        );
        let tuning: Vec<(String, String)> = std::env::vars()
            .filter(|(key, _)| {
                (key.starts_with("OCTOHOOKS_") || key.starts_with("MIMALLOC_"))
                    && !key.starts_with("OCTOHOOKS_BENCH")
                    && !fixed.contains_key(key)
            })
            .collect();
        let child = Command::new(binary(name))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(fixed)
            .envs(tuning)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let url = format!("http://{listen}/health/ready");
        for _ in 0..200 {
            if let Ok(response) = reqwest::get(&url).await {
                if response.status().is_success() {
                    return Ok(child);
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::bail!("{name} did not become ready on {listen}")
    }
}

/// Resident memory of a process in MiB: (current, peak).
pub fn rss_mib(child: &Child) -> (f64, f64) {
    let Some(pid) = child.id() else {
        return (f64::NAN, f64::NAN);
    };
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|line| line.starts_with(name))
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Stops a service as an orchestrator does (SIGTERM: it drains and gives back what it holds),
/// and kills it if it has not stopped within 30 s.
pub async fn stop(child: &mut Child) -> anyhow::Result<()> {
    if let Some(pid) = child.id() {
        tokio::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await?;
        if tokio::time::timeout(std::time::Duration::from_secs(30), child.wait())
            .await
            .is_ok()
        {
            return Ok(());
        }
    }
    child.kill().await?;
    Ok(())
}
