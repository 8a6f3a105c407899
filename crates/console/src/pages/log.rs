//! The Pro Delivery Log: a webhook's deliveries, newest first, filtered without a page reload,
//! each with a detail view of its attempts and a Redeliver action.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::Form;
use base64::Engine as _;
use lwh_app::deliveries::DeliveryPage;
use lwh_app::AppError;
use lwh_domain::stats::Window;
use lwh_domain::{CatalogueEntry, DeliveryId, DeliveryStatus, WebhookId};
use lwh_storage::DeliverySummary;
use maud::{html, Markup};
use serde::Deserialize;

use crate::charts::chart;
use crate::layout::{csrf_field, delivery_badge, page, truncate, when, Section};
use crate::session::{Refusal, Session};
use crate::ConsoleState;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;
const PAGE: usize = 20;

/// Filter and cursor.
#[derive(Deserialize, Default)]
pub struct LogQuery {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    cursor: Option<String>,
    /// Set after a replay: how many deliveries were queued again.
    #[serde(default)]
    replayed: Option<u64>,
    /// The health chart's window: `24h` (default) or `7d`.
    #[serde(default)]
    window: Option<String>,
}

const WINDOWS: [(Window, &str); 2] = [
    (Window::Day, "Last 24 hours"),
    (Window::Week, "Last 7 days"),
];

const FILTERS: [(&str, &str); 5] = [
    ("", "All"),
    ("delivered", "Delivered"),
    ("failed", "Failed"),
    ("pending", "Pending"),
    ("retrying", "Retrying"),
];

fn pro_notice(session: &Session) -> Response {
    page(
        "Delivery Log",
        session,
        Section::Webhooks,
        html! {
            nav.breadcrumb aria-label="Breadcrumb" { a href="/admin/webhooks" { "Webhooks" } " / " span aria-current="page" { "Delivery Log" } }
            h1 { "Delivery Log" }
            section.card.pro-notice #pro-notice {
                span.pro-badge { "Pro" }
                h2 { "Webhook Delivery Log is a Pro feature" }
                p { "Available in Learnomy Pro: a per-webhook history of every outbound delivery, response code and retry, with redelivery. See the " a href="/admin/pro" { "Pro Features page" } "." }
            }
        },
    )
    .into_response()
}

async fn load_page(
    state: &ConsoleState,
    id: WebhookId,
    q: &LogQuery,
) -> Result<DeliveryPage, AppError> {
    let status = q
        .status
        .as_deref()
        .filter(|s| !s.is_empty())
        .and_then(DeliveryStatus::parse);
    let before = q
        .cursor
        .as_deref()
        .and_then(|c| B64.decode(c).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.parse::<DeliveryId>().ok());
    state.app.delivery_log(id, status, before, PAGE).await
}

/// The log page.
pub async fn show(
    State(state): State<ConsoleState>,
    session: Session,
    Path(id): Path<String>,
    Query(q): Query<LogQuery>,
) -> Response {
    if !state.app.settings().plan.has_delivery_log() {
        return pro_notice(&session);
    }
    let Ok(id) = id.parse::<WebhookId>() else {
        return super::error_response(AppError::NotFound("webhook"));
    };
    let webhook = match state.app.get_webhook(id).await {
        Ok(w) => w,
        Err(e) => return super::error_response(e),
    };
    let log = match load_page(&state, id, &q).await {
        Ok(p) => p,
        Err(e) => return super::error_response(e),
    };
    let window = q
        .window
        .as_deref()
        .and_then(Window::parse)
        .unwrap_or(Window::Day);
    let health = match state.app.webhook_stats(id, window).await {
        Ok(s) => s,
        Err(e) => return super::error_response(e),
    };
    let current = q.status.clone().unwrap_or_default();
    let rows_url = format!("/admin/webhooks/{id}/log/rows");
    page(
        "Delivery Log",
        &session,
        Section::Webhooks,
        html! {
            nav.breadcrumb aria-label="Breadcrumb" { a href="/admin/webhooks" { "Webhooks" } " / " span aria-current="page" { "Delivery Log" } }
            h1 { "Delivery Log" }
            @if let Some(n) = q.replayed {
                p.notice.notice-success #notice role="status" tabindex="-1" {
                    (n) @if n == 1 { " failed delivery was" } @else { " failed deliveries were" } " queued again."
                }
            }
            p.endpoint { "Endpoint: " span.mono title=(webhook.url) { (truncate(&webhook.url, 80)) } }
            section.card aria-labelledby="health-title" {
                div.card-header {
                    h2 #health-title { "Health" }
                    div.filters role="group" aria-label="Chart window" {
                        @for (w, label) in WINDOWS {
                            a.button.small href={"?window=" (w.as_str())}
                                aria-pressed=(if w == window { "true" } else { "false" }) { (label) }
                        }
                    }
                }
                (chart(&health))
            }
            div.filters role="group" aria-label="Filter deliveries" data-rows-url=(rows_url) {
                @for (value, label) in FILTERS {
                    a.button.small.filter href={"?status=" (value)} data-status=(value)
                        aria-pressed=(if value == current { "true" } else { "false" }) { (label) }
                }
            }
            section.card {
                div #log-rows { (rows_view(&log, &q, state.app.catalogue().entries())) }
            }
            (super::replay::form(id))
        },
    )
    .into_response()
}

