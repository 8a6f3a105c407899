//! `/admin/login` and `/admin/logout`.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar};
use axum_extra::extract::Form;
use lwh_domain::Timestamp;
use maud::{html, Markup};
use serde::Deserialize;

use crate::layout::bare_page;
use crate::session::{self, Session, COOKIE};
use crate::ConsoleState;

/// The login form.
#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
}

fn login_page(error: Option<&str>, name: &str) -> Markup {
    bare_page(
        "Sign in",
        html! {
            h1 { "Sign in" }
            p.muted { "Outgoing Webhooks administration" }
            @if let Some(error) = error {
                p.notice.notice-error role="alert" { (error) }
            }
            form method="post" action="/admin/login" {
                label for="name" { "User name" }
                input #name name="name" type="text" autocomplete="username" required value=(name);
                label for="password" { "Password" }
                input #password name="password" type="password" autocomplete="current-password" required;
                button.button.button-primary type="submit" { "Sign in" }
            }
        },
    )
}

/// The sign-in page.
pub async fn show() -> Markup {
    login_page(None, "")
}

/// Checks the password (argon2id) under the rate limit and starts a session.
pub async fn submit(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    jar: CookieJar,
    Form(form): Form<LoginForm>,
) -> Response {
    let name = form.name.trim().to_owned();
    if !state.limiter.allows(&name) {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            login_page(
                Some("Too many failed attempts. Wait a few minutes and try again."),
                &name,
            ),
        )
            .into_response();
    }
    match state.app.verify_login(&name, &form.password).await {
        Ok(Some(user)) => {
            state.limiter.succeeded(&name);
            match session::start(&state, user.id, &headers).await {
                Ok(cookie) => {
                    tracing::info!(user = %name, "console sign-in");
                    (jar.add(cookie), Redirect::to("/admin/webhooks")).into_response()
                }
                Err(e) => super::error_response(e),
            }
        }
        Ok(None) => {
            state.limiter.failed(&name);
            tracing::warn!(user = %name, "console sign-in refused");
            (
                StatusCode::UNAUTHORIZED,
                login_page(Some("The user name or password is wrong."), &name),
            )
                .into_response()
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
