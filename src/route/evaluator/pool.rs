//! Several evaluators side by side, one per core by default: a batch is cut into contiguous runs
//! evaluated at the same time, each in its own child, and the answers come back in event order.
//! A failure in one run never touches another run's events.

use super::{EvalError, Evaluator};
use crate::config::Config;
use crate::store::{Routing, StoredEvent};
use std::path::PathBuf;
use std::sync::Arc;

/// Fewest events worth a child's round trip of their own: a smaller batch stays in fewer runs.
const MIN_RUN: usize = 8;

/// The evaluators the routing loop spreads its batches over.
pub(crate) struct Pool {
    workers: Vec<Evaluator>,
}

impl Pool {
    /// `size` evaluators (at least one), each a child running `exe __route-worker`, or a thread
    /// when `exe` is `None`.
    pub(crate) fn new(exe: Option<PathBuf>, size: usize) -> Self {
        let workers = (0..size.max(1))
            .map(|_| Evaluator::new(exe.clone()))
            .collect();
        Self { workers }
    }

    /// Starts every child now rather than at the first batch, so the first events after the
    /// gateway starts do not wait for children to start and compile the mappings (after a reload,
    /// the first batch still replaces them). A child that cannot start is only logged: the first
    /// batch tries again and fails its events' way.
    pub(crate) async fn start(&mut self, config: &Arc<Config>) {
        let starts = self.workers.iter_mut().map(|w| w.start(config));
        for result in futures_util::future::join_all(starts).await {
            if let Err(e) = result {
                tracing::warn!(error = %e, "route evaluator did not start; retrying at the first event");
            }
        }
    }

    /// Routes `events`, one answer per event in order. `None` marks an event left unevaluated
    /// because an earlier event of its run failed: it stays unrouted and comes back next round.
    pub(crate) async fn route_batch(
        &mut self,
        config: &Arc<Config>,
        events: &[StoredEvent],
    ) -> Vec<Option<Result<Routing, EvalError>>> {
        let runs = runs(events.len(), self.workers.len());
        let work = self
            .workers
            .iter_mut()
            .zip(runs.iter().map(|r| &events[r.clone()]))
            .map(|(worker, run)| async move {
                let mut answers: Vec<Option<_>> = worker
                    .route_batch(config, run)
                    .await
                    .into_iter()
                    .map(Some)
                    .collect();
                answers.resize_with(run.len(), || None);
                answers
            });
        futures_util::future::join_all(work)
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    /// Routes `event` through route `only` alone (on the first evaluator).
    pub(crate) async fn route_alone(
        &mut self,
        config: &Arc<Config>,
        event: &StoredEvent,
        only: &str,
    ) -> Result<Routing, EvalError> {
        match self.workers.first_mut() {
            Some(worker) => worker.route_alone(config, event, only).await,
            None => Err(EvalError::Unavailable("no evaluator".into())),
        }
    }
}

/// Cuts `len` events into at most `workers` contiguous runs of at least [`MIN_RUN`] events (the
/// last may be shorter), as even as possible.
fn runs(len: usize, workers: usize) -> Vec<std::ops::Range<usize>> {
    let count = len.div_ceil(MIN_RUN).clamp(1, workers.max(1));
    let size = len.div_ceil(count);
    (0..len)
        .step_by(size.max(1))
        .map(|start| start..(start + size).min(len))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::runs;

    #[test]
    #[allow(clippy::single_range_in_vec_init)]
    fn runs_cover_every_event_once_in_order() {
        assert_eq!(runs(0, 2), Vec::<std::ops::Range<usize>>::new());
        assert_eq!(runs(5, 2), [0..5]);
        assert_eq!(runs(20, 2), [0..10, 10..20]);
        assert_eq!(runs(21, 2), [0..11, 11..21]);
        assert_eq!(runs(256, 4), [0..64, 64..128, 128..192, 192..256]);
        assert_eq!(runs(9, 1), [0..9]);
    }
}
