//! Points in time as milliseconds since the Unix epoch.
//!
//! Both databases store times as a plain 64-bit integer (no time-zone or precision surprises,
//! cheap to index); the API renders them as RFC 3339 UTC with milliseconds.

use std::fmt;

use serde::{Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A UTC instant with millisecond precision.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The current wall-clock time.
    pub fn now() -> Self {
        let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
        Self((nanos / 1_000_000) as i64)
    }

    /// Wraps a stored millisecond value.
    pub const fn from_millis(millis: i64) -> Self {
        Self(millis)
    }

    /// The stored millisecond value.
    pub const fn millis(self) -> i64 {
        self.0
    }

    /// Whole seconds since the epoch (the Standard Webhooks `webhook-timestamp`).
    pub const fn unix_seconds(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// This instant moved by a (possibly negative) number of milliseconds.
    pub const fn plus_millis(self, delta: i64) -> Self {
        Self(self.0.saturating_add(delta))
    }

    /// Parses an RFC 3339 date-time (any offset) into a UTC instant.
    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        let parsed = OffsetDateTime::parse(text, &Rfc3339).ok()?;
        Some(Self((parsed.unix_timestamp_nanos() / 1_000_000) as i64))
    }

    /// RFC 3339 in UTC with exactly three fractional digits, e.g. `2026-11-27T10:00:00.123Z`.
    pub fn to_rfc3339(self) -> String {
        let nanos = i128::from(self.0) * 1_000_000;
        match OffsetDateTime::from_unix_timestamp_nanos(nanos) {
            Ok(t) => format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second(),
                t.millisecond()
            ),
            Err(_) => "1970-01-01T00:00:00.000Z".to_owned(),
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_milliseconds_in_utc() {
        let t = Timestamp::parse_rfc3339("2026-11-27T10:00:00.123Z").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-27T10:00:00.123Z");
        let offset = Timestamp::parse_rfc3339("2026-11-27T11:00:00+01:00").unwrap();
        assert_eq!(offset.to_rfc3339(), "2026-11-27T10:00:00.000Z");
    }

    #[test]
    fn rejects_non_rfc3339() {
        assert!(Timestamp::parse_rfc3339("yesterday").is_none());
        assert!(Timestamp::parse_rfc3339("2026-11-27").is_none());
    }

    #[test]
    fn seconds_round_down() {
        assert_eq!(Timestamp::from_millis(1_999).unix_seconds(), 1);
    }
}
