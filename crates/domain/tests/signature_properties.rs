//! Property tests of the signature verifier: it never panics, accepts exactly the signature of
//! the bytes it is given, and refuses any change to body, secret or header.

use lwh_domain::signing::{learnomy_signature, verify_learnomy_signature};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn never_panics_on_any_header(secret in ".{0,64}", body in prop::collection::vec(any::<u8>(), 0..256), header in ".{0,80}") {
        let _ = verify_learnomy_signature(&secret, &body, &header);
    }

    #[test]
    fn accepts_its_own_signature_and_nothing_changed(
        secret in "[ -~]{16,64}",
        body in prop::collection::vec(any::<u8>(), 0..256),
        flip in any::<prop::sample::Index>(),
    ) {
        let signature = learnomy_signature(&secret, &body);
        prop_assert!(verify_learnomy_signature(&secret, &body, &signature));
        prop_assert!(verify_learnomy_signature(&secret, &body, &signature.to_uppercase()));
        if !body.is_empty() {
            let mut changed = body.clone();
            let i = flip.index(changed.len());
            changed[i] ^= 0x01;
            prop_assert!(!verify_learnomy_signature(&secret, &changed, &signature));
        }
        let other = format!("{secret}x");
        prop_assert!(!verify_learnomy_signature(&other, &body, &signature));
        let mut wrong = signature.clone().into_bytes();
        wrong[0] = if wrong[0] == b'0' { b'1' } else { b'0' };
        prop_assert!(!verify_learnomy_signature(&secret, &body, &String::from_utf8(wrong).unwrap()));
    }
}
