//! The application layer: settings, and every operation the REST API, the console and the CLI
//! share — so a rule (plan cap, URL policy, secret handling) is enforced in one place whatever
//! the door a request came through.

mod app;
pub mod deliveries;
mod duration;
mod error;
pub mod formats;
mod group_commit;
mod health;
pub mod ingest;
pub mod mail;
mod master_key_file;
pub mod service_events;
mod settings;
mod start_error;
pub mod tokens;
pub mod users;
pub mod webhooks;

pub use app::App;
pub use duration::Dur;
pub use error::AppError;
pub use group_commit::{HandOver, Reservation, Settled};
pub use master_key_file::{load_or_create_master_key, MASTER_KEY_ENV};
pub use settings::{LogFormat, Settings, SmtpUrl};
pub use start_error::StartError;
pub use tokens::{Scope, Scopes};
