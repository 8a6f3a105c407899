//! A Learnomy webhook receiver in Rust (axum).
//!
//!     LEARNOMY_WEBHOOK_SECRET=... PORT=8000 cargo run --example receiver
//!
//! It checks X-Learnomy-Signature (HMAC-SHA256 of the raw body, lowercase hex) in constant time
//! with `hmac`'s `verify_slice`, then the Standard Webhooks headers with the `standardwebhooks`
//! crate, configured with "whsec_" + base64(secret).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::sync::Arc;

struct Keys {
    secret: String,
    standard: standardwebhooks::Webhook,
}

fn learnomy_signature_ok(secret: &str, raw_body: &[u8], header: &str) -> bool {
    let Ok(given) = hex::decode(header.trim()) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(raw_body);
    mac.verify_slice(&given).is_ok() // constant-time comparison
}

async fn receive(
    State(keys): State<Arc<Keys>>,
    headers: HeaderMap,
    raw_body: Bytes,
) -> (StatusCode, &'static str) {
    // Verify the raw bytes, before any JSON parsing.
    let signature = headers
        .get("x-learnomy-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !learnomy_signature_ok(&keys.secret, &raw_body, signature) {
        return (
            StatusCode::UNAUTHORIZED,
            "X-Learnomy-Signature does not match",
        );
    }
    // Also checks webhook-timestamp is within 5 minutes (replay protection).
    if keys.standard.verify(&raw_body, &headers).is_err() {
        return (
            StatusCode::UNAUTHORIZED,
            "Standard Webhooks signature does not match",
        );
    }
    let event: serde_json::Value = serde_json::from_slice(&raw_body).unwrap_or_default();
    // Trusted. X-Learnomy-Delivery is stable across retries: use it to skip duplicates.
    println!(
        "learnomy {} {:?}",
        event["event"],
        headers.get("x-learnomy-delivery")
    );
    (StatusCode::NO_CONTENT, "")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secret = std::env::var("LEARNOMY_WEBHOOK_SECRET")?;
    let whsec = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(&secret)
    );
    let keys = Arc::new(Keys {
        standard: standardwebhooks::Webhook::new(&whsec)?,
        secret,
    });
    let port = std::env::var("PORT").unwrap_or_else(|_| "8000".into());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    axum::serve(
        listener,
        Router::new()
            .route("/", post(receive))
            .route("/{*path}", post(receive))
            .with_state(keys),
    )
    .await?;
    Ok(())
}
