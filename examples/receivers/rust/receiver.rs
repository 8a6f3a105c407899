//! A Learnomy webhook receiver in Rust (axum).
//!
//!     LEARNOMY_WEBHOOK_SECRET=... PORT=8000 cargo run --example receiver
//!
//! It checks X-Learnomy-Signature (HMAC-SHA256 of the raw body, lowercase hex) in constant time
//! with `hmac`'s `verify_slice`, then the Standard Webhooks headers with the `standardwebhooks`
//! crate, configured with "whsec_" + base64(secret).
//!
//! Rotating the secret without a failed delivery: while a rotation's overlap runs, the service
//! signs X-Learnomy-Signature with the previous secret, X-Learnomy-Signature-Next with the new
//! one and webhook-signature with both. Put the new secret in LEARNOMY_WEBHOOK_SECRET_NEXT
//! (either secret is then accepted), then move it to LEARNOMY_WEBHOOK_SECRET and drop the old
//! one before the overlap ends.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::sync::Arc;

/// One accepted secret, in both forms.
struct Key {
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
    State(keys): State<Arc<Vec<Key>>>,
    headers: HeaderMap,
    raw_body: Bytes,
) -> (StatusCode, &'static str) {
    // Verify the raw bytes, before any JSON parsing; during a rotation either header may match.
    let signatures: Vec<&str> = ["x-learnomy-signature", "x-learnomy-signature-next"]
        .into_iter()
        .filter_map(|name| headers.get(name).and_then(|v| v.to_str().ok()))
        .collect();
    let signed = keys.iter().any(|key| {
        signatures
            .iter()
            .any(|s| learnomy_signature_ok(&key.secret, &raw_body, s))
    });
    if !signed {
        return (
            StatusCode::UNAUTHORIZED,
            "X-Learnomy-Signature does not match",
        );
    }
    // Also checks webhook-timestamp is within 5 minutes (replay protection).
    if !keys
        .iter()
        .any(|key| key.standard.verify(&raw_body, &headers).is_ok())
    {
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
    let mut keys = Vec::new();
    for name in ["LEARNOMY_WEBHOOK_SECRET", "LEARNOMY_WEBHOOK_SECRET_NEXT"] {
        let Ok(secret) = std::env::var(name) else {
            continue;
        };
        let whsec = format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode(&secret)
        );
        keys.push(Key {
            standard: standardwebhooks::Webhook::new(&whsec)?,
            secret,
        });
    }
    if keys.is_empty() {
        return Err("set LEARNOMY_WEBHOOK_SECRET".into());
    }
    let port = std::env::var("PORT").unwrap_or_else(|_| "8000".into());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    axum::serve(
        listener,
        Router::new()
            .route("/", post(receive))
            .route("/{*path}", post(receive))
            .with_state(Arc::new(keys)),
    )
    .await?;
    Ok(())
}
