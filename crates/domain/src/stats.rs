//! Health at a glance: a webhook's attempts per hour, kept as hourly counters with a fixed
//! duration histogram, so answering "how is this endpoint doing?" reads at most 168 small
//! rows instead of scanning every attempt.
//!
//! Recording an attempt adds it to its webhook's counters for the hour it started in (the
//! store does that in the transaction that stores the attempt); a window's figures are then
//! the sums of its hours. Percentiles come from the histogram: each is reported as the upper
//! bound of the bucket holding it, so "p95 20 ms" means that 95 % of attempts took at most
//! 20 ms and the true figure lies above the bucket below (15 ms).

use crate::timestamp::Timestamp;

/// One hour in milliseconds: the counters' granularity.
pub const HOUR_MS: i64 = 3_600_000;

/// Upper bounds of the duration buckets, in milliseconds; an attempt of `d` ms counts in the
/// first bucket whose bound is at least `d`. Attempts over the last bound count in the last
/// bucket (request timeouts are far below it), so a percentile never exceeds 60 s.
pub const DURATION_BOUNDS_MS: [i64; 28] = [
    1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100, 150, 200, 300, 500, 700, 1_000, 1_500, 2_000,
    3_000, 5_000, 7_000, 10_000, 15_000, 20_000, 30_000, 60_000,
];

/// How many duration buckets a counter row holds.
pub const BUCKETS: usize = DURATION_BOUNDS_MS.len();

/// The bucket an attempt of `duration_ms` counts in.
pub fn bucket_of(duration_ms: i64) -> usize {
    DURATION_BOUNDS_MS
        .iter()
        .position(|bound| duration_ms <= *bound)
        .unwrap_or(BUCKETS - 1)
}

/// The start of the hour holding `at`, in milliseconds.
pub fn hour_of(at: Timestamp) -> i64 {
    at.millis().div_euclid(HOUR_MS) * HOUR_MS
}

/// One webhook's counters for one hour (summed over the rows that make it up).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HourCounters {
    /// Start of the hour, milliseconds since the epoch.
    pub hour: i64,
    /// Attempts started in that hour.
    pub attempts: i64,
    /// Of those, attempts that did not deliver (no 2xx, or no response).
    pub failures: i64,
    /// Attempts per duration bucket ([`DURATION_BOUNDS_MS`]).
    pub durations: [i64; BUCKETS],
}

impl HourCounters {
    /// Empty counters for the hour starting at `hour`.
    pub fn empty(hour: i64) -> Self {
        Self {
            hour,
            attempts: 0,
            failures: 0,
            durations: [0; BUCKETS],
        }
    }

    /// Counts one attempt.
    pub fn add(&mut self, delivered: bool, duration_ms: i64) {
        self.attempts += 1;
        self.failures += i64::from(!delivered);
        self.durations[bucket_of(duration_ms)] += 1;
    }

    /// Adds another row's counters for the same hour.
    pub fn merge(&mut self, other: &HourCounters) {
        self.attempts += other.attempts;
        self.failures += other.failures;
        for (mine, theirs) in self.durations.iter_mut().zip(other.durations) {
            *mine += theirs;
        }
    }
}

/// The windows the stats can cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// The last 24 hours (24 hourly points, the current hour last).
    Day,
    /// The last 7 days (168 hourly points).
    Week,
}

impl Window {
    /// `24h` or `7d`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "24h" => Some(Self::Day),
            "7d" => Some(Self::Week),
            _ => None,
        }
    }

    /// How the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Day => "24h",
            Self::Week => "7d",
        }
    }

    /// Hourly points in the window.
    pub fn hours(self) -> i64 {
        match self {
            Self::Day => 24,
            Self::Week => 24 * 7,
        }
    }

    /// The first hour of the window ending with the hour holding `now`.
    pub fn first_hour(self, now: Timestamp) -> i64 {
        hour_of(now) - (self.hours() - 1) * HOUR_MS
    }
}

/// A window's figures, ready for the API and the charts.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowStats {
    /// Which window.
    pub window: Window,
    /// Attempts in the window.
    pub attempts: i64,
    /// Attempts that delivered.
    pub succeeded: i64,
    /// Attempts that did not.
    pub failed: i64,
    /// `succeeded / attempts`, `None` without attempts.
    pub success_rate: Option<f64>,
    /// Median duration (bucket bound, ms), `None` without attempts.
    pub p50_ms: Option<i64>,
    /// 95th percentile duration (bucket bound, ms), `None` without attempts.
    pub p95_ms: Option<i64>,
    /// Every hour of the window, oldest first, hours without attempts included.
    pub hours: Vec<HourPoint>,
}

/// One hour of a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HourPoint {
    /// Start of the hour, milliseconds since the epoch.
    pub hour: i64,
    /// Attempts that delivered.
    pub succeeded: i64,
    /// Attempts that did not.
    pub failed: i64,
}

