//! Prefixed, time-sortable identifiers (`wh_01J…`).
//!
//! A prefix tells a reader what an id points at in logs and support tickets; the ULID body sorts
//! by creation time, which is what the delivery log's "newest first" and cursor pagination rely on.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a string is not an id of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected an id of the form {prefix}_ followed by 26 ULID characters")]
pub struct IdParseError {
    /// The prefix that was expected (`wh`, `evt`, …).
    pub prefix: &'static str,
}

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(ulid::Ulid);

        impl $name {
            /// The prefix before the underscore.
            pub const PREFIX: &'static str = $prefix;

            /// A fresh id for something created now.
            pub fn generate() -> Self {
                Self(ulid::Ulid::new())
            }

            /// The smallest id created at or after `millis` (for time-range queries on ids).
            pub fn lower_bound_at(millis: i64) -> Self {
                Self(ulid::Ulid::from_parts(millis.max(0) as u64, 0))
            }

            /// Milliseconds since the epoch when the id was generated.
            pub fn created_millis(&self) -> i64 {
                self.0.timestamp_ms() as i64
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}_{}", $prefix, self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }

        impl FromStr for $name {
            type Err = IdParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let body = s
                    .strip_prefix(concat!($prefix, "_"))
                    .filter(|b| b.len() == 26)
                    .ok_or(IdParseError { prefix: $prefix })?;
                ulid::Ulid::from_string(body)
                    .map(Self)
                    .map_err(|_| IdParseError { prefix: $prefix })
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

prefixed_id!(
    /// Identifies a webhook (`wh_…`).
    WebhookId, "wh"
);
prefixed_id!(
    /// Identifies an accepted event (`evt_…`); also the Standard Webhooks `webhook-id`.
    EventId, "evt"
);
prefixed_id!(
    /// Identifies one delivery of one event to one webhook (`dlv_…`), stable across retries.
    DeliveryId, "dlv"
);
prefixed_id!(
    /// Identifies an API token (`tok_…`); the token itself is never stored.
    TokenId, "tok"
);
prefixed_id!(
    /// Identifies a console user (`usr_…`).
    UserId, "usr"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_its_text_form() {
        let id = WebhookId::generate();
        let text = id.to_string();
        assert!(text.starts_with("wh_"));
        assert_eq!(text.len(), 3 + 26);
        assert_eq!(text.parse::<WebhookId>().unwrap(), id);
    }

    #[test]
    fn rejects_other_prefixes_and_garbage() {
        let evt = EventId::generate().to_string();
        assert!(evt.parse::<WebhookId>().is_err());
        assert!("wh_".parse::<WebhookId>().is_err());
        assert!("wh_not-a-ulid-at-all-000000".parse::<WebhookId>().is_err());
        assert!("".parse::<DeliveryId>().is_err());
    }

    #[test]
    fn sorts_by_creation_time() {
        let early = DeliveryId::lower_bound_at(1_000);
        let late = DeliveryId::lower_bound_at(2_000);
        assert!(early < late);
        assert!(early.to_string() < late.to_string());
        assert_eq!(late.created_millis(), 2_000);
    }
}
