//! SQLite's own code for the three hot paths — ingestion, claims and attempt results — each
//! a closure run whole on the writer thread ([`writer`]), with rusqlite's cached statements.
//! The SQL texts and the decisions they carry out are shared with [`crate::postgres`]; what
//! differs is how they are executed. `tests/storage_contract.rs` checks both leave the same rows.

pub(crate) mod attempts;
pub(crate) mod ingest;
pub(crate) mod queue;
pub(crate) mod writer;
