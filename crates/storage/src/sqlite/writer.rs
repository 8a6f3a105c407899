//! SQLite's writer thread: it owns the connection on which the hot write transactions run
//! (ingestion, claims, attempt results) and runs each one whole.
//!
//! Through sqlx, every statement, every returned row, and the `BEGIN` and `COMMIT` around them
//! is a round trip between the async task and the connection's own thread — five to ten
//! wake-ups per transaction on a machine whose two cores are also sending the deliveries.
//! Here a transaction is one hand-off to this thread and one answer back, and its statements
//! are prepared once and cached.
//!
//! Transactions that queue up while one is being written are written together: the writer
//! takes every transaction waiting (up to [`MAX_BATCH`]), runs each in its own savepoint (a
//! failing or panicking one is rolled back alone) and commits them once. Claims, attempt
//! results and ingestion then share one commit and one set of WAL frames instead of writing
//! the same B-tree pages once each, and the thread goes from one transaction to the next
//! without waiting for a caller to hand it the next one.
//!
//! Durable transactions (accepted events) are made durable off this thread: the connection
//! commits with `synchronous = NORMAL` (the commit reaches the WAL file in the OS page cache,
//! so a killed process loses nothing), then [`WalSyncer`]'s thread fsyncs the WAL file and only
//! then is the transaction's future answered. Claims and results keep committing during the
//! fsync instead of queueing behind it, and transactions committed while an fsync runs share
//! the next one. A checkpoint (which copies WAL frames into the database and may reuse the
//! WAL) always syncs the WAL first under `NORMAL`, so no frame can leave the WAL unsynced.
//!
//! Checkpoints are kept off this thread too: [`Checkpointer`] copies committed WAL frames into
//! the database file from its own connection every [`CHECKPOINT_EVERY`] (a passive checkpoint
//! runs beside the writer). The writer's own automatic checkpoint stays as the bound on the
//! WAL's size; it then finds nearly every frame already copied, and costs a short pause
//! instead of the ~200 ms (40 MiB copied, two fsyncs) it took on this thread.

use std::fs::File;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;

use rusqlite::{Connection, Transaction, TransactionBehavior};
use tokio::sync::{oneshot, Mutex};

use crate::connect::Durability;
use crate::error::StoreError;

/// How often the checkpointer copies what was committed since its last pass.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

/// Prepared statements kept per connection (multi-row statements vary by row count).
const STATEMENT_CACHE: usize = 256;

/// Most transactions committed together.
const MAX_BATCH: usize = 64;

/// A transaction waiting for the writer thread.
type Job = Box<dyn WriteJob>;

/// Answered once the WAL holding a commit has been fsynced.
type SyncDone = oneshot::Receiver<Result<(), String>>;

