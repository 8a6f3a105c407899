//! Why a process cannot start, by what the operator has to fix. Each message says what is wrong
//! and how to put it right; the binary prints it and exits.

/// A start-up failure.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A setting is invalid (the messages name each one).
    #[error("invalid configuration: {0}")]
    Settings(String),
    /// The master key cannot be read or made, is malformed, is readable by other users, or is
    /// not the key the database was written with.
    #[error("{0}")]
    MasterKey(String),
    /// The database cannot be opened, migrated or read at start.
    #[error("{0}")]
    Database(String),
    /// Another process already delivers from this SQLite file.
    #[error("{0}")]
    InUse(lwh_storage::StoreError),
    /// The HTTP client for deliveries cannot be built.
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(String),
}
