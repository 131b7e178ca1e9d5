//! The retry policy: after an attempt, succeed, retry later, or give up — and when to retry.
//!
//! Pure and small so it can be tested alone. Exponential backoff with full jitter: attempt `n`
//! (1-based) waits a uniformly random time in `[initial, min(max, initial * 2^(n-1))]`, so a burst
//! of failures spreads out instead of hammering a recovering target in lock-step. A `Retry-After`
//! answer replaces the random wait, clamped to `max`.

use std::time::{Duration, SystemTime};

/// A target's `retry` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RetryPolicy {
    /// Attempts in all, the first included.
    pub(crate) max_attempts: u32,
    pub(crate) initial: Duration,
    pub(crate) max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            initial: Duration::from_secs(1),
            max: Duration::from_secs(600),
        }
    }
}

/// What an attempt came to, as far as the policy cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AttemptResult {
    Status(u16),
    /// Timed out, refused, reset: the target never answered.
    TransportError,
}

/// The policy's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Success,
    RetryAfter(Duration),
    /// Final failure without retries (a 4xx other than 408 and 429).
    GiveUp,
    /// Retryable, but no attempts are left.
    Exhausted,
}

/// Whether a result may succeed if tried again.
pub(crate) fn is_retryable(result: AttemptResult) -> bool {
    match result {
        AttemptResult::TransportError => true,
        AttemptResult::Status(s) => s >= 500 || s == 408 || s == 429,
    }
}

impl RetryPolicy {
    /// Decides after attempt number `attempt` (1-based). `retry_after` is the target's request, if any;
    /// `unit` is a random number in `[0, 1)` (injected so tests are deterministic).
    pub(crate) fn verdict(
        &self,
        attempt: u32,
        result: AttemptResult,
        retry_after: Option<Duration>,
        unit: f64,
    ) -> Verdict {
        if matches!(result, AttemptResult::Status(s) if (200..300).contains(&s)) {
            return Verdict::Success;
        }
        if !is_retryable(result) {
            return Verdict::GiveUp;
        }
        if attempt >= self.max_attempts {
            return Verdict::Exhausted;
        }
        let wait = match retry_after {
            Some(d) => d.min(self.max),
            None => self.backoff(attempt, unit),
        };
        Verdict::RetryAfter(wait)
    }

    /// The random wait after attempt `attempt` (1-based).
    pub(crate) fn backoff(&self, attempt: u32, unit: f64) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(31));
        let ceiling = self
            .initial
            .saturating_mul(factor)
            .min(self.max)
            .max(self.initial);
        let span = ceiling.saturating_sub(self.initial);
        self.initial + span.mul_f64(unit.clamp(0.0, 1.0))
    }
}

/// Reads a `Retry-After` header: delay-seconds or an HTTP date.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            initial: Duration::from_secs(1),
            max: Duration::from_secs(10),
        }
    }

    #[test]
    fn verdict_per_answer() {
        let p = policy();
        let cases = [
            (AttemptResult::Status(200), Verdict::Success),
            (AttemptResult::Status(204), Verdict::Success),
            (AttemptResult::Status(400), Verdict::GiveUp),
            (AttemptResult::Status(404), Verdict::GiveUp),
            (
                AttemptResult::Status(408),
                Verdict::RetryAfter(Duration::from_secs(1)),
            ),
            (
                AttemptResult::Status(429),
                Verdict::RetryAfter(Duration::from_secs(1)),
            ),
            (
                AttemptResult::Status(500),
                Verdict::RetryAfter(Duration::from_secs(1)),
            ),
            (
                AttemptResult::Status(503),
                Verdict::RetryAfter(Duration::from_secs(1)),
            ),
            (
                AttemptResult::TransportError,
                Verdict::RetryAfter(Duration::from_secs(1)),
            ),
        ];
        for (result, want) in cases {
            assert_eq!(p.verdict(1, result, None, 0.0), want, "{result:?}");
        }
    }

    #[test]
    fn exhausted_after_max_attempts() {
        assert_eq!(
            policy().verdict(4, AttemptResult::Status(500), None, 0.5),
            Verdict::Exhausted
        );
        assert_eq!(
            policy().verdict(4, AttemptResult::Status(200), None, 0.5),
            Verdict::Success
        );
    }

    #[test]
    fn backoff_grows_exponentially_within_jitter_bounds_and_caps() {
        let p = policy();
        for (attempt, ceiling) in [(1, 1), (2, 2), (3, 4), (4, 8), (5, 10), (30, 10)] {
            assert_eq!(p.backoff(attempt, 0.0), Duration::from_secs(1));
            assert_eq!(
                p.backoff(attempt, 0.999_999_999).as_secs_f64().round() as u64,
                ceiling
            );
        }
    }

    #[test]
    fn retry_after_wins_and_is_clamped_to_max() {
        let p = policy();
        let v = p.verdict(
            1,
            AttemptResult::Status(429),
            Some(Duration::from_secs(3)),
            0.9,
        );
        assert_eq!(v, Verdict::RetryAfter(Duration::from_secs(3)));
        let v = p.verdict(
            1,
            AttemptResult::Status(503),
            Some(Duration::from_secs(3600)),
            0.9,
        );
        assert_eq!(v, Verdict::RetryAfter(Duration::from_secs(10)));
    }

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(30))
        );
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
