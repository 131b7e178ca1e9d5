//! The routing backlog: events committed by ingress and not yet routed. Ingress asks it before
//! storing an event and, past `server.max_backlog`, refuses with 503 and `Retry-After`, so a
//! producer faster than routing is slowed down instead of filling the store without bound.
//!
//! The count is kept in memory and read from the store every [`REFRESH`], which corrects any drift
//! and, on a shared PostgreSQL store, brings in the other instances' events. Ingress reserves a
//! place before it stores an event (so concurrent requests cannot all take the last one), and the
//! routing loop gives places back as its batches land. The count must never be lower than the
//! events it stands for, or ingress admits past the bound: a refresh therefore keeps on top of
//! the store's number everything that may have happened outside the store's snapshot (events being
//! stored, events committed while it read), and a routing that began before a refresh is not
//! subtracted from it (the store may already have counted it routed). Either over-counts until the
//! next refresh, which is the safe side.

use super::shed;
use crate::store::{Store, StoreError};
use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use tokio::sync::watch;

/// How often the count is read from the store.
pub(crate) const REFRESH: Duration = Duration::from_secs(1);
/// How often a full backlog is logged while it lasts.
const WARN_EVERY_MS: i64 = 10_000;

/// Committed-but-unrouted events, shared by ingress, the routing loop and the refresher.
#[derive(Debug, Default)]
pub(crate) struct Backlog {
    counts: Mutex<Counts>,
    last_warning_ms: AtomicI64,
}

/// The counts behind [`Backlog`]: a few integers changed together, under one short lock.
#[derive(Debug, Default)]
struct Counts {
    /// Events waiting to be routed, those being stored included.
    waiting: u64,
    /// Places reserved by ingress and neither committed nor given back yet.
    storing: u64,
    /// Reservations that became committed events since the process started (a running total).
    committed: u64,
    /// Moved on by every refresh: a routing that began before it is not subtracted after it.
    epoch: u64,
}

/// Ingress's answer when the backlog is full.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("routing backlog is full ({count} events waiting, limit {limit}); retry later")]
pub(crate) struct Full {
    pub(crate) count: u64,
    pub(crate) limit: u64,
}

/// A place in the backlog held by an event being stored. Given back with [`Reservation::release`]
/// when the store refused the event; dropped, it counts as stored: a request cancelled during its
/// insert may still have been committed, and over-counting lasts only until the next refresh.
#[must_use = "a reservation is released when the event was not stored"]
pub(crate) struct Reservation<'a> {
    backlog: &'a Backlog,
    released: bool,
}

/// Taken when a routing batch begins to be recorded, handed back with it to [`Backlog::routed`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket {
    epoch: u64,
}

/// Taken before the store is read, handed back with its count to [`Backlog::counted`].
#[derive(Debug, Clone, Copy)]
struct Reading {
    committed: u64,
}

impl Backlog {
    /// Whether one more event may be stored under `limit`, without reserving a place: the cheap
    /// check before a body is read. Logs a full backlog at most once per interval, however many
    /// requests it refuses.
    pub(crate) fn admit(&self, limit: u64) -> Result<(), Full> {
        let count = self.counts.lock().waiting;
        self.check(count, limit)
    }

    /// Reserves a place for an event about to be stored, or refuses past `limit`.
    pub(crate) fn reserve(&self, limit: u64) -> Result<Reservation<'_>, Full> {
        let mut counts = self.counts.lock();
        self.check(counts.waiting, limit)?;
        counts.waiting += 1;
        counts.storing += 1;
        Ok(Reservation {
            backlog: self,
            released: false,
        })
    }

    fn check(&self, count: u64, limit: u64) -> Result<(), Full> {
        if count < limit {
            return Ok(());
        }
        let now = crate::now_ms();
        let last = self.last_warning_ms.load(Ordering::Relaxed);
        if now - last >= WARN_EVERY_MS
            && self
                .last_warning_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                count,
                limit,
                "routing backlog full: ingress answers 503 until it drains"
            );
        }
        Err(Full { count, limit })
    }

    /// Taken before a routing batch's commit begins; see [`Backlog::routed`].
    pub(crate) fn ticket(&self) -> Ticket {
        Ticket {
            epoch: self.counts.lock().epoch,
        }
    }

    /// A routing batch of `n` events, begun with `ticket`, landed. Subtracted only if no refresh
    /// came in between: one that did may have read these events as routed already.
    pub(crate) fn routed(&self, ticket: Ticket, n: u64) {
        let mut counts = self.counts.lock();
        if counts.epoch == ticket.epoch {
            counts.waiting = counts.waiting.saturating_sub(n);
        }
    }

    /// Counts the backlog in the store now. The server does this once before ingress opens, so a
    /// restart onto a full backlog refuses from its first request rather than after the first
    /// refresh.
    pub(crate) async fn count_in(&self, store: &dyn Store) -> Result<(), StoreError> {
        let reading = self.reading();
        let n = store.unrouted_count().await?;
        self.counted(reading, n);
        Ok(())
    }

    /// Events waiting now, as last counted.
    #[cfg(test)]
    pub(crate) fn count(&self) -> u64 {
        self.counts.lock().waiting
    }

    fn reading(&self) -> Reading {
        Reading {
            committed: self.counts.lock().committed,
        }
    }

    /// The store counted `n` unrouted events in a read begun at `reading`. Events still being
    /// stored and those committed since the read began may be missing from `n`: they are added.
    fn counted(&self, reading: Reading, n: u64) {
        let mut counts = self.counts.lock();
        let since = counts.committed.saturating_sub(reading.committed);
        counts.waiting = n + counts.storing + since;
        counts.epoch += 1;
    }
}

