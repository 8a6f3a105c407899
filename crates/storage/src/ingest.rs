//! Ingestion: an event and one delivery per subscribed, non-Disabled webhook, in one
//! transaction, before the API answers 202.

use std::collections::HashMap;

use crate::connect::WriteTx;
use lwh_domain::{DeliveryId, EventId, Timestamp, WebhookId, WebhookStatus};

use crate::connect::Store;
use crate::error::StoreError;
use crate::records::{ClaimedDelivery, IngestOutcome, NewEvent};
use crate::rows;

/// The in-flight slots of the ingesting process's own worker. Ingestion takes one for each
/// delivery it can hand straight over, so that delivery skips the queue round trip (a claim
/// transaction and a payload read) and is sent the moment its event is committed.
pub trait SlotPool: Send + Sync {
    /// Takes one in-flight slot for `webhook`, if this process can send to it now and nothing
    /// of it waits in the queue (handing over must not overtake queued deliveries).
    fn try_take(&self, webhook: WebhookId) -> bool;
    /// Returns slots taken for a transaction that did not commit.
    fn give_back(&self, webhook: WebhookId, count: usize);
}

/// Claiming at ingestion: deliveries that got a slot are stored already leased to `owner`
/// (exactly like a claim, so a crash re-queues them the same way).
pub struct IngestClaim<'a> {
    /// The worker's claim owner id.
    pub owner: &'a str,
    /// End of the lease.
    pub lease_until: Timestamp,
    /// Where the slots come from.
    pub slots: &'a dyn SlotPool,
}

/// What [`Store::ingest_claiming`] stored and handed over.
pub struct Ingested {
    /// One per event, in order.
    pub outcomes: Vec<IngestOutcome>,
    /// Deliveries stored as claimed, each holding a slot taken from the pool.
    pub claimed: Vec<ClaimedDelivery>,
}

/// A delivery row to insert: id, webhook, event, due time and claim owner
/// (`Some` when handed over at ingestion).
type DeliveryRow<'a> = (DeliveryId, WebhookId, EventId, Option<i64>, Option<&'a str>);

/// Slots taken during one transaction attempt; given back unless the transaction committed.
struct TakenSlots<'a> {
    pool: Option<&'a dyn SlotPool>,
    taken: HashMap<WebhookId, usize>,
}

impl TakenSlots<'_> {
    fn take(&mut self, webhook: WebhookId) -> bool {
        let Some(pool) = self.pool else { return false };
        let got = pool.try_take(webhook);
        if got {
            *self.taken.entry(webhook).or_default() += 1;
        }
        got
    }
}

impl Drop for TakenSlots<'_> {
    fn drop(&mut self) {
        if let Some(pool) = self.pool {
            for (webhook, count) in self.taken.drain() {
                pool.give_back(webhook, count);
            }
        }
    }
}

/// An idempotency key is honoured for this long.
pub const IDEMPOTENCY_WINDOW_MS: i64 = 24 * 3600 * 1000;

/// Rows per multi-row INSERT (7 values each, far below both backends' parameter limits).
const DELIVERY_ROWS_PER_INSERT: usize = 400;
/// Events per multi-row INSERT.
const EVENT_ROWS_PER_INSERT: usize = 200;

impl Store {
    /// Stores `events` and their deliveries atomically, all due at once; those of a Paused or
    /// Failed webhook are held by its status (claims take only Active webhooks' deliveries). A repeated idempotency key within
    /// 24 h returns the first event and creates nothing.
    pub async fn ingest(
        &self,
        events: &[NewEvent],
        now: Timestamp,
    ) -> Result<Vec<IngestOutcome>, StoreError> {
        Ok(self.ingest_claiming(events, now, None).await?.outcomes)
    }

    /// [`Store::ingest`], and with `claim`, deliveries for Active webhooks that get a slot
    /// are stored as claimed and returned, ready to send.
    pub async fn ingest_claiming(
        &self,
        events: &[NewEvent],
        now: Timestamp,
        claim: Option<&IngestClaim<'_>>,
    ) -> Result<Ingested, StoreError> {
        match self.ingest_once(events, now, claim).await {
            // Two requests with the same new idempotency key raced; the loser's retry finds
            // the winner's event.
            Err(StoreError::Database(sqlx::Error::Database(e))) if e.is_unique_violation() => {
                self.ingest_once(events, now, claim).await
            }
            other => other,
        }
    }

