//! Deliveries handed from the route loop to the worker in memory, so that a fresh delivery is
//! not claimed back from the store that has just written it.
//!
//! The store stays the source of truth. A delivery is handed over only if the route loop
//! reserved room for it *before* recording it, and the store wrote it leased to this process
//! (until its target's timeout plus a minute): no claim takes it meanwhile, here or on another
//! instance. The worker attempts it like a claimed one; if it cannot before the lease would run
//! out during the attempt (its target disabled, its breaker open, a reload removed it), it gives
//! the lease back so a claim takes it. After a crash the lease ends (SQLite: at the next start;
//! PostgreSQL: when the instance stops beating) and another claim does.
//!
//! The worker's claims go through the same queues ([`Queues::sender`]): a claim leases due
//! deliveries ahead of the free permits, and they wait here until a permit frees, so an attempt
//! never waits for a claim's commit.
//!
//! Room is bounded per target and per side (four rounds of its concurrency for hand-overs, four
//! for claims), so a slow target holds a bounded number of deliveries in memory; the rest wait in
//! the store, claimable, as before.

use super::unrecorded::Share;
use super::{Gates, TargetSwitch};
use crate::deliver::config::Target;
use crate::store::DueDelivery;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;

/// Rounds of a target's concurrency that may wait in memory.
const ROUNDS: usize = 4;

/// How long a delivery is leased to the process that attempts it: the attempt's timeout and a
/// minute to record it. Claims and hand-overs lease alike.
pub(crate) fn lease_ms(target: &Target) -> i64 {
    crate::duration_ms(target.timeout.saturating_add(Duration::from_secs(60)))
}

/// One delivery handed over, with the end of its lease.
#[derive(Debug)]
pub(crate) struct Handed {
    pub(crate) delivery: DueDelivery,
    pub(crate) lease_until: i64,
    /// Its place in memory, freed when it is dropped (after its attempt).
    pub(crate) room: Room,
    /// Its part in a routing recorded only after this first attempt (see [`super::unrecorded`]):
    /// then the store holds no row of it, and no lease.
    pub(crate) share: Option<Share>,
}

/// The route loop's side: reserves room, then hands over what the store wrote.
#[derive(Debug)]
pub(crate) struct Handoff {
    sender: HandoffSender,
    rooms: Rooms,
    switch: TargetSwitch,
    gates: Gates,
}

/// Per target, how many deliveries one side holds in memory; at most [`ROUNDS`] rounds of the
/// target's concurrency.
#[derive(Debug, Default)]
pub(crate) struct Rooms(HashMap<String, Arc<AtomicUsize>>);

impl Rooms {
    fn held(&mut self, target: &str) -> &Arc<AtomicUsize> {
        self.0.entry(target.to_string()).or_default()
    }

    fn cap(target: &Target) -> usize {
        target.concurrency.saturating_mul(ROUNDS).max(ROUNDS)
    }

    /// Room for one more delivery of `target`, if it has any.
    pub(crate) fn reserve(&mut self, target: &Target) -> Option<Room> {
        let held = self.held(&target.name).clone();
        let before = held.fetch_add(1, Ordering::AcqRel);
        let room = Room(held, target.name.clone());
        (before < Self::cap(target)).then_some(room)
    }

    /// How many more deliveries of `target` fit, and the count to hold them under (for
    /// [`Room::take`], once they are known).
    pub(crate) fn free(&mut self, target: &Target) -> (usize, Arc<AtomicUsize>) {
        let held = self.held(&target.name).clone();
        let free = Self::cap(target).saturating_sub(held.load(Ordering::Acquire));
        (free, held)
    }
}

/// A reservation for one delivery of a target (give it to [`HandoffSender::send`], or drop it):
/// the target's count of deliveries held in memory, and the target's name.
#[derive(Debug)]
pub(crate) struct Room(Arc<AtomicUsize>, String);

impl Room {
    /// A place under `held` for one delivery of `target` that is already leased (a claim's):
    /// taken even past the cap, which [`Rooms::free`] kept it near.
    pub(crate) fn take(held: &Arc<AtomicUsize>, target: &str) -> Room {
        held.fetch_add(1, Ordering::AcqRel);
        Room(held.clone(), target.to_string())
    }
}

impl Drop for Room {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The worker's side: deliveries handed over or claimed ahead, queued per target.
#[derive(Debug)]
pub(crate) struct Queues {
    rx: mpsc::UnboundedReceiver<Handed>,
    /// For the worker's own claims.
    tx: HandoffSender,
    queues: BTreeMap<String, VecDeque<Handed>>,
}

/// A new hand-off between a route loop and a worker.
pub(crate) fn handoff(switch: TargetSwitch, gates: Gates) -> (Handoff, Queues) {
    let (tx, rx) = mpsc::unbounded_channel();
    let sender = Handoff {
        sender: HandoffSender { tx },
        rooms: Rooms::default(),
        switch,
        gates,
    };
    let queues = Queues {
        rx,
        tx: sender.sender(),
        queues: BTreeMap::new(),
    };
    (sender, queues)
}

impl Handoff {
    /// Room for one more delivery of `target` in memory, if it has any and can take deliveries
    /// now (not disabled, breaker not open).
    pub(crate) fn reserve(&mut self, target: &Target, now: i64) -> Option<Room> {
        if !self.takes_now(target, now) {
            return None;
        }
        self.rooms.reserve(target)
    }

    /// How many more deliveries of `target` fit in memory, and how many it holds at most; `None`
    /// when it takes none now whatever the room (disabled, breaker open, rate spent).
    pub(crate) fn room(&mut self, target: &Target, now: i64) -> Option<(usize, usize)> {
        if !self.takes_now(target, now) {
            return None;
        }
        Some((self.rooms.free(target).0, Rooms::cap(target)))
    }

