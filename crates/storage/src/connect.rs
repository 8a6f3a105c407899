//! Opening a database, tuning it, and applying migrations.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Executor};

use crate::dialect::Backend;
use crate::error::StoreError;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Where the data lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseTarget {
    /// An SQLite file, created if missing.
    Sqlite(PathBuf),
    /// A `postgres://` URL.
    Postgres(String),
}

impl DatabaseTarget {
    /// `database_url` if set (must be `postgres://` or `postgresql://`), else SQLite in `data_dir`.
    pub fn from_settings(database_url: &str, data_dir: &std::path::Path) -> Result<Self, String> {
        let url = database_url.trim();
        if url.is_empty() {
            return Ok(Self::Sqlite(data_dir.join("learnomy-webhooks.db")));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(url.to_owned()));
        }
        if let Some(path) = url.strip_prefix("sqlite://") {
            return Ok(Self::Sqlite(PathBuf::from(
                path.split('?').next().unwrap_or(path),
            )));
        }
        Err("database_url must start with postgres:// (or be empty for the embedded SQLite database)".into())
    }

    /// The backend this target uses.
    pub fn backend(&self) -> Backend {
        match self {
            DatabaseTarget::Sqlite(_) => Backend::Sqlite,
            DatabaseTarget::Postgres(_) => Backend::Postgres,
        }
    }

    /// A description safe for logs: the SQLite path, or the PostgreSQL URL without password.
    pub fn redacted(&self) -> String {
        match self {
            DatabaseTarget::Sqlite(p) => format!("sqlite {}", p.display()),
            DatabaseTarget::Postgres(url) => match url.split_once('@') {
                Some((scheme_user, rest)) => {
                    let user = scheme_user.split(':').take(2).collect::<Vec<_>>().join(":");
                    format!("{user}@{rest}")
                }
                None => url.clone(),
            },
        }
    }
}

/// A handle on the database. Cheap to clone: clones share one connection pool.
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) pool: AnyPool,
    /// SQLite: one connection for the rarer write transactions (webhook edits, users, tokens,
    /// settings); the hot ones run on [`crate::sqlite::writer`]'s thread. Both pass
    /// `write_gate`. PostgreSQL: the same pool as `pool`.
    writer: AnyPool,
    pub(crate) backend: Backend,
    /// SQLite allows one writer at a time, and a writer that finds the lock taken sleeps in
    /// SQLite's busy handler with growing back-off (up to 100 ms a nap). Writers of this
    /// process queue here instead, and are woken the moment the previous one commits.
    write_gate: Arc<tokio::sync::Mutex<()>>,
    /// Payloads of events this process ingested lately, so claims need not read them back.
    pub(crate) payloads: Arc<crate::payload_cache::PayloadCache>,
    /// Where ingestion, claims and attempt results run: each backend's own code.
    pub(crate) hot: HotPath,
    /// SQLite: the database file, whose delivery lock sits beside it.
    sqlite_file: Option<std::path::PathBuf>,
    /// Hourly counters of recorded attempts not yet written ([`crate::stats`]).
    pub(crate) pending_stats: Arc<crate::stats::PendingStats>,
}

/// Where a store's hot writes run — ingestion, claims, attempt results — which is where the
/// two backends' code differs: [`crate::sqlite`] on SQLite's writer thread, [`crate::postgres`]
/// as statements through the pool. Everything else is shared SQL.
#[derive(Clone, Debug)]
pub(crate) enum HotPath {
    /// SQLite: the thread that runs each of these transactions whole.
    Sqlite(crate::sqlite::writer::SqliteWriter),
    /// PostgreSQL: the pool's connections.
    Postgres,
}

/// Creates `dir` (and its parents) private to the service's user (0700), or tightens an
/// existing one that is open to others: the database holds event payloads, which carry
/// learners' personal data.
pub fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)?;
    restrict(dir, 0o700)
}

