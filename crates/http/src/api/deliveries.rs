//! The delivery log (Pro), redelivery, recovery, and the Test button.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use base64::Engine as _;
use lwh_domain::{DeliveryId, DeliveryStatus, Timestamp};
use lwh_storage::{AttemptRow, DeliverySummary};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::views::Data;
use crate::api::webhooks::parse_id;
use crate::auth::{Authorized, Manage};
use crate::error::{ApiError, Problem};
use crate::json::StrictJson;
use crate::AppState;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Log filters and paging.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LogQuery {
    /// `delivered`, `failed`, `pending` or `retrying`; all when absent.
    pub status: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1–100 (default 25).
    pub limit: Option<u32>,
}

/// A delivery in the log.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    /// `dlv_…` (the `X-Learnomy-Delivery` header).
    pub id: String,
    /// `wh_…`
    pub webhook_id: String,
    /// `evt_…`
    pub event_id: String,
    /// Event slug.
    pub event: String,
    /// `pending`, `retrying`, `delivered` or `failed`.
    pub status: &'static str,
    /// Attempts made.
    pub attempts: i64,
    /// Failed attempts so far in the current series.
    pub retry_count: i64,
    /// HTTP status of the latest attempt.
    pub response_code: Option<i64>,
    /// Error of the latest attempt, or why it was cancelled.
    pub error: Option<String>,
    /// When the next attempt is due (RFC 3339).
    #[schema(format = DateTime)]
    pub next_attempt_at: Option<String>,
    /// Attempts made before the current series: a Redeliver starts a new series, so a
    /// delivery with `series_start` > 0 was redelivered and attempts `series_start + 1` and
    /// later are the redelivery's. 0 if never redelivered.
    pub series_start: i64,
    /// Start of the latest attempt (RFC 3339), `null` before the first.
    #[schema(format = DateTime)]
    pub last_attempt_at: Option<String>,
    /// Creation time, which is the event's time (RFC 3339).
    #[schema(format = DateTime)]
    pub created_at: String,
    /// Last change (RFC 3339).
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// The event's `ordering_key`, for a delivery to a `by_key` webhook; `null` otherwise.
    pub ordering_key: Option<String>,
    /// True while the delivery waits for an earlier delivery with the same ordering key to be
    /// Delivered or Failed (it is then `pending`, with no `next_attempt_at`).
    pub waiting: bool,
}

impl From<&DeliverySummary> for DeliveryView {
    fn from(d: &DeliverySummary) -> Self {
        Self {
            id: d.id.to_string(),
            webhook_id: d.webhook_id.to_string(),
            event_id: d.event_id.to_string(),
            event: d.event.clone(),
            status: d.status.as_str(),
            attempts: d.attempts,
            retry_count: d.retry_count,
            response_code: d.last_status_code,
            error: d.last_error.clone(),
            next_attempt_at: d.next_attempt_at.map(Timestamp::to_rfc3339),
            series_start: d.series_start,
            last_attempt_at: d.last_attempt_at.map(Timestamp::to_rfc3339),
            created_at: d.created_at.to_rfc3339(),
            updated_at: d.updated_at.to_rfc3339(),
            ordering_key: d.ordering_key.clone(),
            waiting: d.waiting,
        }
    }
}

/// One attempt.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptView {
    /// 1-based number.
    pub number: i64,
    /// Start time (RFC 3339).
    #[schema(format = DateTime)]
    pub started_at: String,
    /// Duration in milliseconds.
    pub duration_ms: i64,
    /// HTTP status, if an answer came.
    pub status_code: Option<i64>,
    /// `timeout`, `connect`, `dns`, `tls`, `blocked`, `http_status` or `template` (the
    /// webhook's template failed; nothing was sent).
    pub error_kind: Option<String>,
    /// Error detail.
    pub error: Option<String>,
    /// First 2 KiB of the response body.
    pub response_excerpt: Option<String>,
    /// The request's headers as sent, by lower-case name (`null` when no request was made).
    #[schema(value_type = Option<Object>, example = json!({"content-type": "application/json", "x-learnomy-event": "course_completed"}))]
    pub request_headers: Option<BTreeMap<String, String>>,
    /// The response's headers, by lower-case name; a repeated header's values joined by `, `
    /// (`null` without an answer; at most 4 KiB are kept).
    #[schema(value_type = Option<Object>, example = json!({"content-type": "text/plain"}))]
    pub response_headers: Option<BTreeMap<String, String>>,
}

