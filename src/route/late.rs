//! Routings recorded late: after their deliveries' first attempts, in one commit with them (see
//! [`crate::deliver::unrecorded`] for the worker's side).
//!
//! The route loop hands a routing over unrecorded when the worker has room for all of its pending
//! deliveries ([`Late::deadline`] says whether the store allows it), and remembers its event in
//! [`Held`] so that no scan of the store routes it again meanwhile: the store still holds it
//! unrouted. The recorder task here commits what comes back, many routings per transaction, and
//! only then forgets the events. This module must never drop a routing silently: one that cannot
//! be recorded leaves its event unrouted in the store, where the next scan (or start) finds it.

use super::backlog::Backlog;
use crate::deliver::unrecorded::Attempted;
use crate::store::{RoutingBatch, Store, StoredEvent};
use parking_lot::Mutex;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Routings recorded per transaction at most.
const BATCH: usize = 256;
/// Time kept, on a shared store, between the end of a late routing's first attempts and the end
/// of its event's routing lease: to record it, and for clocks that disagree a little.
const MARGIN_MS: i64 = 15_000;

/// Events whose routing is held in memory, not yet recorded.
#[derive(Debug, Default)]
pub(super) struct Held(Mutex<HashSet<String>>);

impl Held {
    #[cfg(test)]
    fn contains(&self, id: &str) -> bool {
        self.0.lock().contains(id)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.lock().len()
    }

    /// What is held as a read of the store begins, to leave out of what it returns. Not what is
    /// held when it returns: a routing may be recorded and its event released while the read is
    /// under way, and a read whose snapshot predates that commit returns the event unrouted.
    /// Routed again, its deliveries would go out twice (the load bench saw 33 to 256 duplicates
    /// per run). Nothing is held during the read: only the route loop holds, and it is reading.
    pub(super) fn before_read(&self) -> HeldBefore {
        HeldBefore(self.0.lock().clone())
    }

    fn hold(&self, id: &str) {
        self.0.lock().insert(id.to_string());
    }

    fn release(&self, ids: &[String]) {
        let mut held = self.0.lock();
        for id in ids {
            held.remove(id);
        }
    }
}

/// The events held as a read of the store began: see [`Held::before_read`].
pub(super) struct HeldBefore(HashSet<String>);

impl HeldBefore {
    pub(super) fn contains(&self, id: &str) -> bool {
        self.0.contains(id)
    }

    pub(super) fn len(&self) -> usize {
        self.0.len()
    }
}

/// The route loop's side: where late routings go, and what it holds.
pub(super) struct Late {
    recorder: mpsc::UnboundedSender<Attempted>,
    pub(super) held: Arc<Held>,
    /// See [`crate::store::Queue::routing_lease_ms`].
    lease_ms: Option<i64>,
}

impl Late {
    /// Starts the recorder. It runs until every sender is gone: the loop's and those of the
    /// routings still out (the worker drops them as it stops), so await it after both.
    pub(super) fn start(
        store: Arc<dyn Store>,
        backlog: Arc<Backlog>,
        clock: crate::Clock,
        shutdown: watch::Receiver<bool>,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (recorder, rx) = mpsc::unbounded_channel();
        let held = Arc::new(Held::default());
        let lease_ms = store.routing_lease_ms();
        let task = tokio::spawn(record(store, rx, held.clone(), backlog, clock, shutdown));
        let late = Self {
            recorder,
            held,
            lease_ms,
        };
        (late, task)
    }

    /// When the first attempts of `event`'s deliveries must have ended for its routing to be
    /// recorded late, or `None` if it must be recorded now: on a shared store, no other instance
    /// may take the event before the late commit lands.
    pub(super) fn deadline(&self, event: &StoredEvent, now: i64) -> Option<i64> {
        let Some(lease) = self.lease_ms else {
            return Some(i64::MAX);
        };
        let until = event.received_at.saturating_add(lease - MARGIN_MS);
        (until > now).then_some(until)
    }

