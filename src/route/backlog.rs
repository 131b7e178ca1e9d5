//! The routing backlog: events committed by ingress and not yet routed. Ingress asks it before
//! storing an event and, past `server.max_backlog`, refuses with 503 and `Retry-After`, so a
//! producer faster than routing is slowed down instead of filling the store without bound.
//!
//! The count is kept in memory (ingress adds, the routing loop subtracts) and set from the store
//! every [`REFRESH`], which corrects any drift and, on a shared PostgreSQL store, brings in the
//! other instances' events. It must never refuse on a stale reading for longer than that.

use super::shed;
use crate::store::Store;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::watch;

/// How often the count is read from the store.
pub(crate) const REFRESH: Duration = Duration::from_secs(1);
/// How often a full backlog is logged while it lasts.
const WARN_EVERY_MS: i64 = 10_000;

/// Committed-but-unrouted events, shared by ingress, the routing loop and the refresher.
#[derive(Debug, Default)]
pub(crate) struct Backlog {
    count: AtomicU64,
    last_warning_ms: AtomicI64,
}

/// Ingress's answer when the backlog is full.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("routing backlog is full ({count} events waiting, limit {limit}); retry later")]
pub(crate) struct Full {
    pub(crate) count: u64,
    pub(crate) limit: u64,
}

impl Backlog {
    /// Whether one more event may be stored under `limit`. Logs a full backlog at most once per
    /// interval, however many requests it refuses.
    pub(crate) fn admit(&self, limit: u64) -> Result<(), Full> {
        let count = self.count.load(Ordering::Relaxed);
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

    /// Ingress committed `n` events.
    pub(crate) fn added(&self, n: u64) {
        self.count.fetch_add(n, Ordering::Relaxed);
    }

    /// The routing loop recorded the routing of `n` events.
    pub(crate) fn routed(&self, n: u64) {
        let _ = self
            .count
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| {
                Some(c.saturating_sub(n))
            });
    }

    /// Events waiting now, as last counted.
    #[cfg(test)]
    pub(crate) fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    fn set(&self, n: u64) {
        self.count.store(n, Ordering::Relaxed);
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
            match store.queue_depth().await {
                Ok(depth) => {
                    backlog.set(depth.unrouted);
                    queues.send_replace(Arc::new(depth.pending.into_iter().collect()));
                }
                Err(e) => tracing::debug!(error = %e, "cannot count the queues"),
            }
        } else {
            match store.unrouted_count().await {
                Ok(n) => backlog.set(n),
                Err(e) => tracing::debug!(error = %e, "cannot count the routing backlog"),
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
        b.added(2);
        let full = b.admit(2).unwrap_err();
        assert_eq!((full.count, full.limit), (2, 2));
        b.routed(5);
        assert_eq!(b.count(), 0);
        assert!(b.admit(2).is_ok());
    }
}
