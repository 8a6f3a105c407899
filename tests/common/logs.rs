//! Whole-suite log capture, for the "no secret reaches a log" check.
//!
//! When `LEARNOMY_TEST_LOG_DIR` is set (`scripts/test` sets it), every log line of the suite
//! lands in that directory at the most verbose level of our own crates: the in-process servers
//! through a global subscriber, every spawned service process through its stderr. Tests also
//! write down the secrets, tokens and passwords they chose there; `scripts/check-test-logs`
//! then searches every captured line for each of them and for anything shaped like a generated
//! secret or token. Without the variable (a plain `cargo test`), nothing is captured.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, Once};

/// Our crates at their most verbose, the libraries underneath at info.
pub const FILTER: &str = "info,learnomy_webhooks=trace,lwh_app=trace,lwh_delivery=trace,\
lwh_http=trace,lwh_console=trace,lwh_storage=trace,lwh_domain=trace,lwh_url_policy=trace";

/// Where the suite's logs go, if they are being captured.
pub fn dir() -> Option<PathBuf> {
    let dir = PathBuf::from(std::env::var_os("LEARNOMY_TEST_LOG_DIR")?);
    std::fs::create_dir_all(&dir).ok()?;
    Some(dir)
}

/// Sends this test binary's own log lines (in-process servers) to the capture directory.
pub fn capture_in_process() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let Some(dir) = dir() else { return };
        let Ok(file) = File::create(dir.join(format!("in-process-{}.log", std::process::id())))
        else {
            return;
        };
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(FILTER))
            .with_writer(Mutex::new(file))
            .with_ansi(false)
            .try_init();
    });
}

/// A stderr for a spawned service process: a fresh file in the capture directory, or the
/// test's own stderr when nothing is captured.
pub fn child_stderr(name: &str) -> Stdio {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let Some(dir) = dir() else {
        return Stdio::inherit();
    };
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    match File::create(dir.join(format!("{name}-{}-{n}.log", std::process::id()))) {
        Ok(file) => Stdio::from(file),
        Err(_) => Stdio::inherit(),
    }
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
    if let Ok(mut file) = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("{name}-{}.log", std::process::id())))
    {
        let _ = file.write_all(text);
    }
}

/// Writes down a secret, token or password a test chose or was given, so the log check can
/// look for it. Returns it for convenience.
pub fn remember(secret: &str) -> &str {
    if let Some(dir) = dir() {
        if let Ok(mut file) = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(format!("secrets-{}.txt", std::process::id())))
        {
            let _ = writeln!(file, "{secret}");
        }
    }
    secret
}
