//! The claim loop: find due deliveries of each Active webhook, send them with bounded
//! concurrency per webhook, hand the results to the recorder.
//!
//! Every process (`serve` or `worker`) runs one. Each webhook gets at most
//! `max_in_flight_per_webhook` concurrent requests and is claimed for only as many as it has
//! free slots, so a dead endpoint holds its own slots and nothing else.
//!
//! The worker also takes deliveries straight from ingestion in its own process ([`HandOver`]):
//! while a webhook's queue is empty and it has a free slot, its new deliveries are stored
//! already claimed and sent the moment their event commits, with no claim transaction and no
//! payload read. As soon as one of them has to wait in the queue, hand-overs for that webhook
//! stop until a claim finds its queue drained, so nothing overtakes what waits (on PostgreSQL,
//! a delivery queued while that claim ran may be overtaken by a few milliseconds; see
//! `InFlight::claim_done`).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use lwh_app::{App, HandOver};
use lwh_domain::retry::RetryPolicy;
use lwh_domain::NextStep;
use lwh_domain::{Timestamp, WebhookId};
use lwh_storage::{AttemptRecord, ClaimedDelivery, SlotPool};
use rand::Rng;
use tokio::sync::{watch, Notify};

use crate::recorder::Recorder;
use crate::sender::{Outgoing, Sender, Target};
use crate::targets::Targets;

/// Most requests in flight from one process, all webhooks together.
pub(crate) const MAX_IN_FLIGHT_TOTAL: usize = 2048;
/// Most deliveries claimed for one webhook in one round.
const MAX_CLAIM_PER_ROUND: usize = 256;
/// How often the queue is checked when nothing wakes the worker.
const IDLE_POLL: Duration = Duration::from_millis(200);
/// How long a webhook may take hand-overs before its queue is checked again. On PostgreSQL a
/// delivery can reach the queue while a claim is looking; this bounds how long it waits.
const HAND_OVER_RECHECK: Duration = Duration::from_secs(1);
/// How long a claim round reuses the list of Active webhooks it read. Ingestion wakes the
/// claim loop after every commit that queued a delivery; beside a webhook whose slots are all
/// taken (a dead endpoint) that was one query per commit — ~660 a second — for rounds that
/// could claim nothing. Edits made through this process refresh it at once.
const ACTIVE_LIST_TTL: Duration = Duration::from_millis(50);

/// Counts requests in flight, per webhook and in total, and which webhooks may take
/// deliveries straight from ingestion.
#[derive(Default)]
struct InFlight {
    per_webhook: HashMap<WebhookId, usize>,
    total: usize,
    /// Webhooks whose queue was last seen empty: ingestion may hand their deliveries over.
    hand_over: HashSet<WebhookId>,
    /// Bumped whenever a delivery of the webhook went to the queue instead, so a claim that
    /// raced with it does not mark the queue empty.
    queued: HashMap<WebhookId, u64>,
    /// When `hand_over` was last cleared.
    rechecked: Option<Instant>,
}

impl InFlight {
    fn take(&mut self, webhook: WebhookId, count: usize) {
        *self.per_webhook.entry(webhook).or_default() += count;
        self.total += count;
    }

    fn give_back(&mut self, webhook: WebhookId, count: usize) {
        if let Some(n) = self.per_webhook.get_mut(&webhook) {
            *n = n.saturating_sub(count);
            if *n == 0 {
                self.per_webhook.remove(&webhook);
            }
        }
        self.total = self.total.saturating_sub(count);
    }

    /// Slots `webhook` may still use.
    fn free(&self, webhook: WebhookId, per_webhook: usize) -> usize {
        let busy = self.per_webhook.get(&webhook).copied().unwrap_or(0);
        per_webhook
            .saturating_sub(busy)
            .min(MAX_IN_FLIGHT_TOTAL.saturating_sub(self.total))
    }

    /// How many of `webhook`'s deliveries went to the queue so far (compared across a claim).
    fn queued_count(&self, webhook: WebhookId) -> u64 {
        self.queued.get(&webhook).copied().unwrap_or(0)
    }

