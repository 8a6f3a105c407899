//! `learnomy-webhooks`: the one binary. Parses the command line, loads settings, sets up logs
//! and hands over to a subcommand.

mod cli;
mod commands;
mod config;
mod hints;
mod logging;

use std::process::ExitCode;

use clap::Parser;

/// jemalloc instead of glibc's malloc: ~15–20 % less CPU per delivery, and unlike mimalloc it
/// keeps a million held deliveries under the memory goal (docs/performance.md).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read before `main`: two arenas (one per core of the machines we size for,
/// instead of four per core, each holding its own free memory), and freed memory given back to
/// the system after ~1 s instead of 10 s by a background thread, so a burst (a million
/// deliveries ingested) does not stay in the resident set; with the defaults a million held
/// deliveries went over the memory goal (docs/performance.md). Operators override these with
/// `_RJEM_MALLOC_CONF` (docs/operations.md).
#[allow(non_upper_case_globals)]
#[export_name = "_rjem_malloc_conf"]
pub static malloc_conf: Option<&'static std::ffi::c_char> = Some(
    // SAFETY: a NUL-terminated static byte string seen as C chars (same size and layout).
    unsafe {
        std::mem::transmute::<&'static u8, &'static std::ffi::c_char>(
            &b"background_thread:true,narenas:2,dirty_decay_ms:1000,muzzy_decay_ms:0\0"[0],
        )
    },
);

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            // Once logging is set up (with --log-format json, one JSON object per line), the
            // error is a log event like the rest; before that, plain text.
            if tracing::dispatcher::has_been_set() {
                tracing::error!(error = %format!("{e:#}"), "cannot continue");
            } else {
                eprintln!("error: {e:#}");
            }
            ExitCode::FAILURE
        }
    }
}
