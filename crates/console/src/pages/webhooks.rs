//! Learnomy Settings > Webhooks: the usage counter, the Add New Webhook form (or the Pro notice),
//! the webhooks table and its actions.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Redirect, Response};
use axum_extra::extract::Form;
use lwh_app::webhooks::{Usage, WebhookEdit};
use lwh_app::AppError;
use lwh_domain::{CatalogueEntry, FieldError, Plan, WebhookId, WebhookSecret, WebhookStatus};
use lwh_storage::WebhookRecord;
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::json;

use crate::layout::{csrf_field, page, truncate, webhook_badge, when, Section};
use crate::session::{Refusal, Session};
use crate::ConsoleState;

/// Longest URL shown before it is cut (the full URL is in the tooltip).
const URL_SHOWN: usize = 60;

/// `?edit=wh_…` opens the form on a webhook; `?notice=CODE` shows one of [`notice_text`]'s
/// confirmations (a code, not free text: a link cannot make the console say anything else).
#[derive(Deserialize, Default)]
pub struct PageQuery {
    edit: Option<String>,
    notice: Option<String>,
}

/// The confirmation a `?notice=` code stands for; unknown codes show nothing.
fn notice_text(code: &str) -> Option<&'static str> {
    Some(match code {
        "added" => {
            "Webhook added. Its secret key is the one in the form you saved; it is not shown again."
        }
        "updated" => "Webhook updated.",
        "deleted" => "Webhook deleted.",
        "active" => "Webhook is now Active.",
        "paused" => "Webhook is now Paused.",
        "disabled" => "Webhook is now Disabled.",
        "failed" => "Webhook is now Failed.",
        _ => return None,
    })
}

/// The Add and Edit forms.
#[derive(Deserialize)]
pub struct WebhookForm {
    #[serde(default, rename = "_csrf")]
    csrf: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    events: Vec<String>,
    #[serde(default)]
    secret: Option<String>,
}

/// Forms that only carry the CSRF token (and maybe a status).
#[derive(Deserialize)]
pub struct ActionForm {
    #[serde(default, rename = "_csrf")]
    csrf: String,
    #[serde(default)]
    status: Option<String>,
}

/// What the form shows.
struct FormModel {
    editing: Option<WebhookRecord>,
    url: String,
    events: Vec<String>,
    secret: String,
    errors: Vec<FieldError>,
}

impl FormModel {
    fn fresh() -> Self {
        Self {
            editing: None,
            url: String::new(),
            events: Vec::new(),
            secret: WebhookSecret::generate().expose().to_owned(),
            errors: Vec::new(),
        }
    }

    fn error(&self, field: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|e| e.field == field || (field == "events" && e.field.starts_with("events")))
            .map(|e| e.message.as_str())
    }
}

/// Everything the page shows.
struct PageModel {
    webhooks: Vec<WebhookRecord>,
    usage: Usage,
    form: FormModel,
    notice: Option<String>,
}

/// The Webhooks page.
pub async fn show(
    State(state): State<ConsoleState>,
    session: Session,
    Query(q): Query<PageQuery>,
) -> Response {
    let mut form = FormModel::fresh();
    if let Some(id) = q.edit.as_deref().and_then(|e| e.parse::<WebhookId>().ok()) {
        match state.app.get_webhook(id).await {
            Ok(w) => {
                form.url = w.url.clone();
                form.events = w.events.clone();
                form.editing = Some(w);
            }
            Err(e) => return super::error_response(e),
        }
    }
    let notice = q.notice.as_deref().and_then(notice_text).map(str::to_owned);
    render(&state, &session, form, notice, StatusCode::OK).await
}

async fn render(
    state: &ConsoleState,
    session: &Session,
    form: FormModel,
    notice: Option<String>,
    status: StatusCode,
) -> Response {
    match state.app.list_webhooks().await {
        Ok((webhooks, usage)) => {
            let model = PageModel {
                webhooks,
                usage,
                form,
                notice,
            };
            (
                status,
                page(
                    "Webhooks",
                    session,
                    Section::Webhooks,
                    view(state, session, &model),
                ),
            )
                .into_response()
        }
        Err(e) => super::error_response(e),
    }
}

