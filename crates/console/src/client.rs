//! Who is asking, for per-address login limits: the TCP peer, or — when the peer is a proxy on
//! this host (loopback) — the last address it added to `X-Forwarded-For`.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

/// The client's address, when the server knows it.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddress(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        let forwarded = peer.filter(IpAddr::is_loopback).and_then(|_| {
            parts
                .headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .filter_map(|a| a.trim().parse::<IpAddr>().ok())
                .next_back()
        });
        Ok(Self(forwarded.or(peer)))
    }
}

/// A user-supplied string as it may appear in a log line: at most 64 characters, control
/// characters (newlines above all) escaped, so no input can forge or flood log lines.
pub fn loggable(text: &str) -> String {
    let mut out: String = text.chars().take(64).flat_map(char::escape_debug).collect();
    if text.chars().count() > 64 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_fields_cannot_forge_lines_or_flood() {
        assert_eq!(loggable("admin"), "admin");
        let forged = loggable("x\n2026-11-30T10:00:00Z INFO console sign-in user=admin");
        assert!(!forged.contains('\n') && forged.starts_with("x\\n"));
        assert_eq!(loggable(&"a".repeat(1_000_000)).chars().count(), 65);
        assert!(!loggable("\u{1b}[31mred\r").contains(['\u{1b}', '\r']));
    }
}
