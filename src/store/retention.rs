//! Retention: finished events, deliveries and attempts older than `store.retention` are deleted
//! in the background, a small batch per transaction, so pruning never holds the writer long
//! enough to delay ingress. Pending deliveries (and their events) are never pruned.

use super::Store;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Rows deleted per transaction.
const BATCH: usize = 500;

/// Prunes until `shutdown` turns true, looking every `retention / 10` (between 100 ms and 1 min).
pub(crate) async fn run(
    store: Arc<dyn Store>,
    retention: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let every = (retention / 10).clamp(Duration::from_millis(100), Duration::from_secs(60));
    while !*shutdown.borrow() {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => return,
        }
        // Saturating: a retention longer than the epoch is old keeps everything, where a
        // wrapping cast once made the cut-off a future time and pruned everything.
        let before = crate::now_ms().saturating_sub(crate::duration_ms(retention));
        let mut pruned = 0;
        loop {
            match store.prune(before, BATCH).await {
                Ok(n) => {
                    pruned += n;
                    if n < BATCH {
                        break;
                    }
                    // Let ingress's commits in between batches.
                    tokio::task::yield_now().await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "retention: prune failed; will try again");
                    break;
                }
            }
        }
        if pruned > 0 {
            tracing::info!(rows = pruned, "retention: pruned finished records");
        }
    }
}
