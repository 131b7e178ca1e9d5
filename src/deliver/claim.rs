//! Claiming due deliveries from the store (retries, and what the route loop could not hand over)
//! ahead of the free permits.
//!
//! A claim runs as its own task and queues what it leased in the worker's
//! [`Queues`](super::handoff::Queues), beside the route loop's hand-overs. The worker goes on
//! starting attempts while the claim waits for its commit, and an attempt never waits for a
//! claim: a permit that frees finds the next delivery already in memory. One claim runs at a time,
//! for every target with room at once, so their statements share a commit.
//!
//! Must never hold more of a target in memory than its claim room ([`Rooms`]), nor claim for a
//! target that cannot send now (disabled, breaker open, rate limit spent).

use super::Context;
use super::config::Target;
use super::handoff::{HandoffSender, Room, Rooms, lease_ms};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// Most deliveries claimed for one target in one go.
const MAX_CLAIM: usize = 256;

/// The worker's claims: the room they hold per target, and the one running.
#[derive(Default)]
pub(crate) struct Claims {
    rooms: Rooms,
    running: Option<JoinHandle<usize>>,
}

/// What [`Claims::start`] did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Start {
    /// A claim runs; [`Claims::finished`] says how many it leased.
    Started,
    /// Nothing started, and some target that can send has no room left: an attempt that ends
    /// frees some, and its wake-up should look again.
    NoRoom,
    /// Nothing started because no target can send now (disabled, breaker open, rate limit
    /// spent): look again when one can.
    NoTarget,
}

/// One target's part of a claim.
struct Ask {
    target: String,
    limit: usize,
    lease_ms: i64,
    held: Arc<AtomicUsize>,
}

impl Claims {
    /// Whether no claim is running.
    pub(crate) fn idle(&self) -> bool {
        self.running.is_none()
    }

    /// How many deliveries the last claim leased, once it has finished; `None` while it runs or
    /// when none was started since the last call.
    pub(crate) async fn finished(&mut self) -> Option<usize> {
        if !self.running.as_ref()?.is_finished() {
            return None;
        }
        match self.running.take()?.await {
            Ok(claimed) => Some(claimed),
            Err(e) => {
                // Its leases run out and the next claim takes them.
                tracing::error!(error = %e, "claim task failed");
                Some(0)
            }
        }
    }

    /// Starts a claim for every target with room that can send now. Its deliveries go to
    /// `queue`, and `done` is notified when it ends.
    pub(crate) fn start<'a>(
        &mut self,
        ctx: &Context,
        targets: impl Iterator<Item = &'a Arc<Target>>,
        queue: HandoffSender,
        done: Arc<Notify>,
    ) -> Start {
        let now = ctx.clock.now_ms();
        let mut asks = Vec::new();
        let mut short_of_room = false;
        for target in targets {
            let name = &target.name;
            // A disabled target's deliveries wait, pending, until it is enabled again.
            if ctx.switch.is_disabled(name) {
                continue;
            }
            let admitted = ctx.gates.admits(name, now).unwrap_or(usize::MAX);
            if admitted == 0 {
                continue;
            }
            let (room, held) = self.rooms.free(target);
            short_of_room |= room == 0;
            let limit = room.min(MAX_CLAIM).min(admitted);
            if limit > 0 {
                asks.push(Ask {
                    target: name.clone(),
                    limit,
                    lease_ms: lease_ms(target),
                    held,
                });
            }
        }
        if asks.is_empty() {
            return if short_of_room {
                Start::NoRoom
            } else {
                Start::NoTarget
            };
        }
        let store = ctx.store.clone();
        self.running = Some(tokio::spawn(async move {
            let claims = asks.iter().map(|ask| {
                let store = store.clone();
                async move {
                    store
                        .claim_due(&ask.target, now, ask.limit, ask.lease_ms)
                        .await
                }
            });
            let mut claimed = 0;
            for (ask, due) in asks
                .iter()
                .zip(futures_util::future::join_all(claims).await)
            {
                match due {
                    Ok(due) => {
                        claimed += due.len();
                        let lease_until = now.saturating_add(ask.lease_ms);
                        for d in due {
                            queue.send(Room::take(&ask.held, &ask.target), d, lease_until);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(target = %ask.target, error = %e, "cannot claim deliveries")
                    }
                }
            }
            done.notify_one();
            claimed
        }));
        Start::Started
    }
}
