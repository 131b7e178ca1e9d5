//! Events the route loop read from the store while the inbox may still hold them, so that each
//! is evaluated once.
//!
//! A read of the store returns every unrouted event, including those ingress has just offered
//! the inbox (or is about to: its commit landed, its offer has not). Routing one twice is safe,
//! since the commit is fenced, but it costs an evaluation and counts it twice. So the ids a store
//! read returned are remembered here for a while, and the inbox's copies are dropped when they
//! come. This is only an optimisation: it must never drop an event that no store read returned.

use crate::store::StoredEvent;
use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

/// How long an id is remembered: far longer than an offer can trail its commit.
const KEEP: Duration = Duration::from_secs(60);
/// Ids remembered at most (stale ones included: those matched are left in the queue), so a long
/// scan of the store costs bounded memory.
const MAX: usize = 1 << 17;

/// Ids of events read from the store, oldest first.
#[derive(Debug, Default)]
pub(super) struct Seen {
    ids: HashSet<String>,
    order: VecDeque<(Instant, String)>,
}

impl Seen {
    /// Remembers the events a store read returned.
    pub(super) fn read_from_store(&mut self, events: &[StoredEvent], now: Instant) {
        self.forget_before(now);
        for e in events {
            if self.ids.insert(e.id.clone()) {
                self.order.push_back((now, e.id.clone()));
            }
        }
    }

    /// The inbox's events that no store read returned. An event is offered once, so a match is
    /// forgotten.
    pub(super) fn only_new(&mut self, events: Vec<StoredEvent>, now: Instant) -> Vec<StoredEvent> {
        self.forget_before(now);
        if self.ids.is_empty() {
            return events;
        }
        events
            .into_iter()
            .filter(|e| !self.ids.remove(&e.id))
            .collect()
    }

    fn forget_before(&mut self, now: Instant) {
        while let Some((at, _)) = self.order.front() {
            if now.duration_since(*at) < KEEP && self.order.len() <= MAX {
                break;
            }
            if let Some((_, id)) = self.order.pop_front() {
                self.ids.remove(&id);
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.ids.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(ids: &[&str]) -> Vec<StoredEvent> {
        ids.iter().map(|id| StoredEvent::blank(id, 2)).collect()
    }

    fn ids(events: &[StoredEvent]) -> Vec<&str> {
        events.iter().map(|e| e.id.as_str()).collect()
    }

    #[test]
    fn inbox_copies_of_events_read_from_the_store_are_dropped_once() {
        let mut seen = Seen::default();
        let now = Instant::now();
        seen.read_from_store(&events(&["a", "b"]), now);
        let kept = seen.only_new(events(&["a", "c", "b"]), now);
        assert_eq!(ids(&kept), ["c"]);
        // Matched ids are forgotten: a later offer of the same id is not this one.
        assert_eq!(seen.len(), 0);
        let kept = seen.only_new(events(&["a"]), now);
        assert_eq!(ids(&kept), ["a"]);
    }

    #[test]
    fn ids_are_forgotten_after_a_while() {
        let mut seen = Seen::default();
        let then = Instant::now();
        seen.read_from_store(&events(&["a"]), then);
        let kept = seen.only_new(events(&["a"]), then + KEEP + Duration::from_secs(1));
        assert_eq!(ids(&kept), ["a"]);
        assert_eq!(seen.len(), 0);
    }

    #[test]
    fn nothing_is_dropped_when_no_store_read_happened() {
        let mut seen = Seen::default();
        let kept = seen.only_new(events(&["a", "b"]), Instant::now());
        assert_eq!(ids(&kept), ["a", "b"]);
    }
}
