//! Whole-suite log capture, for the "no secret reaches a log" check.
//!
//! When `LEARNOMY_TEST_LOG_DIR` is set (`scripts/test` sets it), every log line of the suite
//! lands in that directory at the most verbose level of our own crates: the in-process servers
//! through a global subscriber, every spawned service process through its stderr. Tests also
//! write down the secrets, tokens and passwords they chose there; `scripts/check-test-logs`
//! then searches every captured line for each of them (as is, and base64-, hex- or URL-encoded)
//! and for anything shaped like a generated secret or token. Without the variable (a plain
//! `cargo test`), nothing is captured; with it, a capture that cannot be set up panics.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};

/// Our crates at their most verbose, the libraries underneath at info.
pub const FILTER: &str = "info,learnomy_webhooks=trace,lwh_app=trace,lwh_delivery=trace,\
lwh_http=trace,lwh_console=trace,lwh_storage=trace,lwh_domain=trace,lwh_url_policy=trace";

/// The line [`capture_in_process`] logs first; `scripts/check-test-logs` fails on an in-process
/// log without it (a binary whose capture silently wrote nothing).
pub const STARTED: &str = "log capture started";

/// Where the suite's logs go, if they are being captured. When capture was asked for, failing
/// to capture panics: logs that were never written would pass the check.
pub fn dir() -> Option<PathBuf> {
    let dir = PathBuf::from(std::env::var_os("LEARNOMY_TEST_LOG_DIR")?);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        panic!("log capture: cannot create {}: {e}", dir.display());
    }
    Some(dir)
}

/// A file of the capture directory, created or appended to; panics when it cannot be opened.
fn open(dir: &Path, name: &str, append: bool) -> File {
    let path = dir.join(name);
    OpenOptions::new()
        .write(true)
        .create(true)
        .append(append)
        .truncate(!append)
        .open(&path)
        .unwrap_or_else(|e| panic!("log capture: cannot open {}: {e}", path.display()))
}

/// Sends this test binary's own log lines (in-process servers) to the capture directory.
/// Panics, in every test that asks, when that cannot be set up.
pub fn capture_in_process() {
    static CAPTURE: OnceLock<Result<(), String>> = OnceLock::new();
    let started = CAPTURE.get_or_init(|| {
        let Some(dir) = dir() else { return Ok(()) };
        let name = format!("in-process-{}.log", std::process::id());
        let file = open(&dir, &name, false);
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(FILTER))
            .with_writer(Mutex::new(file))
            .with_ansi(false)
            .try_init()
            .map_err(|e| {
                format!(
                    "log capture: cannot install the subscriber writing {} (was another global \
                     subscriber or logger installed first?): {e}",
                    dir.join(&name).display()
                )
            })?;
        tracing::info!("{STARTED}");
        Ok(())
    });
    if let Err(e) = started {
        panic!("{e}");
    }
}

/// A stderr for a spawned service process: a fresh file in the capture directory, or the
/// test's own stderr when nothing is captured.
pub fn child_stderr(name: &str) -> Stdio {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let Some(dir) = dir() else {
        return Stdio::inherit();
    };
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let name = format!("{name}-{}-{n}.log", std::process::id());
    Stdio::from(open(&dir, &name, false))
}

/// The log filter to give a spawned process: verbose when captured, quiet otherwise.
pub fn child_filter() -> &'static str {
    if dir().is_some() {
        FILTER
    } else {
        "warn"
    }
}

/// Keeps already-captured text (a child's piped stderr) with the rest of the suite's logs.
pub fn keep(name: &str, text: &[u8]) {
    let Some(dir) = dir() else { return };
    let name = format!("{name}-{}.log", std::process::id());
    if let Err(e) = open(&dir, &name, true).write_all(text) {
        panic!("log capture: cannot write {name}: {e}");
    }
}

/// Writes down a secret, token or password a test chose or was given, so the log check can
/// look for it (and for its base64, hex and URL-encoded forms). Returns it for convenience.
/// Panics when it cannot: a secret the check does not know of is a blind spot.
pub fn remember(secret: &str) -> &str {
    if let Some(dir) = dir() {
        let name = format!("secrets-{}.txt", std::process::id());
        if let Err(e) = writeln!(open(&dir, &name, true), "{secret}") {
            panic!("log capture: cannot write {name}: {e}");
        }
    }
    secret
}
