//! `octohooks-api [serve|migrate|reseal-secrets|openapi]`.

use anyhow::Context as _;
use octohooks_platform::{telemetry, Settings};

/// mimalloc instead of glibc's allocator: every request and delivery allocates and frees many
/// small buffers across threads, and glibc's free lists cost a fifth of the dispatcher's CPU
/// under fan-out (BENCHMARKS.md, "An allocator of the field").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let command = std::env::args().nth(1).unwrap_or_else(|| "serve".into());
    if command == "openapi" {
        println!("{}", octohooks_api::openapi::document());
        return Ok(());
    }
    let settings = Settings::load()?;
    let telemetry = telemetry::init(
        "octohooks-api",
        &settings.log_format,
        settings.otlp_endpoint.as_deref(),
        "info,tokio_postgres=warn",
    );
    match command.as_str() {
        "migrate" => {
            let applied = octohooks_db::migrate::run_pending(&settings.database_url)
                .await
                .context("applying migrations")?;
            tracing::info!(count = applied.len(), ?applied, "migrations applied");
            Ok(())
        }
        "reseal-secrets" => {
            let db = settings.database_pool()?;
            let mut conn = octohooks_db::pool::connection(&db).await?;
            let sealer = settings.sealer.clone();
            anyhow::ensure!(
                sealer.is_sealing(),
                "set OCTOHOOKS_SECRET_ENCRYPTION_KEY first"
            );
            let mut failures = 0;
            let changed =
                octohooks_db::endpoints::rewrite_secrets(&mut conn, |endpoint, stored| {
                    reseal(&sealer, stored, &endpoint.to_string(), &mut failures)
                })
                .await?;
            let keys =
                octohooks_db::client_identities::rewrite_keys(&mut conn, |endpoint, stored| {
                    let owner = octohooks_domain::client_identity::key_owner(endpoint);
                    reseal(&sealer, stored, &owner, &mut failures)
                })
                .await?;
            let changed = changed + keys;
            tracing::info!(changed, failures, "secrets resealed under the current key");
            anyhow::ensure!(failures == 0, "{failures} secrets could not be opened");
            Ok(())
        }
        "serve" => {
            let workers = std::thread::available_parallelism().map_or(2, usize::from);
            let running = octohooks_api::build(settings, workers).await?;
            // actix stops the server gracefully on SIGTERM/SIGINT; then stop the rest.
            running.server.await?;
            running.shutdown.cancel();
            running
                .broker
                .stopped(std::time::Duration::from_secs(3))
                .await;
            telemetry.shutdown();
            Ok(())
        }
        other => anyhow::bail!(
            "unknown command {other:?}; use serve, migrate, reseal-secrets or openapi"
        ),
    }
}

/// `stored` sealed anew under the current key for `owner`, when it needs it; a value that does
/// not open is counted in `failures` and left as it is.
fn reseal(
    sealer: &octohooks_domain::sealing::Sealer,
    stored: &str,
    owner: &str,
    failures: &mut usize,
) -> Option<String> {
    if !sealer.needs_reseal(stored) {
        return None;
    }
    match sealer
        .open(stored, owner)
        .and_then(|plain| sealer.seal(&plain, owner))
    {
        Ok(sealed) => Some(sealed),
        Err(err) => {
            *failures += 1;
            tracing::error!(error = %err, "cannot reseal a stored secret");
            None
        }
    }
}
