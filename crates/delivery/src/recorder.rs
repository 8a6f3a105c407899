//! Writes attempt results in batches: one transaction for every result that arrived within a
//! few milliseconds, so the database commits (and fsyncs) per batch, not per delivery.
//!
//! A batch that fails to commit is retried until it succeeds or the process stops; if the
//! process dies first, the deliveries' leases expire and they are attempted again — the
//! at-least-once guarantee, with duplicates only from attempts in flight.

use std::time::Duration;

use lwh_app::App;
use lwh_domain::{DeliveryId, NextStep, Timestamp, WebhookId};
use lwh_storage::{AttemptRecord, ClaimedDelivery, FailureRules, SuccessorClaim};
use tokio::sync::{mpsc, oneshot};

/// Most results written in one transaction.
const MAX_BATCH: usize = 512;

/// Sends results to the writer task.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<(AttemptRecord, oneshot::Sender<Recorded>)>,
}

/// What recording one result led to, beyond the result itself.
#[derive(Default)]
pub struct Recorded {
    /// A delivery of the same webhook waiting in an ordering key's line became due: its queue
    /// has work again.
    pub released: bool,
    /// The next delivery of this one's line, claimed for this worker: send it now, in the
    /// slot this one held.
    pub successor: Option<ClaimedDelivery>,
    /// The next due delivery of this one's webhook, claimed from the queue for this worker
    /// in the same transaction as this result (it asked, [`AttemptRecord::refill`]): send it
    /// now, in the slot this one held.
    pub refill: Option<ClaimedDelivery>,
}

impl Recorder {
    /// Starts the writer task; it ends when every `Recorder` is dropped and the queue is empty.
    /// Deliveries that results release from their lines are claimed for `owner` for `lease`.
    pub fn start(app: App, owner: String, lease: Duration) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(16 * 1024);
        let task = tokio::spawn(write_loop(app, rx, owner, lease));
        (Self { tx }, task)
    }

    /// Queues a result for the next batch and waits until it is committed. Workers hold the
    /// attempt's in-flight slot until then, so "in flight" means "sent and not yet recorded" —
    /// exactly what a crash can turn into a duplicate.
    pub async fn record(&self, record: AttemptRecord) -> Recorded {
        let (done, committed) = oneshot::channel();
        if self.tx.send((record, done)).await.is_err() {
            tracing::error!(
                "the attempt recorder has stopped; the result will be retried after the lease"
            );
            return Recorded::default();
        }
        committed.await.unwrap_or_default()
    }
}

/// The claim a batch's released deliveries are taken under: this worker, one lease from now.
fn successor_claim(owner: &str, lease: Duration) -> SuccessorClaim {
    SuccessorClaim {
        owner: owner.to_owned(),
        lease_until: Timestamp::now().plus_millis(lease.as_millis() as i64),
    }
}

/// The rules for automatic Failed, from settings.
pub fn failure_rules(app: &App) -> FailureRules {
    let s = app.settings();
    FailureRules {
        failed_after_ms: s.failed_after.get().as_millis() as i64,
        probe_interval_ms: s.failed_probe_interval.get().as_millis() as i64,
    }
}

/// Reports what a committed batch changed — webhooks that became Failed, deliveries that used
/// their last attempt — as service events, off the recording loop (reporting reads and ingests;
/// results keep being recorded meanwhile).
fn report(app: &App, failed: Vec<WebhookId>, batch: &[AttemptRecord]) {
    let exhausted: Vec<DeliveryId> = batch
        .iter()
        .filter(|r| r.next == NextStep::GiveUp)
        .map(|r| r.delivery_id)
        .collect();
    if failed.is_empty() && exhausted.is_empty() {
        return;
    }
    let app = app.clone();
    tokio::spawn(async move {
        for webhook in failed {
            app.report_failed(webhook).await;
        }
        for delivery in exhausted {
            app.report_exhausted(delivery).await;
        }
    });
}

async fn write_loop(
    app: App,
    mut rx: mpsc::Receiver<(AttemptRecord, oneshot::Sender<Recorded>)>,
    owner: String,
    lease: Duration,
) {
    let rules = failure_rules(&app);
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut acks = Vec::with_capacity(MAX_BATCH);
    while let Some((first, ack)) = rx.recv().await {
        batch.push(first);
        acks.push(ack);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok((more, ack)) => {
                    batch.push(more);
                    acks.push(ack);
                }
                Err(_) => break,
            }
        }
        let mut backoff = Duration::from_millis(50);
        let (released, mut successors, mut refills) = loop {
            match app
                .store()
                .record_attempts(
                    &batch,
                    rules,
                    Timestamp::now(),
                    Some(&successor_claim(&owner, lease)),
                )
                .await
            {
                Ok(recorded) => {
                    for id in &recorded.became_failed {
                        tracing::warn!(webhook_id = %id, "webhook is now Failed; its deliveries are held");
                    }
                    report(&app, recorded.became_failed, &batch);
                    for r in &batch {
                        let outcome = if r.outcome.delivered() {
                            "delivered"
                        } else {
                            "failed"
                        };
                        metrics::counter!("learnomy_webhooks_attempts_total", "outcome" => outcome)
                            .increment(1);
                    }
                    break (recorded.released, recorded.successors, recorded.refills);
                }
                Err(e) => {
                    tracing::error!(error = %e, results = batch.len(), "cannot record attempts; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        };
        for (record, ack) in batch.drain(..).zip(acks.drain(..)) {
            // The next delivery of the line this result finished, if one was claimed for us.
            let successor = successors
                .iter()
                .position(|s| {
                    s.webhook_id == record.webhook_id
                        && s.ordering_key.is_some()
                        && s.ordering_key == record.ordering_key
                })
                .map(|i| successors.swap_remove(i));
            // Otherwise, if it asked, the next due delivery of its webhook.
            let refill = (successor.is_none() && record.refill)
                .then(|| {
                    refills
                        .iter()
                        .position(|r| r.webhook_id == record.webhook_id)
                        .map(|i| refills.swap_remove(i))
                })
                .flatten();
            let outcome = Recorded {
                released: released.contains(&record.webhook_id),
                successor,
                refill,
            };
            if let Err(unsent) = ack.send(outcome) {
                // The attempt's task is gone: what was claimed for it goes back to the queue.
                successors.extend(unsent.successor);
                successors.extend(unsent.refill);
            }
        }
        // Claimed with no slot to take them (never expected): back to the queue.
        successors.append(&mut refills);
        if !successors.is_empty() {
            let ids: Vec<_> = successors.iter().map(|s| s.id).collect();
            if let Err(e) = app.store().release_claims(&ids, Timestamp::now()).await {
                tracing::warn!(error = %e, "cannot re-queue released deliveries; their lease will");
            }
            app.work_signal().notify_one();
        }
    }
}
