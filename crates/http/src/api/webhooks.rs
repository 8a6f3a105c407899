//! `/api/v1/webhooks`: list, create, get, edit, delete.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use lwh_app::formats::FormatRequest;
use lwh_app::webhooks::{WebhookEdit, WebhookOptions};
use lwh_domain::ordering::DeliveryOrder;
use lwh_domain::{WebhookId, WebhookStatus};
use lwh_storage::WebhookRecord;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::api::views::{CreatedWebhookView, Data, WebhookList, WebhookView};
use crate::auth::{Authorized, Manage};
use crate::error::{ApiError, Problem};
use crate::json::StrictJson;
use crate::AppState;

/// Creating a webhook.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhookRequest {
    /// Absolute https:// URL, at most 2048 characters, no user name or password; it must pass
    /// the SSRF policy.
    #[schema(example = "https://hooks.zapier.com/hooks/catch/123/abc/")]
    pub url: String,
    /// Event slugs from the catalogue (at least one).
    #[schema(example = json!(["course_completed"]))]
    pub events: Vec<String>,
    /// Your own secret (16–128 printable ASCII characters); omit it to get a random
    /// 32-character key.
    #[serde(default)]
    pub secret: Option<String>,
    /// Extra request headers sent on every attempt (at most 10), e.g. `Authorization` for a
    /// receiver behind auth. Values are encrypted at rest and never returned.
    #[serde(default)]
    #[schema(example = json!({"Authorization": "Bearer s3cr3t"}))]
    pub headers: Option<BTreeMap<String, String>>,
    /// At most this many attempts a second (1–10000); deliveries beyond it wait, nothing is
    /// dropped. Omit or `null` for unlimited.
    #[serde(default)]
    #[schema(example = 50, minimum = 1, maximum = 10000)]
    pub max_per_second: Option<i64>,
    /// The body format: `learnomy` (default: the signed Learnomy payload), `slack`,
    /// `discord`, `teams`, `google_chat` (the body that app's incoming webhooks accept, with a
    /// readable sentence per event) or `template`.
    #[serde(default)]
    #[schema(example = "slack")]
    pub format: Option<String>,
    /// With `format` `template`: a MiniJinja template over the event (`id`, `event`,
    /// `created_at`, `site_url`, `data`, `label`, `sentence`, `link`); values are inserted as
    /// JSON. Checked when saved (`422` naming `template` with the line).
    #[serde(default)]
    #[schema(example = "{\"text\": {{ sentence }}}")]
    pub template: Option<String>,
    /// `none` (default: no order promised) or `by_key`: events with the same `ordering_key`
    /// are delivered one at a time, in acceptance order.
    #[serde(default)]
    pub ordering: Option<OrderingName>,
}

/// A webhook's delivery order.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderingName {
    /// No order is promised; deliveries go out in parallel.
    None,
    /// Events with the same `ordering_key` go out one at a time, in acceptance order; the
    /// next waits until the previous is Delivered or Failed for good.
    ByKey,
}

impl From<OrderingName> for DeliveryOrder {
    fn from(o: OrderingName) -> Self {
        match o {
            OrderingName::None => DeliveryOrder::Unordered,
            OrderingName::ByKey => DeliveryOrder::ByKey,
        }
    }
}

/// A status an admin may set.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AdminStatus {
    /// Deliver (also re-activates a Failed webhook and releases what it held).
    Active,
    /// Hold new and queued deliveries until resumed.
    Paused,
    /// Skip new events and cancel queued deliveries.
    Disabled,
}

impl From<AdminStatus> for WebhookStatus {
    fn from(s: AdminStatus) -> Self {
        match s {
            AdminStatus::Active => WebhookStatus::Active,
            AdminStatus::Paused => WebhookStatus::Paused,
            AdminStatus::Disabled => WebhookStatus::Disabled,
        }
    }
}

/// Editing a webhook: send only what changes. The secret cannot be changed (delete and
/// re-create the webhook for a new one).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhookRequest {
    /// New delivery URL.
    #[serde(default)]
    pub url: Option<String>,
    /// New event list (replaces the old one).
    #[serde(default)]
    pub events: Option<Vec<String>>,
    /// New status.
    #[serde(default)]
    pub status: Option<AdminStatus>,
    /// Custom header changes: a value adds or replaces that header, `null` removes it; headers
    /// not named are kept.
    #[serde(default)]
    #[schema(example = json!({"Authorization": "Bearer n3w", "X-Old": null}))]
    pub headers: Option<BTreeMap<String, Option<String>>>,
    /// New throttle in attempts a second (1–10000); `null` removes it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>, example = 50, minimum = 1, maximum = 10000)]
    pub max_per_second: Option<Option<i64>>,
    /// New body format; another format than `template` drops the stored template.
    #[serde(default)]
    pub format: Option<String>,
    /// New template (the format must be, or become, `template`).
    #[serde(default)]
    pub template: Option<String>,
    /// New delivery order; leaving `by_key` sends every waiting delivery at once.
    #[serde(default)]
    pub ordering: Option<OrderingName>,
}

