//! PostgreSQL's claims: `FOR UPDATE SKIP LOCKED`, so any number of processes claim side by
//! side without waiting on each other.

use std::time::Duration;

use lwh_domain::{Timestamp, WebhookId};
use sqlx::any::AnyRow;

use crate::connect::{Durability, Store, WriteTx};
use crate::decode;
use crate::dialect::Backend;
use crate::error::StoreError;
use crate::queue::{ClaimedRow, PaceStep, PacedRows, MOVE_CLOCK};

/// Claims a webhook's due deliveries, earliest due first, through `(webhook_id, due_at)`
/// (PostgreSQL: rows another process is claiming are skipped, not waited for). `$throttle`
/// tells which claim it is: the ordinary one takes nothing of a throttled webhook (a cached
/// target may not know yet that it was throttled), the paced one nothing of an unthrottled one.
macro_rules! claim_postgres {
    ($throttle:literal) => {
        concat!(
            "WITH due AS (SELECT id FROM deliveries WHERE webhook_id = $1 \
       AND due_at IS NOT NULL AND due_at <= $2 AND EXISTS (SELECT 1 FROM webhooks \
       WHERE id = $1 AND status = 'active' AND max_per_second ",
            $throttle,
            ") \
       ORDER BY due_at LIMIT $3 FOR UPDATE SKIP LOCKED) \
     UPDATE deliveries d SET due_at = $4, claimed_by = $5 FROM due WHERE d.id = due.id \
     RETURNING d.id, d.event_id, d.attempts, d.series_start, d.ordering_key"
        )
    };
}

/// The claim of an unthrottled webhook.
const CLAIM_POSTGRES: &str = claim_postgres!("IS NULL");
/// The claim of a throttled webhook, within its paced claim.
const CLAIM_PACED_POSTGRES: &str = claim_postgres!("IS NOT NULL");

/// [`crate::queue::PACE`] with the webhook row locked until the claim commits.
/// `FOR NO KEY UPDATE` leaves ingestion's foreign-key checks on the row unblocked.
const PACE_LOCKED: &str = "SELECT max_per_second, next_send_us FROM webhooks \
     WHERE id = $1 AND status = 'active' FOR NO KEY UPDATE";

/// Leases up to `limit` of `webhook`'s due deliveries to `owner` until `lease_until`.
pub(crate) async fn claim(
    store: &Store,
    webhook: WebhookId,
    limit: usize,
    owner: &str,
    now: Timestamp,
    lease_until: Timestamp,
) -> Result<Vec<ClaimedRow>, StoreError> {
    let mut tx = store.begin_write_with(Durability::Relaxed).await?;
    let claimed = claim_in(
        &mut tx,
        CLAIM_POSTGRES,
        webhook,
        limit,
        owner,
        now,
        lease_until,
    )
    .await?;
    tx.commit().await?;
    Ok(claimed)
}

/// Webhooks per refill statement: each list length is one statement shape, kept prepared.
const REFILLS_PER_STATEMENT: usize = 64;

/// [`CLAIM_POSTGRES`] for several webhooks in one statement (one round trip for a batch of
/// results at fan-out 10): for each (webhook, n) of the `VALUES` list from `$4` on, its next
/// `n` due deliveries, earliest due first, if it is Active and unthrottled.
fn refill_sql(webhooks: usize) -> String {
    let wanted: Vec<String> = (0..webhooks)
        .map(|i| format!("(${}::text, ${}::bigint)", 4 + 2 * i, 5 + 2 * i))
        .collect();
    format!(
        "WITH wanted (webhook_id, n) AS (VALUES {}), \
         due AS (SELECT c.id FROM wanted w CROSS JOIN LATERAL (SELECT d.id FROM deliveries d \
           WHERE d.webhook_id = w.webhook_id AND d.due_at IS NOT NULL AND d.due_at <= $1 \
           AND EXISTS (SELECT 1 FROM webhooks WHERE id = w.webhook_id AND status = 'active' \
             AND max_per_second IS NULL) \
           ORDER BY d.due_at LIMIT w.n FOR UPDATE SKIP LOCKED) c) \
         UPDATE deliveries d SET due_at = $2, claimed_by = $3 FROM due WHERE d.id = due.id \
         RETURNING d.webhook_id, d.id, d.event_id, d.attempts, d.series_start, d.ordering_key",
        wanted.join(", ")
    )
}

