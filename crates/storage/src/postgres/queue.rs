//! PostgreSQL's claims: `FOR UPDATE SKIP LOCKED`, so any number of processes claim side by
//! side without waiting on each other.

use lwh_domain::{Timestamp, WebhookId};

use crate::connect::{Durability, Store};
use crate::decode;
use crate::error::StoreError;
use crate::queue::ClaimedRow;

/// Claims a webhook's due deliveries, earliest due first, through `(webhook_id, due_at)`
/// (PostgreSQL: rows another process is claiming are skipped, not waited for).
const CLAIM_POSTGRES: &str = "WITH due AS (SELECT id FROM deliveries WHERE webhook_id = $1 \
       AND due_at IS NOT NULL AND due_at <= $2 AND EXISTS (SELECT 1 FROM webhooks \
       WHERE id = $1 AND status = 'active') ORDER BY due_at LIMIT $3 \
       FOR UPDATE SKIP LOCKED) \
     UPDATE deliveries d SET due_at = $4, claimed_by = $5 FROM due WHERE d.id = due.id \
     RETURNING d.id, d.event_id, d.attempts, d.series_start";

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
    let found = sqlx::query(CLAIM_POSTGRES)
        .bind(webhook.to_string())
        .bind(now.millis())
        .bind(limit as i64)
        .bind(lease_until.millis())
        .bind(owner)
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;
    found
        .iter()
        .map(|row| {
            Ok(ClaimedRow {
                id: decode::parsed(row, "id")?,
                event_id: decode::parsed(row, "event_id")?,
                attempts: decode::int(row, "attempts")?,
                series_start: decode::int(row, "series_start")?,
            })
        })
        .collect()
}