/// Header lines as stored (`name: value` per line) as an object.
fn header_object(lines: Option<&str>) -> Option<BTreeMap<String, String>> {
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in lines?.lines().filter_map(|l| l.split_once(": ")) {
        headers
            .entry(name.to_owned())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(value);
            })
            .or_insert_with(|| value.to_owned());
    }
    Some(headers)
}

impl From<&AttemptRow> for AttemptView {
    fn from(a: &AttemptRow) -> Self {
        Self {
            number: a.number,
            started_at: a.started_at.to_rfc3339(),
            duration_ms: a.duration_ms,
            status_code: a.status_code,
            error_kind: a.error_kind.clone(),
            error: a.error.clone(),
            response_excerpt: a.response_excerpt.clone(),
            request_headers: header_object(a.request_headers.as_deref()),
            response_headers: header_object(a.response_headers.as_deref()),
        }
    }
}

/// A delivery with its attempts and payload.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryDetail {
    /// The delivery.
    #[serde(flatten)]
    pub delivery: DeliveryView,
    /// The exact body POSTed, as JSON.
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    /// Every attempt, oldest first.
    pub attempts_log: Vec<AttemptView>,
    /// When the webhook's format is not `learnomy`: the body it POSTs for this payload
    /// (rendered with its current format); `null` when the payload itself is the body.
    pub body: Option<String>,
}

/// A page of the log.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryList {
    /// Newest first.
    pub data: Vec<DeliveryView>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// Recovery request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecoverRequest {
    /// Redeliver Failed deliveries created at or after this time (RFC 3339).
    #[schema(example = "2026-11-27T00:00:00Z")]
    pub since: String,
    /// …and before this time (RFC 3339), after `since`; up to now when omitted.
    #[serde(default)]
    #[schema(example = "2026-11-28T00:00:00Z")]
    pub until: Option<String>,
}

/// Recovery result.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecoverResult {
    /// Deliveries queued again.
    pub redelivered: u64,
}

/// The Test button's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct TestResult {
    /// True for a 2xx answer.
    pub delivered: bool,
    /// HTTP status, if an answer came.
    pub status_code: Option<u16>,
    /// How long the attempt took.
    pub duration_ms: i64,
    /// What went wrong, if anything.
    pub error: Option<String>,
}

fn delivery_id(text: &str) -> Result<DeliveryId, ApiError> {
    text.parse().map_err(|_| ApiError::not_found("delivery"))
}

/// A 422 naming `field`.
pub(super) fn field(field: &str, message: &str) -> ApiError {
    ApiError::validation(vec![lwh_domain::FieldError::new(field, message)])
}

