//! Deliveries handed over before their routing is recorded, so that an event's routing, its
//! deliveries and their first attempts reach the store in one commit instead of three.
//!
//! The route loop hands a routing over unrecorded only when the worker has room for every one of
//! its pending deliveries; each delivery carries a [`Share`] of it. A share is settled once: by
//! the delivery's first attempt, or, dropped unattempted (given back, a reload removed its
//! target, shutdown), without one, and the delivery is then recorded pending for a claim to take.
//! When the last share settles, the routing and its attempts go to the route stage's recorder.
//!
//! Until that commit the store holds the event unrouted, and only the route loop's memory knows
//! it is being delivered: the loop skips it in its scans meanwhile. A crash loses that memory and
//! the event is routed again, with the same delivery ids (they derive from the event), so a
//! receiver that saw an attempt before the crash can tell the repeat. This module never writes to
//! the store itself.

use crate::store::{Attempt, Routing};
use parking_lot::Mutex;
use std::sync::Arc;
use tokio::sync::mpsc;

/// A routing whose deliveries were all attempted (or given up on here), with those attempts:
/// ready to be recorded.
#[derive(Debug)]
pub(crate) struct Attempted {
    pub(crate) routing: Routing,
    pub(crate) attempts: Vec<Attempt>,
}

/// A routing waiting for its deliveries' first attempts.
#[derive(Debug)]
struct Unrecorded {
    gathering: Mutex<Gathering>,
    recorder: mpsc::UnboundedSender<Attempted>,
}

#[derive(Debug)]
struct Gathering {
    routing: Option<Routing>,
    attempts: Vec<Attempt>,
    left: usize,
}

/// One delivery's part in a routing not recorded yet. Dropping it unsettled settles it without
/// an attempt, so no routing is ever left waiting for a delivery that went away.
#[derive(Debug)]
pub(crate) struct Share(Option<Arc<Unrecorded>>);

/// Holds `routing` back until each of `deliveries` shares settles, then sends it to `recorder`.
pub(crate) fn hold(
    routing: Routing,
    deliveries: usize,
    recorder: &mpsc::UnboundedSender<Attempted>,
) -> Vec<Share> {
    let unrecorded = Arc::new(Unrecorded {
        gathering: Mutex::new(Gathering {
            routing: Some(routing),
            attempts: Vec::with_capacity(deliveries),
            left: deliveries,
        }),
        recorder: recorder.clone(),
    });
    (0..deliveries)
        .map(|_| Share(Some(unrecorded.clone())))
        .collect()
}

impl Share {
    /// The delivery's first attempt ended: it is recorded with the routing.
    pub(crate) fn attempted(mut self, attempt: Attempt) {
        if let Some(u) = self.0.take() {
            u.settle(Some(attempt));
        }
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        if let Some(u) = self.0.take() {
            u.settle(None);
        }
    }
}

impl Unrecorded {
    fn settle(&self, attempt: Option<Attempt>) {
        let ready = {
            let mut g = self.gathering.lock();
            g.attempts.extend(attempt);
            g.left = g.left.saturating_sub(1);
            if g.left > 0 {
                return;
            }
            g.routing.take().map(|routing| Attempted {
                routing,
                attempts: std::mem::take(&mut g.attempts),
            })
        };
        if let Some(ready) = ready
            && let Err(e) = self.recorder.send(ready)
        {
            // The recorder stopped (shutdown): the event stays unrouted in the store and is
            // routed again, with the same delivery ids, when the gateway next starts.
            tracing::info!(event = %e.0.routing.event_id,
                "shutting down: the event's routing is not recorded; it is routed again at the next start");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{AfterAttempt, StoredEvent};

    fn attempt(id: &str) -> Attempt {
        Attempt {
            delivery_id: id.into(),
            attempt: 1,
            started_at: 0,
            duration_ms: 0,
            status_code: Some(200),
            error: None,
            response_headers: Vec::new(),
            response_body: bytes::Bytes::new(),
            after: AfterAttempt::Succeeded,
            finished_at: 0,
        }
    }

    #[test]
    fn a_routing_goes_to_the_recorder_once_every_share_settled_attempted_or_dropped() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let routing = Routing::new(&StoredEvent::blank("e", 0));
        let mut shares = hold(routing, 3, &tx);
        shares.pop().expect("three").attempted(attempt("a"));
        drop(shares.pop());
        assert!(rx.try_recv().is_err(), "one share still out");
        shares.pop().expect("three").attempted(attempt("c"));
        let ready = rx.try_recv().expect("sent when the last settled");
        assert_eq!(ready.routing.event_id, "e");
        let ids: Vec<&str> = ready
            .attempts
            .iter()
            .map(|a| a.delivery_id.as_str())
            .collect();
        assert_eq!(
            ids,
            ["a", "c"],
            "the dropped share settled without an attempt"
        );
        assert!(rx.try_recv().is_err(), "sent once");
    }
}
