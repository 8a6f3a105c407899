//! Group commit for ingestion: requests that arrive while a transaction is being written are
//! gathered into the next one, so under load the database commits (and fsyncs) once per
//! batch of requests instead of once per event. Under light load a request is written alone,
//! at once, so latency does not suffer.
//!
//! When this process runs a worker that accepts hand-overs ([`HandOver`]), it reserves free
//! slots before the transaction; deliveries that fit in them are stored already claimed and
//! passed to it as soon as the transaction commits; only the rest wake the claim loop.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use lwh_domain::{Timestamp, WebhookId};
use lwh_storage::Backend;
use lwh_storage::{
    ClaimedDelivery, IngestClaim, IngestOutcome, Ingested, NewEvent, Store, StoreError,
};
use tokio::sync::{mpsc, oneshot, Mutex, Notify};

/// Most events written in one transaction.
const MAX_EVENTS_PER_COMMIT: usize = 2_000;
/// Transactions written at the same time on PostgreSQL, which overlaps their round trips and
/// flushes concurrent commits together. SQLite has one writer, so it gets one committer.
const POSTGRES_COMMITTERS: usize = 4;

/// A worker in this process that takes deliveries straight from ingestion, into its
/// in-flight slots. Slots are reserved before the ingestion transaction and settled after
/// it, so the transaction itself never waits on the worker.
pub trait HandOver: Send + Sync {
    /// Its claim owner id.
    fn owner(&self) -> &str;
    /// How long its claims are leased.
    fn lease(&self) -> Duration;
    /// Takes free slots for the deliveries `events` will create for webhooks whose queue is
    /// drained, as far as the worker knows their subscriptions.
    fn reserve(&self, events: &[NewEvent]) -> Reservation;
    /// The transaction for `reservation` ended, having stored `ingested` (`None`: it failed and
    /// stored nothing). Gives back the slots it did not use, stops hand-overs for webhooks whose
    /// deliveries went to the queue, and sends the deliveries stored as claimed.
    fn settle(&self, reservation: Reservation, ingested: Option<Settled>);
    /// The webhook is being created, edited or deleted, or deliveries of it were put back in
    /// the queue (redeliver, recover): hand nothing more to the target the worker has cached for
    /// it, read the Active webhooks again, and claim its queue, before hand-overs start again.
    fn forget(&self, webhook: WebhookId);
}

/// Slots a worker reserved for one ingestion transaction.
#[derive(Debug, Default)]
pub struct Reservation {
    /// How many deliveries of each webhook may be stored claimed.
    pub slots: HashMap<WebhookId, usize>,
    /// The worker's own mark of when it reserved, handed back on settling (it tells the worker
    /// which webhooks were forgotten in between).
    pub mark: u64,
}

/// What an ingestion transaction handed over, for [`HandOver::settle`].
pub struct Settled {
    /// Deliveries stored as claimed by the worker.
    pub claimed: Vec<ClaimedDelivery>,
    /// Active webhooks whose new deliveries went to the queue.
    pub queued: Vec<WebhookId>,
}

/// The registered hand-over target, if any.
pub(crate) type HandOverSlot = Arc<RwLock<Option<Arc<dyn HandOver>>>>;

type Reply = oneshot::Sender<Result<Vec<IngestOutcome>, StoreError>>;

struct Job {
    events: Vec<NewEvent>,
    reply: Reply,
}

/// Hands ingestion requests to the committer task.
#[derive(Clone)]
pub struct GroupCommit {
    tx: mpsc::Sender<Job>,
}

/// What the committer task needs.
struct Committer {
    store: Store,
    hand_over: HandOverSlot,
    work: Arc<Notify>,
}

