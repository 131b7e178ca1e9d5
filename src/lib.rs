//! hookgate: a self-hosted webhook gateway.
//!
//! # Layout
//! The modules follow the pipeline an event takes, in order:
//!
//! - [`config`]: parse the TOML file, interpolate `${VAR}`, validate into typed values.
//! - [`ingress`]: the public HTTP listener: `POST /hooks/{source}`, health and metrics.
//! - [`verify`]: inbound signature checks (constant-time, several secrets per source).
//! - [`store`]: the durable hand-off between every stage (SQLite now; the trait is the seam).
//! - [`envelope`]: the JSON document filters and transforms see.
//! - [`transform`]: jq programs and Port-style maps, contained so a runaway mapping cannot hurt the
//!   gateway; wasm plugins in a wasmtime sandbox (`transform::wasm`, the only user of wasmtime).
//! - [`plugins`]: the registry of uploaded plugins (files in `plugins.dir`, atomic swaps).
//! - [`route`]: per route, filter then transform an event into delivery bodies.
//! - [`evaluator`]: runs route evaluation in a contained child process (deadline, memory cap).
//! - [`pipeline`]: the one place that knows the stage order; it moves stored events to deliveries.
//! - [`sign`]: outbound signature headers, one scheme per target.
//! - [`deliver`]: the only code that makes outbound requests: the worker, its HTTP client and the retry policy.
//! - [`admin`]: the admin API (own listener, bearer token): the delivery log, retries.
//! - [`server`]: wires the stages together and runs them until shutdown.
//! - [`cli`]: the `try` and `sign` helpers that run pipeline stages without network or store.
//!
//! [`signature`] holds the HMAC primitives shared by `verify` and `sign`; [`metrics`] the counters
//! every stage writes and `/metrics` renders.

// `deny`, not `forbid`: transform::wasm loads its compile cache with one audited `unsafe` call.
#![deny(unsafe_code)]

pub mod admin;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod deliver;
pub mod envelope;
pub mod evaluator;
pub mod ingress;
pub mod metrics;
pub mod pipeline;
pub mod plugins;
pub mod route;
pub mod server;
pub mod sign;
pub mod signature;
pub mod store;
pub mod transform;
pub mod verify;

/// Milliseconds since the Unix epoch: the one clock every stage records times in.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The scheduling clock: Unix milliseconds that advance with tokio's clock, so retry schedules
/// follow `tokio::time::pause()` in tests. Created inside the runtime; in production it is the
/// wall clock at start plus monotonic time since, so wall-clock jumps do not reorder retries.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    base: tokio::time::Instant,
    base_ms: i64,
}

impl Clock {
    pub fn new() -> Self {
        Self {
            base: tokio::time::Instant::now(),
            base_ms: now_ms(),
        }
    }

    pub fn now_ms(&self) -> i64 {
        self.base_ms + self.base.elapsed().as_millis() as i64
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

/// Formats milliseconds since the epoch as RFC 3339 (UTC, second precision), as envelopes show times.
pub fn rfc3339(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}
