//! `octohooks-dispatcher`: runs until SIGTERM or SIGINT, then stops taking jobs, finishes the
//! ones in flight and exits.

use octohooks_platform::{telemetry, Settings};
use tokio::signal::unix::{signal, SignalKind};

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::load()?;
    let telemetry = telemetry::init(
        "octohooks-dispatcher",
        &settings.log_format,
        settings.otlp_endpoint.as_deref(),
        "info,tokio_postgres=warn",
    );
    let running = octohooks_dispatcher::build(settings).await?;
    let health = running.health.handle();
    let server = tokio::spawn(running.health);
    let mut terminate = signal(SignalKind::terminate())?;
    tokio::select! {
        _ = terminate.recv() => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
    }
    running.shutdown.cancel();
    running.consumer.await?;
    health.stop(true).await;
    let _ = server.await;
    tracing::info!("dispatcher stopped");
    telemetry.shutdown();
    Ok(())
}
