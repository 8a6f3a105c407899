//! `POST /api/v1/events` and `/events/batch`: ingestion for the LMS.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use lwh_app::ingest::IncomingEvent;
use lwh_storage::IngestOutcome;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::views::Data;
use crate::auth::{Authorized, Ingest};
use crate::error::{ApiError, Problem};
use crate::json::StrictJson;
use crate::AppState;

/// An LMS event.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventRequest {
    /// Catalogue slug, e.g. `course_completed`.
    #[schema(example = "course_completed")]
    pub event: String,
    /// Event data, copied into the payload's `data`.
    #[serde(default = "empty_object")]
    #[schema(value_type = Object, example = json!({"enrollment_id": 9, "user_id": 7, "course_id": 42}))]
    pub data: serde_json::Value,
    /// Repeating a key within 24 h returns the first event and creates nothing.
    #[serde(default)]
    pub idempotency_key: Option<String>,
    /// Webhooks with `ordering` `by_key` receive the events with the same key (1–128
    /// characters, e.g. `user:7`) one at a time, in acceptance order.
    #[serde(default)]
    #[schema(example = "user:7")]
    pub ordering_key: Option<String>,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(Default::default())
}

impl From<EventRequest> for IncomingEvent {
    fn from(e: EventRequest) -> Self {
        Self {
            event: e.event,
            data: e.data,
            idempotency_key: e.idempotency_key,
            ordering_key: e.ordering_key,
        }
    }
}

/// Up to 500 events, accepted all or none.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// The events, in order.
    pub events: Vec<EventRequest>,
}

/// An accepted event.
#[derive(Debug, Serialize, ToSchema)]
pub struct AcceptedEvent {
    /// `evt_…` (the first event's id for a repeated idempotency key).
    #[schema(example = "evt_01JDQ8V3W4X5Y6Z7A8B9C0D1E2")]
    pub id: String,
    /// Deliveries created (one per subscribed, non-Disabled webhook).
    pub deliveries: u64,
}

impl From<&IngestOutcome> for AcceptedEvent {
    fn from(o: &IngestOutcome) -> Self {
        Self {
            id: o.event_id.to_string(),
            deliveries: o.deliveries,
        }
    }
}

/// Reports one event. It and its deliveries are stored before the answer.
#[utoipa::path(
    post,
    path = "/api/v1/events",
    tag = "events",
    security(("bearer" = [])),
    request_body = EventRequest,
    responses(
        (status = 202, description = "Accepted and stored", body = Data<AcceptedEvent>),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or unknown token", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over 256 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`unknown_event` or `validation_failed`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Storage unavailable; retry after `Retry-After`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn ingest_event(
    _auth: Authorized<Ingest>,
    State(state): State<AppState>,
    StrictJson(body): StrictJson<EventRequest>,
) -> Result<(StatusCode, Json<Data<AcceptedEvent>>), ApiError> {
    let outcomes = state.app.ingest(vec![body.into()], false).await?;
    let first = outcomes.first().ok_or_else(|| {
        ApiError::from(lwh_app::AppError::Internal(
            "ingest returned nothing".into(),
        ))
    })?;
    Ok((StatusCode::ACCEPTED, Json(Data::new(first.into()))))
}

/// Reports up to 500 events in one transaction, answered in input order.
#[utoipa::path(
    post,
    path = "/api/v1/events/batch",
    tag = "events",
    security(("bearer" = [])),
    request_body = BatchRequest,
    responses(
        (status = 202, description = "All accepted and stored", body = Data<Vec<AcceptedEvent>>),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or unknown token", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over 256 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "One event is invalid (its index is named); none was accepted", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Storage unavailable; retry after `Retry-After`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn ingest_batch(
    _auth: Authorized<Ingest>,
    State(state): State<AppState>,
    StrictJson(body): StrictJson<BatchRequest>,
) -> Result<(StatusCode, Json<Data<Vec<AcceptedEvent>>>), ApiError> {
    let events = body.events.into_iter().map(Into::into).collect();
    let outcomes = state.app.ingest(events, true).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Data::new(outcomes.iter().map(Into::into).collect())),
    ))
}
