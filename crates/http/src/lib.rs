//! Everything Learnomy webhooks serves over HTTP: the REST API under `/api/v1` (and its OpenAPI
//! document), `/healthz`, `/readyz` and `/metrics`. Handlers are thin: they decode, call an [`lwh_app::App`]
//! operation and encode; every error becomes an RFC 9457 problem in [`error`].

pub mod api;
mod auth;
pub mod error;
mod health;
pub mod json;
mod metrics;
pub mod server;

use axum::Router;
use lwh_app::App;

/// State shared by every handler.
#[derive(Clone)]
pub struct AppState {
    /// The application operations.
    pub app: App,
    /// The HTTP client of the delivery engine (Test button).
    pub sender: lwh_delivery::Sender,
}

/// What a `worker` serves with `--listen`: `/healthz`, `/readyz` and `/metrics` only — no API,
/// no console — so a fleet of workers can be watched like `serve`.
pub fn probe_router(state: AppState) -> Router {
    Router::new()
        .merge(probes())
        .fallback(error::not_found)
        .with_state(state)
}

/// `/healthz`, `/readyz` and `/metrics`, open to all: what `serve` and `worker --listen` both
/// serve. Each router keeps its own queue figures.
fn probes() -> Router<AppState> {
    // Install the metrics recorder before anything counts.
    metrics::handle();
    let figures = std::sync::Arc::new(metrics::QueueFigures::default());
    health::router().route(
        "/metrics",
        axum::routing::get(
            move |axum::extract::State(state): axum::extract::State<AppState>| {
                metrics::scrape(state, figures.clone())
            },
        ),
    )
}

/// The whole HTTP surface.
pub fn router(state: AppState) -> Router {
    let (api, openapi) = api::router_with_openapi();
    let console = lwh_console::router(lwh_console::ConsoleState::new(
        state.app.clone(),
        state.sender.clone(),
        &openapi.to_json().unwrap_or_default(),
    ));
    Router::new()
        .merge(console)
        // The address the service prints leads to the console.
        .route(
            "/",
            axum::routing::get(|| async { axum::response::Redirect::to("/admin/") }),
        )
        .merge(probes())
        .merge(api)
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            error::panic_response,
        ))
        .with_state(state)
}
