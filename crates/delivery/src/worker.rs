//! The claim loop: find due deliveries of each Active webhook, send them with bounded
//! concurrency per webhook, hand the results to the recorder.
//!
//! Every process (`serve` or `worker`) runs one. Each webhook gets at most
//! `max_in_flight_per_webhook` concurrent requests and is claimed for only as many as it has
//! free slots, so a dead endpoint holds its own slots and nothing else. While a webhook's
//! queue has work, a slot is not freed when its attempt is recorded: the recorder's transaction
//! claims the webhook's next due delivery into it ([`AttemptRecord::refill`]), so a busy slot
//! never waits for a claim round.
//!
//! The worker also takes deliveries straight from ingestion in its own process ([`HandOver`]):
//! while a webhook's queue is empty and it has a free slot, its new deliveries are stored
//! already claimed and sent the moment their event commits, with no claim transaction and no
//! payload read. Ingestion reserves those slots before its transaction, from the
//! subscriptions this worker last read, and settles them after it. As soon as one of them has to wait in the queue, hand-overs for that webhook
//! stop until a claim finds its queue drained, so nothing overtakes what waits (on PostgreSQL,
//! a delivery queued while that claim ran may be overtaken by a few milliseconds; see
//! `InFlight::claim_done`).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use lwh_app::{App, HandOver, Reservation, Settled};
use lwh_domain::retry::RetryPolicy;
use lwh_domain::NextStep;
use lwh_domain::{Timestamp, WebhookId};
use lwh_storage::{AttemptRecord, ClaimedDelivery, NewEvent};
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
/// Deliveries of one ordering-key line sent in a row in one slot (each claimed as its
/// predecessor is recorded) before the slot goes back to what waits in the queue.
const MAX_CHAIN: usize = 16;
/// Retries due within this long get a timer that wakes the claim loop when they are due.
const RETRY_WAKE_HORIZON: Duration = Duration::from_secs(10);
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
    /// How many times a webhook was forgotten ([`HandOver::forget`]), all webhooks together.
    forgets: u64,
    /// The value of `forgets` when each webhook was last forgotten.
    forgotten_at: HashMap<WebhookId, u64>,
    /// Throttled webhooks with nothing to claim for now.
    paced: HashMap<WebhookId, PaceWait>,
}

/// Why a throttled webhook is not claimed for now.
#[derive(Debug, Clone, Copy)]
enum PaceWait {
    /// Its next turns are too far ahead: claim again from then.
    Until(Instant),
    /// Its queue was found empty when its queued count was this; claim again when something
    /// is queued here, or after [`HAND_OVER_RECHECK`] (retries come due, other processes).
    Drained { queued_at: u64, since: Instant },
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

    /// Reserves, for an ingestion transaction, up to `wanted` slots of each webhook whose
    /// queue was last seen drained.
    fn reserve(&mut self, wanted: &HashMap<WebhookId, usize>, per_webhook: usize) -> Reservation {
        let mut slots = HashMap::new();
        for (webhook, count) in wanted {
            if !self.hand_over.contains(webhook) {
                continue;
            }
            let take = (*count).min(self.free(*webhook, per_webhook));
            if take > 0 {
                self.take(*webhook, take);
                slots.insert(*webhook, take);
            }
        }
        Reservation {
            slots,
            mark: self.forgets,
        }
    }

    /// The webhook is being changed: the next hand-overs must wait for a claim, and those
    /// reserved before now must not reach its cached target.
    fn forget(&mut self, webhook: WebhookId) {
        self.mark_queued(webhook);
        self.forgets += 1;
        self.forgotten_at.insert(webhook, self.forgets);
    }

    /// Whether `webhook` was forgotten (is being or was changed) since `forgets` read `mark`:
    /// a target loaded before then may be stale.
    fn forgotten_since(&self, webhook: WebhookId, mark: u64) -> bool {
        self.forgotten_at.get(&webhook).is_some_and(|at| *at > mark)
    }

