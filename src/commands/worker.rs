//! `worker`: the delivery engine without the API and console; with `--listen`, its health and
//! metrics endpoints.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context;
use lwh_app::App;
use lwh_http::server::ServerLimits;
use lwh_http::AppState;

use super::serve::shutdown_signal;

/// Delivers until SIGINT or SIGTERM, then finishes attempts in flight and exits. With
/// `listen`, serves `/healthz`, `/readyz` and `/metrics` there meanwhile.
pub async fn run(app: App, listen: Option<SocketAddr>) -> anyhow::Result<ExitCode> {
    let probes = match listen {
        Some(addr) => Some(
            lwh_http::server::bind(addr, 1024)
                .with_context(|| format!("cannot listen on {addr}"))?,
        ),
        None => None,
    };
    // URLs the console accepted under serve's SSRF settings would be refused here as
    // `blocked` with other ones: say so at start rather than in hundreds of attempts.
    if let Ok(Some(serve_policy)) = app.store().meta("url_policy").await {
        let mine = app.url_policy_summary();
        if serve_policy != mine {
            tracing::warn!(
                worker = %mine,
                serve = %serve_policy,
                "this worker's SSRF settings differ from the ones serve last started with: \
                 deliveries serve's settings allow may be refused here (recorded as blocked); \
                 give every process the same allow_http and allowed_networks"
            );
        }
    }
    let sender = lwh_delivery::sender_for(&app)?;
    let engine = lwh_delivery::start(app.clone(), sender.clone()).await?;
    let listening = probes.as_ref().and_then(|l| l.local_addr().ok());
    tracing::info!(
        backend = app.store().backend().as_str(),
        probes = ?listening.map(|a| format!("http://{a}/metrics")),
        "delivery worker running"
    );
    match probes {
        Some(listener) => {
            let router = lwh_http::probe_router(AppState {
                app: app.clone(),
                sender,
            });
            let limits = ServerLimits::from_settings(app.settings());
            lwh_http::server::serve(listener, router, limits, shutdown_signal()).await;
        }
        None => shutdown_signal().await,
    }
    engine.shutdown().await;
    tracing::info!("worker stopped");
    Ok(ExitCode::SUCCESS)
}
