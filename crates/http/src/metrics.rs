//! `/metrics`: Prometheus text. Counters and histograms come from the `metrics` facade; queue
//! and status gauges are read from the database at scrape time, so every process reports the
//! shared queue's true state.

use std::sync::OnceLock;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use lwh_domain::Timestamp;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::AppState;

/// The process-wide recorder (installed on first use).
pub fn handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Full(
                        "learnomy_webhooks_attempt_duration_seconds".to_owned(),
                    ),
                    &[
                        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0,
                    ],
                )
                .and_then(|b| b.install_recorder())
                .map_err(|e| tracing::warn!(error = %e, "metrics recorder not installed"))
                .ok()
                .inspect(|_| describe())
        })
        .as_ref()
}

fn describe() {
    metrics::describe_counter!(
        "learnomy_webhooks_events_ingested_total",
        "Events accepted by the ingestion API (repeated idempotency keys not counted)."
    );
    metrics::describe_counter!(
        "learnomy_webhooks_attempts_total",
        "Delivery attempts recorded, by outcome (delivered or failed)."
    );
    metrics::describe_counter!(
        "learnomy_webhooks_deliveries_total",
        "What each attempt did to its delivery: delivered, retrying (another attempt scheduled) or failed (attempts used up)."
    );
    metrics::describe_histogram!(
        "learnomy_webhooks_attempt_duration_seconds",
        metrics::Unit::Seconds,
        "Duration of delivery attempts, from connect to the end of the response."
    );
}

/// Renders every metric.
pub async fn scrape(State(state): State<AppState>) -> impl IntoResponse {
    let mut text = handle().map(|h| h.render()).unwrap_or_default();
    match state.app.store().queue_stats(Timestamp::now()).await {
        Ok(q) => {
            text.push_str("# HELP learnomy_webhooks_queue_scheduled Deliveries with a due time (due, scheduled retries, claimed).\n# TYPE learnomy_webhooks_queue_scheduled gauge\n");
            text.push_str(&format!(
                "learnomy_webhooks_queue_scheduled {}\n",
                q.scheduled
            ));
            text.push_str("# HELP learnomy_webhooks_queue_due Deliveries due now or overdue.\n# TYPE learnomy_webhooks_queue_due gauge\n");
            text.push_str(&format!("learnomy_webhooks_queue_due {}\n", q.due_now));
            text.push_str("# HELP learnomy_webhooks_oldest_due_age_seconds Age of the oldest due delivery.\n# TYPE learnomy_webhooks_oldest_due_age_seconds gauge\n");
            text.push_str(&format!(
                "learnomy_webhooks_oldest_due_age_seconds {:.3}\n",
                q.oldest_due_age_ms as f64 / 1000.0
            ));
            text.push_str("# HELP learnomy_webhooks_webhooks Webhooks by status.\n# TYPE learnomy_webhooks_webhooks gauge\n");
            for status in lwh_domain::WebhookStatus::ALL {
                let n = q
                    .webhooks_by_status
                    .iter()
                    .find(|(s, _)| s == status.as_str())
                    .map_or(0, |(_, n)| *n);
                text.push_str(&format!(
                    "learnomy_webhooks_webhooks{{status=\"{}\"}} {n}\n",
                    status.as_str()
                ));
            }
            text.push_str("# HELP learnomy_webhooks_up Whether the database answered this scrape.\n# TYPE learnomy_webhooks_up gauge\nlearnomy_webhooks_up 1\n");
        }
        Err(e) => {
            tracing::warn!(error = %e, "metrics: queue figures unavailable");
            text.push_str("# HELP learnomy_webhooks_up Whether the database answered this scrape.\n# TYPE learnomy_webhooks_up gauge\nlearnomy_webhooks_up 0\n");
        }
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        text,
    )
}
