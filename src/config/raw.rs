//! The config file as written: serde types that mirror the TOML, and nothing more.
//! Every struct denies unknown keys so a typo is an error, not a silently ignored setting.

use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Server {
    pub listen: Option<String>,
    pub max_body_bytes: Option<usize>,
    pub max_backlog: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Admin {
    pub listen: Option<String>,
    pub token: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Store {
    pub url: Option<String>,
    /// `full` (default) or `normal`.
    pub sync: Option<String>,
    /// How long events, deliveries and attempts are kept once finished, e.g. "7d"; "off" keeps all.
    pub retention: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Plugins {
    pub dir: Option<String>,
    pub timeout_ms: Option<u64>,
    pub memory_mb: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Wasm {
    pub plugin: String,
    /// Handed to the plugin as JSON text.
    pub config: Option<toml::Value>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Jq {
    /// Deadline for evaluating all routes of one event.
    pub timeout_ms: Option<u64>,
    /// Memory cap of the route-evaluator process.
    pub memory_mb: Option<u64>,
}

/// A string or a list of strings (secret rotation).
#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(s) => vec![s],
            Self::Many(v) => v,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    pub kind: String,
    pub secret: Option<OneOrMany>,
    pub verify: Option<Verify>,
    pub event_type: Option<String>,
    /// `json` (default) or `raw`.
    pub format: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verify {
    pub header: String,
    pub algorithm: Option<String>,
    pub prefix: Option<String>,
    pub encoding: Option<String>,
    pub secret: OneOrMany,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub url: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub sign: Option<Sign>,
    pub timeout: Option<String>,
    pub retry: Option<Retry>,
    /// Most attempts in flight to this target at once.
    pub concurrency: Option<usize>,
    /// `{ failures, cool_down }`, or `"off"`.
    pub breaker: Option<toml::Value>,
    /// `"50/s"`, `"600/m"`, `"100/h"`.
    pub rate_limit: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Breaker {
    pub failures: Option<u32>,
    pub cool_down: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sign {
    pub scheme: String,
    pub secret: Option<String>,
    pub header: Option<String>,
    pub prefix: Option<String>,
    pub encoding: Option<String>,
    /// `port` scheme: sha1, sha256 or plain (the header carries the secret itself).
    pub algorithm: Option<String>,
    #[serde(default)]
    pub sha1: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retry {
    pub max_attempts: Option<u32>,
    pub initial: Option<String>,
    pub max: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    pub name: String,
    pub source: String,
    pub filter: Option<String>,
    /// Event types (or Pulumi filter names) the route takes; ANDed with `filter`.
    pub events: Option<Vec<String>>,
    pub jq: Option<String>,
    pub map: Option<toml::Value>,
    pub wasm: Option<toml::Value>,
    pub targets: Vec<String>,
}
