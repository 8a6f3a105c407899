//! Ingestion: an event and one delivery per subscribed, non-Disabled webhook, in one
//! transaction, before the API answers 202.

use std::collections::HashMap;

use crate::connect::WriteTx;
use lwh_domain::{DeliveryId, EventId, Timestamp, WebhookId, WebhookStatus};

use crate::connect::Store;
use crate::error::StoreError;
use crate::records::{IngestOutcome, NewEvent};
use crate::rows;

/// An idempotency key is honoured for this long.
pub const IDEMPOTENCY_WINDOW_MS: i64 = 24 * 3600 * 1000;

/// Rows per multi-row INSERT (5 values each, far below both backends' parameter limits).
const DELIVERY_ROWS_PER_INSERT: usize = 400;
/// Events per multi-row INSERT.
const EVENT_ROWS_PER_INSERT: usize = 200;

impl Store {
    /// Stores `events` and their deliveries atomically. Deliveries for Active webhooks are due
    /// at once; those for Paused or Failed webhooks are held. A repeated idempotency key within
    /// 24 h returns the first event and creates nothing.
    pub async fn ingest(
        &self,
        events: &[NewEvent],
        now: Timestamp,
    ) -> Result<Vec<IngestOutcome>, StoreError> {
        match self.ingest_once(events, now).await {
            // Two requests with the same new idempotency key raced; the loser's retry finds
            // the winner's event.
            Err(StoreError::Database(sqlx::Error::Database(e))) if e.is_unique_violation() => {
                self.ingest_once(events, now).await
            }
            other => other,
        }
    }

    async fn ingest_once(
        &self,
        events: &[NewEvent],
        now: Timestamp,
    ) -> Result<Vec<IngestOutcome>, StoreError> {
        let mut tx = self.begin_write().await?;
        let mut subscribers: HashMap<&str, Vec<(WebhookId, WebhookStatus)>> = HashMap::new();
        let mut pending_rows: Vec<(DeliveryId, WebhookId, EventId, Option<i64>)> = Vec::new();
        let mut outcomes = Vec::with_capacity(events.len());
        let mut event_rows: Vec<(&NewEvent, i64)> = Vec::with_capacity(events.len());
        let mut keys_in_batch: HashMap<&str, usize> = HashMap::new();
        for event in events {
            if let Some(key) = &event.idempotency_key {
                // The same new key twice in one transaction: the second is the first's duplicate.
                if let Some(first) = keys_in_batch.get(key.as_str()) {
                    let first: &IngestOutcome = &outcomes[*first];
                    let duplicate = IngestOutcome {
                        duplicate: true,
                        ..first.clone()
                    };
                    outcomes.push(duplicate);
                    continue;
                }
                if let Some(existing) = self.find_idempotent(&mut tx, key, now).await? {
                    outcomes.push(existing);
                    continue;
                }
            }
            if !subscribers.contains_key(event.slug.as_str()) {
                let found = self.subscribers(&mut tx, &event.slug).await?;
                subscribers.insert(event.slug.as_str(), found);
            }
            let targets = &subscribers[event.slug.as_str()];
            event_rows.push((event, targets.len() as i64));
            for (webhook_id, status) in targets {
                let due = status.sends().then_some(now.millis());
                pending_rows.push((DeliveryId::generate(), *webhook_id, event.id, due));
            }
            if let Some(key) = &event.idempotency_key {
                keys_in_batch.insert(key.as_str(), outcomes.len());
            }
            outcomes.push(IngestOutcome {
                event_id: event.id,
                deliveries: targets.len() as u64,
                duplicate: false,
            });
        }
        for chunk in event_rows.chunks(EVENT_ROWS_PER_INSERT) {
            let values: Vec<String> = (0..chunk.len())
                .map(|i| {
                    let b = i * 5;
                    format!(
                        "(${}, ${}, ${}, ${}, ${}, ${})",
                        b + 1,
                        b + 2,
                        b + 3,
                        b + 4,
                        b + 5,
                        chunk.len() * 5 + 1
                    )
                })
                .collect();
            let sql = format!(
                "INSERT INTO events (id, event, payload, idempotency_key, deliveries, created_at) VALUES {}",
                values.join(", ")
            );
            let mut query = sqlx::query(self.backend.sql_owned(sql));
            for (event, deliveries) in chunk {
                query = query
                    .bind(event.id.to_string())
                    .bind(&event.slug)
                    .bind(&event.payload)
                    .bind(event.idempotency_key.clone())
                    .bind(*deliveries);
            }
            query.bind(now.millis()).execute(&mut *tx).await?;
        }
        for chunk in pending_rows.chunks(DELIVERY_ROWS_PER_INSERT) {
            let sql = format!(
                "INSERT INTO deliveries (id, webhook_id, event_id, due_at, created_at, updated_at, status) VALUES {}",
                delivery_values(chunk.len())
            );
            let mut query = sqlx::query(self.backend.sql_owned(sql));
            for (id, webhook_id, event_id, due) in chunk {
                query = query
                    .bind(id.to_string())
                    .bind(webhook_id.to_string())
                    .bind(event_id.to_string())
                    .bind(*due)
                    .bind(now.millis());
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(outcomes)
    }

    async fn find_idempotent(
        &self,
        tx: &mut WriteTx,
        key: &str,
        now: Timestamp,
    ) -> Result<Option<IngestOutcome>, StoreError> {
        let row = sqlx::query(
            self.backend
                .sql("SELECT id, deliveries, created_at FROM events WHERE idempotency_key = $1"),
        )
        .bind(key)
        .fetch_optional(&mut **tx)
        .await?;
        let Some(row) = row else { return Ok(None) };
        if now.millis() - rows::int(&row, "created_at")? < IDEMPOTENCY_WINDOW_MS {
            return Ok(Some(IngestOutcome {
                event_id: rows::parsed(&row, "id")?,
                deliveries: rows::int(&row, "deliveries")?.max(0) as u64,
                duplicate: true,
            }));
        }
        // Expired: the key is free for the new event.
        sqlx::query(
            self.backend
                .sql("UPDATE events SET idempotency_key = NULL WHERE idempotency_key = $1"),
        )
        .bind(key)
        .execute(&mut **tx)
        .await?;
        Ok(None)
    }

    async fn subscribers(
        &self,
        tx: &mut WriteTx,
        slug: &str,
    ) -> Result<Vec<(WebhookId, WebhookStatus)>, StoreError> {
        let found = sqlx::query(self.backend.sql(
            "SELECT w.id AS id, w.status AS status FROM webhook_events e \
             JOIN webhooks w ON w.id = e.webhook_id \
             WHERE e.event = $1 AND w.status <> 'disabled'",
        ))
        .bind(slug)
        .fetch_all(&mut **tx)
        .await?;
        found
            .iter()
            .map(|r| {
                let status = rows::text(r, "status")?;
                Ok((
                    rows::parsed(r, "id")?,
                    WebhookStatus::parse(&status)
                        .ok_or_else(|| StoreError::Corrupt(format!("webhook status {status}")))?,
                ))
            })
            .collect()
    }
}

/// `($1, $2, $3, $4, $5, $5, 'pending'), …` — created_at and updated_at share a value.
fn delivery_values(rows: usize) -> String {
    (0..rows)
        .map(|r| {
            let b = r * 5;
            format!(
                "(${}, ${}, ${}, ${}, ${}, ${}, 'pending')",
                b + 1,
                b + 2,
                b + 3,
                b + 4,
                b + 5,
                b + 5
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}
