//! PostgreSQL's own code for the three hot paths — ingestion, claims and attempt results — as
//! statements through the pool, batched into few round trips (multi-row INSERTs, a
//! data-modifying WITH, `FOR UPDATE SKIP LOCKED` claims). The SQL texts and the decisions they
//! carry out are shared with [`crate::sqlite`]; `tests/storage_contract.rs` checks both leave
//! the same rows.

pub(crate) mod attempts;
pub(crate) mod ingest;
pub(crate) mod queue;