/// Add Webhook: on success, back to the page (a redirect), where the new row is.
pub async fn create(
    State(state): State<ConsoleState>,
    session: Session,
    Form(form): Form<WebhookForm>,
) -> Response {
    if !session.csrf_ok(&form.csrf) {
        return Refusal::Csrf.into_response();
    }
    let secret = form
        .secret
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    match state
        .app
        .create_webhook(form.url.trim(), &form.events, secret)
        .await
    {
        // Answered with a redirect, so a reload adds nothing; the secret was the form's, copied
        // before saving, and no page shows it again.
        Ok(created) => Redirect::to(&format!(
            "/admin/webhooks?notice=added#row-{}",
            created.webhook.id
        ))
        .into_response(),
        Err(e) => {
            let model = FormModel {
                editing: None,
                url: form.url,
                events: form.events,
                secret: form.secret.unwrap_or_default(),
                errors: Vec::new(),
            };
            refused_form(&state, &session, model, e).await
        }
    }
}

/// Save Changes on the Edit form: URL and events; the secret is preserved.
pub async fn update(
    State(state): State<ConsoleState>,
    session: Session,
    Path(id): Path<String>,
    Form(form): Form<WebhookForm>,
) -> Response {
    let id = match checked(&session, &form.csrf, &id) {
        Ok(id) => id,
        Err(refused) => return *refused,
    };
    let edit = WebhookEdit {
        url: Some(form.url.trim().to_owned()),
        events: Some(form.events.clone()),
        status: None,
    };
    match state.app.update_webhook(id, edit).await {
        Ok(_) => Redirect::to("/admin/webhooks?notice=updated").into_response(),
        Err(e) => {
            if field_errors(&e).is_empty() {
                return super::error_response(e);
            }
            let editing = match state.app.get_webhook(id).await {
                Ok(w) => w,
                Err(e) => return super::error_response(e),
            };
            let model = FormModel {
                editing: Some(editing),
                url: form.url,
                events: form.events,
                secret: String::new(),
                errors: Vec::new(),
            };
            refused_form(&state, &session, model, e).await
        }
    }
}

/// Pause, Resume, Disable, Re-activate.
pub async fn set_status(
    State(state): State<ConsoleState>,
    session: Session,
    Path(id): Path<String>,
    Form(form): Form<ActionForm>,
) -> Response {
    let id = match checked(&session, &form.csrf, &id) {
        Ok(id) => id,
        Err(refused) => return *refused,
    };
    let status = match form.status.as_deref() {
        Some("active") => WebhookStatus::Active,
        Some("paused") => WebhookStatus::Paused,
        Some("disabled") => WebhookStatus::Disabled,
        _ => {
            return super::error_response(AppError::field(
                "status",
                "must be active, paused or disabled",
            ))
        }
    };
    let edit = WebhookEdit {
        status: Some(status),
        ..WebhookEdit::default()
    };
    match state.app.update_webhook(id, edit).await {
        Ok(w) => {
            Redirect::to(&format!("/admin/webhooks?notice={}", w.status.as_str())).into_response()
        }
        Err(e) => super::error_response(e),
    }
}

/// Delete (after the confirmation prompt).
pub async fn delete(
    State(state): State<ConsoleState>,
    session: Session,
    Path(id): Path<String>,
    Form(form): Form<ActionForm>,
) -> Response {
    let id = match checked(&session, &form.csrf, &id) {
        Ok(id) => id,
        Err(refused) => return *refused,
    };
    match state.app.delete_webhook(id).await {
        Ok(()) => Redirect::to("/admin/webhooks?notice=deleted").into_response(),
        Err(e) => super::error_response(e),
    }
}

/// Test: sends a ping now and answers JSON for the row.
pub async fn test(
    State(state): State<ConsoleState>,
    session: Session,
    Path(id): Path<String>,
    Form(form): Form<ActionForm>,
) -> Response {
    let id = match checked(&session, &form.csrf, &id) {
        Ok(id) => id,
        Err(refused) => return *refused,
    };
    match lwh_delivery::send_ping(&state.app, &state.sender, id).await {
        Ok(r) => Json(json!({
            "delivered": r.outcome.delivered(),
            "status_code": r.outcome.status_code,
            "duration_ms": r.outcome.duration_ms,
            "error": r.outcome.error,
            "reactivated": r.reactivated,
        }))
        .into_response(),
        Err(e) => super::error_response(e),
    }
}

