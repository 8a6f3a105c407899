//! Webhook statuses and the admin transitions between them.

use serde::{Deserialize, Serialize};

/// Where a webhook stands (DESIGN §4).
///
/// | status   | new events          | queued deliveries        |
/// |----------|---------------------|--------------------------|
/// | Active   | delivered           | sent as due              |
/// | Paused   | queued and held     | held until resumed       |
/// | Disabled | skipped             | cancelled                |
/// | Failed   | queued and held     | held until Active again  |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookStatus {
    /// Receiving deliveries.
    Active,
    /// Held by an admin; nothing is lost.
    Paused,
    /// Switched off by an admin; new events are skipped and queued ones cancelled.
    Disabled,
    /// Set automatically after persistent failure or a `410 Gone`; deliveries are held.
    Failed,
}

impl WebhookStatus {
    /// Every status, in the order the console lists them.
    pub const ALL: [WebhookStatus; 4] = [
        WebhookStatus::Active,
        WebhookStatus::Paused,
        WebhookStatus::Disabled,
        WebhookStatus::Failed,
    ];

    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookStatus::Active => "active",
            WebhookStatus::Paused => "paused",
            WebhookStatus::Disabled => "disabled",
            WebhookStatus::Failed => "failed",
        }
    }

    /// The name shown to people ("Active", …).
    pub fn label(self) -> &'static str {
        match self {
            WebhookStatus::Active => "Active",
            WebhookStatus::Paused => "Paused",
            WebhookStatus::Disabled => "Disabled",
            WebhookStatus::Failed => "Failed",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Whether a new event creates a delivery for a webhook in this status (everything but
    /// Disabled: Paused and Failed hold it).
    pub fn accepts_new_events(self) -> bool {
        self != WebhookStatus::Disabled
    }

    /// Whether deliveries are sent now rather than held.
    pub fn sends(self) -> bool {
        self == WebhookStatus::Active
    }

    /// Whether an admin may ask for `target` from here. `Failed` is never requested by an
    /// admin; it is entered automatically, and left by re-activation or a successful Test.
    pub fn admin_can_set(self, target: WebhookStatus) -> bool {
        target != WebhookStatus::Failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in WebhookStatus::ALL {
            assert_eq!(WebhookStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(WebhookStatus::parse("gone"), None);
    }

    #[test]
    fn only_disabled_skips_events_and_only_active_sends() {
        use WebhookStatus::*;
        assert!(Active.accepts_new_events() && Paused.accepts_new_events());
        assert!(Failed.accepts_new_events() && !Disabled.accepts_new_events());
        assert!(Active.sends() && !Paused.sends() && !Failed.sends() && !Disabled.sends());
    }

    #[test]
    fn admins_cannot_mark_a_webhook_failed() {
        for s in WebhookStatus::ALL {
            assert!(!s.admin_can_set(WebhookStatus::Failed));
            assert!(s.admin_can_set(WebhookStatus::Active));
        }
    }
}
