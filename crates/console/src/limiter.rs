//! Login rate limiting, per user name and per client address — never for everyone at once: a
//! flood of wrong names from one address closes the console to that address, not to the admin
//! signing in from another (a ceiling over all names did, and ~10 requests a minute kept the
//! console closed to all).
//!
//! A check reserves its place before the password is hashed, under one lock, so parallel
//! guesses cannot slip past the count while earlier ones are still being checked.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Failed (or running) checks allowed per user name within [`WINDOW`].
pub const PER_NAME: usize = 5;
/// Failed (or running) checks allowed per client address within [`WINDOW`].
pub const PER_ADDRESS: usize = 20;
/// The sliding window.
pub const WINDOW: Duration = Duration::from_secs(300);
/// Most names and addresses remembered; beyond it the stalest is forgotten.
const MAX_KEYS: usize = 100_000;

/// Who a limit applies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Name(String),
    Address(IpAddr),
}

#[derive(Default)]
struct Record {
    failures: VecDeque<Instant>,
    running: usize,
}

impl Record {
    fn used(&self) -> usize {
        self.failures.len() + self.running
    }
}

/// Recent failed logins.
#[derive(Default)]
pub struct LoginLimiter {
    records: Mutex<HashMap<Key, Record>>,
}

/// Why a login is not checked now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Too many failures for this user name.
    Name,
    /// Too many failures from this client address.
    Address,
}

/// A reserved password check: record its outcome with [`Attempt::failed`] or
/// [`Attempt::succeeded`]; dropped without either, it frees its place.
pub struct Attempt {
    limiter: Arc<LoginLimiter>,
    keys: Vec<Key>,
    done: bool,
}

/// The address a limit is kept for: IPv4 as is, IPv6 by its /64 (one host's usual share).
fn address_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(segments.into())
            }
        },
    }
}

impl LoginLimiter {
    /// Reserves a password check for `name` from `address` (unknown when the server did not
    /// say), or says which limit refuses it.
    pub fn begin(
        self: &Arc<Self>,
        name: &str,
        address: Option<IpAddr>,
    ) -> Result<Attempt, Refused> {
        let mut keys = vec![Key::Name(name.to_lowercase())];
        if let Some(address) = address {
            keys.push(Key::Address(address_key(address)));
        }
        let Ok(mut records) = self.records.lock() else {
            return Err(Refused::Address);
        };
        let now = Instant::now();
        for key in &keys {
            if let Some(record) = records.get_mut(key) {
                while record
                    .failures
                    .front()
                    .is_some_and(|t| now.duration_since(*t) > WINDOW)
                {
                    record.failures.pop_front();
                }
                let (limit, refusal) = match key {
                    Key::Name(_) => (PER_NAME, Refused::Name),
                    Key::Address(_) => (PER_ADDRESS, Refused::Address),
                };
                if record.used() >= limit {
                    return Err(refusal);
                }
            }
        }
        if records.len() + keys.len() > MAX_KEYS {
            forget_stalest(&mut records, now);
        }
        for key in &keys {
            records.entry(key.clone()).or_default().running += 1;
        }
        Ok(Attempt {
            limiter: Arc::clone(self),
            keys,
            done: false,
        })
    }

    fn finish(&self, keys: &[Key], failed: bool, succeeded: bool) {
        let Ok(mut records) = self.records.lock() else {
            return;
        };
        let now = Instant::now();
        for key in keys {
            let Some(record) = records.get_mut(key) else {
                continue;
            };
            record.running = record.running.saturating_sub(1);
            if failed {
                record.failures.push_back(now);
            }
            if succeeded && matches!(key, Key::Name(_)) {
                record.failures.clear();
            }
            if record.used() == 0 {
                records.remove(key);
            }
        }
    }
}

/// Drops expired failures everywhere, then, if still full, the tenth of records whose newest
/// failure is oldest.
fn forget_stalest(records: &mut HashMap<Key, Record>, now: Instant) {
    records.retain(|_, r| {
        while r
            .failures
            .front()
            .is_some_and(|t| now.duration_since(*t) > WINDOW)
        {
            r.failures.pop_front();
        }
        r.used() > 0
    });
    if records.len() < MAX_KEYS {
        return;
    }
    let mut by_age: Vec<(Instant, Key)> = records
        .iter()
        .filter(|(_, r)| r.running == 0)
        .map(|(k, r)| (r.failures.back().copied().unwrap_or(now), k.clone()))
        .collect();
    by_age.sort_by_key(|(at, _)| *at);
    for (_, key) in by_age.into_iter().take(MAX_KEYS / 10) {
        records.remove(&key);
    }
}

impl Attempt {
    /// The password was wrong: counts against the name and the address.
    pub fn failed(mut self) {
        self.done = true;
        self.limiter.finish(&self.keys, true, false);
    }

    /// The password was right: the name's failures are forgotten (the address's are not).
    pub fn succeeded(mut self) {
        self.done = true;
        self.limiter.finish(&self.keys, false, true);
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        if !self.done {
            self.limiter.finish(&self.keys, false, false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn five_failures_close_a_name_to_every_address() {
        let l = Arc::new(LoginLimiter::default());
        for i in 0..PER_NAME {
            l.begin("Admin", ip(&format!("10.0.0.{i}")))
                .unwrap()
                .failed();
        }
        assert_eq!(l.begin("ADMIN", ip("10.0.1.1")).err(), Some(Refused::Name));
        assert!(l.begin("someone-else", ip("10.0.1.1")).is_ok());
    }

    #[test]
    fn a_flood_of_names_closes_that_address_only() {
        let l = Arc::new(LoginLimiter::default());
        for i in 0..PER_ADDRESS {
            l.begin(&format!("guess{i}"), ip("192.0.2.7"))
                .unwrap()
                .failed();
        }
        assert_eq!(
            l.begin("admin", ip("192.0.2.7")).err(),
            Some(Refused::Address)
        );
        assert!(
            l.begin("admin", ip("198.51.100.1")).is_ok(),
            "the admin from elsewhere is not locked out"
        );
    }

    #[test]
    fn checks_in_flight_count_so_parallel_guesses_cannot_slip_through() {
        let l = Arc::new(LoginLimiter::default());
        let running: Vec<Attempt> = (0..PER_NAME)
            .map(|_| l.begin("admin", ip("192.0.2.1")).unwrap())
            .collect();
        assert_eq!(l.begin("admin", ip("192.0.2.2")).err(), Some(Refused::Name));
        drop(running); // finished without a verdict (say, a database error): places freed
        assert!(l.begin("admin", ip("192.0.2.2")).is_ok());
    }

    #[test]
    fn success_forgets_the_name_and_ipv6_counts_by_64() {
        let l = Arc::new(LoginLimiter::default());
        for _ in 0..PER_NAME - 1 {
            l.begin("admin", ip("2001:db8::1")).unwrap().failed();
        }
        l.begin("admin", ip("2001:db8::2")).unwrap().succeeded();
        assert!(l.begin("admin", ip("2001:db8::3")).is_ok());
        for i in 0..PER_ADDRESS {
            l.begin(&format!("n{i}"), ip(&format!("2001:db8:1::{:x}", i + 10)))
                .unwrap()
                .failed();
        }
        assert_eq!(
            l.begin("x", ip("2001:db8:1::ffff")).err(),
            Some(Refused::Address),
            "one /64"
        );
        assert!(l.begin("x", ip("2001:db8:2::1")).is_ok(), "another /64");
    }
}
