//! Secret rotation: for an overlap window after a new secret is set, the previous one keeps
//! signing beside it, so a receiver can switch keys without a failed delivery; then it is
//! destroyed. See docs/receivers.md ("Rotating the secret").

use std::time::Duration;

use crate::timestamp::Timestamp;

/// How long the previous secret keeps signing when no overlap is asked for.
pub const DEFAULT_OVERLAP: Duration = Duration::from_secs(24 * 3600);
/// The longest overlap: a leaked secret must not stay valid for weeks.
pub const MAX_OVERLAP: Duration = Duration::from_secs(7 * 24 * 3600);

/// Why a requested overlap was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OverlapError {
    /// Not a duration.
    #[error("must be a duration such as \"24h\", \"90m\" or \"7d\"")]
    Unreadable,
    /// Longer than [`MAX_OVERLAP`].
    #[error("must be at most 7 days (\"7d\")")]
    TooLong,
}

/// Reads a requested overlap ("24h", "90m", "7d"; "0s" ends it at once); `None` is the default.
pub fn parse_overlap(text: Option<&str>) -> Result<Duration, OverlapError> {
    let Some(text) = text else {
        return Ok(DEFAULT_OVERLAP);
    };
    let overlap = humantime::parse_duration(text.trim()).map_err(|_| OverlapError::Unreadable)?;
    if overlap > MAX_OVERLAP {
        return Err(OverlapError::TooLong);
    }
    Ok(overlap)
}

/// Whether a previous secret whose overlap ends at `ends_at` still signs at `now`.
pub fn previous_still_signs(ends_at: Option<Timestamp>, now: Timestamp) -> bool {
    ends_at.is_some_and(|end| now < end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlaps_default_to_a_day_and_stop_at_a_week() {
        assert_eq!(parse_overlap(None), Ok(DEFAULT_OVERLAP));
        assert_eq!(parse_overlap(Some("90m")), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_overlap(Some("7d")), Ok(MAX_OVERLAP));
        assert_eq!(parse_overlap(Some("0s")), Ok(Duration::ZERO));
        assert_eq!(parse_overlap(Some("8d")), Err(OverlapError::TooLong));
        assert_eq!(parse_overlap(Some("soon")), Err(OverlapError::Unreadable));
        assert_eq!(parse_overlap(Some("-1h")), Err(OverlapError::Unreadable));
    }

    #[test]
    fn the_previous_secret_signs_until_the_end_and_not_at_it() {
        let end = Timestamp::from_millis(10_000);
        assert!(previous_still_signs(
            Some(end),
            Timestamp::from_millis(9_999)
        ));
        assert!(!previous_still_signs(Some(end), end));
        assert!(!previous_still_signs(None, end));
    }
}
