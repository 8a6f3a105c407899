//! Learnomy Settings > Webhooks: the usage counter, the Add New Webhook form (or the Pro notice),
//! the webhooks table and its actions.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Redirect, Response};
use axum_extra::extract::Form;
use lwh_app::webhooks::{Usage, WebhookEdit, WebhookOptions};
use lwh_app::AppError;
use lwh_domain::custom_headers::MASK;
use lwh_domain::ordering::DeliveryOrder;
use lwh_domain::stats::{Window, WindowStats};
use lwh_domain::Timestamp;
use lwh_domain::{CatalogueEntry, FieldError, Plan, WebhookId, WebhookSecret, WebhookStatus};
use lwh_storage::{WebhookActivity, WebhookRecord, HELD_COUNT_CAP};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::json;

use crate::charts::sparkline;
use crate::layout::{
    ago_markup, csrf_field, page, thousands, truncate, webhook_badge, when, wrappable_url, Section,
};
use crate::pages::formats::{field as format_field, preview_event, preview_text, FormatFields};
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
        "rotating" => "Secret rotation started: the new key signs now, the previous one until the overlap ends. The new key is not shown again.",
        "rotated" => "Secret rotation finished: only the new key signs; the previous one is destroyed.",
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
    /// New custom headers, row by row (an empty name skips the row).
    #[serde(default)]
    header_name: Vec<String>,
    #[serde(default)]
    header_value: Vec<String>,
    /// Names of saved custom headers to remove.
    #[serde(default)]
    remove_header: Vec<String>,
    /// The throttle; blank for unlimited.
    #[serde(default)]
    max_per_second: String,
    /// The body format and template.
    #[serde(flatten)]
    body: FormatFields,
    /// `none` or `by_key` (the select offers nothing else; anything else reads as `none`).
    #[serde(default)]
    ordering: String,
}

impl WebhookForm {
    /// The custom header changes the form asks for.
    fn header_changes(&self) -> Vec<(String, Option<String>)> {
        let added = self
            .header_name
            .iter()
            .zip(
                self.header_value
                    .iter()
                    .map(Some)
                    .chain(std::iter::repeat(None)),
            )
            .filter(|(name, _)| !name.trim().is_empty())
            .map(|(name, value)| {
                (
                    name.trim().to_owned(),
                    Some(value.cloned().unwrap_or_default()),
                )
            });
        let removed = self.remove_header.iter().map(|name| (name.clone(), None));
        removed.chain(added).collect()
    }

    /// The throttle the form asks for: `None` when blank (unlimited). Text that is not a whole
    /// number is passed on as 0, which is refused with the field's message ("must be a whole
    /// number from 1 to 10000").
    fn max_per_second(&self) -> Option<i64> {
        let text = self.max_per_second.trim();
        (!text.is_empty()).then(|| text.parse().unwrap_or(0))
    }

    /// The delivery order the form asks for.
    fn ordering(&self) -> DeliveryOrder {
        DeliveryOrder::parse(&self.ordering).unwrap_or_default()
    }
}

/// A webhook's throttle as the form shows it (blank: unlimited).
fn throttle_text(w: &WebhookRecord) -> String {
    w.throttle
        .map(|t| t.per_second().to_string())
        .unwrap_or_default()
}

/// Empty rows the form offers for new custom headers.
const NEW_HEADER_ROWS: usize = 2;

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
    /// Names of the saved custom headers (values are never shown).
    header_names: Vec<String>,
    /// The throttle as typed (blank: unlimited).
    max_per_second: String,
    /// The body format and template as chosen.
    body: FormatFields,
    /// The delivery order as chosen.
    ordering: DeliveryOrder,
    errors: Vec<FieldError>,
}

impl FormModel {
    fn fresh() -> Self {
        Self {
            editing: None,
            url: String::new(),
            events: Vec::new(),
            secret: WebhookSecret::generate().expose().to_owned(),
            header_names: Vec::new(),
            max_per_second: String::new(),
            body: FormatFields::default(),
            ordering: DeliveryOrder::default(),
            errors: Vec::new(),
        }
    }

