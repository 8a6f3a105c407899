//! The JSON body POSTed to receivers.
//!
//! It is serialised once, when the event is accepted, and those exact bytes are stored and sent
//! on every attempt, so a receiver's signature check and deduplication never see two versions.

use serde::Serialize;

use crate::ids::EventId;
use crate::timestamp::Timestamp;

#[derive(Serialize)]
struct Body<'a> {
    id: EventId,
    event: &'a str,
    created_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    site_url: Option<&'a str>,
    data: &'a serde_json::Value,
}

/// Compact JSON `{"id","event","created_at","site_url"?,"data"}` in that field order.
pub fn render(
    id: EventId,
    event: &str,
    created_at: Timestamp,
    site_url: Option<&str>,
    data: &serde_json::Value,
) -> Vec<u8> {
    let body = Body {
        id,
        event,
        created_at,
        site_url: site_url.filter(|s| !s.is_empty()),
        data,
    };
    // Serialising these types to a Vec cannot fail (string keys, no custom errors).
    serde_json::to_vec(&body).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_compact_json_in_contract_order() {
        let id: EventId = "evt_01JDQ0000000000000000000AB".parse().unwrap();
        let at = Timestamp::parse_rfc3339("2026-11-27T10:00:00.123Z").unwrap();
        let data = serde_json::json!({"enrollment_id": 9, "user_id": 7, "course_id": 42});
        let body = render(
            id,
            "course_completed",
            at,
            Some("https://academy.example"),
            &data,
        );
        assert_eq!(
            String::from_utf8(body).unwrap(),
            r#"{"id":"evt_01JDQ0000000000000000000AB","event":"course_completed","created_at":"2026-11-27T10:00:00.123Z","site_url":"https://academy.example","data":{"enrollment_id":9,"user_id":7,"course_id":42}}"#
        );
        let without = render(id, "ping", at, Some(""), &serde_json::json!({}));
        assert!(!String::from_utf8(without).unwrap().contains("site_url"));
    }
}
