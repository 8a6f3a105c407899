//! `/api/v1/webhooks/{id}/stats`: how an endpoint has been doing over the last day or week,
//! from hourly counters (cheap whatever the number of attempts).

use axum::extract::{Path, Query, State};
use axum::Json;
use lwh_domain::stats::{Window, WindowStats, HOUR_MS};
use lwh_domain::{Timestamp, WebhookId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::deliveries::field;
use crate::api::views::Data;
use crate::api::webhooks::parse_id;
use crate::auth::{Authorized, Manage};
use crate::error::{ApiError, Problem};
use crate::AppState;

/// Which window.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StatsQuery {
    /// `24h` (default) or `7d`.
    pub window: Option<String>,
}

/// A webhook's attempts over a window, counted by the hour the attempt started in.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatsView {
    /// `wh_…`
    pub webhook_id: String,
    /// `24h` or `7d`.
    pub window: &'static str,
    /// Start of the window's first hour (RFC 3339).
    #[schema(format = DateTime)]
    pub from: String,
    /// End of its last hour, the current one (RFC 3339).
    #[schema(format = DateTime)]
    pub until: String,
    /// Attempts started in the window (Tests and probes included).
    pub attempts: i64,
    /// Attempts answered with a 2xx.
    pub succeeded: i64,
    /// Attempts that were not (an error status, a timeout, no connection…).
    pub failed: i64,
    /// `succeeded / attempts` (0–1), `null` without attempts.
    pub success_rate: Option<f64>,
    /// Median attempt duration in ms, as the upper bound of its histogram bucket (1, 2, 3, 5,
    /// 7, 10, 15, 20, 30, 50, 70, 100, 150, 200, 300, 500, 700 ms, 1, 1.5, 2, 3, 5, 7, 10,
    /// 15, 20, 30, 60 s); `null` without attempts.
    pub p50_ms: Option<i64>,
    /// 95th percentile duration in ms, the same way.
    pub p95_ms: Option<i64>,
    /// Every hour of the window, oldest first (24 or 168), hours without attempts included.
    pub hours: Vec<HourView>,
}

/// One hour of the window.
#[derive(Debug, Serialize, ToSchema)]
pub struct HourView {
    /// Start of the hour (RFC 3339).
    #[schema(format = DateTime)]
    pub hour: String,
    /// Attempts that succeeded.
    pub succeeded: i64,
    /// Attempts that failed.
    pub failed: i64,
}

impl StatsView {
    fn new(webhook: WebhookId, s: &WindowStats) -> Self {
        let first = s.hours.first().map_or(0, |h| h.hour);
        let end = s.hours.last().map_or(first, |h| h.hour + HOUR_MS);
        Self {
            webhook_id: webhook.to_string(),
            window: s.window.as_str(),
            from: Timestamp::from_millis(first).to_rfc3339(),
            until: Timestamp::from_millis(end).to_rfc3339(),
            attempts: s.attempts,
            succeeded: s.succeeded,
            failed: s.failed,
            success_rate: s.success_rate,
            p50_ms: s.p50_ms,
            p95_ms: s.p95_ms,
            hours: s
                .hours
                .iter()
                .map(|h| HourView {
                    hour: Timestamp::from_millis(h.hour).to_rfc3339(),
                    succeeded: h.succeeded,
                    failed: h.failed,
                })
                .collect(),
        }
    }
}

/// A webhook's health over the last 24 hours or 7 days: attempts, success rate, p50/p95
/// duration and counts per hour (every plan).
#[utoipa::path(
    get,
    path = "/api/v1/webhooks/{id}/stats",
    tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Webhook id (`wh_…`)"), StatsQuery),
    responses(
        (status = 200, description = "The window's figures", body = Data<StatsView>),
        (status = 401, description = "No or unknown token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Token scope too narrow", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such webhook", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`window` is not `24h` or `7d`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn get_stats(
    _auth: Authorized<Manage>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<StatsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Data<StatsView>>, ApiError> {
    let id = parse_id(&id)?;
    let Query(q) = query.map_err(|e| field("query", &e.body_text()))?;
    let window = match q.window.as_deref() {
        None | Some("") => Window::Day,
        Some(text) => Window::parse(text).ok_or_else(|| field("window", "must be 24h or 7d"))?,
    };
    let stats = state.app.webhook_stats(id, window).await?;
    Ok(Json(Data::new(StatsView::new(id, &stats))))
}
