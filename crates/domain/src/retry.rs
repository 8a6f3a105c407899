//! When the next attempt happens: the schedule, its jitter, and `Retry-After`.

use std::time::Duration;

/// The retry schedule: `delays[n-1]` is the wait after failed attempt `n`; a delivery gets
/// `1 + delays.len()` attempts (8 with the default schedule, about 21 h in all).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    delays: Vec<Duration>,
}

/// Jitter applied to each delay: ±15 %.
pub const JITTER: f64 = 0.15;

impl RetryPolicy {
    /// A policy from the configured delays.
    pub fn new(delays: Vec<Duration>) -> Self {
        Self { delays }
    }

    /// How many attempts a delivery gets.
    pub fn max_attempts(&self) -> u32 {
        self.delays.len() as u32 + 1
    }

    /// The wait after failed attempt `attempt` (1-based) of a series, or `None` when that was
    /// the last attempt. `unit` in [0, 1) picks the jitter (random in production, fixed in
    /// tests). `Retry-After` can lengthen the wait — never beyond the delay of the following
    /// step (or this one's, at the end of the schedule) — but never shorten it.
    pub fn delay_after(
        &self,
        attempt: u32,
        unit: f64,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        if attempt == 0 || attempt >= self.max_attempts() {
            return None;
        }
        let index = attempt as usize - 1;
        let base = self.delays[index];
        let factor = 1.0 - JITTER + 2.0 * JITTER * unit.clamp(0.0, 1.0);
        let jittered = base.mul_f64(factor);
        let cap = self
            .delays
            .get(index + 1)
            .copied()
            .unwrap_or(base)
            .max(base);
        Some(match retry_after {
            Some(asked) => jittered.max(asked.min(cap)),
            None => jittered,
        })
    }
}

/// What happens to a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    /// A 2xx: Delivered.
    Delivered,
    /// Retry at this time (held while the webhook is not Active).
    RetryAt(crate::Timestamp),
    /// No attempt left: Failed.
    GiveUp,
}

impl NextStep {
    /// The decision after attempt number `attempt_in_series` (1-based, counted from the start
    /// of the current series: a redelivery starts a new one) ended with `outcome` at `now`:
    /// a 2xx is Delivered; a template that failed gives up at once; otherwise the schedule's next delay (with the jitter `unit` picks in
    /// [0, 1) and the answer's `Retry-After`), or give up when the schedule is used up.
    pub fn after(
        outcome: &crate::AttemptOutcome,
        policy: &RetryPolicy,
        attempt_in_series: u32,
        unit: f64,
        now: crate::Timestamp,
    ) -> Self {
        if outcome.delivered() {
            return NextStep::Delivered;
        }
        if outcome.error_kind == Some(crate::ErrorKind::Template) {
            // Rendering is deterministic: another attempt would fail the same way.
            return NextStep::GiveUp;
        }
        let retry_after = outcome.retry_after_secs.map(Duration::from_secs);
        match policy.delay_after(attempt_in_series, unit, retry_after) {
            Some(delay) => NextStep::RetryAt(now.plus_millis(delay.as_millis() as i64)),
            None => NextStep::GiveUp,
        }
    }

    /// The decision after a ping (Test button, Failed probe): it is never retried — the
    /// admin or the next probe tries again.
    pub fn after_ping(outcome: &crate::AttemptOutcome) -> Self {
        if outcome.delivered() {
            NextStep::Delivered
        } else {
            NextStep::GiveUp
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_policy() -> RetryPolicy {
        RetryPolicy::new(
            [5, 60, 300, 1800, 7200, 21600, 43200]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
        )
    }

    #[test]
    fn eight_attempts_then_stop() {
        let p = default_policy();
        assert_eq!(p.max_attempts(), 8);
        assert_eq!(p.delay_after(1, 0.5, None), Some(Duration::from_secs(5)));
        assert_eq!(
            p.delay_after(7, 0.5, None),
            Some(Duration::from_secs(43200))
        );
        assert_eq!(p.delay_after(8, 0.5, None), None);
        assert_eq!(p.delay_after(0, 0.5, None), None);
        let total: u64 = (1..8)
            .map(|a| p.delay_after(a, 0.5, None).unwrap().as_secs())
            .sum();
        assert!((20 * 3600..22 * 3600).contains(&total), "{total}");
    }

    #[test]
    fn jitter_stays_within_fifteen_percent() {
        let p = default_policy();
        assert_eq!(p.delay_after(2, 0.0, None), Some(Duration::from_secs(51)));
        assert_eq!(p.delay_after(2, 1.0, None), Some(Duration::from_secs(69)));
        for u in [0.0, 0.1, 0.37, 0.5, 0.99] {
            let d = p.delay_after(3, u, None).unwrap().as_secs_f64();
            assert!((255.0..=345.0).contains(&d), "{d}");
        }
    }

    #[test]
    fn retry_after_lengthens_up_to_the_next_step_only() {
        let p = default_policy();
        // Asked for 30 s after attempt 1 (schedule 5 s, next step 1 min): honoured.
        assert_eq!(
            p.delay_after(1, 0.5, Some(Duration::from_secs(30))),
            Some(Duration::from_secs(30))
        );
        // Asked for 999999999 s: capped at the next step's delay.
        assert_eq!(
            p.delay_after(1, 0.5, Some(Duration::from_secs(999_999_999))),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            p.delay_after(7, 0.5, Some(Duration::from_secs(999_999_999))),
            Some(Duration::from_secs(43200))
        );
        // Asked for less than the schedule: the schedule wins.
        assert_eq!(
            p.delay_after(2, 0.5, Some(Duration::from_secs(1))),
            Some(Duration::from_secs(60))
        );
    }

    fn answered(code: u16, retry_after_secs: Option<u64>) -> crate::AttemptOutcome {
        crate::AttemptOutcome {
            status_code: Some(code),
            error_kind: (!(200..300).contains(&code)).then_some(crate::ErrorKind::HttpStatus),
            error: None,
            response_excerpt: None,
            retry_after_secs,
            duration_ms: 3,
            request_headers: None,
            response_headers: None,
        }
    }

    #[test]
    fn the_next_step_follows_the_outcome_and_the_schedule() {
        let policy = RetryPolicy::new(vec![Duration::from_secs(5), Duration::from_secs(60)]);
        let now = crate::Timestamp::from_millis(1_000_000);
        assert_eq!(
            NextStep::after(&answered(204, None), &policy, 1, 0.5, now),
            NextStep::Delivered
        );
        // The middle of the jitter range is the delay itself.
        assert_eq!(
            NextStep::after(&answered(500, None), &policy, 1, 0.5, now),
            NextStep::RetryAt(now.plus_millis(5_000))
        );
        // Retry-After on a 503 lengthens the wait, up to the next step's delay.
        assert_eq!(
            NextStep::after(&answered(503, Some(30)), &policy, 1, 0.5, now),
            NextStep::RetryAt(now.plus_millis(30_000))
        );
        assert_eq!(
            NextStep::after(&answered(500, None), &policy, 2, 0.5, now),
            NextStep::RetryAt(now.plus_millis(60_000))
        );
        // Three attempts for two delays: the third failure gives up.
        assert_eq!(
            NextStep::after(&answered(500, None), &policy, 3, 0.5, now),
            NextStep::GiveUp
        );
    }

    #[test]
    fn a_ping_is_never_retried() {
        assert_eq!(
            NextStep::after_ping(&answered(200, None)),
            NextStep::Delivered
        );
        assert_eq!(NextStep::after_ping(&answered(500, None)), NextStep::GiveUp);
    }
}
