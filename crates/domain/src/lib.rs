//! The words of the product — webhook, event, delivery, catalogue, plan, secret — and the pure
//! rules around them. Nothing in this crate performs I/O, so every rule is unit-tested here and
//! reused unchanged by the API, the console, the CLI and the delivery engine.

pub mod catalogue;
pub mod custom_headers;
pub mod delivery;
pub mod format;
pub mod ids;
pub mod lifecycle;
pub mod master_key;
pub mod ordering;
pub mod payload;
pub mod plan;
pub mod request_headers;
pub mod retry;
pub mod rotation;
pub mod secret;
pub mod service_events;
pub mod signing;
pub mod stats;
pub mod throttle;
pub mod timestamp;
pub mod validation;
pub mod webhook;

pub use catalogue::{Catalogue, CatalogueEntry};
pub use delivery::{AttemptOutcome, DeliveryStatus, ErrorKind};
pub use ids::{DeliveryId, EventId, TokenId, UserId, WebhookId};
pub use master_key::MasterKey;
pub use plan::Plan;
pub use retry::{NextStep, RetryPolicy};
pub use secret::WebhookSecret;
pub use timestamp::Timestamp;
pub use validation::FieldError;
pub use webhook::{StatusEffect, WebhookStatus};
