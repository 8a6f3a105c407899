//! `verify`: the receiver-side signature check, for debugging a captured request.

use std::io::Read;
use std::process::ExitCode;

use anyhow::Context;
use lwh_domain::signing::verify_learnomy_signature;

/// Reads the raw body from stdin and checks `signature` against it.
pub fn run(secret: &str, signature: &str) -> anyhow::Result<ExitCode> {
    let mut body = Vec::new();
    std::io::stdin()
        .read_to_end(&mut body)
        .context("cannot read the body from stdin")?;
    if verify_learnomy_signature(secret, &body, signature) {
        eprintln!("signature matches ({} bytes)", body.len());
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "signature does NOT match: check the secret, and that the body is byte-for-byte what was received ({} bytes read)",
            body.len()
        );
        Ok(ExitCode::from(1))
    }
}