/// The rows and pager alone, for the filters and paging without a reload.
pub async fn rows(
    State(state): State<ConsoleState>,
    _session: Session,
    Path(id): Path<String>,
    Query(q): Query<LogQuery>,
) -> Response {
    let Ok(id) = id.parse::<WebhookId>() else {
        return super::error_response(AppError::NotFound("webhook"));
    };
    match load_page(&state, id, &q).await {
        Ok(p) => rows_view(&p, &q, state.app.catalogue().entries()).into_response(),
        Err(e) => super::error_response(e),
    }
}

fn rows_view(log: &DeliveryPage, q: &LogQuery, catalogue: &[CatalogueEntry]) -> Markup {
    let status = q.status.clone().unwrap_or_default();
    html! {
        @if log.deliveries.is_empty() {
            p.empty { "No deliveries here yet." }
        } @else {
            div.table-wrap {
                table.log #log-table {
                    thead { tr {
                        th scope="col" { "Event time" }
                        th scope="col" { "Last attempt" }
                        th scope="col" { "Event" }
                        th scope="col" { "Status" }
                        th scope="col" { "Attempts" }
                        th scope="col" { "Response" }
                        th scope="col" { span.visually-hidden { "Details" } }
                    } }
                    tbody {
                        @for d in &log.deliveries { (row(d, catalogue)) }
                    }
                }
            }
        }
        div.pager {
            @if q.cursor.is_some() {
                a.button.small.page-link href={"?status=" (status)} data-cursor="" { "← Newest" }
            }
            @if let Some(next) = log.next_before {
                @let cursor = B64.encode(next.to_string());
                a.button.small.page-link #next-page href={"?status=" (status) "&cursor=" (cursor)} data-cursor=(cursor) { "Older →" }
            }
        }
    }
}

/// The event's label from the catalogue (the slug when it is not there).
fn event_label(catalogue: &[CatalogueEntry], slug: &str) -> String {
    catalogue
        .iter()
        .find(|e| e.slug == slug)
        .map_or_else(|| slug.to_owned(), |e| e.label.clone())
}

/// "3 attempts", counted one way everywhere: every attempt made, redeliveries included.
fn attempts_text(n: i64) -> String {
    match n {
        1 => "1 attempt".to_owned(),
        n => format!("{n} attempts"),
    }
}

fn row(d: &DeliverySummary, catalogue: &[CatalogueEntry]) -> Markup {
    html! {
        tr data-delivery=(d.id) {
            td.when { (when(Some(d.created_at))) }
            td.when { @match d.last_attempt_at { Some(at) => { (when(Some(at))) } None => { span.muted { "Not yet" } } } }
            td { span.badge.event title=(d.event) { (event_label(catalogue, &d.event)) } }
            td {
                (delivery_badge(d.status))
                @if d.series_start > 0 { " " span.badge.redelivered title="Sent again with Redeliver" { "Redelivered" } }
                @if d.waiting {
                    " " span.badge.waiting title={"Sent once the earlier delivery with ordering key " (d.ordering_key.as_deref().unwrap_or_default()) " is Delivered or Failed"} { "Waiting behind an earlier one" }
                }
            }
            td { (d.attempts) }
            td {
                @match d.last_status_code {
                    Some(code) => { span.code { "HTTP " (code) } }
                    None => { @if let Some(e) = &d.last_error { span.muted title=(e) { (truncate(e, 40)) } } @else { "—" } }
                }
            }
            td { a href={"/admin/deliveries/" (d.id)} { "Details" } }
        }
    }
}

