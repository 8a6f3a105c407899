//! Rotate secret: a page with the new secret pre-filled — the moment to copy it, as on the
//! Add form — and the overlap during which the previous secret keeps signing. Starting it
//! redirects to Webhooks, whose row says until when the previous secret signs and offers
//! "Finish now".

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::Form;
use lwh_app::AppError;
use lwh_domain::{FieldError, Timestamp, WebhookId, WebhookSecret};
use lwh_storage::WebhookRecord;
use maud::{html, Markup};
use serde::Deserialize;

use crate::layout::{csrf_field, page, truncate, when, Section};
use crate::pages::webhooks::checked;
use crate::session::Session;
use crate::ConsoleState;

/// The overlaps offered, as (value, label); the first is the default.
const OVERLAPS: [(&str, &str); 5] = [
    ("24h", "24 hours (recommended)"),
    ("1h", "1 hour"),
    ("3d", "3 days"),
    ("7d", "7 days (the longest)"),
    ("0s", "No overlap: the previous key stops signing at once"),
];

/// The Rotate secret form.
#[derive(Deserialize)]
pub struct RotateForm {
    #[serde(default, rename = "_csrf")]
    csrf: String,
    #[serde(default)]
    secret: String,
    #[serde(default)]
    overlap: String,
}

/// Finish now.
#[derive(Deserialize)]
pub struct CompleteForm {
    #[serde(default, rename = "_csrf")]
    csrf: String,
}

/// The Rotate secret page, with a freshly generated secret.
pub async fn show(
    State(state): State<ConsoleState>,
    session: Session,
    Path(id): Path<String>,
) -> Response {
    let Ok(id) = id.parse::<WebhookId>() else {
        return super::error_response(AppError::NotFound("webhook"));
    };
    match state.app.get_webhook(id).await {
        Ok(webhook) => {
            let secret = WebhookSecret::generate().expose().to_owned();
            render(
                &session,
                &webhook,
                &secret,
                OVERLAPS[0].0,
                &[],
                StatusCode::OK,
            )
        }
        Err(e) => super::error_response(e),
    }
}