/// The ordinary claim within a recording transaction: each webhook's next `n` due
/// deliveries, into the slots its results free ([`crate::model::AttemptRecord::refill`]).
pub(crate) async fn refill(
    tx: &mut WriteTx,
    wanted: &[(WebhookId, usize)],
    owner: &str,
    now: Timestamp,
    lease_until: Timestamp,
) -> Result<Vec<(WebhookId, ClaimedRow)>, StoreError> {
    let mut claimed = Vec::new();
    for chunk in wanted.chunks(REFILLS_PER_STATEMENT) {
        let sql = Backend::Postgres.sql_owned(refill_sql(chunk.len()));
        let mut query = sqlx::query(sql)
            .bind(now.millis())
            .bind(lease_until.millis())
            .bind(owner);
        for (webhook, n) in chunk {
            query = query.bind(webhook.to_string()).bind(*n as i64);
        }
        for row in query.fetch_all(&mut **tx).await? {
            claimed.push((decode::parsed(&row, "webhook_id")?, claimed_row(&row)?));
        }
    }
    Ok(claimed)
}

/// The claim statement within a transaction.
async fn claim_in(
    tx: &mut WriteTx,
    sql: &'static str,
    webhook: WebhookId,
    limit: usize,
    owner: &str,
    now: Timestamp,
    lease_until: Timestamp,
) -> Result<Vec<ClaimedRow>, StoreError> {
    let found = sqlx::query(sql)
        .bind(webhook.to_string())
        .bind(now.millis())
        .bind(limit as i64)
        .bind(lease_until.millis())
        .bind(owner)
        .fetch_all(&mut **tx)
        .await?;
    found.iter().map(claimed_row).collect()
}

/// A claimed delivery from a row with `id, event_id, attempts, series_start, ordering_key` (a
/// claim's, or a line's next one claimed as its predecessor is recorded).
pub(crate) fn claimed_row(row: &AnyRow) -> Result<ClaimedRow, StoreError> {
    Ok(ClaimedRow {
        id: decode::parsed(row, "id")?,
        event_id: decode::parsed(row, "event_id")?,
        attempts: decode::int(row, "attempts")?,
        series_start: decode::int(row, "series_start")?,
        send_at: None,
        ordering_key: decode::opt_text(row, "ordering_key")?,
    })
}

/// A throttled webhook's claim. The webhook row is locked first, so the processes sharing
/// the database take turns on its clock: each reads it, claims what the pace allows from it
/// and moves it on before the next one reads it.
pub(crate) async fn claim_paced(
    store: &Store,
    webhook: WebhookId,
    limit: usize,
    owner: &str,
    now: Timestamp,
    lease: Duration,
) -> Result<PacedRows, StoreError> {
    let mut tx = store.begin_write_with(Durability::Relaxed).await?;
    let pace = sqlx::query(PACE_LOCKED)
        .bind(webhook.to_string())
        .fetch_optional(&mut *tx)
        .await?;
    let found = match &pace {
        Some(row) => Some((
            decode::opt_int(row, "max_per_second")?,
            decode::opt_int(row, "next_send_us")?,
        )),
        None => None,
    };
    let step = PaceStep::new(found, now, limit, lease)?;
    let rows = match step.claim(limit) {
        Some((paced, count, lease_until)) => {
            let sql = if paced {
                CLAIM_PACED_POSTGRES
            } else {
                CLAIM_POSTGRES
            };
            claim_in(&mut tx, sql, webhook, count, owner, now, lease_until).await?
        }
        None => Vec::new(),
    };
    let paced = step.finish(rows, now, limit);
    if let Some(clock) = paced.store_clock {
        sqlx::query(MOVE_CLOCK)
            .bind(webhook.to_string())
            .bind(clock)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(paced)
}
