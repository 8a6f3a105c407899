//! Ingestion: an event and one delivery per subscribed, non-Disabled webhook, in one
//! transaction, before the API answers 202.

use std::collections::HashMap;
use std::sync::Arc;

use lwh_domain::{DeliveryId, EventId, Timestamp, WebhookId, WebhookStatus};

use crate::connect::{HotPath, Store};
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
pub(crate) type DeliveryRow = (DeliveryId, WebhookId, EventId, i64, bool);

/// What one ingestion transaction writes, decided from the events, their idempotency keys
/// and their subscribers.
pub(crate) struct IngestPlan {
    pub(crate) outcomes: Vec<IngestOutcome>,
    /// Index in the events of each new event, with its number of deliveries.
    pub(crate) events: Vec<(usize, i64)>,
    pub(crate) deliveries: Vec<DeliveryRow>,
    pub(crate) claimed: Vec<ClaimedDelivery>,
}

/// Slots taken during one transaction attempt; given back unless the transaction committed.
pub(crate) struct TakenSlots {
    pool: Option<Arc<dyn SlotPool>>,
    taken: HashMap<WebhookId, usize>,
}

impl TakenSlots {
    pub(crate) fn new(claim: Option<&IngestClaim>) -> Self {
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
pub(crate) const DELIVERY_ROWS_PER_INSERT: usize = 400;
/// Events per multi-row INSERT.
pub(crate) const EVENT_ROWS_PER_INSERT: usize = 200;

pub(crate) const FIND_IDEMPOTENT: &str =
    "SELECT id, deliveries, created_at FROM events WHERE idempotency_key = $1";
pub(crate) const FREE_IDEMPOTENCY_KEY: &str =
    "UPDATE events SET idempotency_key = NULL WHERE idempotency_key = $1";
pub(crate) const SUBSCRIBERS: &str = "SELECT w.id AS id, w.status AS status FROM webhook_events e \
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
        let (plan, slots) = match &self.hot {
            HotPath::Sqlite(writer) => {
                crate::sqlite::ingest::run(writer, events, now, claim).await?
            }
            HotPath::Postgres => crate::postgres::ingest::run(self, events, now, claim).await?,
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
}

/// The event stored under a key, if the key is still honoured; `None` means it expired and
/// is free for the new event.
pub(crate) fn still_idempotent(
    (event_id, deliveries, created_at): (EventId, i64, i64),
    now: Timestamp,
) -> Option<IngestOutcome> {
    (now.millis() - created_at < IDEMPOTENCY_WINDOW_MS).then(|| IngestOutcome {
        event_id,
        deliveries: deliveries.max(0) as u64,
        duplicate: true,
    })
}

pub(crate) fn status(text: &str) -> Result<WebhookStatus, StoreError> {
    WebhookStatus::parse(text).ok_or_else(|| StoreError::Corrupt(format!("webhook status {text}")))
}

/// Decides, event by event, what is a duplicate and which deliveries to create — handing
/// over those that get one of the worker's slots. `existing` finds a key's event (and frees
/// an expired key); `subscribers` lists an event's non-Disabled webhooks.
pub(crate) fn plan(
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

pub(crate) const EVENTS_INSERT: &str =
    "INSERT INTO events (id, event, payload, idempotency_key, deliveries, created_at) VALUES ";
pub(crate) const DELIVERIES_INSERT: &str = "INSERT INTO deliveries (id, webhook_id, event_id, due_at, claimed_by, created_at, updated_at, status) VALUES ";
