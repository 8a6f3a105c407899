//! Throttle: a webhook's `max_per_second`, kept by spacing its attempts evenly.
//!
//! Every delivering process paces a throttled webhook from one clock stored on the webhook
//! row (`next_send_us`, microseconds): a claim takes only the deliveries whose turn comes
//! within a short horizon, gives each its send time — one every 1/rate seconds from the later
//! of now and the clock — and moves the clock past the last one it took, in the same
//! transaction. There is no burst allowance: an idle webhook starts again at now, so no window
//! of a second ever holds more than the limit. Deliveries beyond it wait in the queue; nothing
//! is dropped.

use std::num::NonZeroU32;
use std::time::Duration;

use crate::timestamp::Timestamp;

/// The highest limit that may be set (one attempt every 100 µs); above it a throttle would
/// not be a throttle.
pub const MAX_PER_SECOND: u32 = 10_000;

/// How far ahead a claim gives out send times. Short, so that processes sharing a database
/// take turns; long enough that a claim covers many deliveries at high rates.
pub const HORIZON: Duration = Duration::from_secs(1);

/// Why a requested limit was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ThrottleError {
    /// Zero, negative or above [`MAX_PER_SECOND`].
    #[error("must be a whole number from 1 to 10000 deliveries a second (null: unlimited)")]
    OutOfRange,
}

/// A webhook's limit: at most this many attempts a second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttle(NonZeroU32);

impl Throttle {
    /// A limit of `per_second` attempts a second (1 to [`MAX_PER_SECOND`]).
    pub fn new(per_second: i64) -> Result<Self, ThrottleError> {
        u32::try_from(per_second)
            .ok()
            .filter(|n| *n <= MAX_PER_SECOND)
            .and_then(NonZeroU32::new)
            .map(Self)
            .ok_or(ThrottleError::OutOfRange)
    }

    /// The limit.
    pub fn per_second(self) -> u32 {
        self.0.get()
    }

    /// What a claim at `now` may take, with up to `limit` free slots, given the shared clock
    /// (`None`: never sent).
    pub fn plan(self, clock_us: Option<i64>, now: Timestamp, limit: usize) -> Pacing {
        let now_us = now.millis().saturating_mul(1000);
        let start_us = clock_us.map_or(now_us, |c| c.max(now_us));
        let horizon_us = HORIZON.as_micros() as i64;
        let ahead_us = now_us + horizon_us - start_us;
        let count = if ahead_us < 0 {
            0
        } else {
            // Turns 0..=k fall within the horizon, where turn k starts k/rate seconds in.
            let turns = (ahead_us as i128 * i128::from(self.per_second())) / 1_000_000 + 1;
            usize::try_from(turns).unwrap_or(usize::MAX).min(limit)
        };
        Pacing {
            start_us,
            per_second: self.per_second(),
            count,
        }
    }
}

/// The send times one claim gives out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pacing {
    start_us: i64,
    per_second: u32,
    /// How many deliveries the claim may take (0: the next turn is beyond the horizon).
    pub count: usize,
}

impl Pacing {
    /// When the `turn`-th delivery claimed (from 0) may be sent, in microseconds.
    pub fn send_at_us(&self, turn: usize) -> i64 {
        // Rounded up: never earlier than the rate allows.
        let offset = (turn as u128 * 1_000_000).div_ceil(u128::from(self.per_second));
        self.start_us
            .saturating_add(i64::try_from(offset).unwrap_or(i64::MAX))
    }

    /// When the `turn`-th delivery claimed may be sent.
    pub fn send_at(&self, turn: usize) -> Timestamp {
        Timestamp::from_millis((self.send_at_us(turn).saturating_add(999)).div_euclid(1000))
    }

    /// The clock to store after `claimed` deliveries were taken: the next one's turn.
    pub fn clock_after(&self, claimed: usize) -> i64 {
        self.send_at_us(claimed)
    }
}

/// The most of `instants` (sorted) that fall within any one second: what a receiver of a
/// throttled webhook sees at the busiest, which the limit bounds (the benchmark and the
/// throttle's tests measure it).
pub fn most_within_a_second(instants: &[std::time::Instant]) -> usize {
    most_within(instants, Duration::from_secs(1))
}

