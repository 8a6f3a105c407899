//! Recording finished attempts: one transaction per batch, a few statements per batch rather
//! than per attempt, and rows locked in a fixed order (webhooks by id, then deliveries by id)
//! so recorders in several processes cannot deadlock.

use std::collections::BTreeMap;

use crate::connect::WriteTx;
use crate::dialect::Backend;
use crate::webhooks::set_status_sqlite;
use lwh_domain::lifecycle::{failure_reason, FailureRecord};
use lwh_domain::{DeliveryId, Timestamp, WebhookId, WebhookStatus};
use rusqlite::params;

use crate::connect::{Durability, Store};
use crate::decode;
use crate::dialect::{keep_prepared, placeholders};
use crate::error::StoreError;
use crate::model::{AttemptRecord, FailureRules};
use lwh_domain::NextStep;

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
        if let Some(writer) = &self.sqlite {
            let records = records.to_vec();
            return writer
                .transaction(Durability::Relaxed, move |tx| {
                    sqlite_record(tx, &records, rules, now)
                })
                .await;
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
        let mut became_failed = Vec::new();
        for (id, s) in summarize(records) {
            let webhook = id.to_string();
            let row = sqlx::query(self.backend.sql(webhook_update(&s)))
                .bind(&webhook)
                .bind(s.last_started)
                .bind(s.first_failure)
                .bind(s.failures)
                .fetch_optional(&mut **tx)
                .await?;
            let Some(row) = row else { continue };
            let after = (
                decode::opt_int(&row, "failing_since")?,
                decode::int(&row, "failures_since_success")?,
                decode::text(&row, "status")?,
            );
            if let Some(reason) = turns_failed(&s, after, rules, now) {
                self.set_status_in(tx, id, WebhookStatus::Failed, Some(&reason), now)
                    .await?;
                sqlx::query(self.backend.sql(SET_NEXT_PROBE))
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
                "{INSERT_ATTEMPTS}{} {ON_ATTEMPT_CONFLICT}",
                values.join(", ")
            );
            let mut query =
                sqlx::query(self.backend.sql_owned(sql)).persistent(keep_prepared(chunk.len()));
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
                    "{DELIVERED} WHERE id IN ({}) AND status IN ('pending', 'retrying')",
                    placeholders(chunk.len(), 3)
                );
                let mut query = sqlx::query(self.backend.sql_owned(sql))
                    .persistent(keep_prepared(chunk.len()))
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
            let (status, due) = next_state(r.next);
            sqlx::query(self.backend.sql(NOT_DELIVERED))
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

const WEBHOOK_AFTER_SUCCESS: &str = "UPDATE webhooks SET \
     last_triggered_at = CASE WHEN last_triggered_at IS NULL OR last_triggered_at < $2 \
                         THEN $2 ELSE last_triggered_at END, \
     failing_since = $3, failures_since_success = $4 WHERE id = $1 \
     RETURNING failing_since, failures_since_success, status";

/// The same after a batch that ended in success while the webhook is healthy, which changes
/// nothing but `last_triggered_at`: the row is then written only if that time is more than a
/// second old (the console shows it to the second). Every recorder of every process used to
/// lock the row of each webhook it had results for until its commit, so the recorders of
/// `serve` and the workers took turns (PostgreSQL's top statement by time, ~7 ms a call, most
/// of it waiting), and each SQLite commit dirtied the page again.
const WEBHOOK_AFTER_CLEAN_SUCCESS: &str = "UPDATE webhooks SET \
     last_triggered_at = CASE WHEN last_triggered_at IS NULL OR last_triggered_at < $2 \
                         THEN $2 ELSE last_triggered_at END, \
     failing_since = $3, failures_since_success = $4 WHERE id = $1 \
     AND (failing_since IS NOT NULL OR failures_since_success <> $4 OR last_triggered_at IS NULL \
          OR last_triggered_at < $2 - 1000) \
     RETURNING failing_since, failures_since_success, status";

const WEBHOOK_AFTER_FAILURES: &str = "UPDATE webhooks SET \
     last_triggered_at = CASE WHEN last_triggered_at IS NULL OR last_triggered_at < $2 \
                         THEN $2 ELSE last_triggered_at END, \
     failing_since = COALESCE(failing_since, $3), \
     failures_since_success = failures_since_success + $4 WHERE id = $1 \
     RETURNING failing_since, failures_since_success, status";

const SET_NEXT_PROBE: &str = "UPDATE webhooks SET next_probe_at = $2 WHERE id = $1";

const INSERT_ATTEMPTS: &str = "INSERT INTO attempts (delivery_id, number, started_at, \
     duration_ms, status_code, error_kind, error, response_excerpt) VALUES ";

const ON_ATTEMPT_CONFLICT: &str = "ON CONFLICT (delivery_id, number) DO NOTHING";

/// A delivered delivery's new state, before its `WHERE`; `$1` status code, `$2` now.
const DELIVERED: &str = "UPDATE deliveries SET status = 'delivered', attempts = attempts + 1, \
     due_at = NULL, claimed_by = NULL, last_status_code = $1, last_error = NULL, updated_at = $2";

/// A failed attempt's consequence for its delivery: retrying at `$3`, or failed.
const NOT_DELIVERED: &str = "UPDATE deliveries SET status = $2, attempts = attempts + 1, \
     due_at = $3, claimed_by = NULL, last_status_code = $4, last_error = $5, updated_at = $6 \
     WHERE id = $1 AND status IN ('pending', 'retrying')";

/// What a batch says about each of its webhooks.
fn summarize(records: &[AttemptRecord]) -> BTreeMap<WebhookId, WebhookSummary> {
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
    summaries
}

/// The webhook update for a summary: reset by a success, then count what failed after it.
fn webhook_update(s: &WebhookSummary) -> &'static str {
    if s.succeeded && s.failures == 0 {
        WEBHOOK_AFTER_CLEAN_SUCCESS
    } else if s.succeeded {
        WEBHOOK_AFTER_SUCCESS
    } else {
        WEBHOOK_AFTER_FAILURES
    }
}

