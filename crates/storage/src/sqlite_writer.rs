//! SQLite's writer thread: it owns the connection on which the hot write transactions run
//! (ingestion, claims, attempt results) and runs each one whole.
//!
//! Through sqlx, every statement, every returned row, and the `BEGIN` and `COMMIT` around them
//! is a round trip between the async task and the connection's own thread — five to ten
//! wake-ups per transaction on a machine whose two cores are also sending the deliveries.
//! Here a transaction is one hand-off to this thread and one answer back, and its statements
//! are prepared once and cached.

use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::mpsc;
use std::sync::Arc;

use rusqlite::{Connection, Transaction, TransactionBehavior};
use tokio::sync::{oneshot, Mutex, OwnedMutexGuard};

use crate::connect::Durability;
use crate::error::StoreError;

/// Prepared statements kept per connection (multi-row statements vary by row count).
const STATEMENT_CACHE: usize = 256;

type Job = Box<dyn FnOnce(&mut WriterConnection) + Send>;

/// Hands transactions to the writer thread.
#[derive(Clone, Debug)]
pub(crate) struct SqliteWriter {
    jobs: mpsc::Sender<Job>,
    /// The process's write gate, shared with sqlx's writer connection (used by the rarer
    /// writes), so the two never wait on each other inside SQLite's busy handler.
    gate: Arc<Mutex<()>>,
}

/// The connection, and the `synchronous` level it is set to.
pub(crate) struct WriterConnection {
    conn: Connection,
    synchronous: Option<Durability>,
}

impl SqliteWriter {
    /// Opens the writer's connection to the database file (already created and migrated by
    /// sqlx's pool) and starts its thread.
    pub(crate) fn open(path: &Path, gate: Arc<Mutex<()>>) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; \
             PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = 10000;",
        )?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let (jobs, queue) = mpsc::channel::<Job>();
        let mut writer = WriterConnection {
            conn,
            synchronous: None,
        };
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                while let Ok(job) = queue.recv() {
                    job(&mut writer);
                }
            })
            .map_err(|e| StoreError::Corrupt(format!("cannot start the SQLite writer: {e}")))?;
        Ok(Self { jobs, gate })
    }

    /// Runs `work` in one `BEGIN IMMEDIATE` … `COMMIT` on the writer thread, committed with
    /// `durability`; rolled back if `work` fails (or panics).
    pub(crate) async fn transaction<R, F>(
        &self,
        durability: Durability,
        work: F,
    ) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<R, StoreError> + Send + 'static,
    {
        // The gate is held until the thread has finished, even if this future is dropped.
        let gate: OwnedMutexGuard<()> = self.gate.clone().lock_owned().await;
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |writer| {
            let result =
                std::panic::catch_unwind(AssertUnwindSafe(|| writer.run(durability, work)))
                    .unwrap_or_else(|_| {
                        Err(StoreError::Corrupt(
                            "a write transaction panicked".to_owned(),
                        ))
                    });
            drop(gate);
            let _ = reply.send(result);
        });
        self.jobs
            .send(job)
            .map_err(|_| StoreError::Corrupt("the SQLite writer has stopped".to_owned()))?;
        answer.await.map_err(|_| {
            StoreError::Corrupt("the SQLite writer dropped a transaction".to_owned())
        })?
    }
}

impl WriterConnection {
    fn run<R>(
        &mut self,
        durability: Durability,
        work: impl FnOnce(&Transaction<'_>) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        if self.synchronous != Some(durability) {
            self.synchronous = None;
            self.conn.execute_batch(match durability {
                Durability::Full => "PRAGMA synchronous = FULL",
                Durability::Relaxed => "PRAGMA synchronous = NORMAL",
            })?;
            self.synchronous = Some(durability);
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = work(&tx)?;
        tx.commit()?;
        Ok(out)
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

    fn count(w: &SqliteWriter) -> i64 {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(w.transaction(Durability::Relaxed, |tx| {
            Ok(tx.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))?)
        }))
        .unwrap()
    }

    #[test]
    fn commits_what_succeeds_and_rolls_back_what_fails_or_panics() {
        let (_dir, w) = writer();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
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
    fn commits_with_the_durability_asked_for() {
        let (_dir, w) = writer();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let level = |durability| {
            rt.block_on(w.transaction(durability, |tx| {
                Ok(tx.query_row("PRAGMA synchronous", [], |r| r.get::<_, i64>(0))?)
            }))
            .unwrap()
        };
        assert_eq!(level(Durability::Full), 2, "FULL: fsync at every commit");
        assert_eq!(level(Durability::Relaxed), 1, "NORMAL");
        assert_eq!(level(Durability::Full), 2);
    }
}
