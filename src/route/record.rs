//! Recording a batch of routings, and handing its fresh deliveries to the worker.
//!
//! Before a batch is recorded, each pending delivery whose target has room in memory is reserved
//! a place in the worker's hand-off. A routing all of whose pending deliveries got one is handed
//! over at once, unrecorded, and recorded after their first attempts ([`super::late`]). The
//! others' reserved deliveries are written leased to this process; after the commit, the ones the
//! store wrote go to the worker with their bodies, so no claim reads them back. A batch is
//! committed in the background while the loop evaluates the next one (one at most, so events are
//! committed in order and memory stays bounded).

use super::late::Late;
use crate::config::Config;
use crate::deliver::handoff::{self, Handoff, HandoffSender, Room};
use crate::store::{
    DeliveryStatus, DueDelivery, Outcome, Routing, RoutingBatch, Store, StoredEvent,
};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// A delivery reserved a place in the hand-off, waiting for its commit.
struct Reserved {
    room: Room,
    delivery: DueDelivery,
    lease_until: i64,
}

/// A batch of routings being committed, and the events they route.
pub(super) struct Recording {
    task: tokio::task::JoinHandle<bool>,
    pub(super) ids: HashSet<String>,
}

impl Recording {
    /// Commits the routings in the background (handing over what it may), so the next batch is
    /// evaluated meanwhile. Each routing comes with its event, whose body a delivery without a
    /// transformed body carries.
    pub(super) fn start(
        store: Arc<dyn Store>,
        handoff: &mut Handoff,
        late: &Late,
        cfg: &Config,
        routed: Vec<(StoredEvent, Routing)>,
        clock: crate::Clock,
        mut shutdown: watch::Receiver<bool>,
    ) -> Option<Self> {
        let now = clock.now_ms();
        let sender = handoff.sender();
        let mut routings = Vec::with_capacity(routed.len());
        let mut reserved = Vec::new();
        for (event, routing) in routed {
            let mut rooms = reserve(handoff, cfg, &event, &routing, now);
            match late_until(late, &event, &routing, rooms.len(), now) {
                Some(until) => {
                    let shares = late.hold(routing, rooms.len());
                    for (r, share) in rooms.into_iter().zip(shares) {
                        let lease_until = r.lease_until.min(until);
                        sender.send_unrecorded(r.room, r.delivery, lease_until, Some(share));
                    }
                }
                None => {
                    reserved.append(&mut rooms);
                    routings.push(routing);
                }
            }
        }
        if routings.is_empty() {
            return None;
        }
        let ids = routings.iter().map(|r| r.event_id.clone()).collect();
        let batch = Arc::new(RoutingBatch {
            leases: reserved
                .iter()
                .map(|r| (r.delivery.id.clone(), r.lease_until))
                .collect(),
            routings,
            attempts: Vec::new(),
        });
        let task = tokio::spawn(async move {
            let Some(written) = record(&*store, batch, clock, &mut shutdown).await else {
                return false;
            };
            hand_over(&sender, reserved, &written);
            true
        });
        Some(Self { task, ids })
    }

    /// Waits for the commit; true when it landed (false: shutdown came first, or a panic).
    pub(super) async fn finish(self) -> bool {
        match self.task.await {
            Ok(landed) => landed,
            Err(e) => {
                tracing::error!(error = %e, "recording a routing batch panicked");
                false
            }
        }
    }
}

/// Whether `routing` may be recorded after its deliveries' first attempts, given `rooms` of them
/// reserved a place in the hand-off; if so, when those attempts must have ended.
fn late_until(
    late: &Late,
    event: &StoredEvent,
    routing: &Routing,
    rooms: usize,
    now: i64,
) -> Option<i64> {
    let pending = routing
        .deliveries
        .iter()
        .filter(|d| d.status == DeliveryStatus::Pending)
        .count();
    // A route waiting for its plugin must be in the store before the plugin comes: the loop
    // looks for waiting routes there when it does.
    let waits = routing
        .results
        .iter()
        .any(|r| r.outcome == Outcome::Waiting);
    if pending == 0 || rooms < pending || waits {
        return None;
    }
    late.deadline(event, now)
}

/// Reserves a place in the hand-off for each pending delivery of `routing` whose target has room.
fn reserve(
    handoff: &mut Handoff,
    cfg: &Config,
    event: &StoredEvent,
    routing: &Routing,
    now: i64,
) -> Vec<Reserved> {
    let mut reserved = Vec::new();
    for d in &routing.deliveries {
        if d.status != DeliveryStatus::Pending {
            continue;
        }
        let Some(target) = cfg.targets.get(&d.target) else {
            continue;
        };
        let Some(room) = handoff.reserve(target, now) else {
            continue;
        };
        let delivery = DueDelivery {
            id: d.id.clone(),
            event_id: routing.event_id.clone(),
            event_type: routing.event_type.clone(),
            body: d.body.clone().unwrap_or_else(|| event.body.clone()),
            headers: d.headers.clone(),
            attempts: 0,
            created_at: now,
        };
        let lease_until = now.saturating_add(handoff::lease_ms(target));
        reserved.push(Reserved {
            room,
            delivery,
            lease_until,
        });
    }
    reserved
}

/// Hands the reserved deliveries the store wrote to the worker; the others' places are freed
/// (their event was routed already, by a replay's duplicate say).
fn hand_over(sender: &HandoffSender, reserved: Vec<Reserved>, written: &[String]) {
    let written: HashSet<&str> = written.iter().map(String::as_str).collect();
    for r in reserved {
        if written.contains(r.delivery.id.as_str()) {
            sender.send(r.room, r.delivery, r.lease_until);
        }
    }
}

/// Records routings, retrying while the store is unavailable: the events stay unrouted until then.
/// `None` when shutdown came first; else the leased deliveries written.
pub(super) async fn record(
    store: &dyn Store,
    batch: Arc<RoutingBatch>,
    clock: crate::Clock,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<Vec<String>> {
    loop {
        match store.record_routing(batch.clone(), clock.now_ms()).await {
            Ok(written) => return Some(written),
            Err(e) => {
                // A database's message may quote event types or details taken from bodies.
                tracing::warn!(error = %crate::log_safe::Escaped(&e), "cannot record routing; retrying");
                if super::pause(shutdown, Duration::from_millis(500)).await {
                    return None;
                }
            }
        }
    }
}