    /// A delivery of `webhook` went to the queue: no more hand-overs until it is drained.
    fn mark_queued(&mut self, webhook: WebhookId) {
        self.hand_over.remove(&webhook);
        *self.queued.entry(webhook).or_default() += 1;
    }

    /// Takes a slot for a delivery of `webhook` being ingested, or sends it to the queue.
    fn try_hand_over(&mut self, webhook: WebhookId, per_webhook: usize) -> bool {
        if self.hand_over.contains(&webhook) && self.free(webhook, per_webhook) > 0 {
            self.take(webhook, 1);
            return true;
        }
        self.mark_queued(webhook);
        false
    }

    /// A claim of `webhook` returned `claimed` of the `asked` slots it reserved; `queued_before`
    /// is the webhook's queued count read before the claim. A claim that left slots unused
    /// drained the queue as it saw it, and hand-overs may start.
    ///
    /// With `serialised` (SQLite: a claim and an ingestion transaction never overlap), a
    /// delivery queued meanwhile keeps them off — the next claim will see it. On PostgreSQL,
    /// under steady load one is queued during nearly every claim, so waiting for a quiet claim
    /// would keep hand-overs off for good: they start anyway, and the `true` returned asks the
    /// caller for another claim at once, for what this one could not see yet.
    fn claim_done(
        &mut self,
        webhook: WebhookId,
        asked: usize,
        claimed: usize,
        queued_before: u64,
        serialised: bool,
    ) -> bool {
        self.give_back(webhook, asked - claimed);
        if claimed >= asked {
            return false;
        }
        let raced = self.queued_count(webhook) != queued_before;
        if raced && serialised {
            return false;
        }
        self.hand_over.insert(webhook);
        raced
    }
}

/// Shared state of one process's delivery worker.
pub struct Worker {
    app: App,
    sender: Sender,
    recorder: Recorder,
    retry: RetryPolicy,
    owner: String,
    lease: Duration,
    per_webhook: usize,
    /// Claims and ingestion never overlap (SQLite's single writer); see `claim_done`.
    serialised: bool,
    in_flight: Mutex<InFlight>,
    /// Any slot freed (graceful stop, the total cap).
    slot_freed: Notify,
    /// A slot freed for a webhook whose deliveries may be waiting in the queue.
    queue_slot_freed: Notify,
    /// Targets of the webhooks this worker can serve now, for hand-overs.
    ready: RwLock<HashMap<WebhookId, Arc<Target>>>,
    stopping: AtomicBool,
    /// A webhook was created, edited or deleted through this process: the next claim round
    /// reads the Active list again, whatever its age.
    active_changed: AtomicBool,
    me: Weak<Worker>,
}

/// The Active webhooks as a claim round last read them, and when.
#[derive(Default)]
struct ActiveList {
    read_at: Option<Instant>,
    webhooks: Vec<(WebhookId, Timestamp)>,
}

impl Worker {
    /// A worker identified as `owner` in claims.
    pub fn new(app: App, sender: Sender, recorder: Recorder, owner: String) -> Arc<Self> {
        let s = app.settings();
        let retry = RetryPolicy::new(s.retry_schedule.iter().map(|d| d.get()).collect());
        // Long enough for the slowest attempt, with margin: a claim is only taken over by
        // another worker when its holder has certainly died.
        let lease = s.request_timeout.get() * 2 + s.connect_timeout.get() + Duration::from_secs(5);
        let per_webhook = s.max_in_flight_per_webhook;
        let serialised = app.store().backend() == lwh_storage::Backend::Sqlite;
        Arc::new_cyclic(|me| Self {
            app,
            sender,
            recorder,
            retry,
            owner,
            lease,
            per_webhook,
            serialised,
            in_flight: Mutex::new(InFlight::default()),
            slot_freed: Notify::new(),
            queue_slot_freed: Notify::new(),
            ready: RwLock::new(HashMap::new()),
            stopping: AtomicBool::new(false),
            active_changed: AtomicBool::new(false),
            me: me.clone(),
        })
    }

