//! The admin console: "Learnomy Settings > Webhooks", the Pro Delivery Log and the API tokens
//! page, rendered on the server (maud) with a little plain JavaScript for copy, regenerate,
//! Test, confirmations and the log filters. No build step, no asset from the internet.
//!
//! Every page needs a signed-in session ([`session`]); every state-changing request carries
//! the session's CSRF token.

mod assets;
mod layout;
mod limiter;
mod pages;
pub mod session;

use std::sync::Arc;

use axum::response::Redirect;
use axum::routing::{get, post};
use axum::Router;
use lwh_app::App;
use lwh_delivery::Sender;

/// What console handlers share.
#[derive(Clone)]
pub struct ConsoleState {
    /// Application operations.
    pub app: App,
    /// The delivery engine's HTTP client, for the Test button.
    pub sender: Sender,
    limiter: Arc<limiter::LoginLimiter>,
    openapi: Arc<str>,
}

impl ConsoleState {
    /// State for the console routes; `openapi` is the API's OpenAPI document (JSON), shown
    /// as the API reference page.
    pub fn new(app: App, sender: Sender, openapi: &str) -> Self {
        Self {
            app,
            sender,
            limiter: Arc::new(limiter::LoginLimiter::default()),
            openapi: Arc::from(openapi),
        }
    }
}

/// Every console route, under `/admin`.
pub fn router<S: Clone + Send + Sync + 'static>(state: ConsoleState) -> Router<S> {
    Router::new()
        .route("/admin", get(|| async { Redirect::to("/admin/webhooks") }))
        .route("/admin/", get(|| async { Redirect::to("/admin/webhooks") }))
        .route("/admin/assets/app.css", get(assets::css))
        .route("/admin/assets/app.js", get(assets::js))
        .route(
            "/admin/login",
            get(pages::login::show).post(pages::login::submit),
        )
        .route("/admin/logout", post(pages::login::logout))
        .route(
            "/admin/setup",
            get(pages::setup::show).post(pages::setup::submit),
        )
        .route(
            "/admin/webhooks",
            get(pages::webhooks::show).post(pages::webhooks::create),
        )
        .route("/admin/webhooks/{id}/edit", post(pages::webhooks::update))
        .route(
            "/admin/webhooks/{id}/status",
            post(pages::webhooks::set_status),
        )
        .route("/admin/webhooks/{id}/delete", post(pages::webhooks::delete))
        .route("/admin/webhooks/{id}/test", post(pages::webhooks::test))
        .route("/admin/webhooks/{id}/log", get(pages::log::show))
        .route("/admin/webhooks/{id}/log/rows", get(pages::log::rows))
        .route("/admin/deliveries/{id}", get(pages::log::detail))
        .route(
            "/admin/deliveries/{id}/redeliver",
            post(pages::log::redeliver),
        )
        .route(
            "/admin/tokens",
            get(pages::tokens::show).post(pages::tokens::create),
        )
        .route("/admin/tokens/{id}/revoke", post(pages::tokens::revoke))
        .route("/admin/api", get(pages::api_reference::show))
        .with_state(state)
}

/// Creates a one-time setup link when no console user exists yet; returns its path.
pub async fn first_run_setup_path(app: &App) -> Option<String> {
    pages::setup::issue_link(app).await
}
