//! Ingestion: an event and one delivery per subscribed, non-Disabled webhook, in one
//! transaction, before the API answers 202.

use std::collections::HashMap;
use std::sync::Arc;

use crate::connect::{Durability, WriteTx};
use crate::dialect::{keep_prepared, Backend};
use lwh_domain::{DeliveryId, EventId, Timestamp, WebhookId, WebhookStatus};

use crate::connect::Store;
use crate::decode;
use crate::error::StoreError;
use crate::model::{ClaimedDelivery, IngestOutcome, NewEvent};

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
#[derive(Clone)]
pub struct IngestClaim {
    /// The worker's claim owner id.
    pub owner: String,
    /// End of the lease.
    pub lease_until: Timestamp,
    /// Where the slots come from.
    pub slots: Arc<dyn SlotPool>,
}

/// What [`Store::ingest_claiming`] stored and handed over.
pub struct Ingested {
    /// One per event, in order.
    pub outcomes: Vec<IngestOutcome>,
    /// Deliveries stored as claimed, each holding a slot taken from the pool.
    pub claimed: Vec<ClaimedDelivery>,
}

/// A delivery row to insert: id, webhook, event, due time, and whether it is handed over
/// (stored claimed by the ingesting worker, due at the end of its lease).
type DeliveryRow = (DeliveryId, WebhookId, EventId, i64, bool);

/// What one ingestion transaction writes, decided from the events, their idempotency keys
/// and their subscribers.
struct IngestPlan {
    outcomes: Vec<IngestOutcome>,
    /// Index in the events of each new event, with its number of deliveries.
    events: Vec<(usize, i64)>,
    deliveries: Vec<DeliveryRow>,
    claimed: Vec<ClaimedDelivery>,
}

/// Slots taken during one transaction attempt; given back unless the transaction committed.
struct TakenSlots {
    pool: Option<Arc<dyn SlotPool>>,
    taken: HashMap<WebhookId, usize>,
}

impl TakenSlots {
    fn new(claim: Option<&IngestClaim>) -> Self {
        Self {
            pool: claim.map(|c| c.slots.clone()),
            taken: HashMap::new(),
        }
    }

    fn take(&mut self, webhook: WebhookId) -> bool {
        let Some(pool) = &self.pool else { return false };
        let got = pool.try_take(webhook);
        if got {
            *self.taken.entry(webhook).or_default() += 1;
        }
        got
    }

    /// The transaction committed: the slots now belong to the claimed deliveries.
    fn keep(mut self) {
        self.taken.clear();
    }
}