/// The window ending with the hour holding `now`, from the counters the store returned (any
/// order; several rows for one hour are summed; rows outside the window are ignored).
pub fn summarize(window: Window, now: Timestamp, rows: &[HourCounters]) -> WindowStats {
    let first = window.first_hour(now);
    let mut hours: Vec<HourCounters> = (0..window.hours())
        .map(|i| HourCounters::empty(first + i * HOUR_MS))
        .collect();
    let mut total = HourCounters::empty(first);
    for row in rows {
        let index = (row.hour - first).div_euclid(HOUR_MS);
        if row.hour.rem_euclid(HOUR_MS) != 0 || !(0..window.hours()).contains(&index) {
            continue;
        }
        hours[index as usize].merge(row);
        total.merge(row);
    }
    let succeeded = total.attempts - total.failures;
    WindowStats {
        window,
        attempts: total.attempts,
        succeeded,
        failed: total.failures,
        success_rate: (total.attempts > 0).then(|| succeeded as f64 / total.attempts as f64),
        p50_ms: percentile(&total.durations, 50),
        p95_ms: percentile(&total.durations, 95),
        hours: hours
            .iter()
            .map(|h| HourPoint {
                hour: h.hour,
                succeeded: h.attempts - h.failures,
                failed: h.failures,
            })
            .collect(),
    }
}

/// The `percent`-th percentile (nearest rank) of a histogram, as its bucket's upper bound.
pub fn percentile(durations: &[i64; BUCKETS], percent: i64) -> Option<i64> {
    let count: i64 = durations.iter().sum();
    if count == 0 {
        return None;
    }
    // Nearest rank: the smallest value with at least `percent` % of the attempts at or below.
    let rank = (count * percent + 99) / 100;
    let mut seen = 0;
    for (bucket, n) in durations.iter().enumerate() {
        seen += n;
        if seen >= rank.max(1) {
            return Some(DURATION_BOUNDS_MS[bucket]);
        }
    }
    DURATION_BOUNDS_MS.last().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_fall_in_the_first_bucket_that_holds_them() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(1), 0);
        assert_eq!(bucket_of(2), 1);
        assert_eq!(bucket_of(4), 3);
        assert_eq!(bucket_of(16), 7);
        assert_eq!(bucket_of(60_000), BUCKETS - 1);
        assert_eq!(bucket_of(600_000), BUCKETS - 1);
        assert!(DURATION_BOUNDS_MS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn percentiles_are_nearest_rank_bucket_bounds() {
        let mut h = HourCounters::empty(0);
        assert_eq!(percentile(&h.durations, 50), None);
        for d in 1..=100 {
            h.add(true, d);
        }
        // 50th value is 50 ms (bucket ≤ 50), 95th is 95 ms (bucket ≤ 100).
        assert_eq!(percentile(&h.durations, 50), Some(50));
        assert_eq!(percentile(&h.durations, 95), Some(100));
        let mut one = HourCounters::empty(0);
        one.add(false, 4);
        assert_eq!(percentile(&one.durations, 50), Some(5));
        assert_eq!(percentile(&one.durations, 95), Some(5));
    }

    #[test]
    fn a_window_sums_its_hours_and_shows_the_empty_ones() {
        let now = Timestamp::from_millis(100 * HOUR_MS + 1_234);
        let mut a = HourCounters::empty(100 * HOUR_MS);
        a.add(true, 10);
        a.add(false, 3_000);
        // The same hour from another process's row.
        let mut b = HourCounters::empty(100 * HOUR_MS);
        b.add(true, 12);
        let mut old = HourCounters::empty(77 * HOUR_MS);
        old.add(false, 1);
        // Outside the 24-hour window (the first hour is 77).
        let mut older = HourCounters::empty(76 * HOUR_MS);
        older.add(true, 1);
        let s = summarize(Window::Day, now, &[a, old, b, older]);
        assert_eq!(s.hours.len(), 24);
        assert_eq!(s.hours[0].hour, 77 * HOUR_MS);
        assert_eq!((s.hours[0].succeeded, s.hours[0].failed), (0, 1));
        assert_eq!((s.hours[23].succeeded, s.hours[23].failed), (2, 1));
        assert_eq!((s.attempts, s.succeeded, s.failed), (4, 2, 2));
        assert_eq!(s.success_rate, Some(0.5));
        assert_eq!(s.p50_ms, Some(10));
        assert_eq!(s.p95_ms, Some(3_000));
        let week = summarize(Window::Week, now, &[]);
        assert_eq!(week.hours.len(), 168);
        assert_eq!(
            (week.attempts, week.success_rate, week.p95_ms),
            (0, None, None)
        );
    }

    #[test]
    fn windows_are_spelled_as_the_api_takes_them() {
        for w in [Window::Day, Window::Week] {
            assert_eq!(Window::parse(w.as_str()), Some(w));
        }
        assert_eq!(Window::parse("30d"), None);
    }
}
