//! Ordered delivery per key (§15): a webhook with `ordering = "by_key"` receives the events
//! that carry the same `ordering_key` strictly in acceptance order — the next is not sent until
//! the previous is Delivered or Failed for good — while different keys flow in parallel.
//!
//! How it is kept: a keyed delivery whose key already has an unfinished delivery at that
//! webhook is stored *waiting* (not due), numbered after the last one of its key; when a
//! delivery of a key finishes, the same transaction makes the next one of its key due. Claims
//! and the hot path are unchanged, and no claim ever scans a key's backlog.

use crate::retry::NextStep;
use crate::validation::FieldError;

/// Longest `ordering_key`, in characters.
pub const MAX_ORDERING_KEY_CHARS: usize = 128;

/// A webhook's delivery order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum DeliveryOrder {
    /// No order is promised (the default): deliveries go out in parallel.
    #[default]
    Unordered,
    /// Events with the same `ordering_key` go out one at a time, in acceptance order.
    ByKey,
}

impl DeliveryOrder {
    /// Both, in the order the console offers them.
    pub const ALL: [DeliveryOrder; 2] = [DeliveryOrder::Unordered, DeliveryOrder::ByKey];

    /// Stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryOrder::Unordered => "none",
            DeliveryOrder::ByKey => "by_key",
        }
    }

    /// Parses a stored or wire name.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == text)
    }

    /// How the console names it.
    pub fn label(self) -> &'static str {
        match self {
            DeliveryOrder::Unordered => "No order (fastest)",
            DeliveryOrder::ByKey => "In order per ordering key",
        }
    }
}

/// Checks an event's `ordering_key`: 1 to 128 characters, none of them a control character.
pub fn check_ordering_key(field: &str, key: &str) -> Result<(), FieldError> {
    let chars = key.chars().count();
    if chars == 0 || chars > MAX_ORDERING_KEY_CHARS {
        return Err(FieldError::new(
            field,
            format!("must be 1 to {MAX_ORDERING_KEY_CHARS} characters, e.g. \"user:7\""),
        ));
    }
    if key.chars().any(char::is_control) {
        return Err(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// Where a new keyed delivery goes, given the highest number among its key's unfinished
/// deliveries at that webhook (`None`: the key is free).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPlace {
    /// The key is free: due at once (it may even be handed straight to a worker), number 1.
    Head,
    /// An earlier delivery of the key is unfinished: waits, with this number.
    Behind(i64),
}

impl KeyPlace {
    /// The place after the key's unfinished deliveries numbered up to `last`.
    pub fn after(last: Option<i64>) -> Self {
        match last {
            None => KeyPlace::Head,
            Some(n) => KeyPlace::Behind(n.saturating_add(1)),
        }
    }

    /// The number stored with the delivery.
    pub fn seq(self) -> i64 {
        match self {
            KeyPlace::Head => 1,
            KeyPlace::Behind(n) => n,
        }
    }

    /// Whether the delivery waits for an earlier one.
    pub fn waits(self) -> bool {
        matches!(self, KeyPlace::Behind(_))
    }
}

/// Whether an attempt's outcome ends its delivery, so the next one of its key may go.
pub fn releases_key(next: NextStep) -> bool {
    matches!(next, NextStep::Delivered | NextStep::GiveUp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Timestamp;

    #[test]
    fn names_round_trip_and_default_is_unordered() {
        for o in DeliveryOrder::ALL {
            assert_eq!(DeliveryOrder::parse(o.as_str()), Some(o));
        }
        assert_eq!(DeliveryOrder::default().as_str(), "none");
        assert_eq!(DeliveryOrder::parse("fifo"), None);
    }

    #[test]
    fn keys_are_one_to_128_characters_without_control_characters() {
        assert!(check_ordering_key("ordering_key", "user:7").is_ok());
        assert!(check_ordering_key("ordering_key", &"é".repeat(128)).is_ok());
        let long = check_ordering_key("events[2].ordering_key", &"k".repeat(129)).unwrap_err();
        assert_eq!(long.field, "events[2].ordering_key");
        assert!(check_ordering_key("ordering_key", "").is_err());
        assert!(check_ordering_key("ordering_key", "user\n7").is_err());
    }

    #[test]
    fn a_free_key_heads_its_line_and_a_busy_one_waits_behind_the_last() {
        assert_eq!(KeyPlace::after(None), KeyPlace::Head);
        assert!(!KeyPlace::Head.waits());
        assert_eq!(KeyPlace::after(Some(4)), KeyPlace::Behind(5));
        assert_eq!(KeyPlace::after(Some(4)).seq(), 5);
        assert!(KeyPlace::after(Some(1)).waits());
    }

    #[test]
    fn only_a_finished_delivery_releases_its_key() {
        assert!(releases_key(NextStep::Delivered));
        assert!(releases_key(NextStep::GiveUp));
        assert!(!releases_key(NextStep::RetryAt(Timestamp::from_millis(5))));
    }
}
