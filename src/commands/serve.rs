//! `serve`: the HTTP server, until SIGINT or SIGTERM.

use std::process::ExitCode;

use anyhow::Context;
use lwh_app::{App, LogFormat};
use lwh_http::server::{ServerLimits, Stopped};
use lwh_http::AppState;

use crate::hints::CommandPrefix;

/// What to run for a first API token.
const TOKEN_ARGS: &str = "token create --scope webhooks:manage";

/// Binds the listener, says where to go next, and serves until asked to stop.
pub async fn run(app: App, hints: &CommandPrefix) -> anyhow::Result<ExitCode> {
    let listen = app.settings().listen;
    let backlog = u32::try_from(app.settings().http_max_connections).unwrap_or(u32::MAX);
    let listener = lwh_http::server::bind(listen, backlog.max(1024))
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    // Before the banner: on SQLite a second process stops here, saying why.
    let sender = lwh_delivery::sender_for(&app)?;
    let engine = lwh_delivery::start(app.clone(), sender.clone()).await?;
    // What workers compare their SSRF settings with.
    if let Err(e) = app
        .store()
        .set_meta("url_policy", &app.url_policy_summary())
        .await
    {
        tracing::warn!(error = %e, "cannot record the SSRF settings for workers");
    }
    let base = format!("http://{addr}");
    tracing::info!(
        %addr,
        backend = app.store().backend().as_str(),
        plan = app.settings().plan.as_str(),
        "learnomy-webhooks is serving"
    );
    let setup = lwh_console::first_run_setup_path(&app)
        .await
        .map(|path| format!("{base}{path}"));
    let needs_token = app.list_api_tokens().await?.is_empty();
    let token_hint = hints.command(TOKEN_ARGS);
    if app.settings().log_format == LogFormat::Json {
        // One JSON object per line on the log stream: the banner is an event with fields.
        tracing::info!(
            url = %base,
            console = %format!("{base}/admin/"),
            setup = setup.as_deref().unwrap_or(""),
            health = %format!("{base}/healthz"),
            openapi = %format!("{base}/api/v1/openapi.json"),
            token_hint = if needs_token { token_hint.as_str() } else { "" },
            "ready"
        );
    } else {
        eprintln!("\nLearnomy Outgoing Webhooks is running at {base}/");
        match &setup {
            Some(link) => {
                eprintln!("  first run: create the admin account at {link}");
                eprintln!(
                    "             (one-time link; or: {})",
                    hints.command("admin create-user NAME")
                );
            }
            None => eprintln!("  console:  {base}/admin/"),
        }
        eprintln!("  health:   {base}/healthz");
        eprintln!("  API:      {base}/api/v1/openapi.json (the OpenAPI document; a webhooks:manage token)");
        if needs_token {
            eprintln!("  get an API token:  {token_hint}");
        }
        eprintln!();
    }
    let limits = ServerLimits::from_settings(app.settings());
    let router = lwh_http::router(AppState { app, sender });
    let signalled = std::sync::Arc::new(std::sync::OnceLock::new());
    let on_signal = signalled.clone();
    let shutdown = async move {
        shutdown_signal().await;
        let _ = on_signal.set(std::time::Instant::now());
    };
    let stopped = lwh_http::server::serve(listener, router, limits, shutdown).await;
    if let Stopped::DeadlinePassed(open) = stopped {
        tracing::warn!(
            open,
            "connections still open at the shutdown deadline were dropped"
        );
    }
    tracing::info!("HTTP server stopped; finishing deliveries in flight");
    // Whatever is left of the deadline; an attempt cut short is retried by the next process.
    let since_signal = signalled
        .get()
        .map_or(std::time::Duration::ZERO, std::time::Instant::elapsed);
    let left = limits
        .shutdown_timeout
        .saturating_sub(since_signal)
        .max(std::time::Duration::from_secs(1));
    if tokio::time::timeout(left, engine.shutdown()).await.is_err() {
        tracing::warn!("deliveries still in flight at the shutdown deadline; they will be retried");
    }
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