impl Drop for TakenSlots {
    fn drop(&mut self) {
        if let Some(pool) = &self.pool {
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

const FIND_IDEMPOTENT: &str =
    "SELECT id, deliveries, created_at FROM events WHERE idempotency_key = $1";
const FREE_IDEMPOTENCY_KEY: &str =
    "UPDATE events SET idempotency_key = NULL WHERE idempotency_key = $1";
const SUBSCRIBERS: &str = "SELECT w.id AS id, w.status AS status FROM webhook_events e \
     JOIN webhooks w ON w.id = e.webhook_id \
     WHERE e.event = $1 AND w.status <> 'disabled'";

impl Store {
    /// Stores `events` and their deliveries atomically, all due at once; those of a Paused or
    /// Failed webhook are held by its status (claims take only Active webhooks' deliveries).
    /// A repeated idempotency key within 24 h returns the first event and creates nothing.
    /// With `claim`, deliveries for Active webhooks that get a slot are stored as claimed and
    /// returned, ready to send.
    pub async fn ingest_claiming(
        &self,
        events: &[NewEvent],
        now: Timestamp,
        claim: Option<&IngestClaim>,
    ) -> Result<Ingested, StoreError> {
        match self.ingest_once(events, now, claim).await {
            // Two requests with the same new idempotency key raced; the loser's retry finds
            // the winner's event.
            Err(e) if e.is_unique_violation() => self.ingest_once(events, now, claim).await,
            other => other,
        }
    }

    async fn ingest_once(
        &self,
        events: &[NewEvent],
        now: Timestamp,
        claim: Option<&IngestClaim>,
    ) -> Result<Ingested, StoreError> {
        let (plan, slots) = match &self.sqlite {
            Some(writer) => {
                let owned = events.to_vec();
                let claim = claim.cloned();
                writer
                    .transaction(Durability::Full, move |tx| {
                        let mut slots = TakenSlots::new(claim.as_ref());
                        let plan = plan(
                            &owned,
                            now,
                            claim.as_ref(),
                            &mut slots,
                            |key| sqlite_find_idempotent(tx, key, now),
                            |slug| sqlite_subscribers(tx, slug),
                        )?;
                        sqlite_insert(tx, &owned, &plan, claim.as_ref(), now)?;
                        Ok((plan, slots))
                    })
                    .await?
            }
            None => self.ingest_postgres(events, now, claim).await?,
        };
        slots.keep();
        self.payloads.insert(
            plan.events
                .iter()
                .filter(|(_, deliveries)| *deliveries > 0)
                .map(|(i, _)| (events[*i].id, events[*i].slug.as_str(), &events[*i].payload)),
        );
        Ok(Ingested {
            outcomes: plan.outcomes,
            claimed: plan.claimed,
        })
    }

    /// PostgreSQL: reads the keys and subscribers, then writes the plan — in one statement
    /// (a data-modifying WITH) when it fits, one round trip fewer per transaction.
    async fn ingest_postgres(
        &self,
        events: &[NewEvent],
        now: Timestamp,
        claim: Option<&IngestClaim>,
    ) -> Result<(IngestPlan, TakenSlots), StoreError> {
        let mut tx = self.begin_write().await?;
        let mut known: HashMap<&str, Option<IngestOutcome>> = HashMap::new();
        let mut subscribers: HashMap<&str, Vec<(WebhookId, WebhookStatus)>> = HashMap::new();
        for event in events {
            if let Some(key) = event.idempotency_key.as_deref() {
                if !known.contains_key(key) {
                    let found = self.find_idempotent(&mut tx, key, now).await?;
                    known.insert(key, found);
                }
                // A replay creates nothing: its subscribers are not needed.
                if matches!(known.get(key), Some(Some(_))) {
                    continue;
                }
            }
            if !subscribers.contains_key(event.slug.as_str()) {
                let found = self.subscribers(&mut tx, &event.slug).await?;
                subscribers.insert(event.slug.as_str(), found);
            }
        }
        let mut slots = TakenSlots::new(claim);
        let plan = plan(
            events,
            now,
            claim,
            &mut slots,
            |key| Ok(known.get(key).cloned().flatten()),
            |slug| Ok(subscribers.get(slug).cloned().unwrap_or_default()),
        )?;
        let owner = claim.map(|c| c.owner.as_str());
        let event_rows: Vec<(&NewEvent, i64)> =
            plan.events.iter().map(|(i, n)| (&events[*i], *n)).collect();
        let rows = &plan.deliveries;
        if !rows.is_empty()
            && event_rows.len() <= EVENT_ROWS_PER_INSERT
            && rows.len() <= DELIVERY_ROWS_PER_INSERT
        {
            // The text is not interned: row counts vary.
            let sql = format!(
                "WITH stored_events AS ({EVENTS_INSERT}{}) {DELIVERIES_INSERT}{}",
                values_in_order(event_rows.len(), 6, "", 1),
                values_in_order(rows.len(), 7, ", 'pending'", 1 + 6 * event_rows.len()),
            );
            let query = bind_deliveries(
                bind_events(sqlx::query(&sql), &event_rows, now),
                rows,
                owner,
                now,
            )
            .persistent(keep_prepared(event_rows.len() + rows.len()));
            query.execute(&mut *tx).await?;
        } else {
            for chunk in event_rows.chunks(EVENT_ROWS_PER_INSERT) {
                let sql = format!("{EVENTS_INSERT}{}", values_in_order(chunk.len(), 6, "", 1));
                let query = bind_events(sqlx::query(self.backend.sql_owned(sql)), chunk, now)
                    .persistent(keep_prepared(chunk.len()));
                query.execute(&mut *tx).await?;
            }
            for chunk in rows.chunks(DELIVERY_ROWS_PER_INSERT) {
                let sql = format!(
                    "{DELIVERIES_INSERT}{}",
                    values_in_order(chunk.len(), 7, ", 'pending'", 1)
                );
                let query =
                    bind_deliveries(sqlx::query(self.backend.sql_owned(sql)), chunk, owner, now)
                        .persistent(keep_prepared(chunk.len()));
                query.execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
        Ok((plan, slots))
    }

    async fn find_idempotent(
        &self,
        tx: &mut WriteTx,
        key: &str,
        now: Timestamp,
    ) -> Result<Option<IngestOutcome>, StoreError> {
        let row = sqlx::query(self.backend.sql(FIND_IDEMPOTENT))
            .bind(key)
            .fetch_optional(&mut **tx)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let found = (
            decode::parsed(&row, "id")?,
            decode::int(&row, "deliveries")?,
            decode::int(&row, "created_at")?,
        );
        if let Some(outcome) = still_idempotent(found, now) {
            return Ok(Some(outcome));
        }
        sqlx::query(self.backend.sql(FREE_IDEMPOTENCY_KEY))
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
        let found = sqlx::query(self.backend.sql(SUBSCRIBERS))
            .bind(slug)
            .fetch_all(&mut **tx)
            .await?;
        found
            .iter()
            .map(|r| {
                Ok((
                    decode::parsed(r, "id")?,
                    status(&decode::text(r, "status")?)?,
                ))
            })
            .collect()
    }
}

/// The event stored under a key, if the key is still honoured; `None` means it expired and
/// is free for the new event.
fn still_idempotent(
    (event_id, deliveries, created_at): (EventId, i64, i64),
    now: Timestamp,
) -> Option<IngestOutcome> {
    (now.millis() - created_at < IDEMPOTENCY_WINDOW_MS).then(|| IngestOutcome {
        event_id,
        deliveries: deliveries.max(0) as u64,
        duplicate: true,
    })
}

fn status(text: &str) -> Result<WebhookStatus, StoreError> {
    WebhookStatus::parse(text).ok_or_else(|| StoreError::Corrupt(format!("webhook status {text}")))
}

/// Decides, event by event, what is a duplicate and which deliveries to create — handing
/// over those that get one of the worker's slots. `existing` finds a key's event (and frees
/// an expired key); `subscribers` lists an event's non-Disabled webhooks.
fn plan(
    events: &[NewEvent],
    now: Timestamp,
    claim: Option<&IngestClaim>,
    slots: &mut TakenSlots,
    mut existing: impl FnMut(&str) -> Result<Option<IngestOutcome>, StoreError>,
    mut subscribers: impl FnMut(&str) -> Result<Vec<(WebhookId, WebhookStatus)>, StoreError>,
) -> Result<IngestPlan, StoreError> {
    let mut plan = IngestPlan {
        outcomes: Vec::with_capacity(events.len()),
        events: Vec::with_capacity(events.len()),
        deliveries: Vec::new(),
        claimed: Vec::new(),
    };
    let mut targets_of: HashMap<&str, Vec<(WebhookId, WebhookStatus)>> = HashMap::new();
    let mut keys_in_batch: HashMap<&str, usize> = HashMap::new();
    for (index, event) in events.iter().enumerate() {
        if let Some(key) = event.idempotency_key.as_deref() {
            // The same new key twice in one transaction: the second is the first's duplicate.
            if let Some(first) = keys_in_batch.get(key) {
                let duplicate = IngestOutcome {
                    duplicate: true,
                    ..plan.outcomes[*first].clone()
                };
                plan.outcomes.push(duplicate);
                continue;
            }
            if let Some(found) = existing(key)? {
                plan.outcomes.push(found);
                continue;
            }
        }
        if !targets_of.contains_key(event.slug.as_str()) {
            targets_of.insert(event.slug.as_str(), subscribers(&event.slug)?);
        }
        let targets = &targets_of[event.slug.as_str()];
        plan.events.push((index, targets.len() as i64));
        for (webhook_id, status) in targets {
            let id = DeliveryId::generate();
            match claim {
                Some(c) if status.sends() && slots.take(*webhook_id) => {
                    let due = c.lease_until.millis();
                    plan.deliveries.push((id, *webhook_id, event.id, due, true));
                    plan.claimed.push(ClaimedDelivery {
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
                _ => plan
                    .deliveries
                    .push((id, *webhook_id, event.id, now.millis(), false)),
            }
        }
        if let Some(key) = event.idempotency_key.as_deref() {
            keys_in_batch.insert(key, plan.outcomes.len());
        }
        plan.outcomes.push(IngestOutcome {
            event_id: event.id,
            deliveries: targets.len() as u64,
            duplicate: false,
        });
    }
    Ok(plan)
}

fn sqlite_find_idempotent(
    tx: &rusqlite::Transaction<'_>,
    key: &str,
    now: Timestamp,
) -> Result<Option<IngestOutcome>, StoreError> {
    let mut find = tx.prepare_cached(Backend::Sqlite.sql(FIND_IDEMPOTENT))?;
    let mut cursor = find.query([key])?;
    let Some(row) = cursor.next()? else {
        return Ok(None);
    };
    let found = (decode::sqlite_parsed(row, 0)?, row.get(1)?, row.get(2)?);
    if let Some(outcome) = still_idempotent(found, now) {
        return Ok(Some(outcome));
    }
    tx.prepare_cached(Backend::Sqlite.sql(FREE_IDEMPOTENCY_KEY))?
        .execute([key])?;
    Ok(None)
}

fn sqlite_subscribers(
    tx: &rusqlite::Transaction<'_>,
    slug: &str,
) -> Result<Vec<(WebhookId, WebhookStatus)>, StoreError> {
    let mut select = tx.prepare_cached(Backend::Sqlite.sql(SUBSCRIBERS))?;
    let mut cursor = select.query([slug])?;
    let mut found = Vec::new();
    while let Some(row) = cursor.next()? {
        let text: String = row.get(1)?;
        found.push((decode::sqlite_parsed(row, 0)?, status(&text)?));
    }
    Ok(found)
}

/// Inserts the plan's rows with one cached single-row statement per table: on the writer
/// thread a statement costs no round trip, so multi-row texts would only add parsing.
fn sqlite_insert(
    tx: &rusqlite::Transaction<'_>,
    events: &[NewEvent],
    plan: &IngestPlan,
    claim: Option<&IngestClaim>,
    now: Timestamp,
) -> Result<(), StoreError> {
    let mut insert_event = tx.prepare_cached(&format!("{EVENTS_INSERT}(?, ?, ?, ?, ?, ?)"))?;
    for (index, deliveries) in &plan.events {
        let event = &events[*index];
        insert_event.execute(rusqlite::params![
            event.id.to_string(),
            event.slug,
            &*event.payload,
            event.idempotency_key,
            deliveries,
            now.millis(),
        ])?;
    }
    let mut insert_delivery = tx.prepare_cached(&format!(
        "{DELIVERIES_INSERT}(?, ?, ?, ?, ?, ?, ?, 'pending')"
    ))?;
    let owner = claim.map(|c| c.owner.as_str());
    for (id, webhook_id, event_id, due, handed_over) in &plan.deliveries {
        insert_delivery.execute(rusqlite::params![
            id.to_string(),
            webhook_id.to_string(),
            event_id.to_string(),
            due,
            owner.filter(|_| *handed_over),
            now.millis(),
            now.millis(),
        ])?;
    }
    Ok(())
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
    rows: &'q [DeliveryRow],
    owner: Option<&'q str>,
    now: Timestamp,
) -> AnyQuery<'q> {
    for (id, webhook_id, event_id, due, handed_over) in rows {
        query = query
            .bind(id.to_string())
            .bind(webhook_id.to_string())
            .bind(event_id.to_string())
            .bind(Some(*due))
            .bind(owner.filter(|_| *handed_over))
            .bind(now.millis())
            .bind(now.millis());
    }
    query
}