    fn takes_now(&self, target: &Target, now: i64) -> bool {
        !self.sender.tx.is_closed()
            && !self.switch.is_disabled(&target.name)
            && self.gates.admits(&target.name, now) != Some(0)
    }

    /// What hands deliveries over once their commit landed (from the recording task).
    pub(crate) fn sender(&self) -> HandoffSender {
        self.sender.clone()
    }
}

/// Hands deliveries over. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct HandoffSender {
    tx: mpsc::UnboundedSender<Handed>,
}

impl HandoffSender {
    /// Hands over a delivery the store wrote leased until `lease_until`.
    pub(crate) fn send(&self, room: Room, delivery: DueDelivery, lease_until: i64) {
        self.send_unrecorded(room, delivery, lease_until, None);
    }

    /// Hands over a delivery whose routing is recorded after its first attempt (`share`), to be
    /// attempted before `lease_until`; with no share, as [`Self::send`].
    pub(crate) fn send_unrecorded(
        &self,
        room: Room,
        delivery: DueDelivery,
        lease_until: i64,
        share: Option<Share>,
    ) {
        let handed = Handed {
            delivery,
            lease_until,
            room,
            share,
        };
        // A worker gone (shutdown) drops it: its lease ends and a claim takes it after restart
        // (or its routing, unrecorded, is routed again).
        let _ = self.tx.send(handed);
    }
}

impl Queues {
    /// What the worker's claims queue their deliveries through.
    pub(crate) fn sender(&self) -> HandoffSender {
        self.tx.clone()
    }

    /// Moves what was handed over since the last call into the per-target queues.
    pub(crate) fn collect(&mut self) {
        while let Ok(h) = self.rx.try_recv() {
            self.push(h);
        }
    }

    /// Waits for the next delivery handed over.
    pub(crate) async fn recv(&mut self) {
        match self.rx.recv().await {
            Some(h) => self.push(h),
            None => std::future::pending().await,
        }
    }

    fn push(&mut self, h: Handed) {
        self.queues
            .entry(h.room.1.clone())
            .or_default()
            .push_back(h);
    }

    /// Takes up to `n` deliveries of `target`, oldest first.
    pub(crate) fn take(&mut self, target: &str, n: usize) -> Vec<Handed> {
        let Some(queue) = self.queues.get_mut(target) else {
            return Vec::new();
        };
        let taken = queue.drain(..n.min(queue.len())).collect();
        if queue.is_empty() {
            self.queues.remove(target);
        }
        taken
    }

    /// Takes every delivery queued for a target not in `keep` (removed by a reload).
    pub(crate) fn take_orphans(&mut self, keep: &BTreeMap<String, impl Sized>) -> Vec<Handed> {
        let gone: Vec<String> = self
            .queues
            .keys()
            .filter(|t| !keep.contains_key(*t))
            .cloned()
            .collect();
        gone.into_iter()
            .flat_map(|t| self.queues.remove(&t).unwrap_or_default())
            .collect()
    }

    /// Whether `target` has deliveries queued.
    pub(crate) fn has(&self, target: &str) -> bool {
        self.queues.contains_key(target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn target(concurrency: usize) -> Arc<Target> {
        let toml =
            format!("[targets.t]\nurl = \"http://127.0.0.1:9/\"\nconcurrency = {concurrency}\n");
        let config = Config::parse(&toml, "test.toml", &|_| None).expect("valid config");
        config.targets["t"].clone()
    }

    fn due(id: &str) -> DueDelivery {
        DueDelivery {
            id: id.into(),
            event_id: "e".into(),
            event_type: None,
            body: bytes::Bytes::new(),
            headers: Vec::new(),
            attempts: 0,
            created_at: 0,
        }
    }

    #[test]
    fn room_is_bounded_per_target_and_freed_when_a_delivery_leaves() {
        let (mut sender, mut queues) = handoff(TargetSwitch::default(), Gates::default());
        let t = target(1);
        let mut rooms: Vec<Room> = (0..ROUNDS).map_while(|_| sender.reserve(&t, 0)).collect();
        assert_eq!(rooms.len(), ROUNDS);
        assert!(sender.reserve(&t, 0).is_none(), "full");
        drop(rooms.pop());
        let room = sender
            .reserve(&t, 0)
            .expect("room again once a reservation is dropped");
        sender.sender().send(room, due("d1"), 10);
        assert!(
            sender.reserve(&t, 0).is_none(),
            "a handed delivery holds its room"
        );
        queues.collect();
        assert!(queues.has("t"));
        let taken = queues.take("t", 5);
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].lease_until, 10);
        assert!(!queues.has("t"));
        assert!(
            sender.reserve(&t, 0).is_none(),
            "held while being attempted"
        );
        drop(taken);
        assert!(sender.reserve(&t, 0).is_some());
    }

    #[test]
    fn claims_see_their_free_room_and_hold_it_until_a_delivery_leaves() {
        let (_, mut queues) = handoff(TargetSwitch::default(), Gates::default());
        let t = target(2);
        let mut rooms = Rooms::default();
        let (free, held) = rooms.free(&t);
        assert_eq!(free, 2 * ROUNDS);
        // A claim may bring back what it asked for: rooms taken for each, the cap aside.
        for i in 0..free {
            queues
                .sender()
                .send(Room::take(&held, "t"), due(&format!("d{i}")), 10);
        }
        assert_eq!(
            rooms.free(&t).0,
            0,
            "full once the claim's deliveries are queued"
        );
        queues.collect();
        let taken = queues.take("t", 3);
        assert_eq!(rooms.free(&t).0, 0, "held while being attempted");
        drop(taken);
        assert_eq!(rooms.free(&t).0, 3);
    }
}
