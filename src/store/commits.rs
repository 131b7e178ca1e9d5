//! How long the store's group commits take: the one number that tells an operator whether a slow
//! disk is what holds ingress up (every `202` waits for a commit).
//!
//! Written by the store's committing code (the SQLite writer thread, PostgreSQL's batchers) on
//! every commit without a lock, read by `/metrics`. It must never block or fail a commit.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Bucket bounds, in seconds: fsyncs take well under a millisecond on a quiet disk, and tens of
/// milliseconds when the disk or its host is busy.
pub(crate) const BOUNDS: [f64; 11] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

/// Commit durations so far, as a histogram.
#[derive(Debug, Default)]
pub(crate) struct CommitTimes {
    /// Per bucket (not cumulative); the last counts what is above every bound.
    buckets: [AtomicU64; BOUNDS.len() + 1],
    sum_micros: AtomicU64,
}

/// A copy of [`CommitTimes`] at one moment, for rendering.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CommitStats {
    /// Commits at or under each of [`BOUNDS`], cumulative.
    pub(crate) at_most: Vec<u64>,
    pub(crate) count: u64,
    pub(crate) sum_secs: f64,
}

impl Default for CommitStats {
    fn default() -> Self {
        CommitTimes::default().stats()
    }
}

impl CommitTimes {
    pub(crate) fn observe(&self, took: Duration) {
        let secs = took.as_secs_f64();
        let i = BOUNDS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(BOUNDS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    pub(crate) fn stats(&self) -> CommitStats {
        let mut at_most = Vec::with_capacity(BOUNDS.len());
        let mut count = 0;
        for (i, bucket) in self.buckets.iter().enumerate() {
            count += bucket.load(Ordering::Relaxed);
            if i < BOUNDS.len() {
                at_most.push(count);
            }
        }
        CommitStats {
            at_most,
            count,
            sum_secs: self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_land_in_their_bucket_and_the_counts_add_up() {
        let times = CommitTimes::default();
        for ms in [0, 3, 3, 40, 2_000] {
            times.observe(Duration::from_millis(ms));
        }
        let s = times.stats();
        assert_eq!(s.count, 5);
        // ≤0.5 ms: 1; ≤5 ms: 3; ≤50 ms: 4; ≤1 s: still 4 (the 2 s commit is above every bound).
        assert_eq!(s.at_most, [1, 1, 1, 3, 3, 3, 4, 4, 4, 4, 4]);
        assert!((s.sum_secs - 2.046).abs() < 1e-9);
    }
}
