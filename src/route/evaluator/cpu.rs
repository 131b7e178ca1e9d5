//! When an event's deadline has really passed. The deadline (`jq.timeout_ms`) bounds the CPU a
//! mapping may spend on one event; on a busy machine the child may wait for a core far longer
//! than it runs, and an event failed for that would be failed for good (its route recorded
//! `failed`, nothing retries it). So when the wall-clock deadline passes, the child's CPU time
//! (`/proc/<pid>/stat`) decides: less than the deadline since the batch began (or since an
//! earlier event of it that also ran past its wall-clock deadline), and the event gets more time,
//! up to [`WALL_FACTOR`] times the deadline in all. This module only reads: it must
//! never be consulted per event (a system call each), only per batch and when a deadline passes.

use std::fs::File;
use std::os::unix::fs::FileExt as _;
use std::time::Duration;

/// Clock ticks per second of `/proc`'s `utime` and `stime`: `USER_HZ`, 100 on every Linux ABI.
const TICKS_PER_SECOND: u64 = 100;
/// However little CPU the child got, an event is given up on after this many deadlines of wall
/// time: a starved machine must not hold the route loop without bound.
pub(super) const WALL_FACTOR: u32 = 10;
/// The least extra time given at once, so a child close to its budget is not polled in a loop
/// (the clock's ticks are 10 ms).
const MIN_WAIT: Duration = Duration::from_millis(20);

/// A child's CPU clock: its `/proc/<pid>/stat`, kept open and read again from the start.
#[derive(Debug)]
pub(super) struct CpuClock {
    stat: File,
}

impl CpuClock {
    /// The clock of process `pid`; `None` where `/proc` cannot say (the deadline is then wall
    /// time alone, as before).
    pub(super) fn of(pid: u32) -> Option<Self> {
        File::open(format!("/proc/{pid}/stat"))
            .ok()
            .map(|stat| Self { stat })
    }

    /// The CPU time (user and system) the process has used so far.
    pub(super) fn used(&self) -> Option<Duration> {
        let mut buf = [0u8; 1024];
        let n = self.stat.read_at(&mut buf, 0).ok()?;
        parse_stat(std::str::from_utf8(&buf[..n]).ok()?)
    }
}

/// `utime + stime` of a `/proc/<pid>/stat` line.
fn parse_stat(stat: &str) -> Option<Duration> {
    // The command name (field 2) is in parentheses and may hold spaces and parentheses: the
    // fields after it start past the last ')'. Field 3 is the first there; utime is 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    let ticks = utime.checked_add(stime)?;
    Some(Duration::from_millis(
        ticks.checked_mul(1000)? / TICKS_PER_SECOND,
    ))
}

/// When the wall-clock deadline for an event has passed: how much longer to wait for it, or
/// `None` when it overran. `used` is the CPU the child spent since its batch began, or since the
/// last event that ran past its wall-clock deadline (an upper bound on this event's, so never
/// more lenient than the event deserves); `waited` the wall time this event has had so far.
pub(super) fn more_time(
    deadline: Duration,
    used: Option<Duration>,
    waited: Duration,
) -> Option<Duration> {
    let used = used?;
    if used >= deadline || waited >= deadline.saturating_mul(WALL_FACTOR) {
        return None;
    }
    let cap = deadline.saturating_mul(WALL_FACTOR).saturating_sub(waited);
    Some((deadline - used).max(MIN_WAIT).min(cap))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn a_stat_line_gives_user_plus_system_time() {
        let line =
            "4242 (hook gate) (x)) S 1 4242 4242 0 -1 4194560 1 0 0 0 250 31 0 0 20 0 1 0 9 0 0";
        assert_eq!(parse_stat(line), Some(Duration::from_millis(2810)));
        assert_eq!(parse_stat("4242 (no fields)"), None);
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn this_process_has_a_clock_that_moves() {
        let clock = CpuClock::of(std::process::id()).expect("/proc");
        let before = clock.used().expect("readable");
        // Spins until the clock ticks (10 ms of CPU), however busy the machine.
        let spin = std::time::Instant::now();
        let mut x = 0u64;
        while clock.used().expect("readable") <= before {
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_add(1));
            }
            assert!(
                spin.elapsed() < Duration::from_secs(30),
                "the clock never moved"
            );
        }
    }

    #[test]
    fn a_starved_child_gets_the_cpu_it_has_not_used_a_busy_one_none() {
        // Ran 300 ms of a 1 s budget in a second of wall time: 700 ms more.
        assert_eq!(
            more_time(SECOND, Some(SECOND * 3 / 10), SECOND),
            Some(SECOND * 7 / 10)
        );
        // Used its budget: overran, however long it waited.
        assert_eq!(more_time(SECOND, Some(SECOND), SECOND), None);
        // Close to it: at least the least wait.
        assert_eq!(
            more_time(SECOND, Some(SECOND - Duration::from_millis(1)), SECOND),
            Some(MIN_WAIT)
        );
        // No clock: wall time alone, as before.
        assert_eq!(more_time(SECOND, None, SECOND), None);
        // Never past the wall cap.
        assert_eq!(more_time(SECOND, Some(Duration::ZERO), SECOND * 10), None);
        assert_eq!(
            more_time(SECOND, Some(Duration::ZERO), SECOND * 95 / 10),
            Some(SECOND / 2)
        );
    }
}
