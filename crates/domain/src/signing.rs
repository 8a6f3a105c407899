//! Request signatures: the seed's `X-Learnomy-Signature` and the Standard Webhooks trio.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length; new_from_slice cannot fail for it.
    match HmacSha256::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC-SHA256 takes keys of any length"),
    }
}

/// `X-Learnomy-Signature`: lowercase hex of HMAC-SHA256(secret, raw body) — exactly what the seed
/// tells receivers to compute.
pub fn learnomy_signature(secret: &str, body: &[u8]) -> String {
    let mut m = mac(secret.as_bytes());
    m.update(body);
    hex::encode(m.finalize().into_bytes())
}

/// Checks an `X-Learnomy-Signature` value in constant time (case-insensitive hex, spaces trimmed).
pub fn verify_learnomy_signature(secret: &str, body: &[u8], header: &str) -> bool {
    let Ok(given) = hex::decode(header.trim()) else {
        return false;
    };
    let mut m = mac(secret.as_bytes());
    m.update(body);
    let expected = m.finalize().into_bytes();
    given.len() == expected.len() && bool::from(given.ct_eq(&expected))
}

/// Standard Webhooks `webhook-signature`: `v1,` + base64(HMAC-SHA256(secret bytes,
/// "{id}.{timestamp}.{body}")). Receivers configure their library with `whsec_` + base64(secret),
/// see [`standard_webhooks_secret`].
pub fn standard_webhooks_signature(
    secret: &str,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    standard_webhooks_signature_with_key(secret.as_bytes(), msg_id, timestamp, body)
}

fn standard_webhooks_signature_with_key(
    key: &[u8],
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    let mut m = mac(key);
    m.update(msg_id.as_bytes());
    m.update(b".");
    m.update(timestamp.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    format!("v1,{}", B64.encode(m.finalize().into_bytes()))
}

/// The secret in the form Standard Webhooks libraries expect: `whsec_` + base64(secret).
pub fn standard_webhooks_secret(secret: &str) -> String {
    format!("whsec_{}", B64.encode(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "k3F9mQ2xV7pL0sT4wZ8cR1bN6yH5dJ2a";
    const BODY: &str = r#"{"id":"evt_test","event":"course_completed","created_at":"2026-11-27T10:00:00Z","data":{"course_id":42,"user_id":7}}"#;

    #[test]
    fn design_test_vector_holds() {
        assert_eq!(
            learnomy_signature(SECRET, BODY.as_bytes()),
            "b321320ab5ce3fcaa179e4e3725039f221d3563c2ee0f1f1436dccb36abe4464"
        );
    }

    #[test]
    fn verification_accepts_only_the_right_signature() {
        let sig = learnomy_signature(SECRET, BODY.as_bytes());
        assert!(verify_learnomy_signature(SECRET, BODY.as_bytes(), &sig));
        assert!(verify_learnomy_signature(
            SECRET,
            BODY.as_bytes(),
            &sig.to_uppercase()
        ));
        assert!(!verify_learnomy_signature("other", BODY.as_bytes(), &sig));
        assert!(!verify_learnomy_signature(SECRET, b"{}", &sig));
        assert!(!verify_learnomy_signature(SECRET, BODY.as_bytes(), "zz"));
        assert!(!verify_learnomy_signature(
            SECRET,
            BODY.as_bytes(),
            &sig[..10]
        ));
    }

    #[test]
    fn standard_webhooks_signature_matches_its_spec_example() {
        // Example from the Standard Webhooks specification: secret
        // whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw, id msg_p5jXN8AQM9LWM0D4loKWxJek,
        // timestamp 1614265330, body {"test": 2432232314}.
        let key = B64.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            standard_webhooks_signature_with_key(
                &key,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                b"{\"test\": 2432232314}"
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn standard_webhooks_secret_is_base64_of_the_key() {
        assert_eq!(standard_webhooks_secret("abc"), "whsec_YWJj");
        let sig = standard_webhooks_signature(SECRET, "evt_1", 1_700_000_000, b"{}");
        assert!(sig.starts_with("v1,"));
    }
}
