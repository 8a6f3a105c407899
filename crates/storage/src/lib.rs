//! Durable storage for webhooks, events, deliveries, attempts, users, sessions and API tokens.
//!
//! One [`Store`] serves both backends. Most SQL is shared (sqlx's `Any` driver; [`dialect`]
//! rewrites placeholders for SQLite). The three hot paths — ingestion, claims and attempt
//! results — differ, and each backend has its own module for them: [`sqlite`] runs them on a
//! rusqlite writer thread, [`postgres`] as batched statements; `HotPath` in `connect.rs` picks
//! one. SQLite is the embedded default (WAL, one file under `data_dir`); PostgreSQL lets many
//! processes share one queue.

mod activity;
mod attempts;
mod connect;
mod decode;
mod deliveries;
mod dialect;
mod error;
mod ingest;
mod meta;
mod model;
mod ordering;
mod payload_cache;
mod postgres;
mod queue;
mod sqlite;
mod stats;
#[cfg(test)]
mod test_schema;
mod tokens;
mod users;
mod webhooks;
pub use webhooks::Rotation;

pub use activity::{LastFailure, WebhookActivity, HELD_COUNT_CAP};
pub use attempts::Recorded;
pub use connect::{create_private_dir, DatabaseTarget, DeliveryLock, Store};
pub use deliveries::EVENT_MARGIN_MS;
pub use dialect::Backend;
pub use error::StoreError;
pub use ingest::{IngestClaim, Ingested, IDEMPOTENCY_WINDOW_MS};
pub use model::{
    ApiTokenRecord, AttemptRecord, AttemptRow, ClaimedDelivery, DeliverySummary, FailureRules,
    IngestOutcome, NewApiToken, NewEvent, NewWebhook, PacedClaim, QueueStats, SessionRecord,
    UserRecord, WebhookChanges, WebhookRecord,
};
pub use ordering::SuccessorClaim;
pub use stats::STATS_KEPT_MS;
