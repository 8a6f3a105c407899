//! Webhook statuses and the admin transitions between them.

use serde::{Deserialize, Serialize};

/// Where a webhook stands (docs/concepts.md, "Webhook statuses").
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

    /// What entering this status does besides setting it (one decision for every backend and
    /// every path that changes a status: an admin's edit, automatic Failed, re-activation).
    pub fn effect_of_entering(self) -> StatusEffect {
        match self {
            WebhookStatus::Active => StatusEffect::Release,
            WebhookStatus::Paused | WebhookStatus::Failed => StatusEffect::Hold,
            WebhookStatus::Disabled => StatusEffect::CancelQueued(DISABLED_REASON),
        }
    }

    /// Whether an admin may ask for this status (from any other). `Failed` is never requested
    /// by an admin; it is entered automatically, and left by re-activation or a successful Test.
    pub fn admin_may_request(self) -> bool {
        self != WebhookStatus::Failed
    }
}

/// Why a Disabled webhook's queued deliveries ended Failed, as the Delivery Log shows it.
pub const DISABLED_REASON: &str = "webhook disabled";

/// What entering a status does to a webhook's queued deliveries and its failure record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusEffect {
    /// Queued deliveries stay as they are and are not claimed (Paused, Failed): the status
    /// alone holds them, so pausing a million queued deliveries writes one row. Attempts already
    /// in flight finish and are recorded.
    Hold,
    /// Queued deliveries end Failed with this reason (Disabled).
    CancelQueued(&'static str),
    /// The failure record (failing since, failed attempts, next probe, Failed reason) is
    /// cleared; held deliveries keep their due times and go out oldest first (Active).
    Release,
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
        assert!(!WebhookStatus::Failed.admin_may_request());
        for s in [
            WebhookStatus::Active,
            WebhookStatus::Paused,
            WebhookStatus::Disabled,
        ] {
            assert!(s.admin_may_request());
        }
    }

    #[test]
    fn entering_a_status_holds_cancels_or_releases() {
        use WebhookStatus::*;
        assert_eq!(Active.effect_of_entering(), StatusEffect::Release);
        assert_eq!(Paused.effect_of_entering(), StatusEffect::Hold);
        assert_eq!(Failed.effect_of_entering(), StatusEffect::Hold);
        assert_eq!(
            Disabled.effect_of_entering(),
            StatusEffect::CancelQueued("webhook disabled")
        );
    }
}