    /// Holds `event`'s routing until its `deliveries` shares settle.
    pub(super) fn hold(
        &self,
        routing: crate::store::Routing,
        deliveries: usize,
    ) -> Vec<crate::deliver::unrecorded::Share> {
        self.held.hold(&routing.event_id);
        crate::deliver::unrecorded::hold(routing, deliveries, &self.recorder)
    }
}

/// Records late routings as they come back, those that came together in one transaction.
async fn record(
    store: Arc<dyn Store>,
    mut rx: mpsc::UnboundedReceiver<Attempted>,
    held: Arc<Held>,
    backlog: Arc<Backlog>,
    clock: crate::Clock,
    shutdown: watch::Receiver<bool>,
) {
    while let Some(first) = rx.recv().await {
        let mut ready = vec![first];
        while ready.len() < BATCH {
            match rx.try_recv() {
                Ok(a) => ready.push(a),
                Err(_) => break,
            }
        }
        let ids: Vec<String> = ready.iter().map(|a| a.routing.event_id.clone()).collect();
        let mut batch = RoutingBatch::default();
        for a in ready {
            batch.routings.push(a.routing);
            batch.attempts.extend(a.attempts);
        }
        let ticket = backlog.ticket();
        if commit(&*store, Arc::new(batch), clock, &shutdown).await {
            backlog.routed(ticket, ids.len() as u64);
        }
        held.release(&ids);
    }
}

/// Records one batch, retrying while the store is unavailable; once shutdown began, tries once.
/// True when it landed.
async fn commit(
    store: &dyn Store,
    batch: Arc<RoutingBatch>,
    clock: crate::Clock,
    shutdown: &watch::Receiver<bool>,
) -> bool {
    loop {
        let Err(e) = store.record_routing(batch.clone(), clock.now_ms()).await else {
            return true;
        };
        // A database's message may quote event types or details taken from bodies.
        let e = crate::log_safe::Escaped(&e);
        if *shutdown.borrow() {
            tracing::warn!(error = %e, events = batch.routings.len(),
                "cannot record routings at shutdown; their events are routed again at the next start");
            return false;
        }
        tracing::warn!(error = %e, "cannot record routing; retrying");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn late(lease_ms: Option<i64>) -> Late {
        Late {
            recorder: mpsc::unbounded_channel().0,
            held: Arc::default(),
            lease_ms,
        }
    }

    #[test]
    fn on_a_shared_store_a_late_routing_must_land_well_inside_the_events_routing_lease() {
        let event = |received_at| StoredEvent {
            received_at,
            ..StoredEvent::blank("e", 0)
        };
        let now = 1_000_000;
        assert_eq!(
            late(None).deadline(&event(0), now),
            Some(i64::MAX),
            "a store one process owns has no lease"
        );
        let shared = late(Some(60_000));
        assert_eq!(
            shared.deadline(&event(now - 10_000), now),
            Some(now - 10_000 + 60_000 - MARGIN_MS)
        );
        assert_eq!(
            shared.deadline(&event(now - 50_000), now),
            None,
            "too little lease left: recorded now"
        );
    }

    #[test]
    fn held_events_are_released_by_id() {
        let l = late(None);
        let shares = l.hold(crate::store::Routing::new(&StoredEvent::blank("e1", 0)), 1);
        assert!(l.held.contains("e1") && l.held.len() == 1);
        l.held.release(&["e1".to_string()]);
        assert!(!l.held.contains("e1"));
        drop(shares);
    }

    #[test]
    fn an_event_released_during_a_read_is_still_left_out_of_it() {
        let l = late(None);
        let shares = l.hold(crate::store::Routing::new(&StoredEvent::blank("e1", 0)), 1);
        let before = l.held.before_read();
        // The routing lands and the event is released while the read is under way.
        l.held.release(&["e1".to_string()]);
        assert!(before.contains("e1") && before.len() == 1);
        assert!(!before.contains("e2"));
        drop(shares);
    }
}
