//! When a webhook becomes Failed on its own (docs/concepts.md, "Webhook statuses").

/// Fewest failed attempts before persistent failure can mark a webhook Failed.
pub const MIN_FAILURES_BEFORE_FAILED: i64 = 5;

/// What the failure record of a webhook looks like after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureRecord {
    /// First failed attempt since the last success (ms).
    pub failing_since: i64,
    /// Failed attempts since the last success.
    pub failures: i64,
}

/// Why a webhook should become Failed now, or `None`. A `410 Gone` answer does it at once;
/// otherwise only failure without a single success for `failed_after_ms` with at least
/// [`MIN_FAILURES_BEFORE_FAILED`] failed attempts.
pub fn failure_reason(
    record: FailureRecord,
    now_ms: i64,
    failed_after_ms: i64,
    gone: bool,
) -> Option<String> {
    if gone {
        return Some("the endpoint answered 410 Gone".to_owned());
    }
    let failing_for = now_ms - record.failing_since;
    if record.failures >= MIN_FAILURES_BEFORE_FAILED && failing_for >= failed_after_ms {
        return Some(format!(
            "{} failed attempts and no success for {}",
            record.failures,
            human_span(failing_for)
        ));
    }
    None
}

fn human_span(ms: i64) -> String {
    let secs = ms / 1000;
    if secs >= 3600 {
        format!("{} h", secs / 3600)
    } else if secs >= 60 {
        format!("{} min", secs / 60)
    } else {
        format!("{secs} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 24 * 3600 * 1000;

    #[test]
    fn fails_after_the_window_with_enough_failures() {
        let r = FailureRecord {
            failing_since: 0,
            failures: 5,
        };
        assert!(failure_reason(r, DAY - 1, DAY, false).is_none());
        let why = failure_reason(r, DAY, DAY, false).unwrap();
        assert!(
            why.contains("5 failed attempts") && why.contains("24 h"),
            "{why}"
        );
    }

    #[test]
    fn a_long_window_with_few_failures_is_not_enough() {
        let r = FailureRecord {
            failing_since: 0,
            failures: 4,
        };
        assert!(failure_reason(r, 10 * DAY, DAY, false).is_none());
    }

    #[test]
    fn gone_fails_at_once() {
        let r = FailureRecord {
            failing_since: 0,
            failures: 1,
        };
        assert!(failure_reason(r, 1, DAY, true).unwrap().contains("410"));
    }
}
