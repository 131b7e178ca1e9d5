//! The gateway-wide sections of the config file as written (`[server]`, `[admin]`, `[store]`,
//! `[plugins]`, `[jq]`): serde types that mirror the TOML, and nothing more. The stages' sections
//! are written down beside the stages (`ingress::config::raw`, `route::config::raw`,
//! `deliver::config::raw`). Every struct denies unknown keys so a typo is an error, not a
//! silently ignored setting.

use serde::Deserialize;

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

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct Jq {
    /// Deadline for evaluating all routes of one event.
    pub(crate) timeout_ms: Option<u64>,
    /// Memory cap of the route-evaluator process.
    pub(crate) memory_mb: Option<u64>,
}