/// One caller's transaction as the writer thread runs it within a batch.
trait WriteJob: Send {
    /// Runs the work in its own savepoint of the batch's transaction, keeping its outcome;
    /// true if it succeeded (and so waits for the commit).
    fn run(&mut self, tx: &Transaction<'_>) -> bool;
    /// Whether a successful run must be on disk before it is answered.
    fn durability(&self) -> Durability;
    /// Answers the caller: its outcome if the batch committed (with the fsync to wait for,
    /// if durable), the commit's error otherwise.
    fn answer(self: Box<Self>, committed: Result<Option<SyncDone>, StoreError>);
}

/// A caller's work, its outcome once run, and where the answer goes.
struct Pending<R, F> {
    work: Option<F>,
    durability: Durability,
    outcome: Option<Result<R, StoreError>>,
    reply: oneshot::Sender<Result<(R, Option<SyncDone>), StoreError>>,
}

impl<R, F> WriteJob for Pending<R, F>
where
    R: Send + 'static,
    F: FnOnce(&Transaction<'_>) -> Result<R, StoreError> + Send + 'static,
{
    fn run(&mut self, tx: &Transaction<'_>) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        let outcome = in_savepoint(tx, work);
        let ok = outcome.is_ok();
        self.outcome = Some(outcome);
        ok
    }

    fn durability(&self) -> Durability {
        self.durability
    }

    fn answer(self: Box<Self>, committed: Result<Option<SyncDone>, StoreError>) {
        let answer = match (self.outcome, committed) {
            (Some(Ok(out)), Ok(synced)) => Ok((out, synced)),
            (Some(Err(e)), _) | (_, Err(e)) => Err(e),
            (None, Ok(_)) => Err(StoreError::Corrupt(
                "the SQLite writer skipped a transaction".to_owned(),
            )),
        };
        let _ = self.reply.send(answer);
    }
}

/// Runs `work` between `SAVEPOINT` and `RELEASE`; rolls back to the savepoint if it fails or
/// panics, leaving the rest of the batch as it was.
fn in_savepoint<R>(
    tx: &Transaction<'_>,
    work: impl FnOnce(&Transaction<'_>) -> Result<R, StoreError>,
) -> Result<R, StoreError> {
    tx.prepare_cached("SAVEPOINT job")?.execute([])?;
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| work(tx))).unwrap_or_else(|_| {
        Err(StoreError::Corrupt(
            "a write transaction panicked".to_owned(),
        ))
    });
    match outcome {
        Ok(out) => {
            tx.prepare_cached("RELEASE job")?.execute([])?;
            Ok(out)
        }
        Err(e) => {
            // Some failures (I/O, a full disk) end the whole transaction; then there is no
            // savepoint left, and the batch reports the failure when it commits.
            if !tx.is_autocommit() {
                tx.execute_batch("ROLLBACK TO job; RELEASE job")?;
            }
            Err(e)
        }
    }
}

/// The same error for every transaction of a batch whose commit failed.
fn shared(e: &StoreError) -> StoreError {
    match e {
        StoreError::Sqlite(rusqlite::Error::SqliteFailure(code, message)) => {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(*code, message.clone()))
        }
        other => StoreError::Sqlite(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
            Some(other.to_string()),
        )),
    }
}

/// Hands transactions to the writer thread.
#[derive(Clone, Debug)]
pub(crate) struct SqliteWriter {
    jobs: mpsc::Sender<Job>,
    /// WAL fsyncs made so far (tests check durable commits wait for one).
    #[cfg_attr(not(test), allow(dead_code))]
    syncs: Arc<AtomicU64>,
    /// Commits made so far (tests check transactions share them).
    #[cfg_attr(not(test), allow(dead_code))]
    commits: Arc<AtomicU64>,
}

/// The writer's connection, and the way to the WAL syncer.
pub(crate) struct WriterConnection {
    conn: Connection,
    syncer: mpsc::Sender<oneshot::Sender<Result<(), String>>>,
    /// Commits so far, for the checkpointer.
    commits: Arc<AtomicU64>,
    /// Dropped with the connection: stops the checkpointer.
    _checkpointer: mpsc::Sender<()>,
}

/// The thread that checkpoints the WAL beside the writer.
struct Checkpointer {
    conn: Connection,
    commits: Arc<AtomicU64>,
}

impl Checkpointer {
    fn run(self, stop: mpsc::Receiver<()>) {
        let mut seen = 0;
        while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_EVERY) {
            let commits = self.commits.load(Ordering::Relaxed);
            if commits == seen {
                continue;
            }
            seen = commits;
            // PASSIVE: never waits for the writer or readers; what it cannot copy now, the
            // next pass (or the writer's own checkpoint) does.
            if let Err(e) = self
                .conn
                .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
            {
                tracing::warn!(error = %e, "WAL checkpoint failed; the writer's own checkpoint remains");
            }
        }
    }
}

/// The thread that fsyncs the WAL file for durable commits, one fsync for every commit that
/// asked since the previous one began.
struct WalSyncer {
    wal: PathBuf,
    file: Option<File>,
    syncs: Arc<AtomicU64>,
}

impl WalSyncer {
    fn run(mut self, requests: mpsc::Receiver<oneshot::Sender<Result<(), String>>>) {
        while let Ok(first) = requests.recv() {
            // Every request here was sent after its commit returned: this fsync covers it.
            let mut waiting = vec![first];
            waiting.extend(requests.try_iter());
            let result = self
                .sync()
                .map_err(|e| format!("cannot fsync the WAL: {e}"));
            self.syncs.fetch_add(1, Ordering::Relaxed);
            for w in waiting {
                let _ = w.send(result.clone());
            }
        }
    }

