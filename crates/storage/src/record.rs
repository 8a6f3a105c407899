//! Recording finished attempts: one transaction per batch, a few statements per batch rather
//! than per attempt, and rows locked in a fixed order (webhooks by id, then deliveries by id)
//! so recorders in several processes cannot deadlock.

use std::collections::BTreeMap;

use crate::connect::WriteTx;
use lwh_domain::lifecycle::{failure_reason, FailureRecord};
use lwh_domain::{DeliveryId, Timestamp, WebhookId, WebhookStatus};

use crate::connect::{Durability, Store};
use crate::dialect::placeholders;
use crate::error::StoreError;
use crate::records::{AttemptRecord, FailureRules, NextStep};
use crate::rows;

/// Attempt rows per multi-row INSERT (8 values each).
const ATTEMPT_ROWS_PER_INSERT: usize = 200;
/// Ids per `IN (…)` list.
const IDS_PER_UPDATE: usize = 500;

/// What a batch says about one webhook, in attempt order.
#[derive(Default)]
struct WebhookSummary {
    last_started: i64,
    succeeded: bool,
    /// Failures after the batch's last success (all of them if none succeeded).
    failures: i64,
    first_failure: Option<i64>,
    gone: bool,
}

impl Store {
    /// Stores finished attempts and their consequences atomically: attempt rows, each
    /// delivery's status and next due time (held while its webhook is not Active), and each
    /// webhook's failure record — which can make it Failed (deliveries held, probe scheduled). Returns the webhooks that became Failed. Results for deliveries that
    /// were cancelled meanwhile leave them cancelled.
    pub async fn record_attempts(
        &self,
        records: &[AttemptRecord],
        rules: FailureRules,
        now: Timestamp,
    ) -> Result<Vec<WebhookId>, StoreError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let mut ordered: Vec<&AttemptRecord> = records.iter().collect();
        ordered.sort_by_key(|r| (r.delivery_id, r.number));
        let mut tx = self.begin_write_with(Durability::Relaxed).await?;
        let became_failed = self.update_webhooks(&mut tx, records, rules, now).await?;
        self.insert_attempts(&mut tx, &ordered).await?;
        self.update_deliveries(&mut tx, &ordered, now).await?;
        tx.commit().await?;
        Ok(became_failed)
    }

    async fn update_webhooks(
        &self,
        tx: &mut WriteTx,
        records: &[AttemptRecord],
        rules: FailureRules,
        now: Timestamp,
    ) -> Result<Vec<WebhookId>, StoreError> {
        let mut summaries: BTreeMap<WebhookId, WebhookSummary> = BTreeMap::new();
        for r in records {
            let s = summaries.entry(r.webhook_id).or_default();
            let started = r.started_at.millis();
            s.last_started = s.last_started.max(started);
            if r.outcome.delivered() {
                s.succeeded = true;
                s.failures = 0;
                s.first_failure = None;
                s.gone = false;
            } else {
                s.failures += 1;
                s.first_failure.get_or_insert(started);
                s.gone |= r.outcome.gone();
            }
        }
        let mut became_failed = Vec::new();
        for (id, s) in summaries {
            let webhook = id.to_string();
            let sql = if s.succeeded {
                // Reset by the success, then count what failed after it.
                "UPDATE webhooks SET \
                 last_triggered_at = CASE WHEN last_triggered_at IS NULL OR last_triggered_at < $2 \
                                     THEN $2 ELSE last_triggered_at END, \
                 failing_since = $3, failures_since_success = $4 WHERE id = $1 \
                 RETURNING failing_since, failures_since_success, status"
            } else {
                "UPDATE webhooks SET \
                 last_triggered_at = CASE WHEN last_triggered_at IS NULL OR last_triggered_at < $2 \
                                     THEN $2 ELSE last_triggered_at END, \
                 failing_since = COALESCE(failing_since, $3), \
                 failures_since_success = failures_since_success + $4 WHERE id = $1 \
                 RETURNING failing_since, failures_since_success, status"
            };
            let row = sqlx::query(self.backend.sql(sql))
                .bind(&webhook)
                .bind(s.last_started)
                .bind(s.first_failure)
                .bind(s.failures)
                .fetch_optional(&mut **tx)
                .await?;
            let Some(row) = row else { continue };
            if s.failures == 0 {
                continue;
            }
            let Some(failing_since) = rows::opt_int(&row, "failing_since")? else {
                continue;
            };
            let record = FailureRecord {
                failing_since,
                failures: rows::int(&row, "failures_since_success")?,
            };
            let active = rows::text(&row, "status")? == WebhookStatus::Active.as_str();
            if let (true, Some(reason)) = (
                active,
                failure_reason(record, now.millis(), rules.failed_after_ms, s.gone),
            ) {
                self.set_status_in(tx, id, WebhookStatus::Failed, Some(&reason), now)
                    .await?;
                sqlx::query(
                    self.backend
                        .sql("UPDATE webhooks SET next_probe_at = $2 WHERE id = $1"),
                )
                .bind(&webhook)
                .bind(now.millis() + rules.probe_interval_ms)
                .execute(&mut **tx)
                .await?;
                became_failed.push(id);
            }
        }
        Ok(became_failed)
    }

    async fn insert_attempts(
        &self,
        tx: &mut WriteTx,
        ordered: &[&AttemptRecord],
    ) -> Result<(), StoreError> {
        for chunk in ordered.chunks(ATTEMPT_ROWS_PER_INSERT) {
            let values: Vec<String> = (0..chunk.len())
                .map(|i| format!("({})", placeholders(8, 1 + i * 8)))
                .collect();
            let sql = format!(
                "INSERT INTO attempts (delivery_id, number, started_at, duration_ms, status_code, \
                 error_kind, error, response_excerpt) VALUES {} \
                 ON CONFLICT (delivery_id, number) DO NOTHING",
                values.join(", ")
            );
            let mut query = sqlx::query(self.backend.sql_owned(sql));
            for r in chunk {
                let o = &r.outcome;
                query = query
                    .bind(r.delivery_id.to_string())
                    .bind(r.number)
                    .bind(r.started_at.millis())
                    .bind(o.duration_ms)
                    .bind(o.status_code.map(i64::from))
                    .bind(o.error_kind.map(|k| k.as_str()))
                    .bind(o.error.clone())
                    .bind(o.response_excerpt.clone());
            }
            query.execute(&mut **tx).await?;
        }
        Ok(())
    }

    async fn update_deliveries(
        &self,
        tx: &mut WriteTx,
        ordered: &[&AttemptRecord],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        // The common case — delivered — in a few statements, grouped by status code.
        let mut delivered: BTreeMap<Option<u16>, Vec<DeliveryId>> = BTreeMap::new();
        for r in ordered.iter().filter(|r| r.next == NextStep::Delivered) {
            delivered
                .entry(r.outcome.status_code)
                .or_default()
                .push(r.delivery_id);
        }
        for (code, ids) in delivered {
            for chunk in ids.chunks(IDS_PER_UPDATE) {
                let sql = format!(
                    "UPDATE deliveries SET status = 'delivered', attempts = attempts + 1, due_at = NULL, \
                     claimed_by = NULL, last_status_code = $1, last_error = NULL, updated_at = $2 \
                     WHERE id IN ({}) AND status IN ('pending', 'retrying')",
                    placeholders(chunk.len(), 3)
                );
                let mut query = sqlx::query(self.backend.sql_owned(sql))
                    .bind(code.map(i64::from))
                    .bind(now.millis());
                for id in chunk {
                    query = query.bind(id.to_string());
                }
                query.execute(&mut **tx).await?;
            }
        }
        // Failures carry their own retry time and error: one statement each.
        for r in ordered.iter().filter(|r| r.next != NextStep::Delivered) {
            let (status, due) = match r.next {
                NextStep::RetryAt(at) => ("retrying", Some(at.millis())),
                _ => ("failed", None),
            };
            sqlx::query(self.backend.sql(
                "UPDATE deliveries SET status = $2, attempts = attempts + 1, due_at = $3, \
                 claimed_by = NULL, last_status_code = $4, last_error = $5, updated_at = $6 \
                 WHERE id = $1 AND status IN ('pending', 'retrying')",
            ))
            .bind(r.delivery_id.to_string())
            .bind(status)
            .bind(due)
            .bind(r.outcome.status_code.map(i64::from))
            .bind(r.outcome.error.clone())
            .bind(now.millis())
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }
}
