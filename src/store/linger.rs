//! Whether a group commit waits a moment for more writes before it commits a small batch (the
//! SQLite writer thread, PostgreSQL's batchers).
//!
//! A commit costs about as much CPU as a dozen inserts (SQLite's WAL frames and sync; a
//! statement, a transaction and a WAL flush on PostgreSQL). Under heavy load writes queue up
//! while the last commit runs, so batches are large by themselves. At moderate rates (a few
//! thousand events a second) they are not: each event got a commit of its own, and the SQLite
//! writer spent twice its closed-loop CPU per event (BENCHMARKS.md). A wait of [`Linger::WAIT`]
//! lets a stream of concurrent callers share one commit. A caller that sends one write at a time
//! gains nothing from it, only latency; so a wait that gathered nothing makes the next small
//! batches skip it, twice as many each time it gathers nothing again (up to [`Linger::MAX_SKIP`]):
//! such a caller then waits once in that many writes.
//!
//! Pure policy: it never touches a queue or the clock (the callers do both).

use std::time::Duration;

#[derive(Debug, Default)]
pub(in crate::store) struct Linger {
    /// Small batches still to commit without waiting.
    skip: u32,
    /// How many `skip` becomes after the next wait that gathers nothing.
    backoff: u32,
}

impl Linger {
    /// The longest a batch waits. Small beside the 20 ms latency target at moderate rates (issue
    /// 12); long enough for a few thousand events a second to share commits.
    pub(in crate::store) const WAIT: Duration = Duration::from_millis(1);

    /// Batches this large do not wait: load that fills them needs no help.
    pub(in crate::store) const ENOUGH: usize = 8;

    /// The most small batches skipped after waits that gathered nothing.
    pub(in crate::store) const MAX_SKIP: u32 = 64;

    /// Whether a batch of `len` operations, all of a kind that is sent concurrently (see the
    /// writer), should wait for more.
    pub(in crate::store) fn wait(&mut self, len: usize) -> bool {
        if len >= Self::ENOUGH {
            return false;
        }
        if self.skip > 0 {
            self.skip -= 1;
            return false;
        }
        true
    }

    /// What the wait [`Linger::wait`] allowed gathered: `gained` more operations.
    pub(in crate::store) fn gathered(&mut self, gained: usize) {
        if gained > 0 {
            self.backoff = 0;
        } else {
            self.backoff = (self.backoff * 2).clamp(1, Self::MAX_SKIP);
            self.skip = self.backoff;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How many of `n` single-operation batches wait, when no wait ever gathers anything.
    fn waits_of_a_sequential_caller(linger: &mut Linger, n: usize) -> usize {
        (0..n)
            .filter(|_| {
                let wait = linger.wait(1);
                if wait {
                    linger.gathered(0);
                }
                wait
            })
            .count()
    }

    #[test]
    fn a_stream_of_callers_waits_every_time_a_sequential_one_ever_more_rarely() {
        let mut stream = Linger::default();
        for _ in 0..100 {
            assert!(stream.wait(2));
            stream.gathered(3);
        }

        let mut sequential = Linger::default();
        // Waits at 1, 3, 6, 11, 20, 37, 70, then every 65th.
        assert_eq!(waits_of_a_sequential_caller(&mut sequential, 70), 7);
        assert_eq!(waits_of_a_sequential_caller(&mut sequential, 650), 10);

        // A wait that gathers something again: back to waiting every time.
        while !sequential.wait(1) {}
        sequential.gathered(1);
        assert!(sequential.wait(1));
    }

    #[test]
    fn full_batches_never_wait_and_do_not_count_as_misses() {
        let mut linger = Linger::default();
        assert!(!linger.wait(Linger::ENOUGH));
        assert!(!linger.wait(500));
        assert!(linger.wait(Linger::ENOUGH - 1));
    }
}