/// Whether an Active webhook must become Failed, given its failure record after the update
/// (`failing_since`, `failures_since_success`, `status`); the reason if so.
fn turns_failed(
    s: &WebhookSummary,
    (failing_since, failures, status): (Option<i64>, i64, String),
    rules: FailureRules,
    now: Timestamp,
) -> Option<String> {
    if s.failures == 0 || status != WebhookStatus::Active.as_str() {
        return None;
    }
    let record = FailureRecord {
        failing_since: failing_since?,
        failures,
    };
    failure_reason(record, now.millis(), rules.failed_after_ms, s.gone)
}

/// A delivery's status and due time after a failed attempt.
fn next_state(next: NextStep) -> (&'static str, Option<i64>) {
    match next {
        NextStep::RetryAt(at) => ("retrying", Some(at.millis())),
        _ => ("failed", None),
    }
}

/// [`Store::record_attempts`] on SQLite's writer thread: the same statements, prepared once,
/// one row at a time (no round trip per statement there).
fn sqlite_record(
    tx: &rusqlite::Transaction<'_>,
    records: &[AttemptRecord],
    rules: FailureRules,
    now: Timestamp,
) -> Result<Vec<WebhookId>, StoreError> {
    let sql = |text: &'static str| Backend::Sqlite.sql(text);
    let mut became_failed = Vec::new();
    for (id, s) in summarize(records) {
        let webhook = id.to_string();
        let mut update = tx.prepare_cached(sql(webhook_update(&s)))?;
        let mut cursor = update.query(params![
            webhook,
            s.last_started,
            s.first_failure,
            s.failures
        ])?;
        let Some(row) = cursor.next()? else { continue };
        let after = (row.get(0)?, row.get(1)?, row.get(2)?);
        drop(cursor);
        if let Some(reason) = turns_failed(&s, after, rules, now) {
            set_status_sqlite(tx, id, WebhookStatus::Failed, Some(&reason), now)?;
            tx.prepare_cached(sql(SET_NEXT_PROBE))?
                .execute(params![webhook, now.millis() + rules.probe_interval_ms])?;
            became_failed.push(id);
        }
    }
    let mut ordered: Vec<&AttemptRecord> = records.iter().collect();
    ordered.sort_by_key(|r| (r.delivery_id, r.number));
    let mut insert = tx.prepare_cached(&format!(
        "{INSERT_ATTEMPTS}(?, ?, ?, ?, ?, ?, ?, ?) {ON_ATTEMPT_CONFLICT}"
    ))?;
    for r in &ordered {
        let o = &r.outcome;
        insert.execute(params![
            r.delivery_id.to_string(),
            r.number,
            r.started_at.millis(),
            o.duration_ms,
            o.status_code,
            o.error_kind.map(|k| k.as_str()),
            o.error,
            o.response_excerpt,
        ])?;
    }
    let mut delivered = tx.prepare_cached(&format!(
        "{} WHERE id = ? AND status IN ('pending', 'retrying')",
        sql(DELIVERED)
    ))?;
    let mut not_delivered = tx.prepare_cached(sql(NOT_DELIVERED))?;
    for r in &ordered {
        if r.next == NextStep::Delivered {
            delivered.execute(params![
                r.outcome.status_code,
                now.millis(),
                r.delivery_id.to_string()
            ])?;
        } else {
            let (status, due) = next_state(r.next);
            not_delivered.execute(params![
                r.delivery_id.to_string(),
                status,
                due,
                r.outcome.status_code,
                r.outcome.error,
                now.millis(),
            ])?;
        }
    }
    Ok(became_failed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_schema::sqlite_schema;
    use lwh_domain::{AttemptOutcome, ErrorKind};

    const RULES: FailureRules = FailureRules {
        failed_after_ms: 24 * 3600 * 1000,
        probe_interval_ms: 60_000,
    };

    fn attempt(webhook: WebhookId, at: i64, delivered: bool) -> AttemptRecord {
        AttemptRecord {
            delivery_id: DeliveryId::generate(),
            webhook_id: webhook,
            number: 1,
            started_at: Timestamp::from_millis(at),
            outcome: AttemptOutcome {
                status_code: Some(if delivered { 204 } else { 500 }),
                error_kind: (!delivered).then_some(ErrorKind::HttpStatus),
                error: None,
                response_excerpt: None,
                retry_after_secs: None,
                duration_ms: 1,
            },
            next: if delivered {
                NextStep::Delivered
            } else {
                NextStep::RetryAt(Timestamp::from_millis(at + 60_000))
            },
        }
    }

    /// Records one batch and reads the webhook's (last_triggered_at, failing_since, failures).
    fn record(
        db: &mut rusqlite::Connection,
        batch: &[AttemptRecord],
    ) -> (Option<i64>, Option<i64>, i64) {
        let tx = db.transaction().unwrap();
        sqlite_record(&tx, batch, RULES, Timestamp::from_millis(1_000_000)).unwrap();
        tx.commit().unwrap();
        db.query_row(
            "SELECT last_triggered_at, failing_since, failures_since_success FROM webhooks \
             WHERE id = ?1",
            [batch[0].webhook_id.to_string()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap()
    }

    #[test]
    fn a_healthy_webhooks_row_is_rewritten_at_most_once_a_second() {
        let mut db = sqlite_schema();
        let w = WebhookId::generate();
        db.execute(
            "INSERT INTO webhooks (id, url, secret_ciphertext, status, status_changed_at, \
             created_at, updated_at) VALUES (?1, 'http://x', x'00', 'active', 0, 0, 0)",
            [w.to_string()],
        )
        .unwrap();
        assert_eq!(
            record(&mut db, &[attempt(w, 10_000, true)]),
            (Some(10_000), None, 0)
        );
        // Within the second: the row is left alone.
        assert_eq!(
            record(&mut db, &[attempt(w, 10_900, true)]),
            (Some(10_000), None, 0)
        );
        assert_eq!(
            record(&mut db, &[attempt(w, 11_000, true)]),
            (Some(10_000), None, 0)
        );
        // Past it: written.
        assert_eq!(
            record(&mut db, &[attempt(w, 11_001, true)]),
            (Some(11_001), None, 0)
        );
        // Failures are always written, and a success within the same second still resets them.
        let failed = record(
            &mut db,
            &[attempt(w, 11_002, false), attempt(w, 11_003, false)],
        );
        assert_eq!(failed, (Some(11_003), Some(11_002), 2));
        assert_eq!(
            record(&mut db, &[attempt(w, 11_004, true)]),
            (Some(11_004), None, 0)
        );
        // A success followed by a failure in one batch: counted from that failure.
        let mixed = record(
            &mut db,
            &[attempt(w, 11_005, true), attempt(w, 11_006, false)],
        );
        assert_eq!(mixed, (Some(11_006), Some(11_006), 1));
    }
}