/// Takes group and other permissions away from `path` when it has any (to `mode`).
pub fn restrict(path: &std::path::Path, mode: u32) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let current = std::fs::metadata(path)?.permissions().mode();
        if current & 0o077 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
            tracing::warn!(
                path = %path.display(),
                from = format!("{:o}", current & 0o777),
                to = format!("{mode:o}"),
                "tightened the permissions of a data file"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

/// The SQLite database and the files beside it, readable by the service's user only (0600):
/// the file is created so before SQLite opens it (SQLite gives its WAL and shared-memory files
/// the database's mode), and existing ones are tightened.
fn secure_sqlite_files(db: &std::path::Path) -> std::io::Result<()> {
    if !db.exists() {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        options.open(db)?;
    }
    for suffix in ["", "-wal", "-shm", ".delivery-lock"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        let path = std::path::PathBuf::from(name);
        if path.exists() {
            restrict(&path, 0o600)?;
        }
    }
    Ok(())
}

/// Held by the one process that delivers from an SQLite file; released when dropped or when
/// the process dies, however it dies (an advisory lock the kernel owns).
#[derive(Debug)]
pub struct DeliveryLock {
    _file: std::fs::File,
}

/// How durable a commit must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Durability {
    /// On disk before the commit returns (fsync): accepted events, admin changes.
    Full,
    /// Survives a process crash, may be lost with the machine's power (or, on PostgreSQL, a
    /// crash of the server): claims and attempt results, whose loss only means a delivery is
    /// attempted again (at-least-once holds). SQLite: `synchronous = NORMAL`; PostgreSQL:
    /// `synchronous_commit = off` for the transaction.
    Relaxed,
}

/// A write transaction; on SQLite it also holds the process's write gate until it ends.
///
/// On SQLite the transaction is driven with plain `BEGIN IMMEDIATE` / `COMMIT` on a pooled
/// connection rather than sqlx's transaction object: when a statement fails with SQLITE_FULL or
/// an I/O error, SQLite rolls the transaction back by itself, sqlx's own ROLLBACK then fails, and
/// its bookkeeping would leave the connection refusing every later transaction. Here a
/// transaction that is not committed closes its connection instead (SQLite discards the open
/// transaction on close), so a failure never poisons the pool.
pub struct WriteTx {
    inner: WriteInner,
    _gate: Option<tokio::sync::OwnedMutexGuard<()>>,
}

