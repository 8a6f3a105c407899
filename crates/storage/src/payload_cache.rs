//! Payloads of recently ingested events, kept in memory so a claim does not read them back from
//! the database: under fan-out, nearly every claimed delivery belongs to an event this process
//! has just written. Events are immutable, so a cached payload is never stale; the cache only
//! saves the read, and anything not in it is read as before.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use lwh_domain::EventId;

/// Payload bytes the cache holds at most (slugs and bookkeeping come on top): enough for the
/// deliveries of several thousand events in flight, small beside the process's memory.
const BYTE_BUDGET: usize = 4 * 1024 * 1024;

/// An event's slug and the exact bytes every attempt POSTs.
pub(crate) type Payload = (String, Arc<[u8]>);

/// A bounded map of event id → payload, oldest entries evicted first.
#[derive(Default)]
pub(crate) struct PayloadCache {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for PayloadCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Payloads are customer data: never in a debug dump.
        f.debug_struct("PayloadCache").finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Inner {
    by_id: HashMap<EventId, Payload>,
    order: VecDeque<EventId>,
    bytes: usize,
}

impl PayloadCache {
    /// Remembers committed events' payloads (one lock for the whole group).
    pub(crate) fn insert<'a>(
        &self,
        events: impl IntoIterator<Item = (EventId, &'a str, &'a Arc<[u8]>)>,
    ) {
        let Ok(mut c) = self.inner.lock() else { return };
        for (id, slug, payload) in events {
            if payload.len() > BYTE_BUDGET || c.by_id.contains_key(&id) {
                continue;
            }
            c.bytes += payload.len();
            c.by_id.insert(id, (slug.to_owned(), payload.clone()));
            c.order.push_back(id);
        }
        while c.bytes > BYTE_BUDGET {
            let Some(oldest) = c.order.pop_front() else {
                break;
            };
            if let Some((_, p)) = c.by_id.remove(&oldest) {
                c.bytes -= p.len();
            }
        }
    }

    /// The payload of `id`, if cached.
    pub(crate) fn get(&self, id: &EventId) -> Option<Payload> {
        self.inner.lock().ok()?.by_id.get(id).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_recent_payloads_within_the_byte_budget() {
        let cache = PayloadCache::default();
        let big: Arc<[u8]> = Arc::from(vec![b'x'; BYTE_BUDGET / 4]);
        let ids: Vec<EventId> = (0..6).map(|_| EventId::generate()).collect();
        cache.insert(ids.iter().map(|id| (*id, "course_completed", &big)));
        assert!(cache.get(&ids[0]).is_none(), "the oldest were evicted");
        assert!(cache.get(&ids[1]).is_none());
        let (slug, payload) = cache.get(&ids[5]).expect("the newest is kept");
        assert_eq!(slug, "course_completed");
        assert_eq!(payload.len(), big.len());
        let held = cache.inner.lock().map(|c| c.bytes).unwrap_or(usize::MAX);
        assert!(held <= BYTE_BUDGET, "{held} bytes held");
    }

    #[test]
    fn a_payload_larger_than_the_budget_is_not_cached() {
        let cache = PayloadCache::default();
        let huge: Arc<[u8]> = Arc::from(vec![b'x'; BYTE_BUDGET + 1]);
        let id = EventId::generate();
        cache.insert([(id, "ping", &huge)]);
        assert!(cache.get(&id).is_none());
    }
}
