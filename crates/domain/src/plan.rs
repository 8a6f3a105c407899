//! Free and Pro: what each plan allows.

use serde::{Deserialize, Serialize};

/// The licence the installation runs under (`plan = "free" | "pro"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Plan {
    /// Up to 3 webhooks, core events, no delivery log.
    #[default]
    Free,
    /// Unlimited webhooks, Pro events, delivery log and redelivery.
    Pro,
}

/// How many webhooks the Free plan allows.
pub const FREE_WEBHOOK_LIMIT: u64 = 3;

impl Plan {
    /// The most webhooks that may exist before creation is refused; `None` is unlimited.
    pub fn webhook_limit(self) -> Option<u64> {
        match self {
            Plan::Free => Some(FREE_WEBHOOK_LIMIT),
            Plan::Pro => None,
        }
    }

    /// Whether one more webhook may be created when `existing` already exist. Webhooks made on
    /// Pro keep working after a downgrade; only creation is blocked while over the cap.
    pub fn allows_another_webhook(self, existing: u64) -> bool {
        self.webhook_limit().is_none_or(|limit| existing < limit)
    }

    /// Whether the delivery log and redelivery are available.
    pub fn has_delivery_log(self) -> bool {
        self == Plan::Pro
    }

    /// The lowercase name used in config, API and console.
    pub fn as_str(self) -> &'static str {
        match self {
            Plan::Free => "free",
            Plan::Pro => "pro",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_caps_at_three_and_pro_is_unlimited() {
        assert!(Plan::Free.allows_another_webhook(2));
        assert!(!Plan::Free.allows_another_webhook(3));
        assert!(!Plan::Free.allows_another_webhook(7));
        assert!(Plan::Pro.allows_another_webhook(99));
        assert_eq!(Plan::Pro.webhook_limit(), None);
    }
}
