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
//! - [`dry_run`]: one event through ingress's checks, the routes and signing, storing and sending
//!   nothing (`hookgate try`, `POST /admin/v1/try`, the console's playground).
//!
//! Beside them: [`config`] reads the file, interpolates `${VAR}` and assembles the settings each
//! stage validates beside its code with [`validate`]'s `Validator`; [`server`] wires
//! the stages and runs them until shutdown; [`cluster`] keeps instances on one store in step;
//! [`signature`] holds the HMAC primitives shared by `verify` and `sign`; [`metrics`] the
//! counters every stage writes and `/metrics` renders; [`log_safe`] escapes producer text in log
//! lines; `clock` the times every stage records.
//!
//! Every module is internal to the crate. The public surface is [`main`] (the `hookgate` command line) and
//! what running the gateway in-process takes: [`Config`], [`run`] with its [`ServerOptions`] and
//! [`IngressLimits`], [`install_crypto`].

// `deny`, not `forbid`: transform::wasm loads its compile cache with one audited `unsafe` call,
// and store::sqlite::wal_buffer is a VFS shim over SQLite's C interface.
#![deny(unsafe_code)]

pub(crate) mod admin;
pub(crate) mod catalog;
pub(crate) mod cli;
mod clock;
pub(crate) mod cluster;
pub(crate) mod config;
pub(crate) mod deliver;
pub(crate) mod dry_run;
pub(crate) mod ingress;
pub(crate) mod log_safe;
pub(crate) mod metrics;
pub(crate) mod route;
pub(crate) mod server;
pub(crate) mod signature;
pub(crate) mod store;
pub(crate) mod transform;
pub(crate) mod validate;

pub(crate) use clock::{Clock, duration_ms, now_ms, rfc3339};

// The public façade: the command line, and a gateway run in-process on a bound listener (what
// `src/main.rs`, the integration tests and the load benchmark use). Everything else stays inside
// the crate, so the compiler reports what nothing uses.
pub use cli::main;
pub use config::Config;
pub use ingress::Limits as IngressLimits;
pub use server::{Options as ServerOptions, install_crypto, run};

/// What the integration tests and benchmarks in this repository reach inside for: signatures
/// as producers compute them, the clock, the engines a benchmark drives alone. Not an API.
#[doc(hidden)]
pub mod testing {
    pub use crate::clock::now_ms;
    pub use crate::ingress::verify::Verifier;
    pub use crate::route::envelope::{BodyFormat, Envelope, EventTypeRule};
    pub use crate::signature::{Algorithm, Encoding, Secret, hmac};
    pub use crate::signature::{standard_webhooks_key, standard_webhooks_signature};
    pub use crate::store::StoredEvent;
    pub use crate::transform::jq::{JqProgram, to_json as jq_to_json};
    pub use crate::transform::port::messages_for as port_messages;
    pub use crate::transform::wasm::{Engine, Limits as WasmLimits, thread_page_faults};
    pub use crate::transform::{is_projection, predicate_output, route_bodies};
}

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