    /// Settles a reservation after its transaction stored `used` claimed deliveries per
    /// webhook and queued deliveries of `queued`: gives back the unused slots and stops
    /// hand-overs for `queued`. Returns the webhooks forgotten since the reservation, whose
    /// claimed deliveries must go back to the queue rather than to their cached target.
    fn settle(
        &mut self,
        reservation: &Reservation,
        used: &HashMap<WebhookId, usize>,
        queued: &[WebhookId],
    ) -> HashSet<WebhookId> {
        for (webhook, reserved) in &reservation.slots {
            let unused = reserved.saturating_sub(used.get(webhook).copied().unwrap_or(0));
            self.give_back(*webhook, unused);
        }
        for webhook in queued {
            self.mark_queued(*webhook);
        }
        used.keys()
            .filter(|w| self.forgotten_since(**w, reservation.mark))
            .copied()
            .collect()
    }

    /// Whether a throttled webhook has nothing to claim for now.
    fn pace_waits(&self, webhook: WebhookId, now: Instant) -> bool {
        match self.paced.get(&webhook) {
            None => false,
            Some(PaceWait::Until(at)) => now < *at,
            Some(PaceWait::Drained { queued_at, since }) => {
                *queued_at == self.queued_count(webhook)
                    && now.duration_since(*since) < HAND_OVER_RECHECK
            }
        }
    }

