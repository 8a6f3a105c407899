//! Ingestion: an event and one delivery per subscribed, non-Disabled webhook, in one
//! transaction, before the API answers 202.

use std::collections::{HashMap, HashSet};

use lwh_domain::ordering::{DeliveryOrder, KeyPlace};
use lwh_domain::{DeliveryId, EventId, Timestamp, WebhookId, WebhookStatus};

use crate::connect::{HotPath, Store};
use crate::error::StoreError;
use crate::model::{ClaimedDelivery, IngestOutcome, NewEvent};

/// Claiming at ingestion: a worker in the ingesting process reserved free in-flight slots
/// before the transaction, and deliveries that fit in them are stored already leased to
/// `owner` (exactly like a claim, so a crash re-queues them the same way) and sent the moment
/// the event is committed, skipping the queue round trip. The reservation is plain data:
/// storage never calls back into the worker inside a transaction.
#[derive(Clone)]
pub struct IngestClaim {
    /// The worker's claim owner id.
    pub owner: String,
    /// End of the lease.
    pub lease_until: Timestamp,
    /// How many deliveries of each webhook may be stored claimed.
    pub slots: HashMap<WebhookId, usize>,
}

/// What [`Store::ingest_claiming`] stored and handed over.
pub struct Ingested {
    /// One per event, in order.
    pub outcomes: Vec<IngestOutcome>,
    /// Deliveries stored as claimed, each using one of the reserved slots.
    pub claimed: Vec<ClaimedDelivery>,
    /// Active webhooks with new deliveries in the queue because no reserved slot was left for
    /// them (only when claiming): handing over must stop until a claim has drained it, or a
    /// hand-over would overtake them.
    pub queued: Vec<WebhookId>,
}

/// A delivery row to insert.
pub(crate) struct DeliveryRow {
    pub(crate) id: DeliveryId,
    pub(crate) webhook_id: WebhookId,
    pub(crate) event_id: EventId,
    /// When it is due (`None`: waiting behind an earlier delivery of its ordering key).
    pub(crate) due: Option<i64>,
    /// Handed over: stored claimed by the ingesting worker, due at the end of its lease.
    pub(crate) handed_over: bool,
    /// Its place in its key's line, for a `by_key` webhook and a keyed event.
    pub(crate) line: Option<(String, i64)>,
}

/// A non-Disabled webhook subscribed to an event: its status and delivery order.
pub(crate) type Subscriber = (WebhookId, WebhookStatus, DeliveryOrder);

/// What one ingestion transaction writes, decided from the events, their idempotency keys
/// and their subscribers.
pub(crate) struct IngestPlan {
    pub(crate) outcomes: Vec<IngestOutcome>,
    /// Index in the events of each new event, with its number of deliveries.
    pub(crate) events: Vec<(usize, i64)>,
    pub(crate) deliveries: Vec<DeliveryRow>,
    pub(crate) claimed: Vec<ClaimedDelivery>,
    pub(crate) queued: Vec<WebhookId>,
}

/// An idempotency key is honoured for this long.
pub const IDEMPOTENCY_WINDOW_MS: i64 = 24 * 3600 * 1000;

/// Rows per multi-row INSERT (10 values each, far below both backends' parameter limits).
pub(crate) const DELIVERY_ROWS_PER_INSERT: usize = 400;
/// Events per multi-row INSERT.
pub(crate) const EVENT_ROWS_PER_INSERT: usize = 200;

pub(crate) const FIND_IDEMPOTENT: &str =
    "SELECT id, deliveries, created_at FROM events WHERE idempotency_key = $1";
pub(crate) const FREE_IDEMPOTENCY_KEY: &str =
    "UPDATE events SET idempotency_key = NULL WHERE idempotency_key = $1";
