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
}