/// The most of `instants` (sorted) that fall within any one `window`: over a few seconds, a
/// stall of the machine that makes a few deliveries arrive together no longer counts as a
/// burst, while a throttle that lets a burst through still shows.
pub fn most_within(instants: &[std::time::Instant], window: Duration) -> usize {
    let mut most = 0;
    let mut start = 0;
    for (end, at) in instants.iter().enumerate() {
        while at.duration_since(instants[start]) >= window {
            start += 1;
        }
        most = most.max(end - start + 1);
    }
    most
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    #[test]
    fn the_busiest_second_counts_instants_less_than_a_second_apart() {
        let t0 = std::time::Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        assert_eq!(most_within_a_second(&[]), 0);
        // 0, 20 … 1980 ms: 50 within any second; the one at 1000 starts the next.
        let even: Vec<_> = (0..100).map(|i| at(i * 20)).collect();
        assert_eq!(most_within_a_second(&even), 50);
        let burst: Vec<_> = [0, 1, 2, 3, 1500].into_iter().map(at).collect();
        assert_eq!(most_within_a_second(&burst), 4);
        assert_eq!(most_within(&even, Duration::from_secs(2)), 100);
        assert_eq!(most_within(&burst, Duration::from_secs(2)), 5);
    }

    #[test]
    fn limits_outside_one_to_ten_thousand_are_refused() {
        for bad in [0, -1, 10_001, i64::MAX] {
            assert_eq!(Throttle::new(bad), Err(ThrottleError::OutOfRange), "{bad}");
        }
        assert_eq!(Throttle::new(1).map(Throttle::per_second), Ok(1));
        assert_eq!(Throttle::new(10_000).map(Throttle::per_second), Ok(10_000));
    }

    #[test]
    fn an_idle_webhook_starts_now_without_a_burst() {
        let fifty = Throttle::new(50).unwrap();
        // Never sent, or sent long ago: turns from now, one every 20 ms, within one second.
        for clock in [None, Some(1_000)] {
            let pacing = fifty.plan(clock, at(10_000), 1000);
            assert_eq!(pacing.count, 51);
            assert_eq!(pacing.send_at(0), at(10_000));
            assert_eq!(pacing.send_at(1), at(10_020));
            assert_eq!(pacing.send_at(50), at(11_000));
            assert_eq!(pacing.clock_after(3), 10_060_000);
        }
    }

    #[test]
    fn free_slots_bound_a_claim_and_the_clock_moves_past_what_was_taken() {
        let fifty = Throttle::new(50).unwrap();
        let pacing = fifty.plan(None, at(0), 8);
        assert_eq!(pacing.count, 8);
        // The next claim continues where this one stopped, even at the same instant.
        let next = fifty.plan(Some(pacing.clock_after(8)), at(0), 8);
        assert_eq!(next.send_at(0), at(160));
    }

    #[test]
    fn nothing_is_given_out_beyond_the_horizon() {
        let ten = Throttle::new(10).unwrap();
        // The clock is 1.5 s ahead: nothing may be claimed yet.
        assert_eq!(ten.plan(Some(1_500_000), at(0), 100).count, 0);
        // 0.5 s ahead: the turns at 0.5 s, 0.6 s … 1.0 s.
        let pacing = ten.plan(Some(500_000), at(0), 100);
        assert_eq!(pacing.count, 6);
        assert_eq!(pacing.send_at(5), at(1_000));
    }

    #[test]
    fn uneven_intervals_never_run_faster_than_the_limit() {
        let three = Throttle::new(3).unwrap();
        let pacing = three.plan(None, at(0), 100);
        assert_eq!(pacing.count, 4);
        // 333.3 µs… rounded up, never down.
        assert_eq!(pacing.send_at_us(1), 333_334);
        assert_eq!(pacing.send_at_us(3), 1_000_000);
        // A thousand claims of one at 7,000/s keep the rate, not a rate rounded to whole ms.
        let fast = Throttle::new(7_000).unwrap();
        let mut clock = None;
        for _ in 0..1000 {
            let p = fast.plan(clock, at(0), 1);
            clock = Some(p.clock_after(p.count));
        }
        let elapsed_us = clock.unwrap();
        assert!((142_857..=143_857).contains(&elapsed_us), "{elapsed_us}");
    }
}
