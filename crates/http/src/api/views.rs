//! What the API returns: response shapes, separate from storage records so nothing (the
//! sealed secret above all) leaves the server by accident.

use lwh_app::webhooks::Usage;
use std::collections::BTreeMap;

use lwh_domain::custom_headers::MASK;
use lwh_storage::{WebhookActivity, WebhookRecord};
use serde::Serialize;
use utoipa::ToSchema;

/// Learnomy's REST envelope: `{"data": …}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Data<T> {
    /// The payload.
    pub data: T,
}

impl<T> Data<T> {
    /// Wraps a value.
    pub fn new(data: T) -> Self {
        Self { data }
    }
}

/// A webhook as the API shows it. There is no secret field: the secret is only ever in
/// [`CreatedWebhookView`].
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookView {
    /// `wh_` + ULID.
    #[schema(example = "wh_01JDQ8V3W4X5Y6Z7A8B9C0D1E2")]
    pub id: String,
    /// The delivery URL.
    #[schema(example = "https://hooks.zapier.com/hooks/catch/123/abc/")]
    pub url: String,
    /// Subscribed event slugs.
    #[schema(example = json!(["course_completed", "certificate_issued"]))]
    pub events: Vec<String>,
    /// `active`, `paused`, `disabled` or `failed`.
    #[schema(example = "active")]
    pub status: &'static str,
    /// Why the webhook is Failed, when it is.
    pub status_reason: Option<String>,
    /// When the status last changed (RFC 3339).
    #[schema(format = DateTime)]
    pub status_changed_at: String,
    /// Start of the most recent delivery attempt (RFC 3339; while the webhook is healthy it may
    /// trail the newest attempt by up to a second), `null` if never.
    #[schema(format = DateTime)]
    pub last_triggered_at: Option<String>,
    /// Creation time (RFC 3339).
    #[schema(format = DateTime)]
    pub created_at: String,
    /// Last edit (RFC 3339).
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// During a secret rotation: when the previous secret stops signing and is destroyed
    /// (RFC 3339); `null` when no rotation is in progress.
    #[schema(format = DateTime)]
    pub rotation_ends_at: Option<String>,
    /// Its custom headers by name; values are never returned (shown as `••••••••`).
    #[schema(example = json!({"Authorization": "••••••••"}))]
    pub headers: BTreeMap<String, &'static str>,
    /// At most this many attempts a second; `null`: unlimited.
    #[schema(example = 50)]
    pub max_per_second: Option<u32>,
    /// The body format: `learnomy`, `slack`, `discord`, `teams`, `google_chat` or `template`.
    #[schema(example = "learnomy")]
    pub format: &'static str,
    /// The MiniJinja template, with `format` `template`; `null` otherwise.
    pub template: Option<String>,
    /// `none` or `by_key` (events with the same `ordering_key` one at a time, in order).
    #[schema(example = "none")]
    pub ordering: &'static str,
    /// What its recent deliveries say about the receiver.
    pub activity: ActivityView,
}

impl WebhookView {
    /// The webhook as the API shows it, with what its recent deliveries say.
    pub fn new<'a>(
        w: &WebhookRecord,
        activity: &WebhookActivity,
        header_names: impl Iterator<Item = &'a str>,
    ) -> Self {
        Self {
            id: w.id.to_string(),
            url: w.url.clone(),
            events: w.events.clone(),
            status: w.status.as_str(),
            status_reason: w.status_reason.clone(),
            status_changed_at: w.status_changed_at.to_rfc3339(),
            last_triggered_at: w.last_triggered_at.map(|t| t.to_rfc3339()),
            created_at: w.created_at.to_rfc3339(),
            updated_at: w.updated_at.to_rfc3339(),
            rotation_ends_at: w.rotation_ends_at.map(|t| t.to_rfc3339()),
            headers: header_names.map(|n| (n.to_owned(), MASK)).collect(),
            max_per_second: w.throttle.map(|t| t.per_second()),
            format: w.format.as_str(),
            template: w.template.clone(),
            ordering: w.ordering.as_str(),
            activity: ActivityView::from(activity),
        }
    }
}

/// What a webhook's recent deliveries say about its receiver — the Webhooks page's "Last
/// delivery failed · HTTP 500 · 2 min ago" and held count, for API clients such as the
/// WordPress plugin.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActivityView {
    /// Start of the most recent attempt, Test pings included (RFC 3339), `null` if never.
    #[schema(format = DateTime)]
    pub last_attempt_at: Option<String>,
    /// True when an attempt failed since the last success (retries may still deliver).
    pub failing: bool,
    /// The first failed attempt since the last success (RFC 3339), `null` when not failing.
    #[schema(format = DateTime)]
    pub failing_since: Option<String>,
    /// Failed attempts since the last success.
    pub failures_since_success: i64,
    /// While failing: the HTTP status the receiver last answered, if it answered.
    pub last_failure_status_code: Option<i64>,
    /// While failing: why the last failing delivery failed (timeout, connection refused…).
    pub last_failure_error: Option<String>,
    /// Deliveries waiting (pending or retrying): those a Paused or Failed webhook holds.
    /// Counting stops at 100,001.
    pub queued: u64,
}

impl From<&WebhookActivity> for ActivityView {
    fn from(a: &WebhookActivity) -> Self {
        Self {
            last_attempt_at: a.last_attempt_at.map(|t| t.to_rfc3339()),
            failing: a.failing(),
            failing_since: a.failing_since.map(|t| t.to_rfc3339()),
            failures_since_success: a.failures_since_success,
            last_failure_status_code: a.last_failure.as_ref().and_then(|f| f.status_code),
            last_failure_error: a.last_failure.as_ref().and_then(|f| f.error.clone()),
            queued: a.queued,
        }
    }
}

/// The answer to creating a webhook: the only response that carries the secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedWebhookView {
    /// The new webhook.
    #[serde(flatten)]
    pub webhook: WebhookView,
    /// The secret key. Store it now: it is never returned again.
    #[schema(example = "k3F9mQ2xV7pL0sT4wZ8cR1bN6yH5dJ2a")]
    pub secret: String,
}

/// Slot usage on the current plan.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsageView {
    /// Webhooks that exist.
    pub used: u64,
    /// The cap (3 on Free), `null` when unlimited.
    pub limit: Option<u64>,
    /// `free` or `pro`.
    #[schema(example = "free")]
    pub plan: &'static str,
}

impl From<Usage> for UsageView {
    fn from(u: Usage) -> Self {
        Self {
            used: u.used,
            limit: u.limit,
            plan: u.plan.as_str(),
        }
    }
}

/// The webhook list.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookList {
    /// Every webhook, oldest first.
    pub data: Vec<WebhookView>,
    /// Slot usage.
    pub usage: UsageView,
    /// Always `null`: the list is never paginated (Free has 3, Pro lists are small).
    pub next_cursor: Option<String>,
}