/// The delivery log of one webhook (Pro), newest first.
#[utoipa::path(
    get,
    path = "/api/v1/webhooks/{id}/deliveries",
    tag = "deliveries",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Webhook id (`wh_…`)"), LogQuery),
    responses(
        (status = 200, description = "A page of deliveries", body = DeliveryList),
        (status = 401, description = "No or unknown token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`pro_required` on Free, or token scope too narrow", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such webhook", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad filter, cursor or limit", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn list_deliveries(
    _auth: Authorized<Manage>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<LogQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<DeliveryList>, ApiError> {
    let id = parse_id(&id)?;
    let Query(q) = query.map_err(|e| field("query", &e.body_text()))?;
    let status = match q.status.as_deref() {
        None | Some("") | Some("all") => None,
        Some(s) => Some(
            DeliveryStatus::parse(s)
                .ok_or_else(|| field("status", "must be delivered, failed, pending or retrying"))?,
        ),
    };
    let before = match q.cursor.as_deref() {
        None | Some("") => None,
        Some(c) => Some(
            B64.decode(c)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| s.parse::<DeliveryId>().ok())
                .ok_or_else(|| field("cursor", "is not a cursor from this API"))?,
        ),
    };
    let limit = match q.limit {
        None => 25,
        Some(n @ 1..=100) => n as usize,
        Some(_) => return Err(field("limit", "must be between 1 and 100")),
    };
    let page = state.app.delivery_log(id, status, before, limit).await?;
    Ok(Json(DeliveryList {
        data: page.deliveries.iter().map(DeliveryView::from).collect(),
        next_cursor: page.next_before.map(|d| B64.encode(d.to_string())),
    }))
}

/// One delivery with its attempts and payload (Pro).
#[utoipa::path(
    get,
    path = "/api/v1/deliveries/{id}",
    tag = "deliveries",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Delivery id (`dlv_…`)")),
    responses(
        (status = 200, description = "The delivery", body = Data<DeliveryDetail>),
        (status = 401, description = "No or unknown token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`pro_required` on Free, or token scope too narrow", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such delivery", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn get_delivery(
    _auth: Authorized<Manage>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Data<DeliveryDetail>>, ApiError> {
    let (summary, payload, attempts) = state.app.delivery(delivery_id(&id)?).await?;
    let body = state.app.body_for(summary.webhook_id, &payload).await;
    Ok(Json(Data::new(DeliveryDetail {
        delivery: DeliveryView::from(&summary),
        payload: serde_json::from_slice(&payload).unwrap_or(serde_json::Value::Null),
        attempts_log: attempts.iter().map(AttemptView::from).collect(),
        body,
    })))
}

/// Queues a finished delivery for a new series of attempts (Pro).
#[utoipa::path(
    post,
    path = "/api/v1/deliveries/{id}/redeliver",
    tag = "deliveries",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Delivery id (`dlv_…`)")),
    responses(
        (status = 202, description = "Queued again", body = Data<DeliveryView>),
        (status = 401, description = "No or unknown token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`pro_required` on Free, or token scope too narrow", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such delivery", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The delivery is still queued", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn redeliver(
    _auth: Authorized<Manage>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Data<DeliveryView>>), ApiError> {
    let summary = state.app.redeliver(delivery_id(&id)?).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Data::new(DeliveryView::from(&summary))),
    ))
}

/// Redelivers every Failed delivery of the webhook created in a time window (Pro): `since`,
/// and `until` (up to now when omitted).
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/{id}/recover",
    tag = "deliveries",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Webhook id (`wh_…`)")),
    request_body = RecoverRequest,
    responses(
        (status = 202, description = "Queued again", body = Data<RecoverResult>),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or unknown token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`pro_required` on Free, or token scope too narrow", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such webhook", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over 256 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`since` or `until` is not RFC 3339, or `until` is not after `since`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn recover(
    _auth: Authorized<Manage>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    StrictJson(body): StrictJson<RecoverRequest>,
) -> Result<(StatusCode, Json<Data<RecoverResult>>), ApiError> {
    let id = parse_id(&id)?;
    let since = Timestamp::parse_rfc3339(&body.since).ok_or_else(|| {
        field(
            "since",
            "must be an RFC 3339 date-time, e.g. 2026-11-27T00:00:00Z",
        )
    })?;
    let until = body
        .until
        .as_deref()
        .map(|text| {
            Timestamp::parse_rfc3339(text).ok_or_else(|| {
                field(
                    "until",
                    "must be an RFC 3339 date-time, e.g. 2026-11-28T00:00:00Z",
                )
            })
        })
        .transpose()?;
    let redelivered = state.app.recover(id, since, until).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Data::new(RecoverResult { redelivered })),
    ))
}

/// Sends a `ping` to the webhook now and answers with the outcome; the attempt is logged and
/// sets Last Triggered. A 2xx re-activates a Failed webhook.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/{id}/test",
    tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Webhook id (`wh_…`)")),
    responses(
        (status = 200, description = "The test was sent (or refused by the URL policy); see `delivered`", body = Data<TestResult>),
        (status = 401, description = "No or unknown token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Token scope too narrow", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such webhook", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn test_webhook(
    _auth: Authorized<Manage>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Data<TestResult>>, ApiError> {
    let id = parse_id(&id)?;
    let result =
        lwh_delivery::send_ping(&state.app, &state.sender, id, lwh_delivery::PingKind::Test)
            .await?;
    let o = result.outcome;
    Ok(Json(Data::new(TestResult {
        delivered: o.delivered(),
        status_code: o.status_code,
        duration_ms: o.duration_ms,
        error: o.error,
    })))
}
