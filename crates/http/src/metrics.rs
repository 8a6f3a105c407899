//! `/metrics`: Prometheus text. Counters and histograms come from the `metrics` facade; queue
//! and status gauges come from the database, so every process reports the shared queue's true
//! state — but not at scrape time: `/metrics` needs no authentication, and counting a queue of a
//! million deliveries on every request would let anyone make the database scan it at will. A
//! scrape serves the figures of the last count and, when they are older than
//! [`QUEUE_FIGURES_MAX_AGE`], starts one new count in the background (at most one at a time).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use lwh_domain::Timestamp;
use lwh_storage::QueueStats;
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

/// How old the queue figures may be before a scrape starts a new count.
pub const QUEUE_FIGURES_MAX_AGE: Duration = Duration::from_secs(10);

/// The last queue count of one server (one router): when it finished and what it found
/// (`None`: the database failed), and whether a count is running — so a burst of scrapes
/// starts one count, not one each.
#[derive(Default)]
pub struct QueueFigures {
    last: Mutex<(Option<Instant>, Option<QueueStats>)>,
    counting: AtomicBool,
}

impl QueueFigures {
    /// Counts the queue in the background when the figures are missing or stale.
    fn refresh_if_stale(self: &Arc<Self>, state: &AppState) {
        let stale = self
            .last
            .lock()
            .map(|l| l.0.is_none_or(|at| at.elapsed() >= QUEUE_FIGURES_MAX_AGE))
            .unwrap_or(true);
        if !stale || self.counting.swap(true, Ordering::SeqCst) {
            return;
        }
        let (figures, store) = (Arc::clone(self), state.app.store().clone());
        tokio::spawn(async move {
            let stats = store.queue_stats(Timestamp::now()).await;
            if let Err(e) = &stats {
                tracing::warn!(error = %e, "metrics: queue figures unavailable");
            }
            if let Ok(mut last) = figures.last.lock() {
                *last = (Some(Instant::now()), stats.ok());
            }
            metrics::counter!("learnomy_webhooks_queue_counts_total").increment(1);
            figures.counting.store(false, Ordering::SeqCst);
        });
    }

    fn current(&self) -> (Option<Duration>, Option<QueueStats>) {
        self.last
            .lock()
            .map(|l| (l.0.map(|at| at.elapsed()), l.1.clone()))
            .unwrap_or((None, None))
    }
}

/// Renders every metric, with `figures`' queue gauges.
pub async fn scrape(state: AppState, figures: Arc<QueueFigures>) -> impl IntoResponse {
    figures.refresh_if_stale(&state);
    let mut text = handle().map(|h| h.render()).unwrap_or_default();
    let (age, stats) = figures.current();
    if let Some(age) = age {
        text.push_str("# HELP learnomy_webhooks_queue_figures_age_seconds How old the queue figures below are (they are counted at most every 10 s).\n# TYPE learnomy_webhooks_queue_figures_age_seconds gauge\n");
        text.push_str(&format!(
            "learnomy_webhooks_queue_figures_age_seconds {:.3}\n",
            age.as_secs_f64()
        ));
    }
    match stats {
        Some(q) => {
            text.push_str("# HELP learnomy_webhooks_queue_scheduled Deliveries with a due time (due, scheduled retries, claimed).\n# TYPE learnomy_webhooks_queue_scheduled gauge\n");
            text.push_str(&format!(
                "learnomy_webhooks_queue_scheduled {}\n",
                q.scheduled
            ));
            text.push_str("# HELP learnomy_webhooks_queue_due Deliveries due now or overdue.\n# TYPE learnomy_webhooks_queue_due gauge\n");
            text.push_str(&format!("learnomy_webhooks_queue_due {}\n", q.due_now));
            text.push_str("# HELP learnomy_webhooks_queue_waiting Deliveries waiting behind an earlier delivery of their ordering key (by_key webhooks).\n# TYPE learnomy_webhooks_queue_waiting gauge\n");
            text.push_str(&format!("learnomy_webhooks_queue_waiting {}\n", q.waiting));
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
            text.push_str("# HELP learnomy_webhooks_up Whether the database answered the last count.\n# TYPE learnomy_webhooks_up gauge\nlearnomy_webhooks_up 1\n");
        }
        None if age.is_some() => {
            text.push_str("# HELP learnomy_webhooks_up Whether the database answered the last count.\n# TYPE learnomy_webhooks_up gauge\nlearnomy_webhooks_up 0\n");
        }
        None => {} // the first count is under way
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        text,
    )
}