impl Reservation<'_> {
    /// The store did not take the event: its place is free again.
    pub(crate) fn release(mut self) {
        self.released = true;
        let mut counts = self.backlog.counts.lock();
        counts.storing = counts.storing.saturating_sub(1);
        counts.waiting = counts.waiting.saturating_sub(1);
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if !self.released {
            let mut counts = self.backlog.counts.lock();
            counts.storing = counts.storing.saturating_sub(1);
            counts.committed += 1;
        }
    }
}

/// Reads the true count from the store every [`REFRESH`] until `shutdown` turns true, and, every
/// [`shed::REFRESH`], the targets' queues with it (one store round trip a second in all: each
/// query waits on the store's writer). A store that cannot answer leaves the counts as they were:
/// ingress's own answers then say whether the store can take events.
pub(crate) async fn refresh(
    backlog: Arc<Backlog>,
    queues: watch::Sender<Arc<shed::Depths>>,
    store: Arc<dyn Store>,
    mut shutdown: watch::Receiver<bool>,
) {
    let every = (shed::REFRESH.as_millis() / REFRESH.as_millis()).max(1);
    let mut round: u128 = 0;
    while !*shutdown.borrow() {
        if round.is_multiple_of(every) {
            let reading = backlog.reading();
            match store.queue_depth().await {
                Ok(depth) => {
                    backlog.counted(reading, depth.unrouted);
                    queues.send_replace(Arc::new(depth.pending.into_iter().collect()));
                }
                Err(e) => tracing::debug!(error = %e, "cannot count the queues"),
            }
        } else {
            if let Err(e) = backlog.count_in(&*store).await {
                tracing::debug!(error = %e, "cannot count the routing backlog");
            }
        }
        round += 1;
        tokio::select! {
            _ = tokio::time::sleep(REFRESH) => {}
            _ = shutdown.changed() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_below_the_limit_and_refuses_at_it() {
        let b = Backlog::default();
        assert!(b.admit(2).is_ok());
        drop(b.reserve(2).unwrap());
        drop(b.reserve(2).unwrap());
        let full = b.admit(2).unwrap_err();
        assert_eq!((full.count, full.limit), (2, 2));
        assert!(b.reserve(2).is_err());
        b.routed(b.ticket(), 5);
        assert_eq!(b.count(), 0);
        assert!(b.admit(2).is_ok());
    }

    #[test]
    fn concurrent_requests_cannot_share_the_last_place() {
        let b = Backlog::default();
        let first = b.reserve(1).unwrap();
        assert!(b.reserve(1).is_err(), "the place is reserved");
        first.release();
        assert_eq!(b.count(), 0);
        let _second = b.reserve(1).unwrap();
        assert_eq!(b.count(), 1);
    }

    #[test]
    fn an_event_committed_while_the_store_is_read_is_still_counted() {
        let b = Backlog::default();
        let reading = b.reading();
        // Committed after the store's snapshot: missing from its count.
        drop(b.reserve(10).unwrap());
        b.counted(reading, 3);
        assert_eq!(b.count(), 4);
    }

    #[test]
    fn an_event_being_stored_during_a_refresh_is_still_counted() {
        let b = Backlog::default();
        let storing = b.reserve(10).unwrap();
        let reading = b.reading();
        b.counted(reading, 3);
        assert_eq!(b.count(), 4);
        storing.release();
        assert_eq!(b.count(), 3);
    }

    #[test]
    fn a_routing_that_began_before_a_refresh_is_not_subtracted_twice() {
        let b = Backlog::default();
        drop(b.reserve(10).unwrap());
        drop(b.reserve(10).unwrap());
        let ticket = b.ticket();
        // The batch's commit landed before the store's snapshot: the store counts 0.
        let reading = b.reading();
        b.counted(reading, 0);
        b.routed(ticket, 2);
        assert_eq!(b.count(), 0);
        drop(b.reserve(10).unwrap());
        assert_eq!(b.count(), 1, "a later event is counted, not cancelled out");
        b.routed(b.ticket(), 1);
        assert_eq!(b.count(), 0);
    }
}