/// A field that may be sent as `null` on purpose: `Some(None)` when it is, `None` when the
/// field is absent (with `#[serde(default)]`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// The webhook as the API shows it: with its activity and its custom headers' names.
pub(super) async fn view(
    state: &AppState,
    webhook: &WebhookRecord,
) -> Result<WebhookView, ApiError> {
    let activity = state.app.webhook_activity(webhook.id).await?;
    let headers = state.app.custom_headers(webhook)?;
    Ok(WebhookView::new(webhook, &activity, headers.names()))
}

/// A webhook id from the path; a malformed one is simply not found.
pub(super) fn parse_id(text: &str) -> Result<WebhookId, ApiError> {
    text.parse().map_err(|_| ApiError::not_found("webhook"))
}

/// Every webhook, with the plan's slot usage.
#[utoipa::path(
    get,
    path = "/api/v1/webhooks",
    tag = "webhooks",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "All webhooks", body = WebhookList),
        (status = 401, description = "No or unknown token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Token scope too narrow", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn list_webhooks(
    _auth: Authorized<Manage>,
    State(state): State<AppState>,
) -> Result<Json<WebhookList>, ApiError> {
    let (webhooks, usage) = state.app.list_webhooks().await?;
    let mut data = Vec::with_capacity(webhooks.len());
    for webhook in &webhooks {
        data.push(view(&state, webhook).await?);
    }
    Ok(Json(WebhookList {
        data,
        usage: usage.into(),
        next_cursor: None,
    }))
}

/// Creates a webhook. The response is the only one that contains the secret.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks",
    tag = "webhooks",
    security(("bearer" = [])),
    request_body = CreateWebhookRequest,
    responses(
        (status = 201, description = "Created; `secret` is shown this once", body = Data<CreatedWebhookView>),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or unknown token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`plan_limit_reached` on Free with 3 webhooks, or token scope too narrow", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over 256 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed` or `url_not_allowed`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn create_webhook(
    _auth: Authorized<Manage>,
    State(state): State<AppState>,
    StrictJson(body): StrictJson<CreateWebhookRequest>,
) -> Result<(StatusCode, Json<Data<CreatedWebhookView>>), ApiError> {
    let created = state
        .app
        .create_webhook_formatted(
            &body.url,
            &body.events,
            body.secret.as_deref(),
            &body
                .headers
                .unwrap_or_default()
                .into_iter()
                .map(|(name, value)| (name, Some(value)))
                .collect::<Vec<_>>(),
            body.max_per_second,
            &WebhookOptions {
                format: FormatRequest {
                    format: body.format,
                    template: body.template,
                },
                ordering: body.ordering.map(Into::into).unwrap_or_default(),
            },
        )
        .await?;
    let view = CreatedWebhookView {
        // New: no attempt yet, nothing queued.
        webhook: view(&state, &created.webhook).await?,
        secret: created.secret.expose().to_owned(),
    };
    Ok((StatusCode::CREATED, Json(Data::new(view))))
}

/// One webhook (never its secret).
#[utoipa::path(
    get,
    path = "/api/v1/webhooks/{id}",
    tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Webhook id (`wh_…`)")),
    responses(
        (status = 200, description = "The webhook", body = Data<WebhookView>),
        (status = 401, description = "No or unknown token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Token scope too narrow", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such webhook", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn get_webhook(
    _auth: Authorized<Manage>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Data<WebhookView>>, ApiError> {
    let webhook = state.app.get_webhook(parse_id(&id)?).await?;
    Ok(Json(Data::new(view(&state, &webhook).await?)))
}

/// Changes the URL, the events and/or the status. The secret is preserved.
#[utoipa::path(
    patch,
    path = "/api/v1/webhooks/{id}",
    tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Webhook id (`wh_…`)")),
    request_body = UpdateWebhookRequest,
    responses(
        (status = 200, description = "The updated webhook", body = Data<WebhookView>),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or unknown token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Token scope too narrow", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such webhook", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over 256 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed` or `url_not_allowed`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn update_webhook(
    _auth: Authorized<Manage>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    StrictJson(body): StrictJson<UpdateWebhookRequest>,
) -> Result<Json<Data<WebhookView>>, ApiError> {
    let id = parse_id(&id)?;
    let edit = WebhookEdit {
        url: body.url,
        events: body.events,
        status: body.status.map(Into::into),
        headers: body.headers.map(|h| h.into_iter().collect()),
        max_per_second: body.max_per_second,
        format: FormatRequest {
            format: body.format,
            template: body.template,
        },
        ordering: body.ordering.map(Into::into),
    };
    let webhook = state.app.update_webhook(id, edit).await?;
    Ok(Json(Data::new(view(&state, &webhook).await?)))
}

/// Deletes a webhook and cancels everything queued for it.
#[utoipa::path(
    delete,
    path = "/api/v1/webhooks/{id}",
    tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Webhook id (`wh_…`)")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No or unknown token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Token scope too narrow", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such webhook", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn delete_webhook(
    _auth: Authorized<Manage>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.app.delete_webhook(parse_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