pub(crate) const SUBSCRIBERS: &str = "SELECT w.id AS id, w.status AS status, \
     w.ordering AS ordering FROM webhook_events e \
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
        let plan = match &self.hot {
            HotPath::Sqlite(writer) => {
                crate::sqlite::ingest::run(writer, events, now, claim).await?
            }
            HotPath::Postgres => crate::postgres::ingest::run(self, events, now, claim).await?,
        };
        self.payloads.insert(
            plan.events
                .iter()
                .filter(|(_, deliveries)| *deliveries > 0)
                .map(|(i, _)| (events[*i].id, events[*i].slug.as_str(), &events[*i].payload)),
        );
        Ok(Ingested {
            outcomes: plan.outcomes,
            claimed: plan.claimed,
            queued: plan.queued,
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

pub(crate) fn ordering(text: &str) -> Result<DeliveryOrder, StoreError> {
    DeliveryOrder::parse(text)
        .ok_or_else(|| StoreError::Corrupt(format!("webhook ordering {text}")))
}

/// The (webhook, key) lines the events will join: keyed events' `by_key` subscribers. On
/// PostgreSQL their locks are taken before the lines are read.
pub(crate) fn lines<'e>(
    events: &'e [NewEvent],
    subscribers: &HashMap<&str, Vec<Subscriber>>,
) -> Vec<(WebhookId, &'e str)> {
    let mut lines = Vec::new();
    for event in events {
        let Some(key) = event.ordering_key.as_deref() else {
            continue;
        };
        for (webhook, _, order) in subscribers.get(event.slug.as_str()).into_iter().flatten() {
            if *order == DeliveryOrder::ByKey && !lines.contains(&(*webhook, key)) {
                lines.push((*webhook, key));
            }
        }
    }
    lines
}

/// Decides, event by event, what is a duplicate and which deliveries to create — handing
/// over those of Active webhooks that fit in the claim's reserved slots. `existing` finds a
/// key's event (and frees an expired key); `subscribers` lists an event's non-Disabled
/// webhooks; `last_of_line` reads the highest number among a (webhook, ordering key) line's
/// unfinished deliveries. A keyed delivery to a `by_key` webhook whose line is busy waits
/// (no due time, never handed over) behind the last one.
pub(crate) fn plan(
    events: &[NewEvent],
    now: Timestamp,
    claim: Option<&IngestClaim>,
    mut existing: impl FnMut(&str) -> Result<Option<IngestOutcome>, StoreError>,
    mut subscribers: impl FnMut(&str) -> Result<Vec<Subscriber>, StoreError>,
    mut last_of_line: impl FnMut(WebhookId, &str) -> Result<Option<i64>, StoreError>,
) -> Result<IngestPlan, StoreError> {
    let mut plan = IngestPlan {
        outcomes: Vec::with_capacity(events.len()),
        events: Vec::with_capacity(events.len()),
        deliveries: Vec::new(),
        claimed: Vec::new(),
        queued: Vec::new(),
    };
    let mut slots = claim.map(|c| c.slots.clone()).unwrap_or_default();
    let mut queued: HashSet<WebhookId> = HashSet::new();
    let mut targets_of: HashMap<&str, Vec<Subscriber>> = HashMap::new();
    // Each line's last number so far, once read.
    let mut line_ends: HashMap<(WebhookId, &str), Option<i64>> = HashMap::new();
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
        // A service event is never delivered to the webhook it is about.
        let all = &targets_of[event.slug.as_str()];
        let targets = || {
            all.iter()
                .filter(|(webhook_id, _, _)| event.about != Some(*webhook_id))
        };
        let count = match event.about {
            Some(_) => targets().count(),
            None => all.len(),
        };
        plan.events.push((index, count as i64));
        for (webhook_id, status, order) in targets() {
            let id = DeliveryId::generate();
            let key = event
                .ordering_key
                .as_deref()
                .filter(|_| *order == DeliveryOrder::ByKey);
            let place = match key {
                Some(key) => {
                    let end = match line_ends.get(&(*webhook_id, key)) {
                        Some(end) => *end,
                        None => last_of_line(*webhook_id, key)?,
                    };
                    let place = KeyPlace::after(end);
                    line_ends.insert((*webhook_id, key), Some(place.seq()));
                    Some(place)
                }
                None => None,
            };
            let line = key.zip(place).map(|(k, p)| (k.to_owned(), p.seq()));
            if place.is_some_and(KeyPlace::waits) {
                plan.deliveries.push(DeliveryRow {
                    id,
                    webhook_id: *webhook_id,
                    event_id: event.id,
                    due: None,
                    handed_over: false,
                    line,
                });
                continue;
            }
            match claim {
                Some(c) if status.sends() && take_slot(&mut slots, *webhook_id) => {
                    plan.deliveries.push(DeliveryRow {
                        id,
                        webhook_id: *webhook_id,
                        event_id: event.id,
                        due: Some(c.lease_until.millis()),
                        handed_over: true,
                        line: line.clone(),
                    });
                    plan.claimed.push(ClaimedDelivery {
                        id,
                        webhook_id: *webhook_id,
                        event_id: event.id,
                        event: event.slug.clone(),
                        payload: event.payload.clone(),
                        attempts: 0,
                        series_start: 0,
                        send_at: None,
                        ordering_key: line.map(|(k, _)| k),
                    });
                }
                // Held (Paused, Failed) deliveries are due too: a claim only takes
                // deliveries of an Active webhook, so pausing and resuming touch no rows.
                _ => {
                    if claim.is_some() && status.sends() && queued.insert(*webhook_id) {
                        plan.queued.push(*webhook_id);
                    }
                    plan.deliveries.push(DeliveryRow {
                        id,
                        webhook_id: *webhook_id,
                        event_id: event.id,
                        due: Some(now.millis()),
                        handed_over: false,
                        line,
                    })
                }
            }
        }
        if let Some(key) = event.idempotency_key.as_deref() {
            keys_in_batch.insert(key, plan.outcomes.len());
        }
        plan.outcomes.push(IngestOutcome {
            event_id: event.id,
            deliveries: count as u64,
            duplicate: false,
        });
    }
    Ok(plan)
}