    /// The first problem with a custom header, naming it.
    fn header_error(&self) -> Option<String> {
        self.errors
            .iter()
            .find(|e| e.field == "headers" || e.field.starts_with("headers."))
            .map(|e| match e.field.strip_prefix("headers.") {
                Some(name) => format!("{name}: {}", e.message),
                None => e.message.clone(),
            })
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
    /// Each webhook with what its recent deliveries say.
    webhooks: Vec<(WebhookRecord, WebhookActivity)>,
    /// Each webhook's last 24 hours (absent: no attempts).
    health: BTreeMap<WebhookId, WindowStats>,
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
                form.header_names = match state.app.custom_headers(&w) {
                    Ok(h) => h.names().map(str::to_owned).collect(),
                    Err(e) => return super::error_response(e),
                };
                form.max_per_second = throttle_text(&w);
                form.body = FormatFields::of(w.format, w.template.as_deref());
                form.ordering = w.ordering;
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
            let mut rows = Vec::with_capacity(webhooks.len());
            for w in webhooks {
                match state.app.webhook_activity(w.id).await {
                    Ok(activity) => rows.push((w, activity)),
                    Err(e) => return super::error_response(e),
                }
            }
            let webhooks = rows;
            let health = match state.app.all_webhook_stats(Window::Day).await {
                Ok(health) => health,
                Err(e) => return super::error_response(e),
            };
            let model = PageModel {
                webhooks,
                health,
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
        .create_webhook_formatted(
            form.url.trim(),
            &form.events,
            secret,
            &form.header_changes(),
            form.max_per_second(),
            &WebhookOptions {
                format: form.body.request(),
                ordering: form.ordering(),
            },
        )
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
                header_names: Vec::new(),
                max_per_second: form.max_per_second,
                ordering: DeliveryOrder::parse(&form.ordering).unwrap_or_default(),
                body: form.body,
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
        headers: Some(form.header_changes()).filter(|c| !c.is_empty()),
        max_per_second: Some(form.max_per_second()),
        format: form.body.request(),
        ordering: Some(form.ordering()),
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
            let header_names = match state.app.custom_headers(&editing) {
                Ok(h) => h.names().map(str::to_owned).collect(),
                Err(e) => return super::error_response(e),
            };
            let model = FormModel {
                editing: Some(editing),
                url: form.url,
                events: form.events,
                secret: String::new(),
                header_names,
                max_per_second: form.max_per_second,
                ordering: DeliveryOrder::parse(&form.ordering).unwrap_or_default(),
                body: form.body,
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
    match lwh_delivery::send_ping(&state.app, &state.sender, id, lwh_delivery::PingKind::Test).await
    {
        Ok(r) => Json(json!({
            "delivered": r.outcome.delivered(),
            "status_code": r.outcome.status_code,
            "duration_ms": r.outcome.duration_ms,
            "error": r.outcome.error,
            "response_excerpt": r.outcome.response_excerpt,
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
            p.notice.notice-success #notice role="status" tabindex="-1" { (notice) }
        }
        @if let Some(e) = m.form.error("form") {
            p.notice.notice-error #form-error role="alert" tabindex="-1" { (e) }
        }
        (failed_banner(&m.webhooks, Timestamp::now()))
        @if m.form.editing.is_some() || m.usage.can_add() {
            (form_view(state, session, &m.form, catalogue))
        } @else {
            section.card.pro-notice #pro-notice {
                span.pro-badge { "Pro" }
                h2 { "You have used all " (m.usage.limit.unwrap_or_default()) " webhook slots" }
                p { "Learnomy Pro removes the 3-webhook cap so you can configure as many outgoing webhooks as needed. See the " a href="/admin/pro" { "Pro Features page" } "." }
            }
        }
        (table_view(session, &m.webhooks, &m.health, plan, catalogue))
    }
}

/// The banner naming every Failed webhook, with since when and why, so a broken endpoint is
/// seen on arrival rather than found in the table.
fn failed_banner(webhooks: &[(WebhookRecord, WebhookActivity)], now: Timestamp) -> Markup {
    let failed: Vec<_> = webhooks
        .iter()
        .filter(|(w, _)| w.status == WebhookStatus::Failed)
        .collect();
    html! {
        @if !failed.is_empty() {
            section.notice.notice-error #failed-banner role="alert" {
                h2 {
                    @if failed.len() == 1 { "1 webhook is Failed" }
                    @else { (failed.len()) " webhooks are Failed" }
                }
                ul {
                    @for (w, activity) in &failed {
                        li {
                            a href={"#row-" (w.id)} { span.mono { (truncate(&w.url, URL_SHOWN)) } }
                            " — failing since " (ago_markup(activity.failing_since.unwrap_or(w.status_changed_at), now))
                            @if let Some(reason) = &w.status_reason { ": " (reason) }
                            "."
                        }
                    }
                }
                p { "Their deliveries are held and each is probed regularly. Fix the endpoint, then press Test or Re-activate to release what they hold." }
            }
        }
    }
}

fn form_view(
    state: &ConsoleState,
    session: &Session,
    f: &FormModel,
    catalogue: &[CatalogueEntry],
) -> Markup {
    let event = preview_event(&f.events, catalogue);
    let preview = preview_text(state, &f.body, event);
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
                        value=(f.url) aria-describedby="url-help url-error" aria-invalid=[f.error("url").map(|_| "true")]
                        autofocus[f.error("url").is_some()];
                    p #url-help .help { "The HTTPS endpoint that will receive the POST." }
                    @if let Some(e) = f.error("url") { p #url-error .field-error role="alert" { (e) } }
                }
                fieldset.field.events {
                    legend { "Events to Send" }
                    label.select-all {
                        input #select-all type="checkbox" checked[all_checked]
                            autofocus[f.error("url").is_none() && f.error("events").is_some()];
                        " Select all"
                    }
                    @if let Some(e) = f.error("events") { p #events-error .field-error role="alert" { (e) } }
                    div.event-groups {
                        @for (group, entries) in &groups {
                            fieldset.event-group {
                                legend { (group) }
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
                fieldset.custom-headers #custom-headers aria-describedby="headers-help" {
                    legend { "Custom headers " span.muted { "(optional)" } }
                    p #headers-help .help { "Sent with every delivery, e.g. " code { "Authorization" } " for a receiver behind a login. At most 10. Values are encrypted and not shown again after saving." }
                    @for name in &f.header_names {
                        div.header-row.saved {
                            span.mono { (name) ": " span.muted { (MASK) } }
                            label { input type="checkbox" name="remove_header" value=(name); " Remove" }
                        }
                    }
                    @for i in 0..NEW_HEADER_ROWS {
                        div.header-row {
                            input.mono name="header_name" type="text" maxlength="64" placeholder="Header name" aria-label={"New header " (i + 1) " name"} autocomplete="off";
                            input.mono name="header_value" type="text" placeholder="Value" aria-label={"New header " (i + 1) " value"} autocomplete="off" data-one-time;
                        }
                    }
                    @if let Some(e) = f.header_error() { p #headers-error .field-error role="alert" { (e) } }
                }
                div.field {
                    label for="max_per_second" { "Max deliveries per second " span.muted { "(optional)" } }
                    input #max_per_second name="max_per_second" type="number" min="1" max="10000" step="1" inputmode="numeric"
                        value=(f.max_per_second) placeholder="Unlimited"
                        aria-describedby="max-per-second-help max-per-second-error" aria-invalid=[f.error("max_per_second").map(|_| "true")];
                    p #max-per-second-help .help { "For a receiver that cannot take bursts. Deliveries beyond the limit wait their turn; none is dropped. Leave blank for no limit." }
                    @if let Some(e) = f.error("max_per_second") { p #max-per-second-error .field-error role="alert" { (e) } }
                }
                (format_field(&f.body, (f.error("format"), f.error("template")), catalogue, event, &preview))
                div.field {
                    label for="ordering" { "Delivery order" }
                    select #ordering name="ordering" aria-describedby="ordering-help" {
                        @for o in DeliveryOrder::ALL {
                            option value=(o.as_str()) selected[f.ordering == o] { (o.label()) }
                        }
                    }
                    p #ordering-help .help { "In order per key: events with the same " code { "ordering_key" } " (e.g. " code { "user:7" } ") are sent one at a time, in the order they happened; the next waits until the previous is delivered or has failed for good. Different keys still go out in parallel." }
                }
                @if let Some(w) = &f.editing {
                    p.help { "The secret key of " span.mono { (truncate(&w.url, URL_SHOWN)) } " is preserved; editing does not change it." }
                } @else {
                    div.field {
                        label for="secret" { "Secret Key" }
                        div.secret-row {
                            input #secret .mono name="secret" type="text" value=(f.secret) spellcheck="false" autocomplete="off" data-one-time
                                aria-describedby="secret-help secret-error" aria-invalid=[f.error("secret").map(|_| "true")]
                                autofocus[f.error("url").is_none() && f.error("events").is_none() && f.error("secret").is_some()];
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
    webhooks: &[(WebhookRecord, WebhookActivity)],
    health: &BTreeMap<WebhookId, WindowStats>,
    plan: Plan,
    catalogue: &[CatalogueEntry],
) -> Markup {
    let now = Timestamp::now();
    html! {
        section.card aria-labelledby="table-title" {
            h2 #table-title { "Webhooks" }
            @if webhooks.is_empty() {
                p.empty { "No webhooks yet. Add one above to start sending events." }
            } @else {
                p.help #status-help {
                    strong { "Pause" } " holds deliveries (new and queued) until you Resume; nothing is lost. "
                    strong { "Disable" } " cancels the queued deliveries and sends nothing until you Re-activate. "
                    "A webhook whose deliveries keep failing becomes " strong { "Failed" } "; a successful Test re-activates it."
                }
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
                            @for (w, activity) in webhooks {
                                (row_view(session, w, activity, health.get(&w.id), plan, catalogue, now))
                            }
                        }
                    }
                }
            }
        }
    }
}

/// One webhook's row.
fn row_view(
    session: &Session,
    w: &WebhookRecord,
    activity: &WebhookActivity,
    health: Option<&WindowStats>,
    plan: Plan,
    catalogue: &[CatalogueEntry],
    now: Timestamp,
) -> Markup {
    html! {
        tr id={"row-" (w.id)} data-webhook=(w.id) {
            td.url data-label="URL" { span title=(w.url) { (wrappable_url(&truncate(&w.url, URL_SHOWN))) } }
            td data-label="Events" { (events_view(&w.events, plan, catalogue)) }
            td.status data-label="Status" {
                (status_view(w, activity, now)) (super::rotation::row_note(session, w, now))
                @if let Some(t) = w.throttle { p.status-note.throttle { "At most " (thousands(u64::from(t.per_second()))) " deliveries a second" } }
            }
            td.when data-label="Last Triggered" {
                (when(w.last_triggered_at))
                div.health { (sparkline(health)) }
            }
            td data-label="Actions" {
                div.row-actions {
                    a.button.small href={"/admin/webhooks?edit=" (w.id) "#webhook-form-card"} { "Edit" }
                    button.button.small type="button" data-test-url={"/admin/webhooks/" (w.id) "/test"} { "Test" }
                    @match w.status {
                        WebhookStatus::Active => { (pause_button(session, w)) (disable_button(session, w, activity)) }
                        WebhookStatus::Paused => { (status_button(session, w, "active", "Resume", "Send the held deliveries and new events again")) (disable_button(session, w, activity)) }
                        WebhookStatus::Disabled | WebhookStatus::Failed => { (status_button(session, w, "active", "Re-activate", "Send new events to this webhook again")) }
                    }
                    a.button.small href={"/admin/webhooks/" (w.id) "/rotate"} { "Rotate secret" }
                    @if plan.has_delivery_log() {
                        a.button.small href={"/admin/webhooks/" (w.id) "/log"} { "View log" }
                    }
                    form.inline method="post" action={"/admin/webhooks/" (w.id) "/delete"}
                        data-confirm={"Delete the webhook to " (w.url) "? This stops all future deliveries to that URL."} {
                        (csrf_field(session))
                        button.button.small.danger type="submit" { "Delete" }
                    }
                }
                p.test-result aria-live="polite" {}
            }
        }
    }
}

/// The event badges, or "All events" / "N events" with the list on demand when there are many.
fn events_view(events: &[String], plan: Plan, catalogue: &[CatalogueEntry]) -> Markup {
    let label_of = |slug: &str| {
        catalogue
            .iter()
            .find(|e| e.slug == slug)
            .map_or_else(|| slug.to_owned(), |e| e.label.clone())
    };
    let offered = catalogue
        .iter()
        .filter(|e| plan == Plan::Pro || !e.pro)
        .count();
    let badges = html! {
        ul.badges { @for e in events { li.badge.event title=(e) { (label_of(e)) } } }
    };
    html! {
        @if events.len() <= 3 {
            (badges)
        } @else {
            details.events-summary {
                summary {
                    @if events.len() >= offered { "All events" } @else { (events.len()) " events" }
                }
                (badges)
            }
        }
    }
}

/// The status badge and what the recent deliveries say: the last attempt's outcome, a failing
/// streak while still Active, the Failed reason, how many deliveries a Paused or Failed webhook
/// holds.
fn status_view(w: &WebhookRecord, activity: &WebhookActivity, now: Timestamp) -> Markup {
    let failing = activity.failing();
    let held = matches!(w.status, WebhookStatus::Paused | WebhookStatus::Failed);
    html! {
        (webhook_badge(w.status))
        @if failing && w.status == WebhookStatus::Active {
            " " span.badge.status-failing title="Recent deliveries failed; retries continue" { "Failing" }
        }
        @match (activity.last_attempt_at, failing) {
            (None, _) => { p.outcome.muted { "No deliveries yet" } }
            (Some(at), false) => { p.outcome.ok { "Last delivery succeeded · " (ago_markup(at, now)) } }
            (Some(at), true) => {
                p.outcome.bad {
                    "Last delivery failed"
                    @if let Some(f) = &activity.last_failure {
                        @match (f.status_code, &f.error) {
                            (Some(code), _) => { " · HTTP " (code) }
                            (None, Some(e)) => { " · " span title=(e) { (truncate(e, 60)) } }
                            (None, None) => {}
                        }
                    }
                    " · " (ago_markup(at, now))
                }
                @if let Some(since) = activity.failing_since {
                    p.status-note {
                        @if activity.failures_since_success == 1 { "1 failed attempt, " }
                        @else { (activity.failures_since_success) " failed attempts in a row, the first " }
                        (ago_markup(since, now))
                    }
                }
            }
        }
        @if w.status == WebhookStatus::Failed {
            p.status-note { "Failed since " (when(Some(w.status_changed_at)))
                @if let Some(reason) = &w.status_reason { ": " span title=(reason) { (truncate(reason, 120)) } } }
        }
        @if held {
            p.held {
                @if activity.queued == 0 { "Holding no deliveries" }
                @else if activity.queued > HELD_COUNT_CAP { "Holding " (thousands(HELD_COUNT_CAP)) "+ deliveries" }
                @else if activity.queued == 1 { "Holding 1 delivery" }
                @else { "Holding " (thousands(activity.queued)) " deliveries" }
            }
        }
    }
}

fn pause_button(session: &Session, w: &WebhookRecord) -> Markup {
    status_button(
        session,
        w,
        "paused",
        "Pause",
        "Hold deliveries until you Resume; nothing is lost",
    )
}

/// Disable asks first, saying what it cancels.
fn disable_button(session: &Session, w: &WebhookRecord, activity: &WebhookActivity) -> Markup {
    let queued = match activity.queued {
        0 => String::new(),
        1 => " Its 1 queued delivery is cancelled.".to_owned(),
        n if n > HELD_COUNT_CAP => format!(
            " Its {}+ queued deliveries are cancelled.",
            thousands(HELD_COUNT_CAP)
        ),
        n => format!(" Its {} queued deliveries are cancelled.", thousands(n)),
    };
    let confirm = format!(
        "Disable the webhook to {}?{queued} No events are sent to it until you re-activate it. \
         To stop for a while without losing anything, use Pause instead.",
        w.url
    );
    html! {
        form.inline method="post" action={"/admin/webhooks/" (w.id) "/status"} data-confirm=(confirm) {
            (csrf_field(session))
            input type="hidden" name="status" value="disabled";
            button.button.small type="submit" title="Cancel queued deliveries and send nothing until re-activated" { "Disable" }
        }
    }
}

fn status_button(
    session: &Session,
    w: &WebhookRecord,
    status: &str,
    label: &str,
    what: &str,
) -> Markup {
    html! {
        form.inline method="post" action={"/admin/webhooks/" (w.id) "/status"} {
            (csrf_field(session))
            input type="hidden" name="status" value=(status);
            button.button.small type="submit" title=(what) { (label) }
        }
    }
}

/// The CSRF check and the id parse every webhook action starts with, or the response
/// refusing the request.
pub(super) fn checked(session: &Session, csrf: &str, id: &str) -> Result<WebhookId, Box<Response>> {
    if !session.csrf_ok(csrf) {
        return Err(Box::new(Refusal::Csrf.into_response()));
    }
    id.parse::<WebhookId>()
        .map_err(|_| Box::new(super::error_response(AppError::NotFound("webhook"))))
}
