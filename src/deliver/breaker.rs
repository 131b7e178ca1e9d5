//! Circuit breaker and rate limit per target: how many deliveries the worker may claim now.
//!
//! Both are pure state machines over a millisecond clock the caller passes in, so they are tested
//! without waiting. The breaker counts consecutive failed attempts (5xx, timeouts, refused
//! connections — the answers that say "this target is unwell", not a 4xx about one payload);
//! after `failures` of them it opens: nothing is claimed for `cool_down`, so pending deliveries
//! keep their attempts instead of burning them on a dead target. Then one probe goes out
//! (half-open): success closes the breaker, failure opens it again.

use std::time::Duration;

/// `[targets.X] breaker = { failures = 10, cool_down = "30s" }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BreakerPolicy {
    pub(crate) failures: u32,
    pub(crate) cool_down: Duration,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        Self {
            failures: 10,
            cool_down: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BreakerState {
    Closed {
        failures: u32,
    },
    Open {
        until: i64,
    },
    /// One probe may be in flight; `probing` says whether it is.
    HalfOpen {
        probing: bool,
    },
}

impl BreakerState {
    /// As the `hookgate_breaker_state` gauge shows it.
    pub(crate) fn gauge(&self) -> u8 {
        match self {
            Self::Closed { .. } => 0,
            Self::Open { .. } => 1,
            Self::HalfOpen { .. } => 2,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Breaker {
    policy: BreakerPolicy,
    state: BreakerState,
}

impl Breaker {
    pub(crate) fn new(policy: BreakerPolicy) -> Self {
        Self {
            policy,
            state: BreakerState::Closed { failures: 0 },
        }
    }

    pub(crate) fn state(&self) -> BreakerState {
        self.state
    }

    pub(crate) fn set_policy(&mut self, policy: BreakerPolicy) {
        self.policy = policy;
    }

    /// How many deliveries may be claimed now: `None` for no limit, else at most this many.
    pub(crate) fn admits(&mut self, now: i64) -> Option<usize> {
        match self.state {
            BreakerState::Closed { .. } => None,
            BreakerState::Open { until } if now < until => Some(0),
            BreakerState::Open { .. } | BreakerState::HalfOpen { probing: false } => Some(1),
            BreakerState::HalfOpen { probing: true } => Some(0),
        }
    }

    /// The worker claimed `n` deliveries that [`admits`](Self::admits) allowed.
    pub(crate) fn claimed(&mut self, n: usize, now: i64) {
        if n == 0 {
            return;
        }
        if let BreakerState::Open { until } = self.state
            && now >= until
        {
            self.state = BreakerState::HalfOpen { probing: true };
        } else if self.state == (BreakerState::HalfOpen { probing: false }) {
            self.state = BreakerState::HalfOpen { probing: true };
        }
    }

    /// When the worker should look again while the breaker holds deliveries back.
    pub(crate) fn reopens_at(&self) -> Option<i64> {
        match self.state {
            BreakerState::Open { until } => Some(until),
            _ => None,
        }
    }

    /// An attempt ended. `healthy` is false for the answers that count against the target.
    /// Returns true when this result opened the breaker.
    pub(crate) fn record(&mut self, healthy: bool, now: i64) -> bool {
        if healthy {
            self.state = BreakerState::Closed { failures: 0 };
            return false;
        }
        let until = now.saturating_add(crate::duration_ms(self.policy.cool_down));
        match self.state {
            BreakerState::Closed { failures } if failures + 1 >= self.policy.failures => {
                self.state = BreakerState::Open { until };
                true
            }
            BreakerState::Closed { failures } => {
                self.state = BreakerState::Closed {
                    failures: failures + 1,
                };
                false
            }
            BreakerState::HalfOpen { .. } => {
                self.state = BreakerState::Open { until };
                true
            }
            // Attempts that were in flight when it opened: already counted.
            BreakerState::Open { .. } => false,
        }
    }
}

/// `[targets.X] rate_limit = "50/s"`: at most `per_second` attempts per second on average, with
/// bursts up to one second's worth.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Rate {
    pub(crate) per_second: f64,
}

impl Rate {
    /// Parses `N/s`, `N/m` or `N/h` (N may be fractional).
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("`{text}` is not a rate such as \"50/s\", \"600/m\" or \"100/h\"");
        let (n, unit) = text.trim().split_once('/').ok_or_else(bad)?;
        let n: f64 = n.trim().parse().map_err(|_| bad())?;
        let per = match unit.trim() {
            "s" | "sec" | "second" => 1.0,
            "m" | "min" | "minute" => 60.0,
            "h" | "hour" => 3600.0,
            _ => return Err(bad()),
        };
        if !(n.is_finite() && n > 0.0) {
            return Err(bad());
        }
        Ok(Self {
            per_second: n / per,
        })
    }
}

/// A token bucket for one target's [`Rate`].
#[derive(Debug, Clone)]
pub(crate) struct Bucket {
    rate: Rate,
    tokens: f64,
    at: i64,
}

impl Bucket {
    pub(crate) fn new(rate: Rate, now: i64) -> Self {
        Self {
            rate,
            tokens: Self::capacity(rate),
            at: now,
        }
    }

    fn capacity(rate: Rate) -> f64 {
        rate.per_second.max(1.0)
    }

    fn refill(&mut self, now: i64) {
        let elapsed = (now - self.at).max(0) as f64 / 1000.0;
        self.tokens = (self.tokens + elapsed * self.rate.per_second).min(Self::capacity(self.rate));
        self.at = now;
    }

    /// Whole tokens available now.
    pub(crate) fn available(&mut self, now: i64) -> usize {
        self.refill(now);
        self.tokens.floor() as usize
    }

    pub(crate) fn take(&mut self, n: usize, now: i64) {
        self.refill(now);
        self.tokens = (self.tokens - n as f64).max(0.0);
    }

    /// When the next whole token arrives, if none is available now.
    pub(crate) fn next_token_at(&mut self, now: i64) -> Option<i64> {
        self.refill(now);
        if self.tokens >= 1.0 {
            return None;
        }
        let wait_s = (1.0 - self.tokens) / self.rate.per_second;
        // `as` saturates a huge or infinite wait; the add must too.
        Some(now.saturating_add((wait_s * 1000.0).ceil() as i64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> BreakerPolicy {
        BreakerPolicy {
            failures: 3,
            cool_down: Duration::from_secs(10),
        }
    }

    /// Durations and rates past what config validation allows still schedule, saturated,
    /// instead of overflowing the clock (a panic in the worker).
    #[test]
    fn huge_cool_downs_and_tiny_rates_saturate() {
        let mut b = Breaker::new(BreakerPolicy {
            failures: 1,
            cool_down: Duration::MAX,
        });
        assert!(b.record(false, 1_000));
        assert_eq!(b.reopens_at(), Some(i64::MAX));
        let mut bucket = Bucket::new(Rate { per_second: 1e-300 }, 1);
        bucket.take(1, 1);
        assert_eq!(bucket.next_token_at(1), Some(i64::MAX));
    }

    #[test]
    fn opens_after_consecutive_failures_then_probes_once() {
        let mut b = Breaker::new(policy());
        assert!(!b.record(false, 0));
        assert!(!b.record(false, 0));
        assert_eq!(b.admits(0), None);
        assert!(b.record(false, 1_000));
        assert_eq!(b.admits(5_000), Some(0));
        assert_eq!(b.reopens_at(), Some(11_000));
        // Cool-down over: exactly one probe.
        assert_eq!(b.admits(11_000), Some(1));
        b.claimed(1, 11_000);
        assert_eq!(b.admits(11_001), Some(0));
        // The probe fails: open again for a whole cool-down.
        assert!(b.record(false, 12_000));
        assert_eq!(b.admits(12_000), Some(0));
        assert_eq!(b.admits(22_000), Some(1));
        b.claimed(1, 22_000);
        // The probe succeeds: closed, no limit.
        assert!(!b.record(true, 22_100));
        assert_eq!(b.admits(22_100), None);
    }

    #[test]
    fn a_success_resets_the_count() {
        let mut b = Breaker::new(policy());
        b.record(false, 0);
        b.record(false, 0);
        b.record(true, 0);
        b.record(false, 0);
        b.record(false, 0);
        assert_eq!(b.state(), BreakerState::Closed { failures: 2 });
    }

    #[test]
    fn rates_parse() {
        assert_eq!(Rate::parse("50/s").unwrap().per_second, 50.0);
        assert_eq!(Rate::parse("600/m").unwrap().per_second, 10.0);
        assert_eq!(Rate::parse("36/h").unwrap().per_second, 0.01);
        for bad in ["", "5", "0/s", "-1/s", "x/s", "5/d", "inf/s"] {
            assert!(Rate::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bucket_refills_at_the_rate() {
        let mut b = Bucket::new(Rate { per_second: 2.0 }, 0);
        assert_eq!(b.available(0), 2);
        b.take(2, 0);
        assert_eq!(b.available(0), 0);
        assert_eq!(b.next_token_at(0), Some(500));
        assert_eq!(b.available(500), 1);
        assert_eq!(
            b.available(10_000),
            2,
            "bursts are capped at one second's worth"
        );
    }
}