/// Uses one of the slots reserved for `webhook`, if any is left.
fn take_slot(slots: &mut HashMap<WebhookId, usize>, webhook: WebhookId) -> bool {
    match slots.get_mut(&webhook) {
        Some(left) if *left > 0 => {
            *left -= 1;
            true
        }
        _ => false,
    }
}

pub(crate) const EVENTS_INSERT: &str =
    "INSERT INTO events (id, event, payload, idempotency_key, deliveries, created_at) VALUES ";
pub(crate) const DELIVERIES_INSERT: &str = "INSERT INTO deliveries (id, webhook_id, event_id, due_at, claimed_by, created_at, updated_at, ordering_key, ordering_seq, status) VALUES ";

impl DeliveryRow {
    /// The status it is stored with: waiting behind an earlier delivery of its line, or pending.
    pub(crate) fn status(&self) -> &'static str {
        match self.due {
            None => crate::ordering::WAITING,
            Some(_) => "pending",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_event_is_never_planned_for_the_webhook_it_is_about() {
        let (about, other) = (WebhookId::generate(), WebhookId::generate());
        let event = NewEvent {
            id: lwh_domain::EventId::generate(),
            slug: "webhook_failed".into(),
            payload: std::sync::Arc::from(&b"{}"[..]),
            idempotency_key: None,
            about: Some(about),
            ordering_key: None,
        };
        let planned = plan(
            &[event],
            Timestamp::from_millis(0),
            None,
            |_| Ok(None),
            |_| {
                Ok(vec![
                    (about, WebhookStatus::Active, DeliveryOrder::Unordered),
                    (other, WebhookStatus::Active, DeliveryOrder::Unordered),
                ])
            },
            |_, _| Ok(None),
        )
        .unwrap();
        let to: Vec<WebhookId> = planned.deliveries.iter().map(|d| d.webhook_id).collect();
        assert_eq!(to, [other]);
        assert_eq!(planned.events[0].1, 1, "the event counts one delivery");
    }

    fn keyed(key: Option<&str>) -> NewEvent {
        NewEvent {
            id: lwh_domain::EventId::generate(),
            slug: "course_completed".into(),
            payload: std::sync::Arc::from(&b"{}"[..]),
            idempotency_key: None,
            about: None,
            ordering_key: key.map(str::to_owned),
        }
    }

    #[test]
    fn keyed_deliveries_to_a_by_key_webhook_wait_behind_their_line_and_are_never_handed_over() {
        let (ordered, unordered) = (WebhookId::generate(), WebhookId::generate());
        let events = [
            keyed(Some("user:7")),
            keyed(Some("user:7")),
            keyed(Some("user:8")),
            keyed(None),
            keyed(Some("user:9")),
        ];
        let claim = IngestClaim {
            owner: "me".into(),
            lease_until: Timestamp::from_millis(9_000),
            slots: HashMap::from([(ordered, 10), (unordered, 10)]),
        };
        // user:9 already has unfinished deliveries numbered up to 4 at `ordered`.
        let mut read = Vec::new();
        let planned = plan(
            &events,
            Timestamp::from_millis(1_000),
            Some(&claim),
            |_| Ok(None),
            |_| {
                Ok(vec![
                    (ordered, WebhookStatus::Active, DeliveryOrder::ByKey),
                    (unordered, WebhookStatus::Active, DeliveryOrder::Unordered),
                ])
            },
            |w, key| {
                read.push((w, key.to_owned()));
                Ok((key == "user:9").then_some(4))
            },
        )
        .unwrap();
        assert_eq!(
            read.len(),
            3,
            "each line is read once, only for the by_key webhook"
        );
        type Row = (Option<i64>, bool, Option<(String, i64)>);
        let to_ordered: Vec<Row> = planned
            .deliveries
            .iter()
            .filter(|d| d.webhook_id == ordered)
            .map(|d| (d.due, d.handed_over, d.line.clone()))
            .collect();
        let line = |k: &str, n| Some((k.to_owned(), n));
        assert_eq!(
            to_ordered,
            [
                (Some(9_000), true, line("user:7", 1)),
                (None, false, line("user:7", 2)),
                (Some(9_000), true, line("user:8", 1)),
                (Some(9_000), true, None),
                (None, false, line("user:9", 5)),
            ]
        );
        assert!(planned
            .deliveries
            .iter()
            .filter(|d| d.webhook_id == unordered)
            .all(|d| d.line.is_none() && d.handed_over));
        let keys: Vec<Option<&str>> = planned
            .claimed
            .iter()
            .filter(|c| c.webhook_id == ordered)
            .map(|c| c.ordering_key.as_deref())
            .collect();
        assert_eq!(keys, [Some("user:7"), Some("user:8"), None]);
    }
}
