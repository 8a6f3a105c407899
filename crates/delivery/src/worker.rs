//! The claim loop: find due deliveries of each Active webhook, send them with bounded
//! concurrency per webhook, hand the results to the recorder.
//!
//! Every process (`serve` or `worker`) runs one. Each webhook gets at most
//! `max_in_flight_per_webhook` concurrent requests and is claimed for only as many as it has
//! free slots, so a dead endpoint holds its own slots and nothing else.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lwh_app::App;
use lwh_domain::retry::RetryPolicy;
use lwh_domain::{Timestamp, WebhookId};
use lwh_storage::{AttemptRecord, ClaimedDelivery, NextStep};
use rand::Rng;
use tokio::sync::{watch, Notify};

use crate::recorder::Recorder;
use crate::sender::{Outgoing, Sender, Target};
use crate::targets::Targets;

/// Most requests in flight from one process, all webhooks together.
const MAX_IN_FLIGHT_TOTAL: usize = 2048;
/// Most deliveries claimed for one webhook in one round.
const MAX_CLAIM_PER_ROUND: usize = 256;
/// How often the queue is checked when nothing wakes the worker.
const IDLE_POLL: Duration = Duration::from_millis(200);

/// Counts requests in flight, per webhook and in total.
#[derive(Default)]
struct InFlight {
    per_webhook: HashMap<WebhookId, usize>,
    total: usize,
}

/// Shared state of one process's delivery worker.
pub struct Worker {
    app: App,
    sender: Sender,
    recorder: Recorder,
    retry: RetryPolicy,
    owner: String,
    lease: Duration,
    in_flight: Mutex<InFlight>,
    slot_freed: Notify,
}

impl Worker {
    /// A worker identified as `owner` in claims.
    pub fn new(app: App, sender: Sender, recorder: Recorder, owner: String) -> Arc<Self> {
        let s = app.settings();
        let retry = RetryPolicy::new(s.retry_schedule.iter().map(|d| d.get()).collect());
        // Long enough for the slowest attempt, with margin: a claim is only taken over by
        // another worker when its holder has certainly died.
        let lease = s.request_timeout.get() * 2 + s.connect_timeout.get() + Duration::from_secs(5);
        Arc::new(Self {
            app,
            sender,
            recorder,
            retry,
            owner,
            lease,
            in_flight: Mutex::new(InFlight::default()),
            slot_freed: Notify::new(),
        })
    }

    /// Claims and sends until `stop` turns true, then waits for requests in flight.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut targets = Targets::default();
        let work = self.app.work_signal();
        let mut failures = 0u32;
        while !*stop.borrow() {
            match self.claim_round(&mut targets).await {
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
                _ = self.slot_freed.notified() => {}
                _ = tokio::time::sleep(IDLE_POLL) => {}
                _ = stop.changed() => {}
            }
        }
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

    /// One pass over the Active webhooks; returns how many deliveries were claimed.
    async fn claim_round(
        self: &Arc<Self>,
        targets: &mut Targets,
    ) -> Result<usize, lwh_storage::StoreError> {
        let active = self.app.store().active_webhooks().await?;
        let ready = targets.refresh(&self.app, &active).await;
        let per_webhook = self.app.settings().max_in_flight_per_webhook;
        let mut claimed_total = 0;
        for webhook in ready {
            let free = {
                let Ok(f) = self.in_flight.lock() else { break };
                let busy = f.per_webhook.get(&webhook).copied().unwrap_or(0);
                per_webhook
                    .saturating_sub(busy)
                    .min(MAX_IN_FLIGHT_TOTAL.saturating_sub(f.total))
                    .min(MAX_CLAIM_PER_ROUND)
            };
            if free == 0 {
                continue;
            }
            let now = Timestamp::now();
            let lease_until = now.plus_millis(self.lease.as_millis() as i64);
            let claimed = self
                .app
                .store()
                .claim_due(webhook, free, &self.owner, now, lease_until)
                .await?;
            let Some(target) = targets.get(&webhook) else {
                continue;
            };
            claimed_total += claimed.len();
            for delivery in claimed {
                self.start_attempt(target.clone(), delivery);
            }
        }
        Ok(claimed_total)
    }

    fn start_attempt(self: &Arc<Self>, target: Arc<Target>, delivery: ClaimedDelivery) {
        if let Ok(mut f) = self.in_flight.lock() {
            *f.per_webhook.entry(delivery.webhook_id).or_default() += 1;
            f.total += 1;
        }
        let worker = self.clone();
        tokio::spawn(async move {
            let webhook_id = delivery.webhook_id;
            worker.attempt(&target, delivery).await;
            if let Ok(mut f) = worker.in_flight.lock() {
                if let Some(n) = f.per_webhook.get_mut(&webhook_id) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        f.per_webhook.remove(&webhook_id);
                    }
                }
                f.total = f.total.saturating_sub(1);
            }
            worker.slot_freed.notify_waiters();
            worker.slot_freed.notify_one();
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
        let next = if outcome.delivered() {
            NextStep::Delivered
        } else {
            let jitter: f64 = rand::thread_rng().gen();
            let retry_after = outcome.retry_after_secs.map(Duration::from_secs);
            match self
                .retry
                .delay_after(delivery.attempt_in_series(), jitter, retry_after)
            {
                Some(delay) => {
                    NextStep::RetryAt(Timestamp::now().plus_millis(delay.as_millis() as i64))
                }
                None => NextStep::GiveUp,
            }
        };
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
