//! The request headers of a delivery attempt, as the Delivery Log shows them. Most derive from
//! the delivery (its id, event, webhook, the content type, our user agent); only the signatures
//! and the timestamp vary per attempt, so only those are stored — keeping every header block
//! whole made each attempt row several times larger and cost ~15 % CPU per delivery
//! (docs/performance.md).

use crate::ids::{DeliveryId, EventId, WebhookId};

/// `User-Agent` of every request.
pub const USER_AGENT: &str = concat!("Learnomy-Webhooks/", env!("CARGO_PKG_VERSION"));

/// The headers whose values vary per attempt, in the order they are sent; stored per attempt.
pub const VARYING: [&str; 4] = [
    "x-learnomy-signature",
    "x-learnomy-signature-next",
    "webhook-signature",
    "webhook-timestamp",
];

/// What the fixed headers derive from.
#[derive(Debug, Clone, Copy)]
pub struct DeliveryFacts<'a> {
    /// `X-Learnomy-Delivery`.
    pub delivery_id: DeliveryId,
    /// `X-Learnomy-Webhook`.
    pub webhook_id: WebhookId,
    /// `webhook-id`.
    pub event_id: EventId,
    /// `X-Learnomy-Event`.
    pub event: &'a str,
}

/// The whole request header block of an attempt, one `name: value` per line in the order they
/// were sent, from the `varying` lines stored for it and the delivery's facts.
pub fn full_request_headers(varying: &str, facts: DeliveryFacts<'_>) -> String {
    let stored = |name: &str| {
        varying.lines().find_map(|line| {
            line.split_once(": ")
                .filter(|(n, _)| *n == name)
                .map(|(_, v)| v.to_owned())
        })
    };
    let mut lines: Vec<(&str, Option<String>)> = vec![
        ("x-learnomy-signature", stored("x-learnomy-signature")),
        (
            "x-learnomy-signature-next",
            stored("x-learnomy-signature-next"),
        ),
        ("x-learnomy-event", Some(facts.event.to_owned())),
        ("x-learnomy-delivery", Some(facts.delivery_id.to_string())),
        ("x-learnomy-webhook", Some(facts.webhook_id.to_string())),
        ("webhook-signature", stored("webhook-signature")),
        ("webhook-id", Some(facts.event_id.to_string())),
        ("webhook-timestamp", stored("webhook-timestamp")),
        ("content-type", Some("application/json".to_owned())),
        ("user-agent", Some(USER_AGENT.to_owned())),
        ("accept", Some("*/*".to_owned())),
    ];
    lines.retain(|(_, value)| value.is_some());
    lines
        .into_iter()
        .filter_map(|(name, value)| value.map(|v| format!("{name}: {v}")))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stored_lines_and_the_facts_make_the_whole_block_in_order() {
        let facts = DeliveryFacts {
            delivery_id: DeliveryId::generate(),
            webhook_id: WebhookId::generate(),
            event_id: EventId::generate(),
            event: "course_completed",
        };
        let text = full_request_headers(
            "x-learnomy-signature: abc\nwebhook-signature: v1,xyz\nwebhook-timestamp: 1700000000",
            facts,
        );
        let names: Vec<&str> = text
            .lines()
            .filter_map(|l| l.split_once(": ").map(|(n, _)| n))
            .collect();
        assert_eq!(
            names,
            [
                "x-learnomy-signature",
                "x-learnomy-event",
                "x-learnomy-delivery",
                "x-learnomy-webhook",
                "webhook-signature",
                "webhook-id",
                "webhook-timestamp",
                "content-type",
                "user-agent",
                "accept"
            ]
        );
        assert!(text.contains("x-learnomy-event: course_completed"));
        assert!(text.contains(&format!("webhook-id: {}", facts.event_id)));
        assert!(text.contains("webhook-timestamp: 1700000000"));
    }
}