    async fn ingest_once(
        &self,
        events: &[NewEvent],
        now: Timestamp,
        claim: Option<&IngestClaim<'_>>,
    ) -> Result<Ingested, StoreError> {
        let mut slots = TakenSlots {
            pool: claim.map(|c| c.slots),
            taken: HashMap::new(),
        };
        let mut claimed = Vec::new();
        let mut tx = self.begin_write().await?;
        let mut subscribers: HashMap<&str, Vec<(WebhookId, WebhookStatus)>> = HashMap::new();
        let mut pending_rows: Vec<DeliveryRow> = Vec::new();
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
                let id = DeliveryId::generate();
                match claim {
                    Some(c) if status.sends() && slots.take(*webhook_id) => {
                        let (due, owner) = (Some(c.lease_until.millis()), Some(c.owner));
                        pending_rows.push((id, *webhook_id, event.id, due, owner));
                        claimed.push(ClaimedDelivery {
                            id,
                            webhook_id: *webhook_id,
                            event_id: event.id,
                            event: event.slug.clone(),
                            payload: event.payload.clone(),
                            attempts: 0,
                            series_start: 0,
                        });
                    }
                    // Held (Paused, Failed) deliveries are due too: a claim only takes
                    // deliveries of an Active webhook, so pausing and resuming touch no rows.
                    _ => pending_rows.push((id, *webhook_id, event.id, Some(now.millis()), None)),
                }
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
        let one_statement = self.backend == crate::dialect::Backend::Postgres
            && !pending_rows.is_empty()
            && event_rows.len() <= EVENT_ROWS_PER_INSERT
            && pending_rows.len() <= DELIVERY_ROWS_PER_INSERT;
        if one_statement {
            // PostgreSQL: events and deliveries in one statement (a data-modifying WITH), one
            // round trip fewer per transaction. The text is not interned: row counts vary.
            let sql = format!(
                "WITH stored_events AS ({EVENTS_INSERT}{}) {DELIVERIES_INSERT}{}",
                values_in_order(event_rows.len(), 6, "", 1),
                values_in_order(
                    pending_rows.len(),
                    7,
                    ", 'pending'",
                    1 + 6 * event_rows.len()
                ),
            );
            let query = bind_deliveries(
                bind_events(sqlx::query(&sql), &event_rows, now),
                &pending_rows,
                now,
            );
            query.execute(&mut *tx).await?;
        } else {
            for chunk in event_rows.chunks(EVENT_ROWS_PER_INSERT) {
                let sql = format!("{EVENTS_INSERT}{}", values_in_order(chunk.len(), 6, "", 1));
                let query = bind_events(sqlx::query(self.backend.sql_owned(sql)), chunk, now);
                query.execute(&mut *tx).await?;
            }
            for chunk in pending_rows.chunks(DELIVERY_ROWS_PER_INSERT) {
                let sql = format!(
                    "{DELIVERIES_INSERT}{}",
                    values_in_order(chunk.len(), 7, ", 'pending'", 1)
                );
                let query = bind_deliveries(sqlx::query(self.backend.sql_owned(sql)), chunk, now);
                query.execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
        // Committed: the slots now belong to the claimed deliveries.
        slots.taken.clear();
        self.payloads.insert(
            event_rows
                .iter()
                .filter(|(_, deliveries)| *deliveries > 0)
                .map(|(event, _)| (event.id, event.slug.as_str(), &event.payload)),
        );
        Ok(Ingested { outcomes, claimed })
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

/// `($first, …{constants}), (…), …` for `rows` rows of `k` bound values, numbered in order
/// so SQLite binds them positionally.
fn values_in_order(rows: usize, k: usize, constants: &str, first: usize) -> String {
    (0..rows)
        .map(|r| {
            format!(
                "({}{constants})",
                crate::dialect::placeholders(k, first + r * k)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

const EVENTS_INSERT: &str =
    "INSERT INTO events (id, event, payload, idempotency_key, deliveries, created_at) VALUES ";
const DELIVERIES_INSERT: &str = "INSERT INTO deliveries (id, webhook_id, event_id, due_at, claimed_by, created_at, updated_at, status) VALUES ";

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

/// Binds the six values of each event row, in [`EVENTS_INSERT`]'s column order.
fn bind_events<'q>(
    mut query: AnyQuery<'q>,
    rows: &'q [(&NewEvent, i64)],
    now: Timestamp,
) -> AnyQuery<'q> {
    for (event, deliveries) in rows {
        query = query
            .bind(event.id.to_string())
            .bind(&event.slug)
            .bind(&*event.payload)
            .bind(event.idempotency_key.clone())
            .bind(*deliveries)
            .bind(now.millis());
    }
    query
}

/// Binds the seven values of each delivery row, in [`DELIVERIES_INSERT`]'s column order.
fn bind_deliveries<'q>(
    mut query: AnyQuery<'q>,
    rows: &'q [DeliveryRow<'q>],
    now: Timestamp,
) -> AnyQuery<'q> {
    for (id, webhook_id, event_id, due, owner) in rows {
        query = query
            .bind(id.to_string())
            .bind(webhook_id.to_string())
            .bind(event_id.to_string())
            .bind(*due)
            .bind(*owner)
            .bind(now.millis())
            .bind(now.millis());
    }
    query
}
