//! `worker`: the delivery engine without the HTTP server.

use std::process::ExitCode;

use lwh_app::App;

use super::serve::shutdown_signal;

/// Delivers until SIGINT or SIGTERM, then finishes attempts in flight and exits.
pub async fn run(app: App) -> anyhow::Result<ExitCode> {
    let sender = lwh_delivery::sender_for(&app).map_err(anyhow::Error::msg)?;
    let engine = lwh_delivery::start(app.clone(), sender)
        .await
        .map_err(anyhow::Error::msg)?;
    tracing::info!(
        backend = app.store().backend().as_str(),
        "delivery worker running"
    );
    shutdown_signal().await;
    engine.shutdown().await;
    tracing::info!("worker stopped");
    Ok(ExitCode::SUCCESS)
}
