//! Encryption of webhook secrets at rest.
//!
//! Secrets must be recoverable (we sign with them), so they are encrypted, not hashed:
//! XChaCha20-Poly1305 with a random 192-bit nonce per value, and the webhook id as associated
//! data so a ciphertext copied onto another row fails to decrypt. The 32-byte master key comes
//! from `LEARNOMY_WEBHOOKS_MASTER_KEY` or `data/master.key` (see the app crate).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;

use crate::secret::WebhookSecret;

const NONCE_LEN: usize = 24;

/// Why a master key or ciphertext could not be used.
#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    /// The configured key is not 32 bytes of base64 or hex.
    #[error("the master key must be 32 bytes, written as 64 hex digits or base64")]
    BadKey,
    /// The ciphertext was tampered with, moved to another row, or made with another key.
    #[error("a stored secret could not be decrypted (wrong master key or corrupted row)")]
    Decrypt,
}

/// The key that encrypts every webhook secret. `Debug` is redacted.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

impl MasterKey {
    /// A new random key.
    pub fn generate() -> Self {
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        Self(key)
    }

    /// Reads a key written as 64 hex digits or as base64 of 32 bytes (surrounding space ignored).
    pub fn parse(text: &str) -> Result<Self, MasterKeyError> {
        let text = text.trim();
        let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(text).map_err(|_| MasterKeyError::BadKey)?
        } else {
            B64.decode(text).map_err(|_| MasterKeyError::BadKey)?
        };
        let key: [u8; 32] = bytes.try_into().map_err(|_| MasterKeyError::BadKey)?;
        Ok(Self(key))
    }

    /// A value that identifies this key without revealing it (HMAC-SHA256 of a fixed label,
    /// 32 hex digits): stored in the database, so a process started with another key can tell
    /// before it fails to decrypt every secret.
    pub fn check_value(&self) -> String {
        use hmac::{Hmac, Mac};
        let mut mac = match <Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.0) {
            Ok(mac) => mac,
            Err(_) => return String::new(), // HMAC takes keys of any length
        };
        mac.update(b"learnomy-webhooks master key check v1");
        hex::encode(&mac.finalize().into_bytes()[..16])
    }

    /// The key as 64 hex digits, the form written to `master.key`.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Encrypts `secret`, bound to `row_id` (the webhook id). Output: nonce ‖ ciphertext ‖ tag.
    pub fn seal(&self, secret: &WebhookSecret, row_id: &str) -> Vec<u8> {
        self.seal_text(secret.expose(), row_id)
    }

    /// Decrypts what [`MasterKey::seal`] produced for the same `row_id`.
    pub fn open(&self, sealed: &[u8], row_id: &str) -> Result<WebhookSecret, MasterKeyError> {
        self.open_text(sealed, row_id)
            .map(WebhookSecret::from_stored)
    }

    /// Encrypts any confidential text (a webhook's custom headers), bound to `aad`.
    pub fn seal_text(&self, text: &str, aad: &str) -> Vec<u8> {
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: text.as_bytes(),
                    aad: aad.as_bytes(),
                },
            )
            // Encryption only fails for messages beyond 256 GiB; ours are a few KiB at most.
            .unwrap_or_default();
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Decrypts what [`MasterKey::seal_text`] produced for the same `aad`.
    pub fn open_text(&self, sealed: &[u8], aad: &str) -> Result<String, MasterKeyError> {
        if sealed.len() < NONCE_LEN {
            return Err(MasterKeyError::Decrypt);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        let plain = cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| MasterKeyError::Decrypt)?;
        String::from_utf8(plain).map_err(|_| MasterKeyError::Decrypt)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_check_value_identifies_a_key_without_revealing_it() {
        let a = MasterKey::generate();
        let b = MasterKey::generate();
        assert_eq!(a.check_value(), a.check_value());
        assert_ne!(a.check_value(), b.check_value());
        assert_eq!(a.check_value().len(), 32);
        assert!(!a.to_hex().contains(&a.check_value()));
    }

    use super::*;

    #[test]
    fn seals_and_opens_bound_to_the_row() {
        let key = MasterKey::generate();
        let secret = WebhookSecret::generate();
        let sealed = key.seal(&secret, "wh_A");
        assert!(!sealed
            .windows(secret.expose().len())
            .any(|w| w == secret.expose().as_bytes()));
        assert_eq!(key.open(&sealed, "wh_A").unwrap(), secret);
        assert!(key.open(&sealed, "wh_B").is_err());
        assert!(MasterKey::generate().open(&sealed, "wh_A").is_err());
        assert!(key.open(&sealed[..10], "wh_A").is_err());
    }

    #[test]
    fn nonces_differ_per_seal() {
        let key = MasterKey::generate();
        let secret = WebhookSecret::generate();
        assert_ne!(key.seal(&secret, "x"), key.seal(&secret, "x"));
    }

    #[test]
    fn parses_hex_and_base64() {
        let key = MasterKey::generate();
        let hex_form = key.to_hex();
        let b64_form = B64.encode(hex::decode(&hex_form).unwrap());
        assert_eq!(MasterKey::parse(&hex_form).unwrap().to_hex(), hex_form);
        assert_eq!(
            MasterKey::parse(&format!(" {b64_form}\n"))
                .unwrap()
                .to_hex(),
            hex_form
        );
        assert!(MasterKey::parse("short").is_err());
        assert!(format!("{key:?}").contains("redacted"));
    }
}
