//! Transforms: turn an envelope into the messages a route sends.
//!
//! [`Transform`] is the seam between the route stage and the engines behind it: jq programs and
//! Port-style maps ([`jq`], [`map`]; every program is bounded by [`nesting`] before jaq parses it)
//! run in the contained evaluator; WebAssembly plugins ([`wasm`]) run in the gateway under
//! wasmtime's limits. Engines see the envelope as a value and know nothing of events, routes or
//! stores. A transform does no I/O and must not block on anything but computation; the route
//! stage runs it under a deadline.

pub(crate) mod jq;
mod jq_interp;
mod jq_paths;
mod jq_regex;
pub(crate) mod jq_text;
pub(crate) mod map;
pub(crate) mod nesting;
pub(crate) mod port;
pub(crate) mod predicate;
pub(crate) mod projection;
pub(crate) mod wasm;

use bytes::Bytes;
use jaq_json::Val;

/// One message a transform asks the gateway to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The bytes to send (JSON unless `headers` says otherwise).
    pub body: Bytes,
    /// Headers added to the target's own for this message.
    pub(crate) headers: Vec<(String, String)>,
    /// Only this target of the route; `None` sends to every target of the route.
    pub(crate) target: Option<String>,
}

/// Why a transform produced no messages for an event.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TransformError {
    #[error(transparent)]
    Jq(#[from] jq::JqError),
    /// A Port configuration's `itemsToParse` that yields no array, or a value Port cannot take.
    #[error("{0}")]
    Port(String),
}

/// An engine that reshapes an envelope into messages. An empty result drops the event for the route.
pub(crate) trait Transform: Send + Sync + std::fmt::Debug {
    fn apply(&self, envelope: &Val) -> Result<Vec<Message>, TransformError>;

    /// Whether it must run in a contained evaluator child: true for anything that runs a jq
    /// program, which has no bounds of its own. False only where the work is bounded by the
    /// program's and the event's size ([`projection`]).
    fn contained(&self) -> bool {
        true
    }

    /// The envelope paths it reads, when it reads only those (each value at such a path in
    /// whole); `None` when it may read anything.
    fn reads(&self) -> Option<&[Vec<String>]> {
        None
    }
}

/// The bodies a route's `jq = program` sends for `input` (as the route stage runs it, a
/// projection natively), or why it sends none; for the jq reference test.
pub fn route_bodies(program: jq::JqProgram, input: &Val) -> Result<Vec<Bytes>, String> {
    jq_transform(program)
        .apply(input)
        .map(|messages| messages.into_iter().map(|m| m.body).collect())
        .map_err(|e| e.to_string())
}

/// Whether `program` is evaluated as a projection; for the jq reference test.
pub fn is_projection(program: &jq::JqProgram) -> bool {
    projection::Projection::recognise(program).is_some()
}

/// What a route's `filter = program` outputs for `input` when it is a predicate (evaluated
/// natively, written as jq writes it), or `None` when it runs as a jq program; for the jq
/// reference test.
pub fn predicate_output(program: &jq::JqProgram, input: &Val) -> Option<Result<Bytes, String>> {
    let predicate = predicate::Predicate::recognise(program)?;
    let out = predicate.eval(input).and_then(|v| jq::to_json(&v));
    Some(out.map(Bytes::from).map_err(|e| e.to_string()))
}

/// A compiled jq program as a transform: a [`projection::Projection`] when it is one.
pub(crate) fn jq_transform(program: jq::JqProgram) -> std::sync::Arc<dyn Transform> {
    match projection::Projection::recognise(&program) {
        Some(p) => std::sync::Arc::new(p),
        None => std::sync::Arc::new(JqTransform(program)),
    }
}

/// A jq program (or a compiled map): every output value becomes one JSON message.
#[derive(Debug, Clone)]
pub(crate) struct JqTransform(pub(crate) jq::JqProgram);

impl Transform for JqTransform {
    fn apply(&self, envelope: &Val) -> Result<Vec<Message>, TransformError> {
        let outputs = self.0.run(envelope.clone())?;
        let mut messages = Vec::with_capacity(outputs.len());
        for v in &outputs {
            messages.push(Message {
                body: Bytes::from(jq::to_json(v)?),
                headers: Vec::new(),
                target: None,
            });
        }
        Ok(messages)
    }
}
