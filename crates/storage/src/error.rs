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
    /// Applying the schema failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
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