/// The page again with the form as sent and each problem beside its field (422), or an error
/// page when the problem is not about a field.
async fn refused_form(
    state: &ConsoleState,
    session: &Session,
    mut model: FormModel,
    e: AppError,
) -> Response {
    model.errors = field_errors(&e);
    if model.errors.is_empty() {
        return super::error_response(e);
    }
    render(
        state,
        session,
        model,
        None,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await
}

/// The messages to show beside fields, for errors that are about fields.
fn field_errors(e: &AppError) -> Vec<FieldError> {
    match e {
        AppError::Validation(errors) => errors.clone(),
        AppError::UrlNotAllowed(f) => vec![FieldError::new(
            "url",
            format!("This URL is not allowed: {}", f.message),
        )],
        AppError::PlanLimitReached(limit) => vec![FieldError::new(
            "form",
            format!("The Free plan allows {limit} webhooks. Learnomy Pro removes this limit."),
        )],
        _ => Vec::new(),
    }
}

fn view(state: &ConsoleState, session: &Session, m: &PageModel) -> Markup {
    let plan = state.app.settings().plan;
    let catalogue = state.app.catalogue().entries();
    html! {
        div.page-header {
            h1 { "Webhooks" }
            p.usage #usage {
                @match m.usage.limit {
                    Some(limit) => { (m.usage.used) " of " (limit) " webhooks used" }
                    None => { (m.usage.used) @if m.usage.used == 1 { " webhook" } @else { " webhooks" } }
                }
            }
        }
        p.lead { "Learnomy POSTs a signed JSON payload to each webhook every time one of its events occurs." }
        @if let Some(notice) = &m.notice {
            p.notice.notice-success role="status" { (notice) }
        }
        @if let Some(e) = m.form.error("form") {
            p.notice.notice-error role="alert" { (e) }
        }
        @if m.form.editing.is_some() || m.usage.can_add() {
            (form_view(session, &m.form, catalogue))
        } @else {
            section.card.pro-notice #pro-notice {
                span.pro-badge { "Pro" }
                h2 { "You have used all " (m.usage.limit.unwrap_or_default()) " webhook slots" }
                p { "Learnomy Pro removes the 3-webhook cap so you can configure as many outgoing webhooks as needed. See the " a href="/admin/pro" { "Pro Features page" } "." }
            }
        }
        (table_view(session, &m.webhooks, plan, catalogue))
    }
}

