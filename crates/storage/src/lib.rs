//! Durable storage for webhooks, events, deliveries, attempts, users, sessions and API tokens.
//!
//! One [`Store`] serves both backends through sqlx's `Any` driver: the SQL is shared and the
//! differences (placeholders, locking, claiming) live in [`dialect`]. SQLite is the embedded
//! default (WAL, one file under `data_dir`); PostgreSQL lets many processes share one queue.

mod connect;
pub mod dialect;
mod error;
mod records;
mod rows;
mod tokens;
mod users;
mod webhooks;

pub use connect::{DatabaseTarget, Store};
pub use dialect::Backend;
pub use error::StoreError;
pub use records::{
    ApiTokenRecord, NewApiToken, NewWebhook, SessionRecord, UserRecord, WebhookChanges,
    WebhookRecord,
};