    /// A paced claim of `webhook` took `claimed` of the `asked` slots it reserved, when the
    /// pace allowed `allowed` with the next free turn `turn_in` from now. Gives back the unused
    /// slots and decides when to claim it again: once its queue has something (it ran dry),
    /// or when half the time to its next free turn has passed (the pace or its slots stopped
    /// it) — so a claim takes a batch of turns rather than one turn per freed slot.
    fn paced_claim_done(
        &mut self,
        webhook: WebhookId,
        asked: usize,
        claimed: usize,
        allowed: usize,
        turn_in: Duration,
        queued_before: u64,
    ) {
        self.give_back(webhook, asked - claimed);
        let now = Instant::now();
        let wait = if claimed < allowed {
            PaceWait::Drained {
                queued_at: queued_before,
                since: now,
            }
        } else {
            PaceWait::Until(now + turn_in / 2)
        };
        self.paced.insert(webhook, wait);
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

/// How long a claim is held: long enough for the slowest attempt, with margin, so a claim is
/// only taken over by another worker when its holder has certainly died.
pub(crate) fn lease_for(s: &lwh_app::Settings) -> Duration {
    s.request_timeout.get() * 2 + s.connect_timeout.get() + Duration::from_secs(5)
}

/// What an attempt left to do once recorded.
struct AttemptEnd {
    /// Recording it made a delivery waiting in an ordering key's line due.
    released: bool,
    /// Its delivery is retried then.
    retry_at: Option<Timestamp>,
    /// The next delivery of its ordering-key line, claimed for this worker.
    successor: Option<ClaimedDelivery>,
    /// Otherwise, the next due delivery of its webhook, claimed for this worker.
    refill: Option<ClaimedDelivery>,
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
    /// The webhooks this worker can serve now, for hand-overs.
    ready: RwLock<Ready>,
    stopping: AtomicBool,
    /// A webhook was created, edited or deleted through this process: the next claim round
    /// reads the Active list again, whatever its age.
    active_changed: AtomicBool,
    me: Weak<Worker>,
}

/// The targets of the webhooks a worker can serve now, and which of them each event goes to.
#[derive(Default)]
struct Ready {
    targets: HashMap<WebhookId, Arc<Target>>,
    by_event: HashMap<String, Vec<WebhookId>>,
}

impl Ready {
    fn new(targets: HashMap<WebhookId, Arc<Target>>) -> Self {
        let mut by_event: HashMap<String, Vec<WebhookId>> = HashMap::new();
        // A throttled webhook's deliveries wait for their turn in the queue: none is handed
        // over.
        for (id, target) in targets.iter().filter(|(_, t)| t.throttle.is_none()) {
            for event in target.events.iter() {
                by_event.entry(event.clone()).or_default().push(*id);
            }
        }
        Self { targets, by_event }
    }

    /// Whether `targets` are exactly these (the same webhooks, the same loaded targets).
    fn same_targets(&self, targets: &HashMap<WebhookId, Arc<Target>>) -> bool {
        self.targets.len() == targets.len()
            && targets.iter().all(|(id, t)| {
                self.targets
                    .get(id)
                    .is_some_and(|mine| Arc::ptr_eq(mine, t))
            })
    }

    /// How many deliveries `events` would create for each of these webhooks.
    fn wanted(&self, events: &[NewEvent]) -> HashMap<WebhookId, usize> {
        let mut wanted = HashMap::new();
        for event in events {
            for webhook in self.by_event.get(&event.slug).into_iter().flatten() {
                *wanted.entry(*webhook).or_default() += 1;
            }
        }
        wanted
    }
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
        let lease = lease_for(s);
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
            ready: RwLock::new(Ready::default()),
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
        // Targets are loaded below; an edit from here on makes them stale, and what a claim
        // of that webhook returns goes back to the queue rather than to the old target.
        let round_mark = self.in_flight.lock().map(|f| f.forgets).unwrap_or(u64::MAX);
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
        let current: HashMap<WebhookId, Arc<Target>> = ready
            .iter()
            .filter_map(|id| targets.get(id).map(|t| (*id, t)))
            .collect();
        // The event index is rebuilt only when a target came, went or changed (rounds run
        // after every commit that queued something).
        let unchanged = self.ready.read().is_ok_and(|r| r.same_targets(&current));
        if !unchanged {
            if let Ok(mut snapshot) = self.ready.write() {
                *snapshot = Ready::new(current);
            }
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
            // Webhooks no longer Active (or deleted) need no pace decision.
            f.paced.retain(|w, _| ready.contains(w));
        }
        let mut claimed_total = 0;
        for webhook in ready {
            let Some(target) = targets.get(&webhook) else {
                continue;
            };
            if target.throttle.is_some() {
                claimed_total += self.claim_paced(webhook, &target, round_mark).await?;
                continue;
            }
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
            let mut claimed = claimed;
            let look_again = match self.in_flight.lock() {
                Ok(mut f) => {
                    if self.handed_back_if_stale(&mut f, webhook, round_mark, free, &mut claimed) {
                        continue;
                    }
                    f.claim_done(webhook, free, claimed.len(), queued_before, self.serialised)
                }
                Err(_) => false,
            };
            if look_again {
                self.app.work_signal().notify_one();
            }
            claimed_total += claimed.len();
            for delivery in claimed {
                self.spawn_attempt(target.clone(), delivery, round_mark);
            }
        }
        Ok(claimed_total)
    }

    /// Claims a throttled webhook's deliveries whose turn is near; returns how many.
    async fn claim_paced(
        self: &Arc<Self>,
        webhook: WebhookId,
        target: &Arc<Target>,
        round_mark: u64,
    ) -> Result<usize, lwh_storage::StoreError> {
        let (free, queued_before) = {
            let Ok(mut f) = self.in_flight.lock() else {
                return Ok(0);
            };
            if f.pace_waits(webhook, Instant::now()) {
                return Ok(0);
            }
            let free = f.free(webhook, self.per_webhook).min(MAX_CLAIM_PER_ROUND);
            if free > 0 {
                f.take(webhook, free);
            }
            (free, f.queued_count(webhook))
        };
        if free == 0 {
            return Ok(0);
        }
        let now = Timestamp::now();
        let paced = match self
            .app
            .store()
            .claim_paced(webhook, free, &self.owner, now, self.lease)
            .await
        {
            Ok(paced) => paced,
            Err(e) => {
                self.give_back_slots(webhook, free);
                return Err(e);
            }
        };
        let turn_in =
            Duration::from_millis((paced.next_turn.millis() - now.millis()).max(0) as u64);
        let mut paced = paced;
        if let Ok(mut f) = self.in_flight.lock() {
            if self.handed_back_if_stale(&mut f, webhook, round_mark, free, &mut paced.claimed) {
                return Ok(0);
            }
            f.paced_claim_done(
                webhook,
                free,
                paced.claimed.len(),
                paced.allowed,
                turn_in,
                queued_before,
            );
        }
        let claimed = paced.claimed.len();
        for delivery in paced.claimed {
            self.spawn_attempt(target.clone(), delivery, round_mark);
        }
        Ok(claimed)
    }

    /// A claim of `webhook` that took `claimed` with `reserved` slots, its target loaded at
    /// forget count `loaded_at`: if the webhook was edited since, gives back the unused slots,
    /// sends the claimed deliveries back to the queue (freeing theirs) and returns true — no
    /// hand-overs start on a stale target.
    fn handed_back_if_stale(
        self: &Arc<Self>,
        f: &mut InFlight,
        webhook: WebhookId,
        loaded_at: u64,
        reserved: usize,
        claimed: &mut Vec<ClaimedDelivery>,
    ) -> bool {
        if !f.forgotten_since(webhook, loaded_at) {
            return false;
        }
        f.give_back(webhook, reserved.saturating_sub(claimed.len()));
        self.requeue_unsent(std::mem::take(claimed));
        true
    }

    /// Sends one delivery whose slot is already taken (at its turn, for a throttled webhook),
    /// then frees the slot. `loaded_at` is the forget count when `target` was loaded: an edit
    /// after it keeps the successors of a line off the old target.
    fn spawn_attempt(
        self: &Arc<Self>,
        target: Arc<Target>,
        delivery: ClaimedDelivery,
        loaded_at: u64,
    ) {
        let worker = self.clone();
        tokio::spawn(async move {
            let webhook_id = delivery.webhook_id;
            if let Some(turn) = delivery.send_at {
                let wait = turn.millis() - Timestamp::now().millis();
                if wait > 0 {
                    tokio::time::sleep(Duration::from_millis(wait as u64)).await;
                }
            }
            let mut delivery = delivery;
            let mut chained = 0;
            loop {
                // A line keeps its slot for a run of deliveries, then yields it to what waits
                // in the queue (other keys, unkeyed deliveries), oldest first.
                let take_next = chained < MAX_CHAIN || worker.queue_drained(webhook_id);
                let refill = worker.refills(&target);
                let end = worker.attempt(&target, delivery, take_next, refill).await;
                if end.released {
                    // A delivery waiting behind this one became due: claim it, even if the
                    // queue was last seen drained.
                    worker.queue_has_work(webhook_id);
                }
                if let Some(at) = end.retry_at {
                    worker.wake_for_retry(webhook_id, at);
                }
                // The next of this one's ordering-key line, or else the next due delivery of
                // its webhook, claimed for us as this one was recorded: sent in the same slot,
                // unless the webhook changed meanwhile.
                let next = match (end.successor, end.refill) {
                    (Some(line_next), _) => Some((line_next, true)),
                    (None, refill) => refill.map(|queued| (queued, false)),
                };
                match next {
                    Some((next, from_line)) if worker.still_current(&target, loaded_at) => {
                        if from_line {
                            metrics::counter!("learnomy_webhooks_deliveries_handed_over_total")
                                .increment(1);
                            chained += 1;
                        } else {
                            metrics::counter!("learnomy_webhooks_deliveries_refilled_total")
                                .increment(1);
                            // Taken from the queue, oldest first: what waited has had its turn.
                            chained = 0;
                        }
                        delivery = next;
                    }
                    Some((next, _)) => {
                        worker.requeue(&[next.id]).await;
                        break;
                    }
                    None => break,
                }
            }
            worker.give_back_slots(webhook_id, 1);
        });
    }

    /// Whether `target` is still what this worker serves its webhook with (not edited,
    /// paused or removed since it was loaded), and the worker is not stopping.
    fn still_current(&self, target: &Arc<Target>, loaded_at: u64) -> bool {
        !self.stopping.load(Ordering::SeqCst)
            && self
                .in_flight
                .lock()
                .is_ok_and(|f| !f.forgotten_since(target.webhook_id, loaded_at))
            && self.ready.read().is_ok_and(|r| {
                r.targets
                    .get(&target.webhook_id)
                    .is_some_and(|current| Arc::ptr_eq(current, target))
            })
    }

    /// Hands claimed deliveries back to the queue, due now.
    async fn requeue(&self, ids: &[lwh_domain::DeliveryId]) {
        if let Err(e) = self.app.store().release_claims(ids, Timestamp::now()).await {
            tracing::warn!(error = %e, "cannot re-queue claimed deliveries; their lease will");
        }
        self.app.work_signal().notify_one();
    }

    /// Whether an attempt to `target` asks the recorder for its webhook's next due delivery
    /// into its slot: when the webhook's queue may hold work (not last seen drained), it is
    /// unthrottled (a throttled webhook's deliveries wait for their turn) and the worker is not
    /// stopping. The slot then goes from one delivery to the next with no claim round between.
    fn refills(&self, target: &Target) -> bool {
        target.throttle.is_none()
            && !self.stopping.load(Ordering::SeqCst)
            && !self.queue_drained(target.webhook_id)
    }

    /// Whether `webhook`'s queue was last seen drained: the next delivery of a line may then
    /// take the slot its predecessor frees, with nothing of the webhook waiting for it.
    fn queue_drained(&self, webhook: WebhookId) -> bool {
        self.in_flight
            .lock()
            .is_ok_and(|f| f.hand_over.contains(&webhook))
    }

    /// `webhook`'s queue holds a due delivery: claim it at the next round, whatever the queue
    /// was last seen as.
    fn queue_has_work(&self, webhook: WebhookId) {
        if let Ok(mut f) = self.in_flight.lock() {
            f.mark_queued(webhook);
        }
        self.app.work_signal().notify_one();
    }

    /// A retry due at `at` is claimed then rather than at the next recheck of a drained queue
    /// (up to [`HAND_OVER_RECHECK`] later) — when it is due within [`RETRY_WAKE_HORIZON`]; later
    /// retries are found by the recheck, a second being small beside their delay.
    fn wake_for_retry(&self, webhook: WebhookId, at: Timestamp) {
        let wait = at.millis() - Timestamp::now().millis();
        if wait > RETRY_WAKE_HORIZON.as_millis() as i64 {
            return;
        }
        let me = self.me.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(wait.max(0) as u64)).await;
            if let Some(worker) = me.upgrade() {
                worker.queue_has_work(webhook);
            }
        });
    }

    /// Sends and records one attempt.
    async fn attempt(
        &self,
        target: &Target,
        delivery: ClaimedDelivery,
        take_next: bool,
        refill: bool,
    ) -> AttemptEnd {
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
        let retry_at = match next {
            NextStep::RetryAt(at) => Some(at),
            _ => None,
        };
        let recorded = self
            .recorder
            .record(AttemptRecord {
                delivery_id: delivery.id,
                webhook_id: delivery.webhook_id,
                number: delivery.next_attempt_number(),
                started_at,
                outcome,
                next,
                ordering_key: delivery.ordering_key,
                take_next,
                refill,
            })
            .await;
        AttemptEnd {
            released: recorded.released,
            retry_at,
            successor: recorded.successor,
            refill: recorded.refill,
        }
    }
}

