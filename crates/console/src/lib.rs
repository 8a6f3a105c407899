//! The admin console: "Learnomy Settings > Webhooks", the Pro Delivery Log and the API tokens
//! page, rendered on the server (maud) with a little plain JavaScript for copy, regenerate,
//! Test, confirmations and the log filters. No build step, no asset from the internet.
//!
//! Every page needs a signed-in session ([`session`]); every state-changing request carries
//! the session's CSRF token.

mod assets;
mod charts;
mod client;
mod layout;
mod limiter;
mod pages;
mod session;

use std::sync::Arc;

use axum::http::Method;
use axum::response::Redirect;
use axum::routing::{get, post, MethodRouter};
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
    shown_once: Arc<ShownOnce>,
    openapi: Arc<str>,
}

/// A value to show once on the next page a session loads (a new API token after the redirect
/// that follows "Create token"), then forgotten; kept 5 minutes at most, in this process.
#[derive(Default)]
pub struct ShownOnce {
    values:
        std::sync::Mutex<std::collections::HashMap<String, (std::time::Instant, String, String)>>,
}

impl ShownOnce {
    const KEPT: std::time::Duration = std::time::Duration::from_secs(300);

    /// Keeps `(name, value)` for the session whose token hash is `session`.
    pub fn put(&self, session: &str, name: String, value: String) {
        if let Ok(mut values) = self.values.lock() {
            values.retain(|_, (at, _, _)| at.elapsed() < Self::KEPT);
            values.insert(session.to_owned(), (std::time::Instant::now(), name, value));
        }
    }

    /// Takes what was kept for `session`, if it is still fresh.
    pub fn take(&self, session: &str) -> Option<(String, String)> {
        let mut values = self.values.lock().ok()?;
        let (at, name, value) = values.remove(session)?;
        (at.elapsed() < Self::KEPT).then_some((name, value))
    }
}

impl ConsoleState {
    /// State for the console routes; `openapi` is the API's OpenAPI document (JSON), shown
    /// as the API reference page.
    pub fn new(app: App, sender: Sender, openapi: &str) -> Self {
        Self {
            app,
            sender,
            limiter: Arc::new(limiter::LoginLimiter::default()),
            shown_once: Arc::default(),
            openapi: Arc::from(openapi),
        }
    }
}

/// Who may call a console route. The access tests read [`ROUTES`], so a route added here is
/// checked signed out, with a forged or expired session and without its CSRF token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone: the login and setup pages, static assets, redirects.
    Public,
    /// A signed-in session; a `GET` that only reads.
    Session,
    /// A signed-in session and its CSRF token; a `POST` that changes something.
    SessionAndCsrf,
}

/// One console route: method, path (axum syntax), who may call it, and its handler.
pub struct ConsoleRoute {
    /// `GET` or `POST`.
    pub method: Method,
    /// Path with `{id}` placeholders.
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
    handler: fn() -> MethodRouter<ConsoleState>,
}

macro_rules! routes {
    ($($method:ident $path:literal $access:ident => $handler:expr;)*) => {
        /// Every console route, under `/admin`: the router is built from this table.
        pub static ROUTES: &[ConsoleRoute] = &[$(ConsoleRoute {
            method: Method::$method,
            path: $path,
            access: Access::$access,
            handler: || routes!(@method $method, $handler),
        }),*];
    };
    (@method GET, $handler:expr) => { get($handler) };
    (@method POST, $handler:expr) => { post($handler) };
}

routes! {
    GET "/admin" Public => || async { Redirect::to("/admin/webhooks") };
    GET "/admin/" Public => || async { Redirect::to("/admin/webhooks") };
    GET "/admin/assets/app.css" Public => assets::css;
    GET "/admin/assets/app.js" Public => assets::js;
    GET "/admin/login" Public => pages::login::show;
    POST "/admin/login" Public => pages::login::submit;
    POST "/admin/logout" SessionAndCsrf => pages::login::logout;
    GET "/admin/setup" Public => pages::setup::show;
    POST "/admin/setup" Public => pages::setup::submit;
    GET "/admin/webhooks" Session => pages::webhooks::show;
    POST "/admin/webhooks" SessionAndCsrf => pages::webhooks::create;
    POST "/admin/webhooks/{id}/edit" SessionAndCsrf => pages::webhooks::update;
    POST "/admin/webhooks/{id}/status" SessionAndCsrf => pages::webhooks::set_status;
    POST "/admin/webhooks/{id}/delete" SessionAndCsrf => pages::webhooks::delete;
    POST "/admin/webhooks/{id}/test" SessionAndCsrf => pages::webhooks::test;
    POST "/admin/formats/preview" SessionAndCsrf => pages::formats::preview;
    GET "/admin/webhooks/{id}/rotate" Session => pages::rotation::show;
    POST "/admin/webhooks/{id}/rotate" SessionAndCsrf => pages::rotation::submit;
    POST "/admin/webhooks/{id}/rotate/complete" SessionAndCsrf => pages::rotation::complete;
    GET "/admin/webhooks/{id}/log" Session => pages::log::show;
    GET "/admin/webhooks/{id}/log/rows" Session => pages::log::rows;
    GET "/admin/webhooks/{id}/replay" Session => pages::replay::confirm;
    POST "/admin/webhooks/{id}/replay" SessionAndCsrf => pages::replay::submit;
    GET "/admin/deliveries/{id}" Session => pages::log::detail;
    POST "/admin/deliveries/{id}/redeliver" SessionAndCsrf => pages::log::redeliver;
    GET "/admin/tokens" Session => pages::tokens::show;
    POST "/admin/tokens" SessionAndCsrf => pages::tokens::create;
    POST "/admin/tokens/{id}/revoke" SessionAndCsrf => pages::tokens::revoke;
    GET "/admin/api" Session => pages::api_reference::show;
    GET "/admin/pro" Session => pages::pro::show;
}

/// The console's router, built from [`ROUTES`]; every response carries [`protect`]'s headers.
pub fn router<S: Clone + Send + Sync + 'static>(state: ConsoleState) -> Router<S> {
    ROUTES
        .iter()
        .fold(Router::new(), |router, route| {
            router.route(route.path, (route.handler)())
        })
        .layer(axum::middleware::from_fn(protect))
        .with_state(state)
}

/// The Content-Security-Policy of every console page: scripts and styles from the console
/// itself only (no inline script), nothing framed, forms posted back to the console only.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
     base-uri 'none'; object-src 'none'";

/// Adds the headers every console response carries: never cached (pages show one-time secrets
/// and tokens, and must not come back with Back after signing out), no framing, no sniffing,
/// no referrer outside the console; HSTS when the request came over TLS.
async fn protect(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let behind_tls = request
        .headers()
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"));
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    use axum::http::{header, HeaderValue};
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if behind_tls {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    response
}

/// Creates a one-time setup link when no console user exists yet; returns its path.
pub async fn first_run_setup_path(app: &App) -> Option<String> {
    pages::setup::issue_link(app).await
}
