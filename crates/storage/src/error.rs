//! Storage errors, sorted by what the caller should do about them.

/// What went wrong in storage.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The plan's webhook cap is already used (checked atomically with the insert).
    #[error("the webhook limit of the plan is reached")]
    LimitReached,
    /// A unique value is already taken (user name, token).
    #[error("{0} already exists")]
    Conflict(&'static str),
    /// The database could not be reached or failed; the request may be retried later.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The same, on SQLite's writer thread.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Applying the schema failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Another process already delivers from this SQLite file.
    #[error(
        "another learnomy-webhooks process (serve or worker) is already delivering from {}: \
         an SQLite database serves one process; stop that one, or use PostgreSQL to run several",
        .0.display()
    )]
    InUse(std::path::PathBuf),
    /// Storage cannot take writes now: SQLite's writer or WAL syncer has stopped, an fsync
    /// failed, SQLite rolled a transaction back (I/O error, full disk), or the ingestion
    /// committer is gone. Nothing was stored; the request may be retried (503).
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// A stored value does not decode (corrupted row or a schema from the future).
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// True when the database itself is unavailable (down, restarting, disk full, read-only):
    /// callers answer 503 with `Retry-After` instead of 500.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Database(e) => !matches!(
                e,
                sqlx::Error::RowNotFound
                    | sqlx::Error::ColumnDecode { .. }
                    | sqlx::Error::Decode(_)
            ),
            StoreError::Sqlite(e) => !matches!(
                e,
                rusqlite::Error::QueryReturnedNoRows
                    | rusqlite::Error::FromSqlConversionFailure(..)
                    | rusqlite::Error::InvalidColumnType(..)
                    | rusqlite::Error::IntegralValueOutOfRange(..)
            ),
            StoreError::Unavailable(_) => true,
            _ => false,
        }
    }

    /// True for a unique-constraint violation (two writers raced for the same key).
    pub(crate) fn is_unique_violation(&self) -> bool {
        match self {
            StoreError::Database(sqlx::Error::Database(e)) => e.is_unique_violation(),
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            }
            _ => false,
        }
    }

    pub(crate) fn from_unique(e: sqlx::Error, what: &'static str) -> Self {
        match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what),
            _ => StoreError::Database(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stopped_writer_is_unavailable_and_a_bad_row_is_not() {
        assert!(StoreError::Unavailable("the WAL syncer has stopped".into()).is_unavailable());
        assert!(!StoreError::Corrupt("column status holds 7".into()).is_unavailable());
        assert!(!StoreError::LimitReached.is_unavailable());
        assert_eq!(
            StoreError::Unavailable("fsync failed".into()).to_string(),
            "storage unavailable: fsync failed"
        );
    }
}
