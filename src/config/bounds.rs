//! Ranges for the gateway-wide durations and numbers (`[server]`, `[store]`, `[jq]`,
//! `[plugins]`, `[admin]`), checked with the key that holds them; a target's ranges are the
//! delivery stage's (`deliver::bounds`).
//!
//! `humantime` and serde accept values no gateway means: `retention = "1000000000y"` wrapped
//! around to a cut-off in the future, so the first prune deleted everything. Each bound here is
//! far above any sensible setting and far below where Unix milliseconds in an `i64` overflow; the
//! code that adds durations to clocks saturates as well ([`crate::duration_ms`]), so a value that
//! slipped past would still not panic.
//!
//! `[plugins]`, nothing but limits, is validated here whole.

use crate::validate::Validator;
use std::time::Duration;

/// `store.retention`.
pub(crate) const MAX_RETENTION: Duration = Duration::from_secs(10 * 366 * 24 * 3600);
/// `jq.timeout_ms`: all routes of one event. Generous: past the deadline the child is killed,
/// so a long one costs the event's routes time, never the gateway.
pub(crate) const MAX_JQ_TIMEOUT: Duration = Duration::from_secs(3600);
/// `jq.memory_mb`.
pub(crate) const MAX_JQ_MEMORY_MB: u64 = 64 * 1024;
/// `plugins.timeout_ms`: one call.
pub(crate) const MAX_PLUGIN_TIMEOUT: Duration = Duration::from_secs(60);
/// `plugins.memory_mb`: a wasm32 memory cannot exceed 4 GiB.
pub(crate) const MAX_PLUGIN_MEMORY_MB: u64 = 4 * 1024;
/// `server.max_body_bytes`.
pub(crate) const MAX_BODY_BYTES: usize = 256 * 1024 * 1024;
/// `server.max_backlog`: past ten million unrouted events the store, not routing, is the limit.
pub(crate) const MAX_BACKLOG: u64 = 10_000_000;
/// `admin.token`: characters other than whitespace.
pub(crate) const MIN_ADMIN_TOKEN_CHARS: usize = 16;

/// `[plugins]`: each call's time and memory, within bounds.
pub(crate) fn plugins(v: &mut Validator, p: super::raw::Plugins) -> super::PluginsConfig {
    let timeout = v.millis(
        "plugins.timeout_ms",
        p.timeout_ms,
        super::DEFAULT_PLUGIN_TIMEOUT,
        MAX_PLUGIN_TIMEOUT,
    );
    let memory_mb = p.memory_mb.map_or(super::DEFAULT_PLUGIN_MEMORY_MB, |m| {
        v.within("plugins.memory_mb", m, 2, MAX_PLUGIN_MEMORY_MB)
    });
    super::PluginsConfig {
        dir: std::path::PathBuf::from(p.dir.unwrap_or_else(|| super::DEFAULT_PLUGINS_DIR.into())),
        timeout,
        memory_mb,
    }
}

/// The admin token: not blank, and at least [`MIN_ADMIN_TOKEN_CHARS`] characters that are not
/// whitespace (sixteen spaces are no secret).
pub(crate) fn admin_token(v: &mut Validator, token: &str) {
    let solid = token.chars().filter(|c| !c.is_whitespace()).count();
    if solid == 0 {
        v.problem("admin.token", "is blank");
    } else if solid < MIN_ADMIN_TOKEN_CHARS {
        v.problem(
            "admin.token",
            format!("must hold at least {MIN_ADMIN_TOKEN_CHARS} characters besides whitespace"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Config, ConfigError};

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, "test.toml", &|_| None)
    }

    /// A config with one source, target and route, plus `rest` (other sections).
    fn with(rest: &str) -> String {
        format!(
            "[sources.s]\nkind = \"generic\"\n\n[targets.t]\nurl = \"http://127.0.0.1:9/\"\n\n\
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
    fn retention_is_bounded() {
        let store = |r: &str| with(&format!("[store]\nretention = \"{r}\""));
        refused(&store("1000000000y"), "store.retention", "at most 3660d");
        refused(&store("11y"), "store.retention", "at most 3660d");
        assert!(problems(&store("10y")).is_empty());
        assert!(problems(&store("off")).is_empty());
    }

    #[test]
    fn jq_plugins_and_body_limits_are_bounded() {
        refused(&with("[jq]\ntimeout_ms = 0"), "jq.timeout_ms", "at least 1");
        refused(
            &with("[jq]\ntimeout_ms = 3600001"),
            "jq.timeout_ms",
            "at most 3600000 ms",
        );
        refused(
            &with("[jq]\nmemory_mb = 65537"),
            "jq.memory_mb",
            "at most 65536",
        );
        refused(
            &with("[plugins]\ntimeout_ms = 60001"),
            "plugins.timeout_ms",
            "at most 60000 ms",
        );
        refused(
            &with("[plugins]\nmemory_mb = 4097"),
            "plugins.memory_mb",
            "at most 4096",
        );
        refused(
            &with("[server]\nmax_body_bytes = 268435457"),
            "server.max_body_bytes",
            "at most 268435456",
        );
    }

    #[test]
    fn admin_tokens_must_not_be_blank_or_short() {
        let admin = |t: &str| with(&format!("[admin]\ntoken = \"{t}\""));
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