enum WriteInner {
    Postgres(sqlx::Transaction<'static, sqlx::Any>),
    Sqlite(sqlx::pool::PoolConnection<sqlx::Any>),
    /// Committed.
    Closed,
}

impl WriteTx {
    /// Commits (and opens the gate for the next writer).
    pub async fn commit(mut self) -> Result<(), StoreError> {
        match std::mem::replace(&mut self.inner, WriteInner::Closed) {
            WriteInner::Postgres(tx) => tx.commit().await?,
            WriteInner::Sqlite(mut conn) => {
                if let Err(e) = conn.execute("COMMIT").await {
                    conn.close_on_drop();
                    return Err(e.into());
                }
            }
            WriteInner::Closed => {}
        }
        Ok(())
    }
}

impl Drop for WriteTx {
    fn drop(&mut self) {
        // Not committed: the connection goes, and its transaction with it.
        if let WriteInner::Sqlite(conn) = &mut self.inner {
            conn.close_on_drop();
        }
    }
}

impl std::ops::Deref for WriteTx {
    type Target = sqlx::AnyConnection;
    fn deref(&self) -> &Self::Target {
        match &self.inner {
            WriteInner::Postgres(tx) => tx,
            WriteInner::Sqlite(conn) => conn,
            WriteInner::Closed => unreachable!("a WriteTx is not used after commit"),
        }
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut Self::Target {
        match &mut self.inner {
            WriteInner::Postgres(tx) => tx,
            WriteInner::Sqlite(conn) => conn,
            WriteInner::Closed => unreachable!("a WriteTx is not used after commit"),
        }
    }
}

impl Store {
    /// Connects (creating the SQLite file and its folder if needed) and tunes the connection.
    /// Does not migrate; call [`Store::migrate`].
    pub async fn open(target: &DatabaseTarget) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = target.backend();
        let (url, max) = match target {
            DatabaseTarget::Sqlite(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    create_private_dir(dir)
                        .map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
                }
                secure_sqlite_files(path).map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
                (format!("sqlite://{}?mode=rwc", path.display()), 8)
            }
            DatabaseTarget::Postgres(url) => (url.clone(), 16),
        };
        let options = AnyConnectOptions::from_str(&url)?
            .log_statements(tracing::log::LevelFilter::Trace)
            .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_secs(2));
        let pool = pool_options(backend, max)
            .connect_with(options.clone())
            .await?;
        let writer = match backend {
            Backend::Sqlite => pool_options(backend, 1).connect_with(options).await?,
            Backend::Postgres => pool.clone(),
        };
        let write_gate = Arc::new(tokio::sync::Mutex::new(()));
        let hot = match target {
            DatabaseTarget::Sqlite(path) => HotPath::Sqlite(
                crate::sqlite::writer::SqliteWriter::open(path, write_gate.clone())?,
            ),
            DatabaseTarget::Postgres(_) => HotPath::Postgres,
        };
        Ok(Self {
            pool,
            writer,
            backend,
            write_gate,
            payloads: Arc::default(),
            pending_stats: Arc::default(),
            hot,
            sqlite_file: match target {
                DatabaseTarget::Sqlite(path) => Some(path.clone()),
                DatabaseTarget::Postgres(_) => None,
            },
        })
    }

    /// Takes the right to deliver from this database. On SQLite only one process may: each
    /// delivering process treats every claim it finds at start as left by a dead one and
    /// queues it again, so a second would resend what the first has in flight. CLI commands
    /// (tokens, users) do not deliver and need no lock. On PostgreSQL any number of processes
    /// share the queue: `None`.
    pub fn lock_delivery(&self) -> Result<Option<DeliveryLock>, StoreError> {
        let Some(db) = &self.sqlite_file else {
            return Ok(None);
        };
        let mut name = db.as_os_str().to_owned();
        name.push(".delivery-lock");
        let mut options = std::fs::OpenOptions::new();
        options.create(true).truncate(false).write(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options
            .open(std::path::PathBuf::from(name))
            .map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(DeliveryLock { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::InUse(db.clone())),
            Err(std::fs::TryLockError::Error(e)) => Err(StoreError::Database(sqlx::Error::Io(e))),
        }
    }

    /// Applies every pending migration of this backend.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&self.pool).await?,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&self.pool).await?,
        }
        Ok(())
    }

    /// Starts a transaction that must survive power loss once committed (an accepted event,
    /// an admin's change). See [`Store::begin_write_with`].
    pub(crate) async fn begin_write(&self) -> Result<WriteTx, StoreError> {
        self.begin_write_with(Durability::Full).await
    }

    /// Starts a transaction that will write. On SQLite it first passes the process's write
    /// gate, then takes the write lock at once (`BEGIN IMMEDIATE`) — a deferred transaction
    /// that reads first and writes later can fail at once with SQLITE_BUSY — with the
    /// commit's durability set for this transaction: [`Durability::Relaxed`] skips the fsync
    /// (WAL, `synchronous = NORMAL`), still safe against a process crash.
    pub(crate) async fn begin_write_with(
        &self,
        durability: Durability,
    ) -> Result<WriteTx, StoreError> {
        Ok(match self.backend {
            Backend::Sqlite => {
                let gate = self.write_gate.clone().lock_owned().await;
                let begin = match durability {
                    Durability::Full => "PRAGMA synchronous = FULL; BEGIN IMMEDIATE",
                    Durability::Relaxed => "PRAGMA synchronous = NORMAL; BEGIN IMMEDIATE",
                };
                let mut conn = self.writer.acquire().await?;
                if let Err(e) = conn.execute(begin).await {
                    conn.close_on_drop();
                    return Err(e.into());
                }
                WriteTx {
                    inner: WriteInner::Sqlite(conn),
                    _gate: Some(gate),
                }
            }
            Backend::Postgres => {
                let tx = match durability {
                    Durability::Full => self.pool.begin().await?,
                    // The commit does not wait for the WAL's flush (one round trip, as BEGIN
                    // alone): PostgreSQL keeps it if this process dies; a crash of the server
                    // or the machine can lose the last fraction of a second of such commits
                    // (up to 3 × wal_writer_delay), never an accepted event — whose commit
                    // flushes the WAL up to it.
                    Durability::Relaxed => {
                        self.pool
                            .begin_with("BEGIN; SET LOCAL synchronous_commit TO OFF")
                            .await?
                    }
                };
                WriteTx {
                    inner: WriteInner::Postgres(tx),
                    _gate: None,
                }
            }
        })
    }

    /// How many migrations the database has applied, and how many this build knows.
    pub async fn migration_status(&self) -> Result<(i64, usize), StoreError> {
        let known = match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.iter().count(),
            Backend::Postgres => POSTGRES_MIGRATIONS.iter().count(),
        };
        let row = sqlx::query("SELECT COUNT(*) AS n FROM _sqlx_migrations WHERE success")
            .fetch_one(&self.pool)
            .await?;
        Ok((crate::decode::int(&row, "n")?, known))
    }

    /// Which backend this store uses.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A trivial query, for `/readyz`.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes every connection (clean shutdown, tests).
    pub async fn close(&self) {
        if let Err(e) = self.flush_stats().await {
            tracing::warn!(error = %e, "hourly stats not written at close");
        }
        self.pool.close().await;
        self.writer.close().await;
    }
}

