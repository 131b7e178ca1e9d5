//! Ranges for every duration and number in the config, checked with the key that holds them.
//!
//! `humantime` and serde accept values no gateway means: `timeout = "18446744073709551615s"`
//! passed `check` and then overflowed the delivery worker's clock arithmetic, and
//! `retention = "1000000000y"` wrapped around to a cut-off in the future, so the first prune
//! deleted everything. Each bound here is far above any sensible setting and far below where
//! Unix milliseconds in an `i64` overflow; the code that adds durations to clocks saturates as
//! well ([`crate::duration_ms`]), so a value that slipped past would still not panic.
//!
//! The two settings that are nothing but limits, `[plugins]` and a target's `breaker`, are
//! validated here whole.

use super::validator::Validator;
use crate::deliver::breaker::BreakerPolicy;
use std::time::Duration;

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);

/// `targets.X.timeout`: one HTTP attempt.
pub(crate) const MAX_TARGET_TIMEOUT: Duration = HOUR;
/// `store.retention`.
pub(crate) const MAX_RETENTION: Duration = Duration::from_secs(10 * 366 * 24 * 3600);
/// `targets.X.retry.initial`: the first backoff.
pub(crate) const MAX_RETRY_INITIAL: Duration = DAY;
/// `targets.X.retry.max`: the longest backoff.
pub(crate) const MAX_RETRY_MAX: Duration = Duration::from_secs(7 * 24 * 3600);
/// `targets.X.retry.max_attempts`.
pub(crate) const MAX_ATTEMPTS: u32 = 1000;
/// `targets.X.breaker.cool_down`.
pub(crate) const MAX_COOL_DOWN: Duration = DAY;
/// `targets.X.breaker.failures`.
pub(crate) const MAX_BREAKER_FAILURES: u32 = 100_000;
/// `targets.X.concurrency`.
pub(crate) const MAX_CONCURRENCY: usize = 10_000;
/// `targets.X.rate_limit`, in attempts per second: at least one an hour, at most a million a
/// second (a slower rate would schedule the next token centuries ahead).
pub(crate) const MIN_RATE_PER_SECOND: f64 = 1.0 / 3600.0;
pub(crate) const MAX_RATE_PER_SECOND: f64 = 1_000_000.0;
/// `jq.timeout_ms`: all routes of one event. Generous: past the deadline the child is killed,
/// so a long one costs the event's routes time, never the gateway.
pub(crate) const MAX_JQ_TIMEOUT: Duration = HOUR;
/// `jq.memory_mb`.
pub(crate) const MAX_JQ_MEMORY_MB: u64 = 64 * 1024;
/// `plugins.timeout_ms`: one call.
pub(crate) const MAX_PLUGIN_TIMEOUT: Duration = MINUTE;
/// `plugins.memory_mb`: a wasm32 memory cannot exceed 4 GiB.
pub(crate) const MAX_PLUGIN_MEMORY_MB: u64 = 4 * 1024;
/// `server.max_body_bytes`.
pub(crate) const MAX_BODY_BYTES: usize = 256 * 1024 * 1024;
/// `server.max_backlog`: past ten million unrouted events the store, not routing, is the limit.
pub(crate) const MAX_BACKLOG: u64 = 10_000_000;
/// `admin.token`: characters other than whitespace.
pub(crate) const MIN_ADMIN_TOKEN_CHARS: usize = 16;

impl Validator {
    /// A duration like "10s" at `key`, greater than zero and at most `max`; `default` when unset
    /// (or, with the problem recorded, when invalid). The value is not quoted back: it may come
    /// from the environment.
    pub(crate) fn duration(
        &mut self,
        key: &str,
        s: Option<&str>,
        default: Duration,
        max: Duration,
    ) -> Duration {
        match s.map(humantime::parse_duration) {
            None => default,
            Some(Ok(d)) if d.is_zero() => {
                self.problem(key, "must be greater than 0");
                default
            }
            Some(Ok(d)) if d > max => {
                self.problem(key, format!("must be at most {}", show(max)));
                default
            }
            Some(Ok(d)) => d,
            Some(Err(e)) => {
                self.problem(key, format!("not a duration like \"10s\" or \"5m\": {e}"));
                default
            }
        }
    }

