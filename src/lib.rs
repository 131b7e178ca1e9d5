//! hookgate: a self-hosted webhook gateway.
//!
//! # Layout
//! A folder per stage, in the order an event takes:
//!
//! - [`ingress`]: the public HTTP listener: `POST /hooks/{source}`, health and metrics;
//!   [`ingress::verify`] checks inbound signatures (constant-time, several secrets per source).
//! - [`store`]: the durable hand-off between every stage (SQLite or PostgreSQL behind one trait).
//! - [`route`]: the routing loop, the one place that knows the stage order after ingress; per route,
//!   filter then transform an event ([`route::rules`]) over its envelope ([`route::envelope`]),
//!   evaluated in a contained child process ([`route::evaluator`]).
//! - [`transform`]: jq programs and Port-style maps; wasm plugins in a wasmtime sandbox
//!   (`transform::wasm`, the only user of wasmtime, with the registry of uploaded plugins).
//! - [`deliver`]: the only code that makes outbound requests: the worker, its HTTP client, the
//!   retry policy, breakers, and outbound signing ([`deliver::sign`]).
//! - [`admin`]: the admin API (own listener, bearer token): the delivery log, retries, plugins.
//! - [`cli`]: `try`, `sign` and the admin client; stages run offline.
//!
//! Beside them: [`config`] reads the file, interpolates `${VAR}` and validates; [`server`] wires
//! the stages and runs them until shutdown; [`cluster`] keeps instances on one store in step;
//! [`signature`] holds the HMAC primitives shared by `verify` and `sign`; [`metrics`] the
//! counters every stage writes and `/metrics` renders; [`log_safe`] escapes producer text in log
//! lines.

// `deny`, not `forbid`: transform::wasm loads its compile cache with one audited `unsafe` call.
#![deny(unsafe_code)]

pub mod admin;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod deliver;
pub mod ingress;
pub mod log_safe;
pub mod metrics;
pub mod route;
pub mod server;
pub mod signature;
pub mod store;
pub mod transform;

pub use cli::main;

/// The entry points the fuzz targets in `fuzz/` drive, in one place, so those targets do not
/// depend on where each lives (nor break if modules become `pub(crate)`). Not an API.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::config::Config;
    pub use crate::deliver::sign::{SignInput, Signer};
    pub use crate::ingress::json::check as check_json;
    pub use crate::ingress::verify::Verifier;
    pub use crate::route::envelope::{
        BodyFormat, Envelope, EventTypeRule, MAX_DEPTH, nests_deeper_than,
    };
    pub use crate::signature::{Algorithm, Encoding, HmacHeader, KeyBytes, Secret};
    pub use crate::signature::{standard_webhooks_key, standard_webhooks_signature};
    pub use crate::store::{
        DeliveryStatus, NewDelivery, Outcome, RouteResult, Routing, StoredEvent,
    };
    pub use crate::transform::jq::JqProgram;
    pub use axum::http::{HeaderMap, HeaderName, HeaderValue};
    pub use bytes::Bytes;

    use crate::route::evaluator::messages;

    /// The evaluator's request frame for `events`; decoded back as (event, `only`) pairs.
    pub fn encode_request(events: &[StoredEvent], only: Option<&str>) -> Vec<u8> {
        messages::encode_request(events, only).expect("a request head always serializes")
    }
    pub fn decode_request(frame: &[u8]) -> Result<Vec<(StoredEvent, Option<String>)>, String> {
        messages::decode_request(frame)
            .map(|rs| rs.into_iter().map(|r| (r.event, r.only)).collect())
            .map_err(|e| e.to_string())
    }
    pub fn encode_routing(routing: &Routing) -> Vec<u8> {
        messages::encode_routing(routing).expect("a routing head always serializes")
    }
    pub fn decode_routing(frame: &[u8], expected: &str) -> Result<Routing, String> {
        messages::decode_routing(frame, expected).map_err(|e| e.to_string())
    }
}

/// Milliseconds since the Unix epoch: the one clock every stage records times in.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A duration in whole milliseconds, saturating at `i64::MAX` instead of wrapping: add it to a
/// clock with `saturating_add`, so no configured duration can overflow a schedule.
pub fn duration_ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
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
/// Times past the year 9999 show as its last second: humantime cannot write a five-digit year (its
/// `Display` fails, and `to_string` would panic), and such times come only from saturated clocks
/// (`i64::MAX` as "never") or bad data, never from an event (found by fuzz/'s `envelope` target).
pub fn rfc3339(ms: i64) -> String {
    const LAST_MS: i64 = 253_402_300_799_000; // 9999-12-31T23:59:59Z
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.clamp(0, LAST_MS) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_writes_any_time() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(-1), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(i64::MAX), "9999-12-31T23:59:59Z");
    }
}
