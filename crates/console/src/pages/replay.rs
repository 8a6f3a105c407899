//! Replay failed deliveries (Pro): a time window on the Delivery Log, a confirmation that says
//! how many Failed deliveries it holds, then each gets a new attempt series.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::Form;
use lwh_app::AppError;
use lwh_domain::{Timestamp, WebhookId};
use maud::{html, Markup};
use serde::Deserialize;

use crate::layout::{csrf_field, page, truncate, when, Section};
use crate::pages::webhooks::checked;
use crate::session::Session;
use crate::ConsoleState;

/// The window, as the form sends it (`datetime-local` values, in UTC).
#[derive(Deserialize, Default)]
pub struct Window {
    #[serde(default, rename = "_csrf")]
    csrf: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
}

impl Window {
    /// The window's bounds, or the message for the field that is not a time.
    fn bounds(&self) -> Result<(Timestamp, Option<Timestamp>), AppError> {
        let since = utc(&self.since)
            .ok_or_else(|| AppError::field("since", "From must be a date and time (UTC)"))?;
        let until = match self.until.trim() {
            "" => None,
            text => Some(utc(text).ok_or_else(|| {
                AppError::field(
                    "until",
                    "To must be a date and time (UTC), or empty for now",
                )
            })?),
        };
        Ok((since, until))
    }
}

/// A `datetime-local` value (`2026-11-30T09:00`, seconds optional) read as UTC, or RFC 3339.
fn utc(text: &str) -> Option<Timestamp> {
    let text = text.trim();
    Timestamp::parse_rfc3339(text)
        .or_else(|| Timestamp::parse_rfc3339(&format!("{text}:00Z")))
        .or_else(|| Timestamp::parse_rfc3339(&format!("{text}Z")))
}

/// The form on the Delivery Log page.
pub fn form(webhook: WebhookId) -> Markup {
    html! {
        section.card #replay-card {
            h2 { "Replay failed deliveries" }
            p.help { "Every delivery that ended Failed in this window gets a new series of attempts, with the same payload and delivery id. You confirm after seeing how many." }
            form.replay method="get" action={"/admin/webhooks/" (webhook) "/replay"} {
                div.field.inline-field {
                    label for="replay-since" { "From (UTC)" }
                    input #replay-since name="since" type="datetime-local" required;
                }
                div.field.inline-field {
                    label for="replay-until" { "To (UTC, empty: now)" }
                    input #replay-until name="until" type="datetime-local";
                }
                button.button type="submit" { "Review…" }
            }
        }
    }
}

/// The confirmation: how many Failed deliveries the window holds.
pub async fn confirm(
    State(state): State<ConsoleState>,
    session: Session,
    Path(id): Path<String>,
    Query(window): Query<Window>,
) -> Response {
    let Ok(id) = id.parse::<WebhookId>() else {
        return super::error_response(AppError::NotFound("webhook"));
    };
    let counted = match window.bounds() {
        Ok((since, until)) => state
            .app
            .recoverable(id, since, until)
            .await
            .map(|n| (since, until, n)),
        Err(e) => Err(e),
    };
    let (since, until, n) = match counted {
        Ok(found) => found,
        Err(e) => return super::error_response(e),
    };
    let webhook = match state.app.get_webhook(id).await {
        Ok(w) => w,
        Err(e) => return super::error_response(e),
    };
    let log = format!("/admin/webhooks/{id}/log");
    let body = html! {
        nav.breadcrumb aria-label="Breadcrumb" {
            a href="/admin/webhooks" { "Webhooks" } " / "
            a href=(log) { "Delivery Log" } " / "
            span aria-current="page" { "Replay" }
        }
        h1 { "Replay failed deliveries" }
        section.card #replay-confirm {
            p { "Webhook to " span.mono { (truncate(&webhook.url, 80)) } }
            p { "From " (when(Some(since))) " to " @if let Some(u) = until { (when(Some(u))) } @else { "now" } "." }
            @if n == 0 {
                p #replay-count { "No delivery ended Failed in this window: there is nothing to replay." }
                a.button href=(log) { "Back to the Delivery Log" }
            } @else {
                p #replay-count { strong { (n) } @if n == 1 { " failed delivery" } @else { " failed deliveries" } " will be sent again." }
                form method="post" action={"/admin/webhooks/" (id) "/replay"} {
                    (csrf_field(&session))
                    input type="hidden" name="since" value=(window.since);
                    input type="hidden" name="until" value=(window.until);
                    button.button.button-primary type="submit" { "Replay " (n) }
                    " " a.button href=(log) { "Cancel" }
                }
            }
        }
    };
    (
        StatusCode::OK,
        page(
            "Replay failed deliveries",
            &session,
            Section::Webhooks,
            body,
        ),
    )
        .into_response()
}

/// Queues the window's Failed deliveries again and returns to the log, saying how many.
pub async fn submit(
    State(state): State<ConsoleState>,
    session: Session,
    Path(id): Path<String>,
    Form(window): Form<Window>,
) -> Response {
    let id = match checked(&session, &window.csrf, &id) {
        Ok(id) => id,
        Err(refused) => return *refused,
    };
    let result = match window.bounds() {
        Ok((since, until)) => state.app.recover(id, since, until).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(n) => Redirect::to(&format!("/admin/webhooks/{id}/log?replayed={n}")).into_response(),
        Err(e) => super::error_response(e),
    }
}
