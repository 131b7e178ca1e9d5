//! The config file as written: serde types that mirror the TOML, and nothing more.
//! Every struct denies unknown keys so a typo is an error, not a silently ignored setting.

use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct Server {
    pub(crate) listen: Option<String>,
    pub(crate) max_body_bytes: Option<usize>,
    pub(crate) max_backlog: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Admin {
    pub(crate) listen: Option<String>,
    pub(crate) token: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct Store {
    pub(crate) url: Option<String>,
    /// `full` (default) or `normal`.
    pub(crate) sync: Option<String>,
    /// How long events, deliveries and attempts are kept once finished, e.g. "7d"; "off" keeps all.
    pub(crate) retention: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct Plugins {
    pub(crate) dir: Option<String>,
    pub(crate) timeout_ms: Option<u64>,
    pub(crate) memory_mb: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Wasm {
    pub(crate) plugin: String,
    /// Handed to the plugin as JSON text.
    pub(crate) config: Option<toml::Value>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct Jq {
    /// Deadline for evaluating all routes of one event.
    pub(crate) timeout_ms: Option<u64>,
    /// Memory cap of the route-evaluator process.
    pub(crate) memory_mb: Option<u64>,
}

/// A string or a list of strings (secret rotation).
#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub(crate) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub(crate) fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(s) => vec![s],
            Self::Many(v) => v,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Source {
    pub(crate) kind: String,
    pub(crate) secret: Option<OneOrMany>,
    pub(crate) verify: Option<Verify>,
    pub(crate) event_type: Option<String>,
    /// `json` (default) or `raw`.
    pub(crate) format: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Verify {
    pub(crate) header: String,
    pub(crate) algorithm: Option<String>,
    pub(crate) prefix: Option<String>,
    pub(crate) encoding: Option<String>,
    pub(crate) secret: OneOrMany,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Target {
    pub(crate) url: String,
    #[serde(default)]
    pub(crate) headers: BTreeMap<String, String>,
    pub(crate) sign: Option<Sign>,
    pub(crate) timeout: Option<String>,
    pub(crate) retry: Option<Retry>,
    /// Most attempts in flight to this target at once.
    pub(crate) concurrency: Option<usize>,
    /// `{ failures, cool_down }`, or `"off"`.
    pub(crate) breaker: Option<toml::Value>,
    /// `"50/s"`, `"600/m"`, `"100/h"`.
    pub(crate) rate_limit: Option<String>,
    /// Most pending deliveries kept for this target; past it new ones are recorded dead.
    pub(crate) max_queue: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Breaker {
    pub(crate) failures: Option<u32>,
    pub(crate) cool_down: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Sign {
    pub(crate) scheme: String,
    pub(crate) secret: Option<String>,
    pub(crate) header: Option<String>,
    pub(crate) prefix: Option<String>,
    pub(crate) encoding: Option<String>,
    /// `port` scheme: sha1, sha256 or plain (the header carries the secret itself).
    pub(crate) algorithm: Option<String>,
    #[serde(default)]
    pub(crate) sha1: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Retry {
    pub(crate) max_attempts: Option<u32>,
    pub(crate) initial: Option<String>,
    pub(crate) max: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Route {
    pub(crate) name: String,
    pub(crate) source: String,
    pub(crate) filter: Option<String>,
    /// Event types (or Pulumi filter names) the route takes; ANDed with `filter`.
    pub(crate) events: Option<Vec<String>>,
    pub(crate) jq: Option<String>,
    pub(crate) map: Option<toml::Value>,
    pub(crate) wasm: Option<toml::Value>,
    pub(crate) targets: Vec<String>,
}
