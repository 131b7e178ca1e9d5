//! Ranges for a target's durations and numbers, checked with the key that holds them, and the
//! `breaker` setting, which is nothing but limits, validated whole.
//!
//! `humantime` and serde accept values no gateway means: `timeout = "18446744073709551615s"`
//! passed `check` and then overflowed the delivery worker's clock arithmetic. Each bound here is
//! far above any sensible setting and far below where Unix milliseconds in an `i64` overflow;
//! the code that adds durations to clocks saturates as well ([`crate::duration_ms`]), so a value
//! that slipped past would still not panic. The gateway-wide ranges are in `config::bounds`.

use super::breaker::BreakerPolicy;
use super::config::raw;
use crate::validate::Validator;
use std::time::Duration;

/// `targets.X.timeout`: one HTTP attempt.
pub(crate) const MAX_TARGET_TIMEOUT: Duration = Duration::from_secs(3600);
/// `targets.X.retry.initial`: the first backoff.
pub(crate) const MAX_RETRY_INITIAL: Duration = Duration::from_secs(24 * 3600);
/// `targets.X.retry.max`: the longest backoff.
pub(crate) const MAX_RETRY_MAX: Duration = Duration::from_secs(7 * 24 * 3600);
/// `targets.X.retry.max_attempts`.
pub(crate) const MAX_ATTEMPTS: u32 = 1000;
/// `targets.X.breaker.cool_down`.
pub(crate) const MAX_COOL_DOWN: Duration = Duration::from_secs(24 * 3600);
/// `targets.X.breaker.failures`.
pub(crate) const MAX_BREAKER_FAILURES: u32 = 100_000;
/// `targets.X.concurrency`.
pub(crate) const MAX_CONCURRENCY: usize = 10_000;
/// `targets.X.rate_limit`, in attempts per second: at least one an hour, at most a million a
/// second (a slower rate would schedule the next token centuries ahead).
pub(crate) const MIN_RATE_PER_SECOND: f64 = 1.0 / 3600.0;
pub(crate) const MAX_RATE_PER_SECOND: f64 = 1_000_000.0;

/// `breaker` is on by default; `"off"` turns it off.
pub(crate) fn breaker(
    v: &mut Validator,
    key: &str,
    value: Option<toml::Value>,
) -> Option<BreakerPolicy> {
    let mut policy = BreakerPolicy::default();
    let table = match value {
        None => return Some(policy),
        Some(toml::Value::String(s)) if s == "off" => return None,
        Some(value) => match value.try_into::<raw::Breaker>() {
            Ok(t) => t,
            Err(e) => {
                v.problem(
                    key.to_string(),
                    format!("expected \"off\" or {{ failures, cool_down }}: {e}"),
                );
                return Some(policy);
            }
        },
    };
    if let Some(n) = table.failures {
        let key = format!("{key}.failures");
        policy.failures = v.within(&key, n, 1, MAX_BREAKER_FAILURES);
    }
    policy.cool_down = v.duration(
        &format!("{key}.cool_down"),
        table.cool_down.as_deref(),
        policy.cool_down,
        MAX_COOL_DOWN,
    );
    Some(policy)
}

/// A rate limit's attempts per second, within [`MIN_RATE_PER_SECOND`]..[`MAX_RATE_PER_SECOND`].
pub(crate) fn rate(v: &mut Validator, key: &str, per_second: f64) {
    if per_second < MIN_RATE_PER_SECOND {
        v.problem(key, "must allow at least one attempt an hour (\"1/h\")");
    } else if per_second > MAX_RATE_PER_SECOND {
        v.problem(key, "must be at most 1000000/s");
    }
}

#[cfg(test)]
mod tests {
    use super::super::config::{raw, target};
    use crate::validate::Validator;

    /// The problems of a target `t` whose settings besides its URL are `extra`, as `key: why`.
    fn problems(extra: &str) -> Vec<String> {
        let text = format!("url = \"http://127.0.0.1:9/\"\n{extra}\n");
        let mut v = Validator::default();
        match toml::from_str::<raw::Target>(&text) {
            Ok(t) => {
                target(&mut v, "t", t);
            }
            Err(e) => v.problem("targets.t", e.to_string()),
        }
        v.problems
            .iter()
            .map(|(k, w)| format!("{k}: {w}"))
            .collect()
    }

    fn refused(extra: &str, key: &str, why: &str) {
        let found = problems(extra);
        assert!(
            found
                .iter()
                .any(|p| p.starts_with(&format!("{key}: ")) && p.contains(why)),
            "expected `{key}: …{why}…` in {found:?}"
        );
    }

    #[test]
    fn target_timeouts_are_bounded() {
        refused(
            "timeout = \"18446744073709551615s\"",
            "targets.t.timeout",
            "at most 1h",
        );
        refused("timeout = \"61m\"", "targets.t.timeout", "at most 1h");
        assert_eq!(problems("timeout = \"1h\""), Vec::<String>::new());
    }

    #[test]
    fn backoff_attempts_and_breaker_are_bounded() {
        let retry = |r: &str| format!("retry = {{ {r} }}");
        refused(
            &retry("initial = \"2d\""),
            "targets.t.retry.initial",
            "at most 1d",
        );
        refused(&retry("max = \"8d\""), "targets.t.retry.max", "at most 7d");
        refused(
            &retry("max_attempts = 1001"),
            "targets.t.retry.max_attempts",
            "at most 1000",
        );
        let breaker = |b: &str| format!("breaker = {{ {b} }}");
        refused(
            &breaker("cool_down = \"25h\""),
            "targets.t.breaker.cool_down",
            "at most 1d",
        );
        refused(
            &breaker("failures = 100001"),
            "targets.t.breaker.failures",
            "at most 100000",
        );
        assert!(
            problems(&retry(
                "initial = \"1d\", max = \"7d\", max_attempts = 1000"
            ))
            .is_empty()
        );
    }

    #[test]
    fn concurrency_and_rate_limits_are_bounded() {
        refused(
            "concurrency = 10001",
            "targets.t.concurrency",
            "at most 10000",
        );
        refused(
            "rate_limit = \"1e-300/s\"",
            "targets.t.rate_limit",
            "one attempt an hour",
        );
        refused(
            "rate_limit = \"1e300/s\"",
            "targets.t.rate_limit",
            "at most 1000000/s",
        );
        assert!(problems("rate_limit = \"1/h\"").is_empty());
    }
}
