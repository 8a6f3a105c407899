//! `/admin/login` and `/admin/logout`.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use axum_extra::extract::Form;
use lwh_app::tokens::random_token;
use lwh_domain::Timestamp;
use maud::{html, Markup};
use serde::Deserialize;

use crate::client::{loggable, ClientAddress};
use crate::layout::bare_page;
use crate::session::{self, Session, COOKIE};
use crate::ConsoleState;

/// The cookie carrying the login form's CSRF token (double submit: the form's hidden field
/// must match it), so another site cannot sign a browser in to an account of its choosing.
const LOGIN_CSRF_COOKIE: &str = "lwh_login_csrf";

/// The login form.
#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default, rename = "_csrf")]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    /// The page to return to (see [`session::return_path`]).
    #[serde(default)]
    next: String,
}

/// `?next=/admin/…`: where the sign-in was asked from.
#[derive(Deserialize, Default)]
pub struct LoginQuery {
    #[serde(default)]
    next: String,
}

/// What the sign-in page knows besides the form.
struct LoginContext<'a> {
    /// Where to go after signing in.
    next: &'a str,
    /// No user exists yet: say how to create the first one.
    first_run: bool,
}

fn login_page(error: Option<&str>, name: &str, csrf: &str, context: &LoginContext) -> Markup {
    bare_page(
        "Sign in",
        html! {
            h1 { "Sign in" }
            p.muted { "Outgoing Webhooks administration" }
            @if context.first_run {
                div.notice.notice-secret #first-run role="note" {
                    p { strong { "No admin account exists yet." } }
                    p { "Open the one-time setup link the service printed when it started ("
                        code { "/admin/setup?token=…" } "), or create a user on the server with "
                        code { "learnomy-webhooks admin create-user NAME" }
                        " (with the same " code { "--config" } " / " code { "--data-dir" } " as the service)." }
                }
            }
            @if let Some(error) = error {
                p.notice.notice-error role="alert" { (error) }
            }
            form method="post" action="/admin/login" {
                input type="hidden" name="_csrf" value=(csrf);
                @if !context.next.is_empty() { input type="hidden" name="next" value=(context.next); }
                label for="name" { "User name" }
                input #name name="name" type="text" autocomplete="username" required maxlength="64" value=(name);
                label for="password" { "Password" }
                input #password name="password" type="password" autocomplete="current-password" required;
                button.button.button-primary type="submit" { "Sign in" }
            }
        },
    )
}

/// A fresh login CSRF token and its cookie.
fn login_csrf(headers: &HeaderMap) -> (String, Cookie<'static>) {
    let token = random_token("", 32);
    let tls = session::session_cookie(String::new(), headers)
        .secure()
        .unwrap_or(false);
    let cookie = Cookie::build((LOGIN_CSRF_COOKIE, token.clone()))
        .path("/admin")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(tls)
        .build();
    (token, cookie)
}

/// The sign-in page, with a CSRF token in the form and in a cookie.
pub async fn show(
    State(state): State<ConsoleState>,
    Query(q): Query<LoginQuery>,
    headers: HeaderMap,
    jar: CookieJar,
) -> Response {
    let (token, cookie) = login_csrf(&headers);
    let context = LoginContext {
        next: session::return_path(&q.next).unwrap_or(""),
        first_run: state.app.store().count_users().await.is_ok_and(|n| n == 0),
    };
    (jar.add(cookie), login_page(None, "", &token, &context)).into_response()
}

/// The login form again, with `error` and a fresh CSRF token.
fn again(
    status: StatusCode,
    error: &str,
    form: &LoginForm,
    headers: &HeaderMap,
    jar: CookieJar,
) -> Response {
    let (token, cookie) = login_csrf(headers);
    let context = LoginContext {
        next: session::return_path(&form.next).unwrap_or(""),
        first_run: false,
    };
    (
        status,
        jar.add(cookie),
        login_page(Some(error), &form.name, &token, &context),
    )
        .into_response()
}

/// Checks the password (argon2id, on a blocking thread) under the per-name and per-address
/// limits and starts a session.
pub async fn submit(
    State(state): State<ConsoleState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    jar: CookieJar,
    Form(form): Form<LoginForm>,
) -> Response {
    let expected = jar
        .get(LOGIN_CSRF_COOKIE)
        .map(|c| c.value().to_owned())
        .unwrap_or_default();
    if !session::same_secret(&expected, &form.csrf) {
        return again(
            StatusCode::FORBIDDEN,
            "The sign-in form expired. Please sign in again.",
            &LoginForm {
                name: String::new(),
                ..form
            },
            &headers,
            jar,
        );
    }
    let name: String = form.name.trim().chars().take(64).collect();
    let attempt = match state.limiter.begin(&name, address) {
        Ok(attempt) => attempt,
        Err(refused) => {
            tracing::warn!(
                user = %loggable(&name),
                client = ?address,
                limit = ?refused,
                "console sign-in not checked: too many failures"
            );
            return again(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many failed attempts. Wait a few minutes and try again.",
                &LoginForm { name, ..form },
                &headers,
                jar,
            );
        }
    };
    match state.app.verify_login(&name, &form.password).await {
        Ok(Some(user)) => {
            attempt.succeeded();
            match session::start(&state, user.id, &headers).await {
                Ok(cookie) => {
                    tracing::info!(user = %loggable(&name), "console sign-in");
                    (
                        jar.remove(Cookie::build(LOGIN_CSRF_COOKIE).path("/admin"))
                            .add(cookie),
                        Redirect::to(session::return_path(&form.next).unwrap_or("/admin/webhooks")),
                    )
                        .into_response()
                }
                Err(e) => super::error_response(e),
            }
        }
        Ok(None) => {
            attempt.failed();
            tracing::warn!(user = %loggable(&name), client = ?address, "console sign-in refused");
            again(
                StatusCode::UNAUTHORIZED,
                "The user name or password is wrong.",
                &LoginForm { name, ..form },
                &headers,
                jar,
            )
        }
        Err(e) => super::error_response(e),
    }
}

/// The logout form.
#[derive(Deserialize)]
pub struct LogoutForm {
    #[serde(default, rename = "_csrf")]
    csrf: String,
}

/// Ends the session.
pub async fn logout(
    State(state): State<ConsoleState>,
    session: Session,
    jar: CookieJar,
    Form(form): Form<LogoutForm>,
) -> Response {
    if !session.csrf_ok(&form.csrf) {
        return session::Refusal::Csrf.into_response();
    }
    if let Err(e) = state
        .app
        .store()
        .delete_session(&session.token_hash, Timestamp::now())
        .await
    {
        tracing::warn!(error = %e, "could not delete the session");
    }
    (
        jar.remove(Cookie::build(COOKIE).path("/admin")),
        Redirect::to("/admin/login"),
    )
        .into_response()
}
