//! `octohooks-api [serve|migrate|openapi]`.

use anyhow::Context as _;
use octohooks_platform::{telemetry, Settings};

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
        "info",
    );
    match command.as_str() {
        "migrate" => {
            let applied = octohooks_db::migrate::run_pending(&settings.database_url)
                .await
                .context("applying migrations")?;
            tracing::info!(count = applied.len(), ?applied, "migrations applied");
            Ok(())
        }
        "serve" => {
            let workers = std::thread::available_parallelism().map_or(2, usize::from);
            let running = octohooks_api::build(settings, workers).await?;
            // actix stops the server gracefully on SIGTERM/SIGINT; then stop the rest.
            running.server.await?;
            running.shutdown.cancel();
            telemetry.shutdown();
            Ok(())
        }
        other => anyhow::bail!("unknown command {other:?}; use serve, migrate or openapi"),
    }
}
