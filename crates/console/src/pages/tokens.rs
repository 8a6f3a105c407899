//! API tokens: create (shown once), list, revoke.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::Form;
use lwh_app::{AppError, Scope, Scopes};
use lwh_domain::TokenId;
use maud::html;
use serde::Deserialize;

use crate::layout::{csrf_field, page, when, Section};
use crate::session::{Refusal, Session};
use crate::ConsoleState;

/// The create form.
#[derive(Deserialize)]
pub struct TokenForm {
    #[serde(default, rename = "_csrf")]
    csrf: String,
    #[serde(default)]
    name: String,
    /// One entry per ticked scope box.
    #[serde(default)]
    scope: Vec<String>,
}

async fn render(
    state: &ConsoleState,
    session: &Session,
    created: Option<(String, String)>,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let tokens = match state.app.list_api_tokens().await {
        Ok(t) => t,
        Err(e) => return super::error_response(e),
    };
    let content = html! {
        div.page-header { h1 { "API tokens" } }
        p.lead { "Tokens let the LMS report events (" code { "events:write" } ") and scripts manage webhooks (" code { "webhooks:manage" } ")." }
        @if let Some((name, token)) = &created {
            section.notice.notice-secret role="status" {
                h2 { "Token “" (name) "” created" }
                p { "Copy it now. For security, it is not shown again." }
                div.secret-row {
                    label.visually-hidden for="created-token" { "New token" }
                    input #created-token .mono type="text" readonly value=(token) data-one-time;
                    button.button type="button" data-action="copy" data-target="created-token" { "Copy" }
                }
            }
        }
        section.card {
            h2 { "Create a token" }
            form method="post" action="/admin/tokens" {
                (csrf_field(session))
                div.field {
                    label for="token-name" { "Name" }
                    input #token-name name="name" type="text" maxlength="100" placeholder="WordPress site";
                }
                fieldset.field #token-scopes {
                    legend { "Scopes" }
                    label.event-option {
                        input #token-scope-events type="checkbox" name="scope" value="events:write" checked;
                        " " code { "events:write" } " — report events (the LMS)"
                    }
                    label.event-option {
                        input #token-scope-manage type="checkbox" name="scope" value="webhooks:manage";
                        " " code { "webhooks:manage" } " — manage webhooks and read the log (the WordPress plugin's Webhooks page, scripts)"
                    }
                }
                @if let Some(e) = &error { p.field-error role="alert" { (e) } }
                button.button.button-primary type="submit" { "Create token" }
            }
        }
        section.card {
            h2 { "Tokens" }
            @if tokens.is_empty() { p.empty { "No tokens yet." } } @else {
                div.table-wrap { table #tokens-table {
                    thead { tr { th scope="col" { "Name" } th scope="col" { "Token" } th scope="col" { "Scope" } th scope="col" { "Created" } th scope="col" { "Last used" } th scope="col" { "Actions" } } }
                    tbody { @for t in &tokens {
                        tr {
                            td { (t.name) }
                            td.mono { (t.prefix) "…" }
                            td { code { (t.scope) } }
                            td.when { (when(Some(t.created_at))) }
                            td.when { (when(t.last_used_at)) }
                            td {
                                @if let Some(at) = t.revoked_at { span.badge.status-disabled { "Revoked " (when(Some(at))) } } @else {
                                    form.inline method="post" action={"/admin/tokens/" (t.id) "/revoke"} data-confirm={"Revoke the token “" (t.name) "”? Clients using it stop working at once."} {
                                        (csrf_field(session))
                                        button.button.small.danger type="submit" { "Revoke" }
                                    }
                                }
                            }
                        }
                    } }
                } }
            }
        }
    };
    (
        status,
        page("API tokens", session, Section::Tokens, content),
    )
        .into_response()
}

/// The tokens page; right after "Create token", with the new token this once.
pub async fn show(State(state): State<ConsoleState>, session: Session) -> Response {
    let created = state.shown_once.take(&session.token_hash);
    render(&state, &session, created, None, StatusCode::OK).await
}

/// Creates a token, then answers with a redirect (a reload creates nothing) to the page that
/// shows it once.
pub async fn create(
    State(state): State<ConsoleState>,
    session: Session,
    Form(form): Form<TokenForm>,
) -> Response {
    if !session.csrf_ok(&form.csrf) {
        return Refusal::Csrf.into_response();
    }
    let scopes = form
        .scope
        .iter()
        .map(|name| Scope::parse(name))
        .collect::<Option<Vec<_>>>()
        .map(|list| Scopes::of(&list))
        .filter(|set| !set.is_empty());
    let Some(scopes) = scopes else {
        return render(
            &state,
            &session,
            None,
            Some("Choose at least one scope.".into()),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    };
    match state.app.create_api_token(scopes, &form.name).await {
        Ok(created) => {
            state
                .shown_once
                .put(&session.token_hash, created.record.name, created.token);
            Redirect::to("/admin/tokens").into_response()
        }
        Err(AppError::Validation(errors)) => {
            let message = errors.first().map(|e| e.message.clone());
            render(
                &state,
                &session,
                None,
                message,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => super::error_response(e),
    }
}

/// Revoke form.
#[derive(Deserialize)]
pub struct RevokeForm {
    #[serde(default, rename = "_csrf")]
    csrf: String,
}

/// Revokes a token.
pub async fn revoke(
    State(state): State<ConsoleState>,
    session: Session,
    Path(id): Path<String>,
    Form(form): Form<RevokeForm>,
) -> Response {
    if !session.csrf_ok(&form.csrf) {
        return Refusal::Csrf.into_response();
    }
    let Ok(id) = id.parse::<TokenId>() else {
        return super::error_response(AppError::NotFound("token"));
    };
    match state.app.revoke_api_token(id).await {
        Ok(()) => Redirect::to("/admin/tokens").into_response(),
        Err(e) => super::error_response(e),
    }
}