    /// Claims and sends until `stop` turns true, then waits for requests in flight.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut targets = Targets::default();
        let mut active = ActiveList::default();
        let work = self.app.work_signal();
        let mut failures = 0u32;
        while !*stop.borrow() {
            match self.claim_round(&mut targets, &mut active).await {
                Ok(claimed) => {
                    failures = 0;
                    if claimed > 0 {
                        // More may be due right away; yield, then look again.
                        tokio::select! {
                            _ = tokio::task::yield_now() => {}
                            _ = stop.changed() => {}
                        }
                        if self.total_in_flight() >= MAX_IN_FLIGHT_TOTAL {
                            self.wait_for_slot(&mut stop).await;
                        }
                        continue;
                    }
                }
                Err(e) => {
                    failures += 1;
                    tracing::warn!(error = %e, "claiming deliveries failed; retrying");
                    let backoff = Duration::from_millis(100 * u64::from(failures.min(50)));
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stop.changed() => {}
                    }
                    continue;
                }
            }
            tokio::select! {
                _ = work.notified() => {}
                _ = self.queue_slot_freed.notified() => {}
                _ = tokio::time::sleep(IDLE_POLL) => {}
                _ = stop.changed() => {}
            }
        }
        self.stopping.store(true, Ordering::SeqCst);
        // Graceful stop: let attempts in flight finish (they are bounded by the timeouts).
        while self.total_in_flight() > 0 {
            self.slot_freed.notified().await;
        }
    }

    async fn wait_for_slot(&self, stop: &mut watch::Receiver<bool>) {
        tokio::select! {
            _ = self.slot_freed.notified() => {}
            _ = tokio::time::sleep(IDLE_POLL) => {}
            _ = stop.changed() => {}
        }
    }

    fn total_in_flight(&self) -> usize {
        self.in_flight.lock().map(|f| f.total).unwrap_or(0)
    }

    fn give_back_slots(&self, webhook: WebhookId, count: usize) {
        if count == 0 {
            return;
        }
        let queued = match self.in_flight.lock() {
            Ok(mut f) => {
                f.give_back(webhook, count);
                !f.hand_over.contains(&webhook)
            }
            Err(_) => true,
        };
        self.slot_freed.notify_waiters();
        self.slot_freed.notify_one();
        // Only a slot of a webhook that may have deliveries waiting is worth a claim round.
        if queued {
            self.queue_slot_freed.notify_one();
        }
    }

    /// One pass over the Active webhooks; returns how many deliveries were claimed.
    async fn claim_round(
        self: &Arc<Self>,
        targets: &mut Targets,
        active: &mut ActiveList,
    ) -> Result<usize, lwh_storage::StoreError> {
        let changed = self.active_changed.swap(false, Ordering::SeqCst);
        let fresh = active
            .read_at
            .is_some_and(|at| at.elapsed() < ACTIVE_LIST_TTL);
        if changed || !fresh {
            match self.app.store().active_webhooks().await {
                Ok(webhooks) => {
                    *active = ActiveList {
                        read_at: Some(Instant::now()),
                        webhooks,
                    };
                }
                Err(e) => {
                    self.active_changed.fetch_or(changed, Ordering::SeqCst);
                    return Err(e);
                }
            }
        }
        let ready = targets.refresh(&self.app, &active.webhooks).await;
        if let Ok(mut snapshot) = self.ready.write() {
            *snapshot = ready
                .iter()
                .filter_map(|id| targets.get(id).map(|t| (*id, t)))
                .collect();
        }
        if let Ok(mut f) = self.in_flight.lock() {
            let due = f
                .rechecked
                .is_none_or(|at| at.elapsed() >= HAND_OVER_RECHECK);
            if due {
                f.hand_over.clear();
                f.rechecked = Some(Instant::now());
            } else {
                f.hand_over.retain(|w| ready.contains(w));
            }
        }
        let mut claimed_total = 0;
        for webhook in ready {
            let Some(target) = targets.get(&webhook) else {
                continue;
            };
            // Reserve the free slots first, so hand-overs during the claim cannot overfill.
            let (free, queued_before) = {
                let Ok(mut f) = self.in_flight.lock() else {
                    break;
                };
                // Its queue was seen drained and nothing was queued since: no claim (a write
                // transaction) until the periodic recheck, which also finds retries come due
                // and what another process queued.
                if f.hand_over.contains(&webhook) {
                    continue;
                }
                let free = f.free(webhook, self.per_webhook).min(MAX_CLAIM_PER_ROUND);
                if free > 0 {
                    f.take(webhook, free);
                }
                (free, f.queued_count(webhook))
            };
            if free == 0 {
                continue;
            }
            let now = Timestamp::now();
            let lease_until = now.plus_millis(self.lease.as_millis() as i64);
            let claimed = match self
                .app
                .store()
                .claim_due(webhook, free, &self.owner, now, lease_until)
                .await
            {
                Ok(claimed) => claimed,
                Err(e) => {
                    self.give_back_slots(webhook, free);
                    return Err(e);
                }
            };
            let look_again = match self.in_flight.lock() {
                Ok(mut f) => {
                    f.claim_done(webhook, free, claimed.len(), queued_before, self.serialised)
                }
                Err(_) => false,
            };
            if look_again {
                self.app.work_signal().notify_one();
            }
            claimed_total += claimed.len();
            for delivery in claimed {
                self.spawn_attempt(target.clone(), delivery);
            }
        }
        Ok(claimed_total)
    }

    /// Sends one delivery whose slot is already taken, then frees the slot.
    fn spawn_attempt(self: &Arc<Self>, target: Arc<Target>, delivery: ClaimedDelivery) {
        let worker = self.clone();
        tokio::spawn(async move {
            let webhook_id = delivery.webhook_id;
            worker.attempt(&target, delivery).await;
            worker.give_back_slots(webhook_id, 1);
        });
    }

    async fn attempt(&self, target: &Target, delivery: ClaimedDelivery) {
        let started_at = Timestamp::now();
        let outgoing = Outgoing {
            delivery_id: delivery.id,
            event_id: delivery.event_id,
            event: &delivery.event,
            payload: &delivery.payload,
        };
        let outcome = self.sender.send(target, &outgoing).await;
        metrics::histogram!("learnomy_webhooks_attempt_duration_seconds")
            .record(outcome.duration_ms as f64 / 1000.0);
        let next = NextStep::after(
            &outcome,
            &self.retry,
            delivery.attempt_in_series(),
            rand::thread_rng().gen(),
            Timestamp::now(),
        );
        tracing::debug!(
            delivery_id = %delivery.id,
            webhook_id = %delivery.webhook_id,
            event_id = %delivery.event_id,
            attempt = delivery.next_attempt_number(),
            result = %outcome.summary(),
            "attempt finished"
        );
        match next {
            NextStep::Delivered => {
                metrics::counter!("learnomy_webhooks_deliveries_total", "outcome" => "delivered")
                    .increment(1)
            }
            NextStep::GiveUp => {
                metrics::counter!("learnomy_webhooks_deliveries_total", "outcome" => "failed")
                    .increment(1)
            }
            NextStep::RetryAt(_) => {
                metrics::counter!("learnomy_webhooks_deliveries_total", "outcome" => "retrying")
                    .increment(1)
            }
        }
        self.recorder
            .record(AttemptRecord {
                delivery_id: delivery.id,
                webhook_id: delivery.webhook_id,
                number: delivery.next_attempt_number(),
                started_at,
                outcome,
                next,
            })
            .await;
    }
}