    /// Milliseconds at `key`, from 1 to `max`; `default` when unset or out of range.
    pub(crate) fn millis(
        &mut self,
        key: &str,
        ms: Option<u64>,
        default: Duration,
        max: Duration,
    ) -> Duration {
        match ms {
            None => default,
            Some(0) => {
                self.problem(key, "must be at least 1");
                default
            }
            Some(ms) if Duration::from_millis(ms) > max => {
                self.problem(key, format!("must be at most {} ms", max.as_millis()));
                default
            }
            Some(ms) => Duration::from_millis(ms),
        }
    }

    /// `[plugins]`: each call's time and memory, within bounds.
    pub(crate) fn plugins(&mut self, p: super::raw::Plugins) -> super::PluginsConfig {
        let timeout = self.millis(
            "plugins.timeout_ms",
            p.timeout_ms,
            super::DEFAULT_PLUGIN_TIMEOUT,
            MAX_PLUGIN_TIMEOUT,
        );
        let memory_mb = p.memory_mb.map_or(super::DEFAULT_PLUGIN_MEMORY_MB, |m| {
            self.within("plugins.memory_mb", m, 2, MAX_PLUGIN_MEMORY_MB)
        });
        super::PluginsConfig {
            dir: std::path::PathBuf::from(
                p.dir.unwrap_or_else(|| super::DEFAULT_PLUGINS_DIR.into()),
            ),
            timeout,
            memory_mb,
        }
    }

    /// `breaker` is on by default; `"off"` turns it off.
    pub(crate) fn breaker(
        &mut self,
        key: &str,
        value: Option<toml::Value>,
    ) -> Option<BreakerPolicy> {
        let mut policy = BreakerPolicy::default();
        let table = match value {
            None => return Some(policy),
            Some(toml::Value::String(s)) if s == "off" => return None,
            Some(v) => match v.try_into::<super::raw::Breaker>() {
                Ok(t) => t,
                Err(e) => {
                    self.problem(
                        key.to_string(),
                        format!("expected \"off\" or {{ failures, cool_down }}: {e}"),
                    );
                    return Some(policy);
                }
            },
        };
        if let Some(n) = table.failures {
            let key = format!("{key}.failures");
            policy.failures = self.within(&key, n, 1, MAX_BREAKER_FAILURES);
        }
        policy.cool_down = self.duration(
            &format!("{key}.cool_down"),
            table.cool_down.as_deref(),
            policy.cool_down,
            MAX_COOL_DOWN,
        );
        Some(policy)
    }

    /// A number at `key` from `min` to `max`; clamped into range, with the problem recorded.
    pub(crate) fn within<T>(&mut self, key: &str, value: T, min: T, max: T) -> T
    where
        T: PartialOrd + Copy + std::fmt::Display,
    {
        if value < min {
            self.problem(key, format!("must be at least {min}"));
            min
        } else if value > max {
            self.problem(key, format!("must be at most {max}"));
            max
        } else {
            value
        }
    }

    /// A rate limit's attempts per second, within [`MIN_RATE_PER_SECOND`]..[`MAX_RATE_PER_SECOND`].
    pub(crate) fn rate(&mut self, key: &str, per_second: f64) {
        if per_second < MIN_RATE_PER_SECOND {
            self.problem(key, "must allow at least one attempt an hour (\"1/h\")");
        } else if per_second > MAX_RATE_PER_SECOND {
            self.problem(key, "must be at most 1000000/s");
        }
    }

    /// The admin token: not blank, and at least [`MIN_ADMIN_TOKEN_CHARS`] characters that are not
    /// whitespace (sixteen spaces are no secret).
    pub(crate) fn admin_token(&mut self, token: &str) {
        let solid = token.chars().filter(|c| !c.is_whitespace()).count();
        if solid == 0 {
            self.problem("admin.token", "is blank");
        } else if solid < MIN_ADMIN_TOKEN_CHARS {
            self.problem(
                "admin.token",
                format!("must hold at least {MIN_ADMIN_TOKEN_CHARS} characters besides whitespace"),
            );
        }
    }
}

