//! Group commit for ingestion: requests that arrive while a transaction is being written are
//! gathered into the next one, so under load the database commits (and fsyncs) once per
//! batch of requests instead of once per event. Under light load a request is written alone,
//! at once, so latency does not suffer.

use lwh_domain::Timestamp;
use lwh_storage::{IngestOutcome, NewEvent, Store, StoreError};
use tokio::sync::{mpsc, oneshot};

/// Most events written in one transaction.
const MAX_EVENTS_PER_COMMIT: usize = 2_000;

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

impl GroupCommit {
    /// Starts the committer task on the current runtime.
    pub fn start(store: Store) -> Self {
        let (tx, rx) = mpsc::channel(4096);
        tokio::spawn(commit_loop(store, rx));
        Self { tx }
    }

    /// Stores `events` in the next group commit and returns their outcomes once durable.
    pub async fn ingest(&self, events: Vec<NewEvent>) -> Result<Vec<IngestOutcome>, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Job { events, reply })
            .await
            .map_err(|_| StoreError::Corrupt("the ingestion committer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Corrupt("the ingestion committer dropped a request".into()))?
    }
}

async fn commit_loop(store: Store, mut rx: mpsc::Receiver<Job>) {
    while let Some(first) = rx.recv().await {
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
        commit(&store, jobs).await;
    }
}

async fn commit(store: &Store, jobs: Vec<Job>) {
    if jobs.len() == 1 {
        for job in jobs {
            let result = store.ingest(&job.events, Timestamp::now()).await;
            let _ = job.reply.send(result);
        }
        return;
    }
    let all: Vec<NewEvent> = jobs.iter().flat_map(|j| j.events.iter().cloned()).collect();
    match store.ingest(&all, Timestamp::now()).await {
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
                let result = store.ingest(&job.events, Timestamp::now()).await;
                let _ = job.reply.send(result);
            }
        }
    }
}