impl HandOver for Worker {
    fn owner(&self) -> &str {
        &self.owner
    }

    fn lease(&self) -> Duration {
        self.lease
    }

    fn reserve(&self, events: &[NewEvent]) -> Reservation {
        if self.stopping.load(Ordering::SeqCst) {
            return Reservation::default();
        }
        let wanted = match self.ready.read() {
            Ok(ready) => ready.wanted(events),
            Err(_) => return Reservation::default(),
        };
        if wanted.is_empty() {
            return Reservation::default();
        }
        match self.in_flight.lock() {
            Ok(mut f) => f.reserve(&wanted, self.per_webhook),
            Err(_) => Reservation::default(),
        }
    }

    fn settle(&self, reservation: Reservation, ingested: Option<Settled>) {
        let (claimed, queued) = match ingested {
            Some(s) => (s.claimed, s.queued),
            None => (Vec::new(), Vec::new()),
        };
        let mut used: HashMap<WebhookId, usize> = HashMap::new();
        for delivery in &claimed {
            *used.entry(delivery.webhook_id).or_default() += 1;
        }
        let reserved: usize = reservation.slots.values().sum();
        let forgotten = match self.in_flight.lock() {
            Ok(mut f) => f.settle(&reservation, &used, &queued),
            Err(_) => HashSet::new(),
        };
        if reserved > claimed.len() {
            self.slot_freed.notify_waiters();
            self.slot_freed.notify_one();
            self.queue_slot_freed.notify_one();
        }
        if !claimed.is_empty() {
            metrics::counter!("learnomy_webhooks_deliveries_handed_over_total")
                .increment(claimed.len() as u64);
            self.dispatch(claimed, &forgotten, reservation.mark);
        }
    }

