//! What a webhook's recent deliveries say about its receiver, for the Webhooks page: whether
//! the last attempt failed and how, and how many deliveries a Paused or Failed webhook holds.
//! Read-only, and cheap: each figure is one index range (at most 20 webhooks on a page of the
//! console; Free has 3).

use lwh_domain::{Timestamp, WebhookId};

use crate::connect::Store;
use crate::decode;
use crate::error::StoreError;

/// Counting held deliveries stops here; the page says "100,000+".
pub const HELD_COUNT_CAP: u64 = 100_000;

/// A webhook's delivery health beside its status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookActivity {
    /// Time of the most recent attempt (any delivery, Test pings included).
    pub last_attempt_at: Option<Timestamp>,
    /// First failed attempt since the last success; `None` when the last attempt succeeded.
    pub failing_since: Option<Timestamp>,
    /// Failed attempts since the last success.
    pub failures_since_success: i64,
    /// While failing: the latest failing delivery's last answer (status code, or the error).
    pub last_failure: Option<LastFailure>,
    /// Queued deliveries (pending or retrying), counted up to [`HELD_COUNT_CAP`] + 1.
    pub queued: u64,
}

impl WebhookActivity {
    /// Whether the receiver is failing now: an attempt failed since the last success.
    pub fn failing(&self) -> bool {
        self.failures_since_success > 0 || self.failing_since.is_some()
    }
}

/// How the latest failing attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastFailure {
    /// The HTTP status the receiver answered, if it answered.
    pub status_code: Option<i64>,
    /// Why it failed (timeout, connection refused, the status's reason…).
    pub error: Option<String>,
}

impl Store {
    /// The activity of one webhook (see [`WebhookActivity`]).
    pub async fn webhook_activity(&self, id: WebhookId) -> Result<WebhookActivity, StoreError> {
        let Some(row) = sqlx::query(self.backend.sql(
            "SELECT last_triggered_at, failing_since, failures_since_success \
             FROM webhooks WHERE id = $1",
        ))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(WebhookActivity::default());
        };
        let mut activity = WebhookActivity {
            last_attempt_at: decode::opt_time(&row, "last_triggered_at")?,
            failing_since: decode::opt_time(&row, "failing_since")?,
            failures_since_success: decode::int(&row, "failures_since_success")?,
            ..WebhookActivity::default()
        };
        if activity.failing() {
            activity.last_failure = self.last_failure(id).await?;
        }
        let queued = sqlx::query(self.backend.sql(
            "SELECT COUNT(*) AS n FROM (SELECT 1 FROM deliveries \
             WHERE webhook_id = $1 AND status IN ('pending', 'retrying', 'waiting') LIMIT $2) \
             AS queued",
        ))
        .bind(id.to_string())
        .bind(HELD_COUNT_CAP as i64 + 1)
        .fetch_one(&self.pool)
        .await?;
        activity.queued = decode::int(&queued, "n")?.max(0) as u64;
        Ok(activity)
    }

    /// The last answer of the most recently changed delivery that is retrying or failed: the
    /// newest of each status (index `deliveries_log_by_status`), whichever changed last.
    async fn last_failure(&self, id: WebhookId) -> Result<Option<LastFailure>, StoreError> {
        let mut latest: Option<(i64, LastFailure)> = None;
        for status in ["retrying", "failed"] {
            let row = sqlx::query(self.backend.sql(
                "SELECT last_status_code, last_error, updated_at FROM deliveries \
                 WHERE webhook_id = $1 AND status = $2 ORDER BY id DESC LIMIT 1",
            ))
            .bind(id.to_string())
            .bind(status)
            .fetch_optional(&self.pool)
            .await?;
            if let Some(row) = row {
                let at = decode::int(&row, "updated_at")?;
                if latest.as_ref().is_none_or(|(best, _)| at > *best) {
                    let failure = LastFailure {
                        status_code: decode::opt_int(&row, "last_status_code")?,
                        error: decode::opt_text(&row, "last_error")?,
                    };
                    latest = Some((at, failure));
                }
            }
        }
        Ok(latest.map(|(_, failure)| failure))
    }
}
