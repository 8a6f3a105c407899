//! First run: when no console user exists, `serve` prints a one-time link to this page, where
//! the first admin chooses a name and password.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use axum_extra::extract::Form;
use lwh_app::tokens::{hash_token, random_token};
use lwh_app::{App, AppError};
use lwh_domain::Timestamp;
use maud::{html, Markup};
use serde::Deserialize;

use crate::layout::bare_page;
use crate::session;
use crate::ConsoleState;

/// How long a setup link stays valid.
const LINK_HOURS: i64 = 24;

/// Issues a setup link if no user exists; returns its path and query.
pub async fn issue_link(app: &App) -> Option<String> {
    match app.store().count_users().await {
        Ok(0) => {}
        _ => return None,
    }
    let token = random_token("", 40);
    let expires = Timestamp::now().plus_millis(LINK_HOURS * 3600 * 1000);
    app.store()
        .insert_setup_token(&hash_token(&token), expires)
        .await
        .ok()?;
    Some(format!("/admin/setup?token={token}"))
}

/// The link's query.
#[derive(Deserialize)]
pub struct SetupQuery {
    #[serde(default)]
    token: String,
}

/// The setup form.
#[derive(Deserialize)]
pub struct SetupForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
}

fn setup_page(token: &str, name: &str, errors: &[(String, String)]) -> Markup {
    let error_for = |field: &str| {
        errors
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, m)| m.clone())
    };
    bare_page(
        "Welcome",
        html! {
            h1 { "Create the first admin" }
            p.muted { "This link works once. Choose the name and password you will sign in with." }
            form method="post" action="/admin/setup" {
                input type="hidden" name="token" value=(token);
                label for="name" { "User name" }
                input #name name="name" type="text" autocomplete="username" required value=(name) aria-describedby="name-error";
                @if let Some(e) = error_for("name") { p #name-error .field-error { (e) } }
                label for="password" { "Password (at least 10 characters)" }
                input #password name="password" type="password" autocomplete="new-password" required minlength="10" aria-describedby="password-error";
                @if let Some(e) = error_for("password") { p #password-error .field-error { (e) } }
                button.button.button-primary type="submit" { "Create admin and sign in" }
            }
        },
    )
}

fn expired() -> Response {
    (
        StatusCode::GONE,
        bare_page(
            "Link expired",
            html! {
                h1 { "This setup link is no longer valid" }
                p { "It was used already or has expired. Sign in, or create a user with "
                    code { "learnomy-webhooks admin create-user NAME" } "." }
                p { a href="/admin/login" { "Go to sign in" } }
            },
        ),
    )
        .into_response()
}

/// Shows the form while no user exists.
pub async fn show(State(state): State<ConsoleState>, Query(q): Query<SetupQuery>) -> Response {
    match state.app.store().count_users().await {
        Ok(0) if !q.token.is_empty() => setup_page(&q.token, "", &[]).into_response(),
        _ => expired(),
    }
}

/// Uses the link, creates the admin and signs them in.
pub async fn submit(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    jar: CookieJar,
    Form(form): Form<SetupForm>,
) -> Response {
    if !matches!(state.app.store().count_users().await, Ok(0)) {
        return expired();
    }
    let mut field_errors = Vec::new();
    if let Err(e) = lwh_app::users::check_user_name(&form.name) {
        field_errors.push((e.field, e.message));
    }
    if let Err(e) = lwh_app::users::check_password(&form.password) {
        field_errors.push((e.field, e.message));
    }
    if !field_errors.is_empty() {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            setup_page(&form.token, &form.name, &field_errors),
        )
            .into_response();
    }
    match state
        .app
        .store()
        .take_setup_token(&hash_token(&form.token), Timestamp::now())
        .await
    {
        Ok(true) => {}
        Ok(false) => return expired(),
        Err(e) => return super::error_response(e.into()),
    }
    let user = match state.app.create_user(&form.name, &form.password).await {
        Ok(id) => id,
        Err(AppError::Validation(errors)) => {
            let errors: Vec<(String, String)> =
                errors.into_iter().map(|e| (e.field, e.message)).collect();
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                setup_page(&form.token, &form.name, &errors),
            )
                .into_response();
        }
        Err(e) => return super::error_response(e),
    };
    match session::start(&state, user, &headers).await {
        Ok(cookie) => (jar.add(cookie), Redirect::to("/admin/webhooks")).into_response(),
        Err(e) => super::error_response(e),
    }
}
