//! The delivery engine: from a due delivery in the database to a signed POST on the
//! receiver's socket, and back to a recorded attempt.
//!
//! * [`worker`] claims due deliveries per webhook and runs attempts with bounded concurrency;
//! * [`sender`] makes the signed request through the SSRF guard ([`guarded_resolver`]);
//! * [`recorder`] writes results in batches (statuses, retries, automatic Failed);
//! * [`ping`] is the Test button and the Failed-webhook probe;
//! * [`engine`] starts and stops all of it.

mod engine;
mod guarded_resolver;
mod ping;
mod recorder;
mod sender;
mod targets;
mod worker;

pub use engine::{sender_for, start, EngineHandle};
pub use ping::{send_ping, PingKind, PingResult};
pub use sender::Sender;