    fn forget(&self, webhook: WebhookId) {
        if let Ok(mut f) = self.in_flight.lock() {
            f.forget(webhook);
        }
        self.active_changed.store(true, Ordering::SeqCst);
        // Let the claim loop reload it now rather than at its next poll.
        self.app.work_signal().notify_one();
    }
}

impl Worker {
    /// Sends deliveries stored as claimed by this worker at ingestion (each holds a slot);
    /// those of a webhook changed since the slot was reserved (at forget count `mark`) go back
    /// to the queue.
    fn dispatch(&self, claimed: Vec<ClaimedDelivery>, forgotten: &HashSet<WebhookId>, mark: u64) {
        let Some(me) = self.me.upgrade() else { return };
        let mut orphans = Vec::new();
        for delivery in claimed {
            let target = if forgotten.contains(&delivery.webhook_id) {
                None
            } else {
                self.ready
                    .read()
                    .ok()
                    .and_then(|r| r.targets.get(&delivery.webhook_id).cloned())
            };
            match target {
                Some(target) => me.spawn_attempt(target, delivery, mark),
                // The webhook changed between the slot and the commit: back to the queue.
                None => orphans.push(delivery),
            }
        }
        me.requeue_unsent(orphans);
    }

    /// Puts claimed deliveries back in the queue unsent (their webhook changed after its
    /// target was loaded) and frees their slots; the next claim round sends them with the
    /// webhook as it is now.
    fn requeue_unsent(self: &Arc<Self>, orphans: Vec<ClaimedDelivery>) {
        if orphans.is_empty() {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            let ids: Vec<_> = orphans.iter().map(|d| d.id).collect();
            me.requeue(&ids).await;
            for d in &orphans {
                me.give_back_slots(d.webhook_id, 1);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ingestion of one delivery of `w`: reserves a slot, or (as storage reports it) queues
    /// the delivery.
    fn try_hand_over(f: &mut InFlight, w: WebhookId, per_webhook: usize) -> bool {
        let reservation = f.reserve(&HashMap::from([(w, 1)]), per_webhook);
        let got = reservation.slots.get(&w) == Some(&1);
        let (used, queued) = if got {
            (HashMap::from([(w, 1)]), vec![])
        } else {
            (HashMap::new(), vec![w])
        };
        f.settle(&reservation, &used, &queued);
        got
    }

    #[test]
    fn a_claim_round_that_overlapped_an_edit_sees_its_targets_as_stale() {
        let w = WebhookId::generate();
        let other = WebhookId::generate();
        let mut f = InFlight::default();
        let round_mark = f.forgets;
        assert!(!f.forgotten_since(w, round_mark));
        f.forget(w);
        assert!(f.forgotten_since(w, round_mark), "loaded before the edit");
        assert!(
            !f.forgotten_since(other, round_mark),
            "another webhook is untouched"
        );
        assert!(
            !f.forgotten_since(w, f.forgets),
            "a round that began after the edit loaded it as it is now"
        );
    }

    #[test]
    fn a_throttled_webhook_is_claimed_again_when_its_turns_near_or_something_is_queued() {
        let w = WebhookId::generate();
        let mut f = InFlight::default();
        let now = Instant::now();
        assert!(!f.pace_waits(w, now), "never claimed: claim it");
        // The pace (3 allowed of 8 slots) or the slots (8 of 8) stopped the claim, the next
        // free turn 2 s away: claim again halfway there, not at every freed slot.
        let before = f.queued_count(w);
        for (claimed, allowed) in [(3, 3), (8, 8)] {
            f.take(w, 8);
            f.paced_claim_done(w, 8, claimed, allowed, Duration::from_secs(2), before);
            assert!(f.pace_waits(w, Instant::now()));
            assert!(f.pace_waits(w, Instant::now() + Duration::from_millis(900)));
            assert!(!f.pace_waits(w, Instant::now() + Duration::from_millis(1_100)));
        }
        assert_eq!(f.per_webhook[&w], 11, "the unused slots were given back");
        // The queue ran dry (2 of 8 allowed): wait, until a delivery is queued here.
        f.take(w, 8);
        f.paced_claim_done(w, 8, 2, 8, Duration::ZERO, f.queued_count(w));
        assert!(f.pace_waits(w, Instant::now()));
        f.mark_queued(w);
        assert!(!f.pace_waits(w, Instant::now()));
        // …or until the recheck, for what other processes queue and retries coming due.
        f.paced_claim_done(w, 0, 0, 8, Duration::ZERO, f.queued_count(w));
        assert!(f.pace_waits(w, Instant::now()));
        assert!(!f.pace_waits(w, Instant::now() + HAND_OVER_RECHECK));
    }

    #[test]
    fn hand_overs_start_only_after_a_claim_finds_the_queue_drained() {
        let w = WebhookId::generate();
        let mut f = InFlight::default();
        assert!(!try_hand_over(&mut f, w, 2), "never seen drained: queue");
        // A claim that reserved 2 and found 0, with the queue untouched since it began.
        let before = f.queued_count(w);
        f.take(w, 2);
        f.claim_done(w, 2, 0, before, true);
        assert_eq!(f.total, 0, "unused reservations are given back");
        assert!(try_hand_over(&mut f, w, 2));
        assert!(try_hand_over(&mut f, w, 2));
        assert_eq!(f.per_webhook[&w], 2);
        assert!(
            !try_hand_over(&mut f, w, 2),
            "the in-flight cap holds for hand-overs"
        );
        // That delivery went to the queue: later ones must not overtake it, even with a slot.
        f.give_back(w, 2);
        assert!(!try_hand_over(&mut f, w, 2));
    }

    #[test]
    fn a_delivery_queued_during_a_claim_keeps_hand_overs_off() {
        let w = WebhookId::generate();
        let mut f = InFlight::default();
        let before = f.queued_count(w);
        f.take(w, 4);
        // Ingestion queued one while the claim was running (it did not see it).
        assert!(!try_hand_over(&mut f, w, 8));
        f.claim_done(w, 4, 1, before, true);
        assert!(
            !try_hand_over(&mut f, w, 8),
            "the queue may hold a delivery"
        );
        // The next claim finds it drained.
        let before = f.queued_count(w);
        f.take(w, 4);
        f.claim_done(w, 4, 2, before, true);
        assert!(try_hand_over(&mut f, w, 8));
    }

    #[test]
    fn an_edit_during_a_claim_keeps_hand_overs_off() {
        let w = WebhookId::generate();
        let mut f = InFlight::default();
        let before = f.queued_count(w);
        f.take(w, 2);
        // The webhook is edited (HandOver::forget) while the claim, which loaded the old
        // target, is running.
        f.forget(w);
        f.claim_done(w, 2, 0, before, true);
        assert!(
            !try_hand_over(&mut f, w, 8),
            "the old target must not take hand-overs"
        );
    }

    #[test]
    fn on_postgresql_a_claim_that_raced_turns_hand_overs_on_and_asks_for_another() {
        let w = WebhookId::generate();
        let mut f = InFlight::default();
        let before = f.queued_count(w);
        f.take(w, 4);
        assert!(!try_hand_over(&mut f, w, 8), "queued during the claim");
        assert!(
            f.claim_done(w, 4, 1, before, false),
            "another claim must look for it"
        );
        assert!(try_hand_over(&mut f, w, 8));
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
            !try_hand_over(&mut f, w, 8),
            "a claim that filled every slot may have left more"
        );
        assert_eq!(f.per_webhook[&w], 3);
    }

    #[test]
    fn a_reservation_takes_only_free_slots_of_drained_webhooks_and_settling_returns_the_rest() {
        let (drained, queued) = (WebhookId::generate(), WebhookId::generate());
        let mut f = InFlight::default();
        f.hand_over.insert(drained);
        f.take(drained, 6);
        let reservation = f.reserve(&HashMap::from([(drained, 5), (queued, 5)]), 8);
        assert_eq!(
            reservation.slots,
            HashMap::from([(drained, 2)]),
            "2 of 8 free"
        );
        assert_eq!(f.per_webhook[&drained], 8);
        // The transaction stored one claimed and queued the rest.
        let forgotten = f.settle(&reservation, &HashMap::from([(drained, 1)]), &[drained]);
        assert!(forgotten.is_empty());
        assert_eq!(f.per_webhook[&drained], 7, "the unused slot is back");
        assert!(
            !f.hand_over.contains(&drained),
            "queued: no more hand-overs"
        );
    }

    #[test]
    fn a_webhook_forgotten_between_reserving_and_settling_loses_its_hand_overs() {
        let (edited, other) = (WebhookId::generate(), WebhookId::generate());
        let mut f = InFlight::default();
        f.hand_over.extend([edited, other]);
        let reservation = f.reserve(&HashMap::from([(edited, 1), (other, 1)]), 8);
        f.forget(edited);
        let used = HashMap::from([(edited, 1), (other, 1)]);
        let forgotten = f.settle(&reservation, &used, &[]);
        assert_eq!(forgotten, HashSet::from([edited]));
        // Forgotten before the next reservation: that one is not affected.
        f.hand_over.insert(edited);
        let next = f.reserve(&HashMap::from([(edited, 1)]), 8);
        assert!(f
            .settle(&next, &HashMap::from([(edited, 1)]), &[])
            .is_empty());
    }

    #[test]
    fn the_event_index_is_kept_while_the_targets_are_the_same() {
        let target = |id: WebhookId| {
            Arc::new(Target::new(
                id,
                "http://127.0.0.1:9/".into(),
                lwh_domain::WebhookSecret::generate(),
                vec!["course_completed".into()],
                None,
                &lwh_domain::custom_headers::CustomHeaders::default(),
            ))
        };
        let w = WebhookId::generate();
        let loaded = target(w);
        let ready = Ready::new(HashMap::from([(w, loaded.clone())]));
        assert!(ready.same_targets(&HashMap::from([(w, loaded)])));
        assert!(
            !ready.same_targets(&HashMap::from([(w, target(w))])),
            "reloaded"
        );
        assert!(!ready.same_targets(&HashMap::new()), "gone");
        let event = NewEvent {
            id: lwh_domain::EventId::generate(),
            slug: "course_completed".into(),
            payload: Arc::from(&b"{}"[..]),
            idempotency_key: None,
            about: None,
            ordering_key: None,
        };
        assert_eq!(
            ready.wanted(&[event.clone(), event]),
            HashMap::from([(w, 2)])
        );
    }
}
