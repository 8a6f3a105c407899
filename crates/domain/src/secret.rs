//! Webhook secret keys: generated, validated, and kept out of logs.

use std::fmt;

use rand::distributions::Alphanumeric;
use rand::Rng;

/// Length of a generated secret (the seed's "random 32-character key").
pub const GENERATED_SECRET_LEN: usize = 32;
/// Shortest secret a client may supply.
pub const MIN_SECRET_LEN: usize = 16;
/// Longest secret a client may supply.
pub const MAX_SECRET_LEN: usize = 128;

/// The shared key a receiver uses to check our signatures.
///
/// `Debug` and `Display` are redacted so a secret cannot reach a log line by accident; the value
/// is only reachable through [`WebhookSecret::expose`], which is easy to grep for.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(String);

/// Why a client-supplied secret was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// Too short or too long.
    #[error("must be between {MIN_SECRET_LEN} and {MAX_SECRET_LEN} characters long")]
    Length,
    /// Contains a space, control or non-ASCII character.
    #[error("may contain only printable ASCII characters (no spaces)")]
    Charset,
}

impl WebhookSecret {
    /// A fresh 32-character `[A-Za-z0-9]` key from the operating system's CSPRNG.
    pub fn generate() -> Self {
        let key: String = rand::rngs::OsRng
            .sample_iter(&Alphanumeric)
            .take(GENERATED_SECRET_LEN)
            .map(char::from)
            .collect();
        Self(key)
    }

    /// Accepts a client-supplied secret of 16–128 printable ASCII characters.
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        if !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(SecretError::Charset);
        }
        if !(MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&text.len()) {
            return Err(SecretError::Length);
        }
        Ok(Self(text.to_owned()))
    }

    /// Rebuilds a secret that was decrypted from storage (already validated when saved).
    pub fn from_stored(text: String) -> Self {
        Self(text)
    }

    /// The key itself, for signing and for the one response that shows it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_32_alphanumerics_and_differ() {
        let a = WebhookSecret::generate();
        let b = WebhookSecret::generate();
        assert_eq!(a.expose().len(), 32);
        assert!(a.expose().bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }

    #[test]
    fn client_secrets_are_checked() {
        assert!(WebhookSecret::parse(&"a".repeat(16)).is_ok());
        assert!(WebhookSecret::parse(&"~".repeat(128)).is_ok());
        assert_eq!(
            WebhookSecret::parse(&"a".repeat(15)),
            Err(SecretError::Length)
        );
        assert_eq!(
            WebhookSecret::parse(&"a".repeat(129)),
            Err(SecretError::Length)
        );
        assert_eq!(
            WebhookSecret::parse("has a space in it!!"),
            Err(SecretError::Charset)
        );
        assert_eq!(
            WebhookSecret::parse("ünïcödé-sëcrët-kéy"),
            Err(SecretError::Charset)
        );
    }

    #[test]
    fn debug_output_never_shows_the_key() {
        let s = WebhookSecret::parse("supersecretvalue123").unwrap();
        assert!(!format!("{s:?}").contains("supersecret"));
    }
}