impl GroupCommit {
    /// Starts the committer task on the current runtime.
    pub(crate) fn start(store: Store, hand_over: HandOverSlot, work: Arc<Notify>) -> Self {
        let (tx, rx) = mpsc::channel(4096);
        let committers = match store.backend() {
            Backend::Sqlite => 1,
            Backend::Postgres => POSTGRES_COMMITTERS,
        };
        let committer = Arc::new(Committer {
            store,
            hand_over,
            work,
        });
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..committers {
            tokio::spawn(committer.clone().run(rx.clone()));
        }
        Self { tx }
    }

    /// Stores `events` in the next group commit and returns their outcomes once durable.
    pub async fn ingest(&self, events: Vec<NewEvent>) -> Result<Vec<IngestOutcome>, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Job { events, reply })
            .await
            .map_err(|_| StoreError::Unavailable("the ingestion committer has stopped".into()))?;
        answer.await.map_err(|_| {
            StoreError::Unavailable("the ingestion committer dropped a request".into())
        })?
    }
}

impl Committer {
    /// Takes whatever is waiting (one committer at a time) and writes it.
    async fn run(self: Arc<Self>, rx: Arc<Mutex<mpsc::Receiver<Job>>>) {
        loop {
            let jobs = {
                let mut rx = rx.lock().await;
                let Some(first) = rx.recv().await else { return };
                let mut jobs = vec![first];
                let mut count = jobs[0].events.len();
                while count < MAX_EVENTS_PER_COMMIT {
                    match rx.try_recv() {
                        Ok(job) => {
                            count += job.events.len();
                            jobs.push(job);
                        }
                        Err(_) => break,
                    }
                }
                jobs
            };
            self.commit(jobs).await;
        }
    }

    async fn commit(&self, jobs: Vec<Job>) {
        if jobs.len() == 1 {
            for job in jobs {
                let result = self.write(&job.events).await;
                let _ = job.reply.send(result);
            }
            return;
        }
        let all: Vec<NewEvent> = jobs.iter().flat_map(|j| j.events.iter().cloned()).collect();
        match self.write(&all).await {
            Ok(outcomes) => {
                let mut rest = outcomes.into_iter();
                for job in jobs {
                    let mine: Vec<IngestOutcome> = rest.by_ref().take(job.events.len()).collect();
                    let _ = job.reply.send(Ok(mine));
                }
            }
            // One request's trouble must not fail the others: write each on its own.
            Err(_) => {
                for job in jobs {
                    let result = self.write(&job.events).await;
                    let _ = job.reply.send(result);
                }
            }
        }
    }

    /// One transaction; hands claimed deliveries over once it committed and wakes the claim
    /// loop for the others.
    async fn write(&self, events: &[NewEvent]) -> Result<Vec<IngestOutcome>, StoreError> {
        let hand_over = self.hand_over.read().ok().and_then(|h| h.clone());
        let Some(worker) = hand_over else {
            let ingested = self
                .store
                .ingest_claiming(events, Timestamp::now(), None)
                .await?;
            if created(&ingested) > 0 {
                self.work.notify_one();
            }
            return Ok(ingested.outcomes);
        };
        let reservation = worker.reserve(events);
        let now = Timestamp::now();
        let claim = IngestClaim {
            owner: worker.owner().to_owned(),
            lease_until: now.plus_millis(worker.lease().as_millis() as i64),
            slots: reservation.slots.clone(),
        };
        match self.store.ingest_claiming(events, now, Some(&claim)).await {
            Ok(ingested) => {
                let queued = created(&ingested) > ingested.claimed.len() as u64;
                let outcomes = ingested.outcomes;
                worker.settle(
                    reservation,
                    Some(Settled {
                        claimed: ingested.claimed,
                        queued: ingested.queued,
                    }),
                );
                if queued {
                    self.work.notify_one();
                }
                Ok(outcomes)
            }
            Err(e) => {
                worker.settle(reservation, None);
                Err(e)
            }
        }
    }
}

/// Deliveries the transaction created.
fn created(ingested: &Ingested) -> u64 {
    ingested
        .outcomes
        .iter()
        .filter(|o| !o.duplicate)
        .map(|o| o.deliveries)
        .sum()
}
