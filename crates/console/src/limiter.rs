//! Login rate limiting: a few failures per user name per window, and a ceiling for all names
//! together, so guessing passwords is slow whichever name is tried.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed per user name within [`WINDOW`].
pub const PER_NAME: usize = 5;
/// Failures allowed for all names together within [`WINDOW`].
pub const TOTAL: usize = 50;
/// The sliding window.
pub const WINDOW: Duration = Duration::from_secs(300);

/// Recent failed logins.
#[derive(Default)]
pub struct LoginLimiter {
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl LoginLimiter {
    /// Whether a login attempt for `name` may be checked now.
    pub fn allows(&self, name: &str) -> bool {
        let Ok(mut map) = self.failures.lock() else {
            return false;
        };
        let now = Instant::now();
        let mut total = 0;
        map.retain(|_, times| {
            while times
                .front()
                .is_some_and(|t| now.duration_since(*t) > WINDOW)
            {
                times.pop_front();
            }
            total += times.len();
            !times.is_empty()
        });
        let mine = map.get(&name.to_lowercase()).map_or(0, VecDeque::len);
        mine < PER_NAME && total < TOTAL
    }

    /// Records a failed attempt.
    pub fn failed(&self, name: &str) {
        if let Ok(mut map) = self.failures.lock() {
            map.entry(name.to_lowercase())
                .or_default()
                .push_back(Instant::now());
        }
    }

    /// Forgets failures after a successful login.
    pub fn succeeded(&self, name: &str) {
        if let Ok(mut map) = self.failures.lock() {
            map.remove(&name.to_lowercase());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_five_failures_per_name() {
        let l = LoginLimiter::default();
        for _ in 0..PER_NAME {
            assert!(l.allows("Admin"));
            l.failed("admin");
        }
        assert!(!l.allows("ADMIN"));
        assert!(l.allows("someone-else"));
        l.succeeded("admin");
        assert!(l.allows("admin"));
    }
}