/// Starts the rotation with the form's secret and overlap.
pub async fn submit(
    State(state): State<ConsoleState>,
    session: Session,
    Path(id): Path<String>,
    Form(form): Form<RotateForm>,
) -> Response {
    let id = match checked(&session, &form.csrf, &id) {
        Ok(id) => id,
        Err(refused) => return *refused,
    };
    let secret = form.secret.trim();
    match state
        .app
        .rotate_secret(id, Some(secret), Some(&form.overlap))
        .await
    {
        // A redirect: a reload starts nothing, and the secret appears in no page after this.
        Ok(_) => Redirect::to("/admin/webhooks?notice=rotating").into_response(),
        Err(AppError::Validation(errors)) => match state.app.get_webhook(id).await {
            Ok(webhook) => render(
                &session,
                &webhook,
                secret,
                &form.overlap,
                &errors,
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            Err(e) => super::error_response(e),
        },
        Err(e) => super::error_response(e),
    }
}

/// Finish now: only the new secret signs, the previous one is destroyed.
pub async fn complete(
    State(state): State<ConsoleState>,
    session: Session,
    Path(id): Path<String>,
    Form(form): Form<CompleteForm>,
) -> Response {
    let id = match checked(&session, &form.csrf, &id) {
        Ok(id) => id,
        Err(refused) => return *refused,
    };
    match state.app.finish_rotation(id).await {
        Ok(_) => Redirect::to("/admin/webhooks?notice=rotated").into_response(),
        Err(e) => super::error_response(e),
    }
}

/// The row's note during a rotation, with "Finish now" (nothing when none is in progress).
pub fn row_note(session: &Session, webhook: &WebhookRecord, now: Timestamp) -> Markup {
    let Some(ends) = webhook.rotation_ends_at.filter(|end| *end > now) else {
        return html! {};
    };
    html! {
        div.rotation {
            p.outcome { "Rotating secret · the previous key signs until " (when(Some(ends))) }
            form.inline method="post" action={"/admin/webhooks/" (webhook.id) "/rotate/complete"}
                data-confirm="Stop signing with the previous key now? Receivers that still verify only with it will reject the next deliveries." {
                (csrf_field(session))
                button.button.small type="submit" { "Finish now" }
            }
        }
    }
}

fn render(
    session: &Session,
    webhook: &WebhookRecord,
    secret: &str,
    overlap: &str,
    errors: &[FieldError],
    status: StatusCode,
) -> Response {
    let error = |field: &str| {
        errors
            .iter()
            .find(|e| e.field == field)
            .map(|e| e.message.clone())
    };
    let in_progress = webhook
        .rotation_ends_at
        .filter(|end| *end > Timestamp::now());
    let body = html! {
        nav.breadcrumb aria-label="Breadcrumb" {
            a href="/admin/webhooks" { "Webhooks" } " / "
            span aria-current="page" { "Rotate secret" }
        }
        h1 { "Rotate secret" }
        section.card #rotate-card {
            p { "Webhook to " span.mono { (truncate(&webhook.url, 80)) } }
            @if let Some(end) = in_progress {
                p { "A rotation is in progress: the previous key signs until " (when(Some(end))) ". Finish it before starting another." }
                form method="post" action={"/admin/webhooks/" (webhook.id) "/rotate/complete"} {
                    (csrf_field(session))
                    button.button.button-primary type="submit" { "Finish now" }
                    " " a.button href="/admin/webhooks" { "Cancel" }
                }
            } @else {
                p.help {
                    "The new key signs every delivery from now on. During the overlap the previous key still signs too — "
                    code { "X-Learnomy-Signature" } " with the previous key, " code { "X-Learnomy-Signature-Next" }
                    " with the new one, and " code { "webhook-signature" } " with both — so your receiver keeps verifying "
                    "while you give it the new key. When the overlap ends the previous key is destroyed."
                }
                form method="post" action={"/admin/webhooks/" (webhook.id) "/rotate"} novalidate {
                    (csrf_field(session))
                    div.field {
                        label for="secret" { "New Secret Key" }
                        div.secret-row {
                            input #secret .mono name="secret" type="text" value=(secret) spellcheck="false" autocomplete="off" data-one-time
                                aria-describedby="secret-help secret-error" aria-invalid=[error("secret").map(|_| "true")]
                                autofocus[error("secret").is_some()];
                            button.button type="button" data-action="regenerate" data-target="secret" aria-label="Regenerate the secret key" { "↻ Regenerate" }
                            button.button type="button" data-action="copy" data-target="secret" aria-label="Copy the secret key" { "Copy" }
                        }
                        p #secret-help .help.warning { "Copy it now and give it to your receiver. For security, it is not shown again after you start the rotation." }
                        @if let Some(e) = error("secret") { p #secret-error .field-error role="alert" { (e) } }
                    }
                    div.field {
                        label for="overlap" { "Overlap" }
                        select #overlap name="overlap" aria-describedby="overlap-help overlap-error"
                            aria-invalid=[error("overlap").map(|_| "true")] autofocus[error("overlap").is_some()] {
                            @for (value, label) in OVERLAPS {
                                option value=(value) selected[value == overlap] { (label) }
                            }
                        }
                        p #overlap-help .help { "How long the previous key keeps signing beside the new one." }
                        @if let Some(e) = error("overlap") { p #overlap-error .field-error role="alert" { (e) } }
                    }
                    div.actions {
                        button.button.button-primary type="submit" { "Start rotation" }
                        a.button href="/admin/webhooks" { "Cancel" }
                    }
                }
            }
        }
    };
    (
        status,
        page("Rotate secret", session, Section::Webhooks, body),
    )
        .into_response()
}