impl SlotPool for Worker {
    fn try_take(&self, webhook: WebhookId) -> bool {
        if self.stopping.load(Ordering::SeqCst) {
            return false;
        }
        let Ok(mut f) = self.in_flight.lock() else {
            return false;
        };
        let taken = f.try_hand_over(webhook, self.per_webhook);
        if taken {
            metrics::counter!("learnomy_webhooks_deliveries_handed_over_total").increment(1);
        }
        taken
    }

    fn give_back(&self, webhook: WebhookId, count: usize) {
        self.give_back_slots(webhook, count);
    }
}

impl HandOver for Worker {
    fn owner(&self) -> &str {
        &self.owner
    }

    fn lease(&self) -> Duration {
        self.lease
    }

    fn forget(&self, webhook: WebhookId) {
        if let Ok(mut f) = self.in_flight.lock() {
            f.mark_queued(webhook);
        }
        self.active_changed.store(true, Ordering::SeqCst);
        // Let the claim loop reload it now rather than at its next poll.
        self.app.work_signal().notify_one();
    }

    fn dispatch(&self, claimed: Vec<ClaimedDelivery>) {
        let Some(me) = self.me.upgrade() else { return };
        let mut orphans = Vec::new();
        for delivery in claimed {
            let target = self
                .ready
                .read()
                .ok()
                .and_then(|r| r.get(&delivery.webhook_id).cloned());
            match target {
                Some(target) => me.spawn_attempt(target, delivery),
                // The webhook changed between the slot and the commit: back to the queue.
                None => orphans.push(delivery),
            }
        }
        if orphans.is_empty() {
            return;
        }
        tokio::spawn(async move {
            let ids: Vec<_> = orphans.iter().map(|d| d.id).collect();
            if let Err(e) = me.app.store().release_claims(&ids, Timestamp::now()).await {
                tracing::warn!(error = %e, "cannot re-queue handed-over deliveries; their lease will");
            }
            for d in &orphans {
                me.give_back_slots(d.webhook_id, 1);
            }
            me.app.work_signal().notify_one();
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_overs_start_only_after_a_claim_finds_the_queue_drained() {
        let w = WebhookId::generate();
        let mut f = InFlight::default();
        assert!(!f.try_hand_over(w, 2), "never seen drained: queue");
        // A claim that reserved 2 and found 0, with the queue untouched since it began.
        let before = f.queued_count(w);
        f.take(w, 2);
        f.claim_done(w, 2, 0, before, true);
        assert_eq!(f.total, 0, "unused reservations are given back");
        assert!(f.try_hand_over(w, 2));
        assert!(f.try_hand_over(w, 2));
        assert_eq!(f.per_webhook[&w], 2);
        assert!(
            !f.try_hand_over(w, 2),
            "the in-flight cap holds for hand-overs"
        );
        // That delivery went to the queue: later ones must not overtake it, even with a slot.
        f.give_back(w, 2);
        assert!(!f.try_hand_over(w, 2));
    }

    #[test]
    fn a_delivery_queued_during_a_claim_keeps_hand_overs_off() {
        let w = WebhookId::generate();
        let mut f = InFlight::default();
        let before = f.queued_count(w);
        f.take(w, 4);
        // Ingestion queued one while the claim was running (it did not see it).
        assert!(!f.try_hand_over(w, 8));
        f.claim_done(w, 4, 1, before, true);
        assert!(!f.try_hand_over(w, 8), "the queue may hold a delivery");
        // The next claim finds it drained.
        let before = f.queued_count(w);
        f.take(w, 4);
        f.claim_done(w, 4, 2, before, true);
        assert!(f.try_hand_over(w, 8));
    }

    #[test]
    fn an_edit_during_a_claim_keeps_hand_overs_off() {
        let w = WebhookId::generate();
        let mut f = InFlight::default();
        let before = f.queued_count(w);
        f.take(w, 2);
        // The webhook is edited (HandOver::forget) while the claim, which loaded the old
        // target, is running.
        f.mark_queued(w);
        f.claim_done(w, 2, 0, before, true);
        assert!(
            !f.try_hand_over(w, 8),
            "the old target must not take hand-overs"
        );
    }

    #[test]
    fn on_postgresql_a_claim_that_raced_turns_hand_overs_on_and_asks_for_another() {
        let w = WebhookId::generate();
        let mut f = InFlight::default();
        let before = f.queued_count(w);
        f.take(w, 4);
        assert!(!f.try_hand_over(w, 8), "queued during the claim");
        assert!(
            f.claim_done(w, 4, 1, before, false),
            "another claim must look for it"
        );
        assert!(f.try_hand_over(w, 8));
        // Without a race there is nothing to look again for.
        let before = f.queued_count(w);
        f.take(w, 4);
        assert!(!f.claim_done(w, 4, 0, before, false));
    }

    #[test]
    fn a_full_claim_leaves_hand_overs_off() {
        let w = WebhookId::generate();
        let mut f = InFlight::default();
        f.take(w, 3);
        f.claim_done(w, 3, 3, 0, true);
        assert!(
            !f.try_hand_over(w, 8),
            "a claim that filled every slot may have left more"
        );
        assert_eq!(f.per_webhook[&w], 3);
    }
}
