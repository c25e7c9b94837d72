//! `octohooks-dispatcher`: runs until SIGTERM or SIGINT, then stops taking jobs, finishes the
//! ones in flight and exits.
//!
//! The runtime's threads are a setting (`OCTOHOOKS_DISPATCHER_WORKER_THREADS`): 1 (the default)
//! runs every delivery task on one thread, 0 or more than 1 a work-stealing runtime with that
//! many threads (0: one per core). The health server runs on actix's own thread beside it.

use octohooks_platform::{telemetry, Settings};
use tokio::signal::unix::{signal, SignalKind};

/// mimalloc instead of glibc's allocator: every request and delivery allocates and frees many
/// small buffers across threads, and glibc's free lists cost a fifth of the dispatcher's CPU
/// under fan-out (BENCHMARKS.md, "An allocator of the field").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let settings = Settings::load()?;
    let runtime = match settings.dispatcher_worker_threads {
        1 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
        threads => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            if threads > 1 {
                builder.worker_threads(threads);
            }
            builder.enable_all().build()?
        }
    };
    runtime.block_on(run(settings))
}

async fn run(settings: Settings) -> anyhow::Result<()> {
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
