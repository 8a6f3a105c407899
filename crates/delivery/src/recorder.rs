//! Writes attempt results in batches: one transaction for every result that arrived within a
//! few milliseconds, so the database commits (and fsyncs) per batch, not per delivery.
//!
//! A batch that fails to commit is retried until it succeeds or the process stops; if the
//! process dies first, the deliveries' leases expire and they are attempted again — the
//! at-least-once guarantee, with duplicates only from attempts in flight.

use std::time::Duration;

use lwh_app::App;
use lwh_domain::{DeliveryId, NextStep, Timestamp, WebhookId};
use lwh_storage::{AttemptRecord, FailureRules};
use tokio::sync::{mpsc, oneshot};

/// Most results written in one transaction.
const MAX_BATCH: usize = 512;

/// Sends results to the writer task.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<(AttemptRecord, oneshot::Sender<bool>)>,
}

impl Recorder {
    /// Starts the writer task; it ends when every `Recorder` is dropped and the queue is empty.
    pub fn start(app: App) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(16 * 1024);
        let task = tokio::spawn(write_loop(app, rx));
        (Self { tx }, task)
    }

    /// Queues a result for the next batch and waits until it is committed. Workers hold the
    /// attempt's in-flight slot until then, so "in flight" means "sent and not yet recorded" —
    /// exactly what a crash can turn into a duplicate. Returns true when the batch made a
    /// delivery of the same webhook due that was waiting in an ordering key's line: its queue
    /// has work again.
    pub async fn record(&self, record: AttemptRecord) -> bool {
        let (done, committed) = oneshot::channel();
        if self.tx.send((record, done)).await.is_err() {
            tracing::error!(
                "the attempt recorder has stopped; the result will be retried after the lease"
            );
            return false;
        }
        committed.await.unwrap_or(false)
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

async fn write_loop(app: App, mut rx: mpsc::Receiver<(AttemptRecord, oneshot::Sender<bool>)>) {
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
        let released = loop {
            match app
                .store()
                .record_attempts(&batch, rules, Timestamp::now())
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
                    break recorded.released;
                }
                Err(e) => {
                    tracing::error!(error = %e, results = batch.len(), "cannot record attempts; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        };
        for (record, ack) in batch.drain(..).zip(acks.drain(..)) {
            let _ = ack.send(released.contains(&record.webhook_id));
        }
    }
}
