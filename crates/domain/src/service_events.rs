//! Service events: what the service itself reports about webhooks — one became Failed, one
//! recovered, a delivery used its last attempt — delivered like any event to the webhooks
//! subscribed to them (the catalogue's "Service" group), so a broken endpoint is noticed when
//! it breaks, not days later.
//!
//! Two rules keep them from feeding on themselves: a webhook is never sent a service event
//! about itself, and a service event that exhausts its own retries reports nothing (two dead
//! receivers subscribed to each other's failures would otherwise tell each other forever).

use serde_json::{json, Value};

use crate::catalogue::PING_EVENT;
use crate::ids::{DeliveryId, EventId, WebhookId};
use crate::timestamp::Timestamp;

/// A webhook became Failed.
pub const WEBHOOK_FAILED: &str = "webhook_failed";
/// A Failed webhook is Active again.
pub const WEBHOOK_RECOVERED: &str = "webhook_recovered";
/// A delivery used its last attempt and ended Failed.
pub const DELIVERY_EXHAUSTED: &str = "delivery_exhausted";

/// Every service event, in catalogue order.
pub const SERVICE_EVENTS: [&str; 3] = [WEBHOOK_FAILED, WEBHOOK_RECOVERED, DELIVERY_EXHAUSTED];

/// Whether `slug` is sent by the service itself (an LMS may not send it).
pub fn is_service_event(slug: &str) -> bool {
    SERVICE_EVENTS.contains(&slug)
}

/// Whether a delivery of `event` that used its last attempt is reported with
/// [`DELIVERY_EXHAUSTED`]: not for service events themselves, nor for pings (the Test button
/// shows its own result; a probe's failure is what Failed already says).
pub fn reports_exhaustion(event: &str) -> bool {
    !is_service_event(event) && event != PING_EVENT
}

/// How a Failed webhook became Active again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// The periodic probe got a 2xx.
    Probe,
    /// An admin's Test got a 2xx.
    Test,
    /// An admin re-activated it.
    Admin,
}

impl Recovery {
    /// The `how` of [`WEBHOOK_RECOVERED`].
    pub fn as_str(self) -> &'static str {
        match self {
            Recovery::Probe => "probe",
            Recovery::Test => "test",
            Recovery::Admin => "admin",
        }
    }
}

/// The data of [`WEBHOOK_FAILED`]: which webhook, why, and failing since when.
pub fn failed_data(
    webhook: WebhookId,
    url: &str,
    reason: Option<&str>,
    since: Option<Timestamp>,
) -> Value {
    json!({
        "webhook_id": webhook.to_string(),
        "url": url,
        "reason": reason,
        "since": since.map(Timestamp::to_rfc3339),
    })
}

/// The data of [`WEBHOOK_RECOVERED`].
pub fn recovered_data(webhook: WebhookId, url: &str, how: Recovery) -> Value {
    json!({
        "webhook_id": webhook.to_string(),
        "url": url,
        "how": how.as_str(),
    })
}

/// A delivery that used its last attempt, as [`DELIVERY_EXHAUSTED`] reports it.
#[derive(Debug, Clone)]
pub struct Exhausted<'a> {
    /// The webhook it was for.
    pub webhook: WebhookId,
    /// That webhook's URL.
    pub url: &'a str,
    /// The delivery (its Delivery Log entry).
    pub delivery: DeliveryId,
    /// The event it carried.
    pub event_id: EventId,
    /// That event's slug.
    pub event: &'a str,
    /// Attempts made.
    pub attempts: i64,
    /// The last attempt's status code, if an answer came.
    pub last_status_code: Option<i64>,
    /// The last attempt's error.
    pub last_error: Option<&'a str>,
}

/// The data of [`DELIVERY_EXHAUSTED`].
pub fn exhausted_data(e: &Exhausted<'_>) -> Value {
    json!({
        "webhook_id": e.webhook.to_string(),
        "url": e.url,
        "delivery_id": e.delivery.to_string(),
        "event_id": e.event_id.to_string(),
        "event": e.event,
        "attempts": e.attempts,
        "last_status_code": e.last_status_code,
        "last_error": e.last_error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::Catalogue;
    use crate::plan::Plan;

    #[test]
    fn service_events_are_in_the_catalogue_on_both_plans_in_their_own_group() {
        for plan in [Plan::Free, Plan::Pro] {
            let catalogue = Catalogue::for_plan(plan, &[]).unwrap();
            for slug in SERVICE_EVENTS {
                let entry = catalogue.get(slug).unwrap_or_else(|| panic!("{slug}"));
                assert_eq!(entry.group, "Service");
                assert!(entry.service && !entry.pro, "{slug}");
            }
        }
        let flagged: Vec<String> = Catalogue::builtin_entries()
            .unwrap()
            .into_iter()
            .filter(|e| e.service)
            .map(|e| e.slug)
            .collect();
        assert_eq!(flagged, SERVICE_EVENTS);
    }

    #[test]
    fn the_catalogue_examples_have_the_fields_the_service_sends() {
        let id = WebhookId::generate();
        let sent = [
            (WEBHOOK_FAILED, failed_data(id, "u", Some("r"), None)),
            (WEBHOOK_RECOVERED, recovered_data(id, "u", Recovery::Probe)),
            (
                DELIVERY_EXHAUSTED,
                exhausted_data(&Exhausted {
                    webhook: id,
                    url: "u",
                    delivery: DeliveryId::generate(),
                    event_id: EventId::generate(),
                    event: "quiz_passed",
                    attempts: 8,
                    last_status_code: Some(500),
                    last_error: None,
                }),
            ),
        ];
        let catalogue = Catalogue::for_plan(Plan::Free, &[]).unwrap();
        for (slug, data) in sent {
            let keys = |v: &Value| {
                let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
                k.sort();
                k
            };
            let example = &catalogue.get(slug).unwrap().example;
            assert_eq!(keys(example), keys(&data), "{slug}");
        }
    }

    #[test]
    fn exhaustion_is_reported_for_lms_events_only() {
        assert!(reports_exhaustion("course_completed"));
        assert!(!reports_exhaustion(DELIVERY_EXHAUSTED));
        assert!(!reports_exhaustion(WEBHOOK_FAILED));
        assert!(!reports_exhaustion(PING_EVENT));
    }
}