fn form_view(session: &Session, f: &FormModel, catalogue: &[CatalogueEntry]) -> Markup {
    let (title, action, submit) = match &f.editing {
        Some(w) => (
            "Edit Webhook",
            format!("/admin/webhooks/{}/edit", w.id),
            "Save Changes",
        ),
        None => (
            "Add New Webhook",
            "/admin/webhooks".to_owned(),
            "Add Webhook",
        ),
    };
    let mut groups: Vec<(&str, Vec<&CatalogueEntry>)> = Vec::new();
    for e in catalogue {
        match groups.iter_mut().find(|(g, _)| *g == e.group) {
            Some((_, list)) => list.push(e),
            None => groups.push((&e.group, vec![e])),
        }
    }
    let all_checked = !catalogue.is_empty() && catalogue.iter().all(|e| f.events.contains(&e.slug));
    html! {
        section.card #webhook-form-card aria-labelledby="form-title" {
            h2 #form-title { (title) }
            form #webhook-form method="post" action=(action) novalidate {
                (csrf_field(session))
                div.field {
                    label for="url" { "Delivery URL" }
                    input #url name="url" type="url" required maxlength="2048" placeholder="https://hooks.zapier.com/hooks/catch/…"
                        value=(f.url) aria-describedby="url-help url-error" aria-invalid=[f.error("url").map(|_| "true")];
                    p #url-help .help { "The HTTPS endpoint that will receive the POST." }
                    @if let Some(e) = f.error("url") { p #url-error .field-error role="alert" { (e) } }
                }
                fieldset.field.events {
                    legend { "Events to Send" }
                    label.select-all {
                        input #select-all type="checkbox" checked[all_checked];
                        " Select all"
                    }
                    @if let Some(e) = f.error("events") { p #events-error .field-error role="alert" { (e) } }
                    div.event-groups {
                        @for (group, entries) in &groups {
                            div.event-group {
                                h3 { (group) }
                                @for e in entries {
                                    label.event-option title=(e.description) {
                                        input type="checkbox" name="events" value=(e.slug) checked[f.events.contains(&e.slug)];
                                        " " (e.label)
                                        @if e.pro { " " span.pro-badge.small { "Pro" } }
                                    }
                                }
                            }
                        }
                    }
                }
                @if let Some(w) = &f.editing {
                    p.help { "The secret key of " span.mono { (truncate(&w.url, URL_SHOWN)) } " is preserved; editing does not change it." }
                } @else {
                    div.field {
                        label for="secret" { "Secret Key" }
                        div.secret-row {
                            input #secret .mono name="secret" type="text" value=(f.secret) spellcheck="false" autocomplete="off"
                                aria-describedby="secret-help secret-error";
                            button.button type="button" data-action="regenerate" data-target="secret" aria-label="Regenerate the secret key" { "↻ Regenerate" }
                            button.button type="button" data-action="copy" data-target="secret" aria-label="Copy the secret key" { "Copy" }
                        }
                        p #secret-help .help.warning { "Copy it now. For security, it is not shown again after you save." }
                        @if let Some(e) = f.error("secret") { p #secret-error .field-error role="alert" { (e) } }
                    }
                }
                div.actions {
                    button.button.button-primary type="submit" { (submit) }
                    @if f.editing.is_some() { a.button href="/admin/webhooks" { "Cancel" } }
                }
            }
        }
    }
}

fn table_view(
    session: &Session,
    webhooks: &[WebhookRecord],
    plan: Plan,
    catalogue: &[CatalogueEntry],
) -> Markup {
    let label_of = |slug: &str| {
        catalogue
            .iter()
            .find(|e| e.slug == slug)
            .map_or_else(|| slug.to_owned(), |e| e.label.clone())
    };
    html! {
        section.card aria-labelledby="table-title" {
            h2 #table-title { "Webhooks" }
            @if webhooks.is_empty() {
                p.empty { "No webhooks yet. Add one above to start sending events." }
            } @else {
                div.table-wrap {
                    table.webhooks #webhooks-table {
                        thead { tr {
                            th scope="col" { "URL" }
                            th scope="col" { "Events" }
                            th scope="col" { "Status" }
                            th scope="col" { "Last Triggered" }
                            th scope="col" { "Actions" }
                        } }
                        tbody {
                            @for w in webhooks {
                                tr id={"row-" (w.id)} data-webhook=(w.id) {
                                    td.url { span title=(w.url) { (truncate(&w.url, URL_SHOWN)) } }
                                    td { ul.badges { @for e in &w.events { li.badge.event title=(e) { (label_of(e)) } } } }
                                    td {
                                        (webhook_badge(w.status))
                                        @if w.status == WebhookStatus::Failed {
                                            p.status-note { "Since " (when(Some(w.status_changed_at)))
                                                @if let Some(reason) = &w.status_reason { ": " (reason) } }
                                        }
                                    }
                                    td.when { (when(w.last_triggered_at)) }
                                    td.actions {
                                        a.button.small href={"/admin/webhooks?edit=" (w.id) "#webhook-form-card"} { "Edit" }
                                        button.button.small type="button" data-test-url={"/admin/webhooks/" (w.id) "/test"} { "Test" }
                                        @match w.status {
                                            WebhookStatus::Active => { (status_button(session, w, "paused", "Pause")) (status_button(session, w, "disabled", "Disable")) }
                                            WebhookStatus::Paused => { (status_button(session, w, "active", "Resume")) (status_button(session, w, "disabled", "Disable")) }
                                            WebhookStatus::Disabled | WebhookStatus::Failed => { (status_button(session, w, "active", "Re-activate")) }
                                        }
                                        @if plan.has_delivery_log() {
                                            a.button.small href={"/admin/webhooks/" (w.id) "/log"} { "View log" }
                                        }
                                        form.inline method="post" action={"/admin/webhooks/" (w.id) "/delete"}
                                            data-confirm={"Delete the webhook to " (w.url) "? This stops all future deliveries to that URL."} {
                                            (csrf_field(session))
                                            button.button.small.danger type="submit" { "Delete" }
                                        }
                                        p.test-result aria-live="polite" {}
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn status_button(session: &Session, w: &WebhookRecord, status: &str, label: &str) -> Markup {
    html! {
        form.inline method="post" action={"/admin/webhooks/" (w.id) "/status"} {
            (csrf_field(session))
            input type="hidden" name="status" value=(status);
            button.button.small type="submit" { (label) }
        }
    }
}

/// The CSRF check and the id parse every webhook action starts with.
fn checked(session: &Session, csrf: &str, id: &str) -> Result<WebhookId, Box<Response>> {
    if !session.csrf_ok(csrf) {
        return Err(Box::new(Refusal::Csrf.into_response()));
    }
    id.parse::<WebhookId>()
        .map_err(|_| Box::new(super::error_response(AppError::NotFound("webhook"))))
}