/// A bound as an operator writes it: `1h`, `10years 1month…` reads worse than `3660d`.
fn show(d: Duration) -> String {
    let s = d.as_secs();
    if s.is_multiple_of(24 * 3600) {
        format!("{}d", s / (24 * 3600))
    } else if s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{}ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Config, ConfigError};

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, "test.toml", &|_| None)
    }

    /// A config with one target whose extra settings are `target`, plus `rest` (other sections).
    fn with(target: &str, rest: &str) -> String {
        format!(
            "[sources.s]\nkind = \"generic\"\n\n[targets.t]\nurl = \"http://127.0.0.1:9/\"\n{target}\n\n\
             [[routes]]\nname = \"r\"\nsource = \"s\"\ntargets = [\"t\"]\n\n{rest}\n"
        )
    }

    /// The problems of a config, as `key: why` lines.
    fn problems(text: &str) -> Vec<String> {
        match parse(text) {
            Ok(_) => Vec::new(),
            Err(e) => e
                .problems
                .iter()
                .map(|(k, w)| format!("{k}: {w}"))
                .collect(),
        }
    }

    fn refused(text: &str, key: &str, why: &str) {
        let found = problems(text);
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
            &with("timeout = \"18446744073709551615s\"", ""),
            "targets.t.timeout",
            "at most 1h",
        );
        refused(
            &with("timeout = \"61m\"", ""),
            "targets.t.timeout",
            "at most 1h",
        );
        assert_eq!(
            problems(&with("timeout = \"1h\"", "")),
            Vec::<String>::new()
        );
    }

    #[test]
    fn retention_is_bounded() {
        let store = |r: &str| with("", &format!("[store]\nretention = \"{r}\""));
        refused(&store("1000000000y"), "store.retention", "at most 3660d");
        refused(&store("11y"), "store.retention", "at most 3660d");
        assert!(problems(&store("10y")).is_empty());
        assert!(problems(&store("off")).is_empty());
    }

    #[test]
    fn backoff_attempts_and_breaker_are_bounded() {
        let retry = |r: &str| with(&format!("retry = {{ {r} }}"), "");
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
        let breaker = |b: &str| with(&format!("breaker = {{ {b} }}"), "");
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
            &with("concurrency = 10001", ""),
            "targets.t.concurrency",
            "at most 10000",
        );
        refused(
            &with("rate_limit = \"1e-300/s\"", ""),
            "targets.t.rate_limit",
            "one attempt an hour",
        );
        refused(
            &with("rate_limit = \"1e300/s\"", ""),
            "targets.t.rate_limit",
            "at most 1000000/s",
        );
        assert!(problems(&with("rate_limit = \"1/h\"", "")).is_empty());
    }

    #[test]
    fn jq_plugins_and_body_limits_are_bounded() {
        refused(
            &with("", "[jq]\ntimeout_ms = 0"),
            "jq.timeout_ms",
            "at least 1",
        );
        refused(
            &with("", "[jq]\ntimeout_ms = 3600001"),
            "jq.timeout_ms",
            "at most 3600000 ms",
        );
        refused(
            &with("", "[jq]\nmemory_mb = 65537"),
            "jq.memory_mb",
            "at most 65536",
        );
        refused(
            &with("", "[plugins]\ntimeout_ms = 60001"),
            "plugins.timeout_ms",
            "at most 60000 ms",
        );
        refused(
            &with("", "[plugins]\nmemory_mb = 4097"),
            "plugins.memory_mb",
            "at most 4096",
        );
        refused(
            &with("", "[server]\nmax_body_bytes = 268435457"),
            "server.max_body_bytes",
            "at most 268435456",
        );
    }

    #[test]
    fn admin_tokens_must_not_be_blank_or_short() {
        let admin = |t: &str| with("", &format!("[admin]\ntoken = \"{t}\""));
        refused(&admin(&" ".repeat(16)), "admin.token", "is blank");
        refused(&admin(""), "admin.token", "is blank");
        refused(
            &admin("  abc  def  ghi  jk  "),
            "admin.token",
            "at least 16 characters besides whitespace",
        );
        assert!(problems(&admin("0123456789abcdef")).is_empty());
    }
}
