//! `serve`: the HTTP server, until SIGINT or SIGTERM.

use std::process::ExitCode;

use anyhow::Context;
use lwh_app::App;
use lwh_http::AppState;

/// Binds the listener, says where to go next, and serves until asked to stop.
pub async fn run(app: App) -> anyhow::Result<ExitCode> {
    let listen = app.settings().listen;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    // Before the banner: on SQLite a second process stops here, saying why.
    let sender = lwh_delivery::sender_for(&app).map_err(anyhow::Error::msg)?;
    let engine = lwh_delivery::start(app.clone(), sender.clone())
        .await
        .map_err(anyhow::Error::msg)?;
    let base = format!("http://{addr}");
    tracing::info!(
        %addr,
        backend = app.store().backend().as_str(),
        plan = app.settings().plan.as_str(),
        "learnomy-webhooks is serving"
    );
    eprintln!("\nLearnomy Outgoing Webhooks is running at {base}");
    match lwh_console::first_run_setup_path(&app).await {
        Some(path) => {
            eprintln!("  first run: create the admin account at {base}{path}");
            eprintln!("             (one-time link; or: learnomy-webhooks admin create-user NAME)");
        }
        None => eprintln!("  console:  {base}/admin/login"),
    }
    eprintln!("  health:   {base}/healthz");
    eprintln!("  API:      {base}/api/v1  (OpenAPI document at {base}/api/v1/openapi.json)");
    if app.list_api_tokens().await?.is_empty() {
        eprintln!("  get an API token:  learnomy-webhooks token create --scope webhooks:manage");
    }
    eprintln!();
    let router = lwh_http::router(AppState { app, sender });
    let served = axum::serve(listener, router)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("the HTTP server failed");
    tracing::info!("HTTP server stopped; finishing deliveries in flight");
    engine.shutdown().await;
    served?;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}
