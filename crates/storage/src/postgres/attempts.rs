//! PostgreSQL's recording of attempt results: a few statements per batch rather than per
//! attempt (multi-row INSERTs, grouped UPDATEs), rows locked in a fixed order (webhooks by id,
//! then deliveries by id) so recorders in several processes cannot deadlock.

use std::collections::BTreeMap;

use lwh_domain::{DeliveryId, NextStep, Timestamp, WebhookId, WebhookStatus};

use crate::attempts::{
    finished_lines, next_state, refills_wanted, summarize, turns_failed, webhook_update,
    BackendRecorded, Recorded, ATTEMPT_ROWS_PER_INSERT, DELIVERED, IDS_PER_UPDATE, INSERT_ATTEMPTS,
    NOT_DELIVERED, ON_ATTEMPT_CONFLICT, SET_NEXT_PROBE,
};
use crate::connect::{Durability, Store, WriteTx};
use crate::decode;
use crate::dialect::{keep_prepared, placeholders};
use crate::error::StoreError;
use crate::model::{AttemptRecord, FailureRules};
use crate::ordering::{key_lock, lock_keys_sql, SuccessorClaim, RELEASE_NEXT};
use crate::postgres::queue::{claimed_row, refill};
use crate::stats::{slot, Counters, ADD_COUNTERS};

/// Records one batch in one transaction.
pub(crate) async fn run(
    store: &Store,
    records: &[AttemptRecord],
    rules: FailureRules,
    now: Timestamp,
    successor: Option<&SuccessorClaim>,
) -> Result<BackendRecorded, StoreError> {
    let mut ordered: Vec<&AttemptRecord> = records.iter().collect();
    ordered.sort_by_key(|r| (r.delivery_id, r.number));
    let lines = finished_lines(records);
    let mut tx = store.begin_write_with(Durability::Relaxed).await?;
    // The lines' locks first, before any row: ingestion places deliveries in them under the
    // same locks (crate::ordering).
    if let Some(lock) = lock_keys_sql(lines.iter().map(|(w, k, _)| key_lock(*w, k)).collect()) {
        sqlx::query(&lock)
            .persistent(false)
            .execute(&mut *tx)
            .await?;
    }
    let became_failed = update_webhooks(store, &mut tx, records, rules, now).await?;
    insert_attempts(store, &mut tx, &ordered).await?;
    update_deliveries(store, &mut tx, &ordered, now).await?;
    let mut released = Vec::new();
    let mut claimed = Vec::new();
    for (webhook, key, take_next) in lines {
        let rows = sqlx::query(RELEASE_NEXT)
            .bind(webhook.to_string())
            .bind(key)
            .bind(now.millis())
            .bind(successor.map(|s| s.owner.as_str()).filter(|_| take_next))
            .bind(successor.map(|s| s.lease_until.millis()))
            .fetch_all(&mut *tx)
            .await?;
        for row in &rows {
            if decode::opt_text(row, "claimed_by")?.is_some() {
                claimed.push((webhook, claimed_row(row)?));
            } else if !released.contains(&webhook) {
                released.push(webhook);
            }
        }
    }
    let refills = match successor {
        Some(claim) => {
            let wanted = refills_wanted(records, &claimed);
            refill(&mut tx, &wanted, &claim.owner, now, claim.lease_until).await?
        }
        None => Vec::new(),
    };
    tx.commit().await?;
    Ok(BackendRecorded {
        recorded: Recorded::new(became_failed, released),
        successors: claimed,
        refills,
    })
}

async fn update_webhooks(
    store: &Store,
    tx: &mut WriteTx,
    records: &[AttemptRecord],
    rules: FailureRules,
    now: Timestamp,
) -> Result<Vec<WebhookId>, StoreError> {
    let mut became_failed = Vec::new();
    for (id, s) in summarize(records) {
        let webhook = id.to_string();
        let row = sqlx::query(store.backend.sql(webhook_update(&s)))
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
            store
                .set_status_in(tx, id, WebhookStatus::Failed, Some(&reason), now)
                .await?;
            sqlx::query(store.backend.sql(SET_NEXT_PROBE))
                .bind(&webhook)
                .bind(now.millis() + rules.probe_interval_ms)
                .execute(&mut **tx)
                .await?;
            became_failed.push(id);
        }
    }
    Ok(became_failed)
}

/// Adds pending counters to this process's rows ([`crate::stats`]), in (webhook, hour) order.
pub(crate) async fn add_counters(
    store: &Store,
    tx: &mut WriteTx,
    counters: &Counters,
) -> Result<(), StoreError> {
    for ((webhook, hour), c) in counters {
        let mut query = sqlx::query(store.backend.sql(ADD_COUNTERS.as_str()))
            .bind(webhook.to_string())
            .bind(*hour)
            .bind(slot())
            .bind(c.attempts)
            .bind(c.failures);
        for n in c.durations.iter().copied() {
            query = query.bind(n);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

async fn insert_attempts(
    store: &Store,
    tx: &mut WriteTx,
    ordered: &[&AttemptRecord],
) -> Result<(), StoreError> {
    for chunk in ordered.chunks(ATTEMPT_ROWS_PER_INSERT) {
        let values: Vec<String> = (0..chunk.len())
            .map(|i| format!("({})", placeholders(10, 1 + i * 10)))
            .collect();
        let sql = format!(
            "{INSERT_ATTEMPTS}{} {ON_ATTEMPT_CONFLICT}",
            values.join(", ")
        );
        let mut query =
            sqlx::query(store.backend.sql_owned(sql)).persistent(keep_prepared(chunk.len()));
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
                .bind(o.response_excerpt.clone())
                .bind(o.request_headers.clone())
                .bind(o.response_headers.clone());
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

async fn update_deliveries(
    store: &Store,
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
            let mut query = sqlx::query(store.backend.sql_owned(sql))
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
        sqlx::query(store.backend.sql(NOT_DELIVERED))
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