    /// fsync reaches the file's data whichever descriptor wrote it; the WAL keeps its inode
    /// while a connection is open (a checkpoint rewinds or truncates it, never replaces it).
    fn sync(&mut self) -> std::io::Result<()> {
        let file = match &mut self.file {
            Some(file) => file,
            None => self.file.insert(File::open(&self.wal)?),
        };
        file.sync_data()
    }
}

impl SqliteWriter {
    /// Opens the writer's connection to the database file (already created and migrated by
    /// sqlx's pool) and starts its thread. `gate` is the process's write gate, shared with
    /// sqlx's writer connection (used by the rarer writes): the thread holds it while it
    /// writes a batch, so the two never wait on each other inside SQLite's busy handler.
    pub(crate) fn open(path: &Path, gate: Arc<Mutex<()>>) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; \
             PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = 10000; \
             PRAGMA synchronous = NORMAL;",
        )?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let syncs = Arc::new(AtomicU64::new(0));
        let (sync_requests, sync_queue) = mpsc::channel();
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        let syncer = WalSyncer {
            wal: PathBuf::from(wal),
            file: None,
            syncs: syncs.clone(),
        };
        std::thread::Builder::new()
            .name("sqlite-wal-sync".into())
            .spawn(move || syncer.run(sync_queue))
            .map_err(|e| StoreError::Unavailable(format!("cannot start the WAL syncer: {e}")))?;
        let commits = Arc::new(AtomicU64::new(0));
        let checkpointer = Checkpointer {
            conn: Connection::open(path)?,
            commits: commits.clone(),
        };
        checkpointer
            .conn
            .execute_batch("PRAGMA busy_timeout = 5000;")?;
        let (stop_checkpointer, checkpointer_stop) = mpsc::channel();
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || checkpointer.run(checkpointer_stop))
            .map_err(|e| StoreError::Unavailable(format!("cannot start the checkpointer: {e}")))?;
        let (jobs, queue) = mpsc::channel::<Job>();
        let mut writer = WriterConnection {
            conn,
            syncer: sync_requests,
            commits: commits.clone(),
            _checkpointer: stop_checkpointer,
        };
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                while let Ok(first) = queue.recv() {
                    let _gate = gate.blocking_lock();
                    let mut batch = Vec::with_capacity(8);
                    batch.push(first);
                    batch.extend(queue.try_iter().take(MAX_BATCH - 1));
                    writer.run_batch(batch);
                }
            })
            .map_err(|e| StoreError::Unavailable(format!("cannot start the SQLite writer: {e}")))?;
        Ok(Self {
            jobs,
            syncs,
            commits,
        })
    }

    /// Runs `work` on the writer thread, inside a `BEGIN IMMEDIATE` … `COMMIT` it may share
    /// with other callers' transactions (in its own savepoint), committed with `durability`
    /// (answered only once the commit is on disk when [`Durability::Full`]); rolled back if
    /// `work` fails (or panics), without touching the others.
    pub(crate) async fn transaction<R, F>(
        &self,
        durability: Durability,
        work: F,
    ) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<R, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(Pending {
            work: Some(work),
            durability,
            outcome: None,
            reply,
        });
        self.jobs
            .send(job)
            .map_err(|_| StoreError::Unavailable("the SQLite writer has stopped".to_owned()))?;
        let (out, synced) = answer.await.map_err(|_| {
            StoreError::Unavailable("the SQLite writer dropped a transaction".to_owned())
        })??;
        if let Some(synced) = synced {
            synced
                .await
                .map_err(|_| StoreError::Unavailable("the WAL syncer has stopped".to_owned()))?
                .map_err(StoreError::Unavailable)?;
        }
        Ok(out)
    }

    /// WAL fsyncs made so far.
    #[cfg(test)]
    fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }

    /// Commits made so far.
    #[cfg(test)]
    fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }
}