/// Pool settings shared by the readers' pool and SQLite's writer.
fn pool_options(backend: Backend, max: u32) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                if backend == Backend::Sqlite {
                    // WAL lets readers run beside the writer; FULL makes a commit survive
                    // power loss, and group commits keep that affordable. Checkpoints every
                    // 10,000 WAL pages (~40 MiB) instead of SQLite's 1,000: the writer runs
                    // them, and a hot index page rewritten by many small transactions is then
                    // copied into the database file once per checkpoint rather than ten
                    // times (fan-out 10 +10 %, docs/performance.md).
                    conn.execute(
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                         PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; \
                         PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = 10000;",
                    )
                    .await?;
                }
                Ok(())
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chooses_the_backend_from_settings() {
        let dir = std::path::Path::new("./data");
        assert_eq!(
            DatabaseTarget::from_settings("", dir).unwrap(),
            DatabaseTarget::Sqlite(dir.join("learnomy-webhooks.db"))
        );
        assert_eq!(
            DatabaseTarget::from_settings("postgres://u@h/db", dir)
                .unwrap()
                .backend(),
            Backend::Postgres
        );
        assert!(DatabaseTarget::from_settings("mysql://x", dir).is_err());
    }

    /// Claims and results on PostgreSQL do not wait for the WAL's flush; accepted events and
    /// admin changes do (the suite's server, as `scripts/test` runs it, keeps the default `on`).
    #[tokio::test]
    async fn only_relaxed_postgresql_commits_skip_the_wal_flush() {
        let url = std::env::var("LEARNOMY_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
        let store = Store::open(&DatabaseTarget::Postgres(url))
            .await
            .expect("the suite's PostgreSQL (scripts/test starts it)");
        for (durability, expected) in [
            (Durability::Relaxed, "off"),
            (Durability::Full, "on"),
            (Durability::Relaxed, "off"),
        ] {
            let mut tx = store.begin_write_with(durability).await.expect("begin");
            let row = sqlx::query("SHOW synchronous_commit")
                .fetch_one(&mut *tx)
                .await
                .expect("show");
            let setting: String = sqlx::Row::try_get(&row, 0).expect("text");
            assert_eq!(setting, expected, "{durability:?}");
            tx.commit().await.expect("commit");
        }
        // SET LOCAL ends with its transaction: the pooled connection is back to the default.
        let mut conn = store.pool.acquire().await.expect("connection");
        let row = sqlx::query("SHOW synchronous_commit")
            .fetch_one(&mut *conn)
            .await
            .expect("show");
        let setting: String = sqlx::Row::try_get(&row, 0).expect("text");
        assert_eq!(setting, "on");
    }

    #[test]
    fn redacts_passwords() {
        let t = DatabaseTarget::Postgres("postgres://app:hunter2@db:5432/x".into());
        assert_eq!(t.redacted(), "postgres://app@db:5432/x");
    }
}
