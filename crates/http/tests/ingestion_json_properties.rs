//! Property tests of request-body decoding (run with the suite; raise the count with
//! `PROPTEST_CASES`): whatever bytes arrive, the answer is a 4xx problem naming what is wrong,
//! never a panic or a 5xx.

use lwh_http::json::decode;
use proptest::prelude::*;

/// The ingestion bodies, as the API decodes them: the handlers' own request types, so this test
/// follows them when they change.
type Event = lwh_http::api::EventRequest;
type Batch = lwh_http::api::BatchRequest;

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(|n| serde_json::json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| serde_json::json!(f)),
        ".{0,20}".prop_map(serde_json::Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    "event|data|idempotency_key|events".prop_map(String::from),
                    ".{0,8}"
                ],
                inner,
                0..6
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn assert_client_error<T: serde::de::DeserializeOwned>(bytes: &[u8]) {
    if let Err(e) = decode::<T>(bytes) {
        let p = e.problem();
        assert!(
            (400..500).contains(&p.status),
            "{} for {:?}",
            p.status,
            String::from_utf8_lossy(bytes)
        );
        assert!(!p.code.is_empty() && !p.detail.is_empty());
        if p.code == "validation_failed" {
            assert!(!p.errors.is_empty(), "validation problems name a field");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        assert_client_error::<Event>(&bytes);
        assert_client_error::<Batch>(&bytes);
    }

    #[test]
    fn arbitrary_json_gets_a_4xx_naming_the_field(value in json_value()) {
        let bytes = serde_json::to_vec(&value).unwrap();
        assert_client_error::<Event>(&bytes);
        assert_client_error::<Batch>(&bytes);
    }
}