/// One delivery: attempts, payload, Redeliver.
pub async fn detail(
    State(state): State<ConsoleState>,
    session: Session,
    Path(id): Path<String>,
) -> Response {
    if !state.app.settings().plan.has_delivery_log() {
        return pro_notice(&session);
    }
    let Ok(id) = id.parse::<DeliveryId>() else {
        return super::error_response(AppError::NotFound("delivery"));
    };
    let (d, payload, attempts) = match state.app.delivery(id).await {
        Ok(found) => found,
        Err(e) => return super::error_response(e),
    };
    let body = state.app.body_for(d.webhook_id, &payload).await;
    let pretty = serde_json::from_slice::<serde_json::Value>(&payload)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| String::from_utf8_lossy(&payload).into_owned());
    page(
        "Delivery",
        &session,
        Section::Webhooks,
        html! {
            nav.breadcrumb aria-label="Breadcrumb" {
                a href="/admin/webhooks" { "Webhooks" } " / "
                a href={"/admin/webhooks/" (d.webhook_id) "/log"} { "Delivery Log" } " / "
                span aria-current="page" { "Delivery" }
            }
            h1 { "Delivery " span.mono { (d.id) } }
            dl.facts {
                dt { "Event" } dd { (event_label(state.app.catalogue().entries(), &d.event)) " " span.mono.muted { (d.event) " · " (d.event_id) } }
                dt { "Status" } dd {
                    (delivery_badge(d.status)) " · " (attempts_text(d.attempts))
                    @if d.series_start > 0 {
                        " · " span.badge.redelivered { "Redelivered" }
                        " (attempts " (d.series_start + 1) " and later are the redelivery)"
                    }
                }
                dt { "Event time" } dd { (when(Some(d.created_at))) }
                dt { "Last attempt" } dd { (when(d.last_attempt_at)) }
                @if let Some(next) = d.next_attempt_at { dt { "Next attempt" } dd { (when(Some(next))) } }
                @if let Some(key) = &d.ordering_key {
                    dt { "Ordering key" } dd {
                        span.mono { (key) }
                        @if d.waiting {
                            " · " span.badge.waiting { "Waiting" }
                            " behind an earlier delivery with this key: it is sent once that one is Delivered or Failed."
                        }
                    }
                }
            }
            @if !d.status.is_queued() {
                form method="post" action={"/admin/deliveries/" (d.id) "/redeliver"} {
                    (csrf_field(&session))
                    button.button.button-primary type="submit" { "Redeliver" }
                }
            }
            section.card {
                h2 { "Attempts" }
                @if attempts.is_empty() { p.empty { "Not attempted yet." } } @else {
                    div.table-wrap { table #attempts-table {
                        thead { tr { th scope="col" { "#" } th scope="col" { "Started" } th scope="col" { "Duration" } th scope="col" { "Result" } th scope="col" { "Response excerpt" } } }
                        tbody { @for a in &attempts {
                            tr {
                                td { (a.number) }
                                td.when { (when(Some(a.started_at))) }
                                td { (a.duration_ms) " ms" }
                                td {
                                    @if let Some(code) = a.status_code { span.code { "HTTP " (code) } " " }
                                    @if a.status_code.is_none() {
                                        @if let Some(kind) = &a.error_kind { span.badge.delivery-failed { (kind) } }
                                        @if let Some(e) = &a.error { p.muted { (e) } }
                                    } @else if a.error_kind.is_none() { span.badge.delivery-delivered { "Delivered" } }
                                }
                                td { @if let Some(x) = &a.response_excerpt { pre.excerpt { (x) } } @else { "—" } }
                            }
                            @if a.request_headers.is_some() || a.response_headers.is_some() {
                                tr.attempt-headers {
                                    td colspan="5" {
                                        details {
                                            summary { "Headers of attempt " (a.number) }
                                            div.headers {
                                                div {
                                                    h3 { "Request headers" }
                                                    @if let Some(h) = &a.request_headers { pre.headers { (h) } } @else { p.muted { "No request was sent." } }
                                                }
                                                div {
                                                    h3 { "Response headers" }
                                                    @if let Some(h) = &a.response_headers { pre.headers { (h) } } @else { p.muted { "No answer came." } }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        } }
                    } }
                }
            }
            @if let Some(body) = &body {
                section.card #body-sent {
                    h2 { "Body sent" }
                    p.help { "This webhook's body format turns the payload below into this body (shown with its current format)." }
                    pre.payload { (body) }
                }
            }
            section.card {
                h2 { "Payload" }
                pre.payload { (pretty) }
            }
        },
    )
    .into_response()
}

/// Redeliver form.
#[derive(Deserialize)]
pub struct RedeliverForm {
    #[serde(default, rename = "_csrf")]
    csrf: String,
}

/// Queues the delivery again and returns to its page.
pub async fn redeliver(
    State(state): State<ConsoleState>,
    session: Session,
    Path(id): Path<String>,
    Form(form): Form<RedeliverForm>,
) -> Response {
    if !session.csrf_ok(&form.csrf) {
        return Refusal::Csrf.into_response();
    }
    let Ok(id) = id.parse::<DeliveryId>() else {
        return super::error_response(AppError::NotFound("delivery"));
    };
    match state.app.redeliver(id).await {
        Ok(_) => Redirect::to(&format!("/admin/deliveries/{id}")).into_response(),
        Err(e) => super::error_response(e),
    }
}