impl WriterConnection {
    /// Runs every job of `batch` in one transaction and commits it; then answers each job,
    /// the durable ones with an fsync of the WAL to wait for (the callers wait, not this
    /// thread).
    fn run_batch(&mut self, mut batch: Vec<Job>) {
        match self.write_all(&mut batch) {
            Ok(succeeded) => {
                for (job, ok) in batch.into_iter().zip(succeeded) {
                    let synced = match job.durability() {
                        Durability::Full if ok => self.fsync_request(),
                        _ => Ok(None),
                    };
                    job.answer(synced);
                }
            }
            Err(e) => {
                for job in batch {
                    job.answer(Err(shared(&e)));
                }
            }
        }
    }

    /// Runs the jobs and commits; returns, per job, whether it succeeded.
    fn write_all(&mut self, batch: &mut [Job]) -> Result<Vec<bool>, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut succeeded = Vec::with_capacity(batch.len());
        for job in batch.iter_mut() {
            succeeded.push(job.run(&tx));
            if tx.is_autocommit() {
                // SQLite rolled the whole transaction back (I/O error, full disk): the jobs
                // before this one lost their work too.
                return Err(StoreError::Unavailable(
                    "the write transaction was rolled back by SQLite".to_owned(),
                ));
            }
        }
        tx.commit()?;
        self.commits.fetch_add(1, Ordering::Relaxed);
        Ok(succeeded)
    }

    /// Asks the syncer for an fsync covering what was just committed.
    fn fsync_request(&self) -> Result<Option<SyncDone>, StoreError> {
        let (done, synced) = oneshot::channel();
        self.syncer
            .send(done)
            .map_err(|_| StoreError::Unavailable("the WAL syncer has stopped".to_owned()))?;
        Ok(Some(synced))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer() -> (tempdir::Dir, SqliteWriter) {
        let dir = tempdir::Dir::new();
        let path = dir.0.join("w.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE t (v INTEGER NOT NULL)")
            .unwrap();
        drop(conn);
        let w = SqliteWriter::open(&path, Arc::default()).unwrap();
        (dir, w)
    }

    mod tempdir {
        pub struct Dir(pub std::path::PathBuf);
        impl Dir {
            pub fn new() -> Self {
                let p = std::env::temp_dir().join(format!(
                    "lwh-writer-{}-{}",
                    std::process::id(),
                    lwh_domain::DeliveryId::generate()
                ));
                std::fs::create_dir_all(&p).unwrap();
                Dir(p)
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    /// A runtime to wait for the writer's answers on.
    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
    }

    fn count(w: &SqliteWriter) -> i64 {
        let rt = runtime();
        rt.block_on(w.transaction(Durability::Relaxed, |tx| {
            Ok(tx.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))?)
        }))
        .unwrap()
    }

    #[test]
    fn commits_what_succeeds_and_rolls_back_what_fails_or_panics() {
        let (_dir, w) = writer();
        let rt = runtime();
        rt.block_on(w.transaction(Durability::Full, |tx| {
            tx.execute("INSERT INTO t (v) VALUES (1)", [])?;
            Ok(())
        }))
        .unwrap();
        assert_eq!(count(&w), 1);
        let failed = rt.block_on(w.transaction(Durability::Relaxed, |tx| {
            tx.execute("INSERT INTO t (v) VALUES (2)", [])?;
            tx.execute("INSERT INTO t (v) VALUES (NULL)", [])?;
            Ok(())
        }));
        assert!(
            failed.is_err(),
            "the NOT NULL violation fails the transaction"
        );
        assert_eq!(count(&w), 1, "the first insert was rolled back with it");
        let panicked = rt.block_on(w.transaction(Durability::Relaxed, |tx| -> Result<(), _> {
            tx.execute("INSERT INTO t (v) VALUES (3)", [])?;
            panic!("boom")
        }));
        assert!(panicked.is_err());
        assert_eq!(
            count(&w),
            1,
            "a panic rolls back and the thread keeps serving"
        );
    }

    #[test]
    fn transactions_waiting_together_share_one_commit_and_fail_alone() {
        let (_dir, w) = writer();
        // Keep the thread busy so the next four queue up behind it.
        let (started_tx, started) = std::sync::mpsc::channel();
        let holder = {
            let w = w.clone();
            std::thread::spawn(move || {
                runtime().block_on(w.transaction(Durability::Relaxed, move |_| {
                    let _ = started_tx.send(());
                    std::thread::sleep(std::time::Duration::from_millis(300));
                    Ok(())
                }))
            })
        };
        started.recv().unwrap();
        let before = w.commits();
        let rt = runtime();
        let insert = |v: i64| {
            move |tx: &Transaction<'_>| -> Result<(), StoreError> {
                tx.execute("INSERT INTO t (v) VALUES (?1)", [v])?;
                Ok(())
            }
        };
        let (first, failing, panicking, last) = rt.block_on(async {
            tokio::join!(
                w.transaction(Durability::Full, insert(1)),
                w.transaction(Durability::Relaxed, |tx| {
                    tx.execute("INSERT INTO t (v) VALUES (2)", [])?;
                    tx.execute("INSERT INTO t (v) VALUES (NULL)", [])?;
                    Ok(())
                }),
                w.transaction(Durability::Relaxed, |tx| -> Result<(), _> {
                    tx.execute("INSERT INTO t (v) VALUES (3)", [])?;
                    panic!("boom")
                }),
                w.transaction(Durability::Full, insert(4)),
            )
        });
        holder.join().unwrap().unwrap();
        assert!(first.is_ok() && last.is_ok());
        assert!(failing.is_err() && panicking.is_err());
        assert_eq!(
            w.commits() - before,
            2,
            "the busy transaction's commit, then one for the four that waited"
        );
        let kept: Vec<i64> = rt
            .block_on(w.transaction(Durability::Relaxed, |tx| {
                let mut read = tx.prepare("SELECT v FROM t ORDER BY v")?;
                let values = read
                    .query_map([], |r| r.get(0))?
                    .collect::<Result<Vec<i64>, _>>()?;
                Ok(values)
            }))
            .unwrap();
        assert_eq!(
            kept,
            vec![1, 4],
            "each failure rolled back its own writes only"
        );
    }

    #[test]
    fn durable_commits_are_answered_after_a_wal_fsync_and_relaxed_ones_without() {
        let (_dir, w) = writer();
        let rt = runtime();
        let level = rt
            .block_on(w.transaction(Durability::Relaxed, |tx| {
                Ok(tx.query_row("PRAGMA synchronous", [], |r| r.get::<_, i64>(0))?)
            }))
            .unwrap();
        assert_eq!(level, 1, "the connection itself commits with NORMAL");
        assert_eq!(w.syncs(), 0, "a relaxed commit waits for no fsync");
        for v in 0..3 {
            rt.block_on(w.transaction(Durability::Full, move |tx| {
                tx.execute("INSERT INTO t (v) VALUES (?1)", [v])?;
                Ok(())
            }))
            .unwrap();
            assert_eq!(
                w.syncs(),
                v as u64 + 1,
                "each durable commit here was answered after its own fsync"
            );
        }
        assert_eq!(count(&w), 3);
    }

    #[test]
    fn the_checkpointer_copies_commits_into_the_database_file() {
        let (dir, w) = writer();
        let rt = runtime();
        rt.block_on(w.transaction(Durability::Relaxed, |tx| {
            tx.execute("INSERT INTO t (v) VALUES (1), (2), (3)", [])?;
            Ok(())
        }))
        .unwrap();
        // `immutable=1` reads the database file alone, never the WAL: the rows show there only
        // once a checkpoint copied them (the writer's own starts at 10,000 pages).
        let uri = format!("file:{}?immutable=1", dir.0.join("w.db").display());
        let in_file = || {
            let conn = Connection::open_with_flags(
                &uri,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_URI,
            )
            .unwrap();
            conn.query_row("SELECT COUNT(*) FROM t", [], |r| r.get::<_, i64>(0))
                .unwrap()
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while in_file() < 3 {
            assert!(
                std::time::Instant::now() < deadline,
                "no checkpoint copied the commit within 5 s"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}
