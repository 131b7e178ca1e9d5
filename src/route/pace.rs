//! Pacing the route loop to the delivery worker: a batch whose pending deliveries would not all
//! fit in the worker's hand-off waits a little for room before it is recorded.
//!
//! Without it, a loop that routes faster than a healthy target takes deliveries spills the
//! excess to the store (written pending, claimed back, each delivery written three times instead
//! of once), which slows the store and so the worker further: measured on PostgreSQL with 256
//! senders, 47,000 of 60,000 deliveries went that way, at half the rate, and the pending
//! deliveries piled up in the store instead of the routing backlog that ingress pushes back on.
//! Waiting keeps the excess unrouted, where the backlog bound sees it.
//!
//! A slow target must not hold up the events bound for others: a wait is bounded
//! ([`MAX_WAIT`]), and a target whose room did not come in time is not waited for again for a
//! while ([`AFTER_TIMEOUT`]); its deliveries spill to the store, as before. Targets that take
//! nothing now (disabled, breaker open, rate spent) are never waited for. This module must never
//! drop or reorder a routing: it only delays the batch.

use crate::config::Config;
use crate::deliver::handoff::Handoff;
use crate::store::{DeliveryStatus, Routing};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The longest a batch waits for room.
const MAX_WAIT: Duration = Duration::from_millis(100);
/// How often the room is looked at meanwhile.
const POLL: Duration = Duration::from_millis(1);
/// How long a target whose room did not come in time is not waited for.
const AFTER_TIMEOUT: Duration = Duration::from_secs(1);

/// Which targets were waited for in vain, and when.
#[derive(Debug, Default)]
pub(super) struct Pace {
    timed_out: HashMap<String, Instant>,
}

impl Pace {
    /// Waits, at most [`MAX_WAIT`], until every target the batch's pending deliveries go to has
    /// room for them (or for as many as it holds at most). Returns early on shutdown.
    pub(super) async fn wait_for_room<'a>(
        &mut self,
        handoff: &mut Handoff,
        cfg: &Config,
        routings: impl IntoIterator<Item = &'a Routing>,
        clock: crate::Clock,
        shutdown: &mut watch::Receiver<bool>,
    ) {
        let mut needs: HashMap<&str, usize> = HashMap::new();
        for d in routings.into_iter().flat_map(|r| &r.deliveries) {
            if d.status == DeliveryStatus::Pending {
                *needs.entry(d.target.as_str()).or_default() += 1;
            }
        }
        let start = Instant::now();
        self.timed_out
            .retain(|_, at| start.duration_since(*at) < AFTER_TIMEOUT);
        needs.retain(|target, _| !self.timed_out.contains_key(*target));
        loop {
            let now = clock.now_ms();
            needs.retain(|target, need| {
                let room = cfg.targets.get(*target).and_then(|t| handoff.room(t, now));
                room.is_some_and(|(free, cap)| free < (*need).min(cap))
            });
            if needs.is_empty() || *shutdown.borrow() {
                return;
            }
            if start.elapsed() >= MAX_WAIT {
                for target in needs.keys() {
                    self.timed_out.insert((*target).to_string(), Instant::now());
                }
                return;
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deliver::handoff::{Room, handoff};
    use crate::deliver::{Gates, TargetSwitch};
    use crate::store::{NewDelivery, StoredEvent};

    fn config() -> Config {
        let toml = "[targets.t]\nurl = \"http://127.0.0.1:9/\"\nconcurrency = 1\n";
        Config::parse(toml, "test.toml", &|_| None).expect("valid config")
    }

    /// A routing with `n` pending deliveries to `t`.
    fn routing(n: usize) -> Routing {
        let mut r = Routing::new(&StoredEvent::blank("e", 0));
        for i in 0..n {
            r.deliveries.push(NewDelivery::pending(&format!("d{i}")));
        }
        r
    }

    #[tokio::test]
    async fn a_batch_waits_for_room_a_bounded_time_and_not_again_for_a_target_that_kept_none() {
        let cfg = config();
        let (mut handoff, _queues) = handoff(TargetSwitch::default(), Gates::default());
        let (clock, (_tx, mut shutdown)) = (crate::Clock::new(), watch::channel(false));
        let t = cfg.targets["t"].clone();
        let mut pace = Pace::default();
        let started = Instant::now();
        pace.wait_for_room(&mut handoff, &cfg, [&routing(2)], clock, &mut shutdown)
            .await;
        assert!(started.elapsed() < MAX_WAIT, "room enough: no wait");

        // The target holds four at most (its concurrency, four rounds): fill it.
        let mut rooms: Vec<Room> = (0..4).map_while(|_| handoff.reserve(&t, 0)).collect();
        assert_eq!(rooms.len(), 4);
        let freed = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            rooms.truncate(1);
            rooms
        });
        let started = Instant::now();
        pace.wait_for_room(&mut handoff, &cfg, [&routing(3)], clock, &mut shutdown)
            .await;
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(20) && waited < MAX_WAIT,
            "waits until room frees: {waited:?}"
        );
        let mut rooms = freed.await.expect("task");
        rooms.extend((0..3).map_while(|_| handoff.reserve(&t, 0)));

        // A batch larger than the target holds waits for all of its room, at most MAX_WAIT.
        let started = Instant::now();
        pace.wait_for_room(&mut handoff, &cfg, [&routing(9)], clock, &mut shutdown)
            .await;
        assert!(started.elapsed() >= MAX_WAIT, "no room came: waited it out");
        let started = Instant::now();
        pace.wait_for_room(&mut handoff, &cfg, [&routing(9)], clock, &mut shutdown)
            .await;
        assert!(
            started.elapsed() < MAX_WAIT,
            "a target that kept no room is not waited for again at once"
        );
        drop(rooms);
    }
}
