//! Routes: for one event, decide per route whether it passes the filter and what it sends.
//!
//! A route is evaluated in isolation: a failing filter or transform fails that route's deliveries
//! with the engine's message and never affects another route. This module is pure computation;
//! [`crate::route`] runs it under a deadline and records the outcome.

use crate::route::envelope::Envelope;
use crate::transform::predicate::Filter;
use crate::transform::{Message, Transform};
use std::sync::Arc;

/// A validated `[[routes]]` entry.
#[derive(Debug, Clone)]
pub(crate) struct Route {
    pub(crate) name: String,
    pub(crate) source: String,
    /// Run in an evaluator child unless it is a predicate (`transform::predicate`).
    pub(crate) filter: Option<Filter>,
    /// Event types (or aliases such as Pulumi's filter names) the route takes; `None` takes all.
    pub(crate) events: Option<Vec<String>>,
    /// `None` (and no `wasm`) passes the body through byte for byte.
    pub(crate) transform: Option<Arc<dyn Transform>>,
    /// A wasm plugin transforms instead. It runs in the gateway process, not where filters run.
    pub(crate) wasm: Option<WasmSpec>,
    pub(crate) targets: Vec<String>,
}

/// `wasm = { plugin, config }` of a route.
#[derive(Debug, Clone)]
pub(crate) struct WasmSpec {
    pub(crate) plugin: String,
    /// The route's `config` table as JSON text, serialised once.
    pub(crate) config: Arc<str>,
}

/// What a route made of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The filter did not pass, or the transform yielded nothing: recorded, not failed.
    Filtered,
    /// Send the event's own body unchanged.
    Passthrough,
    /// Send these messages.
    Messages(Vec<Message>),
    /// The filter passed; the route's wasm plugin makes the messages (see `pipeline`).
    Plugin,
    /// The filter or transform failed; the message says why.
    Failed(String),
}

impl Route {
    pub(crate) fn evaluate(&self, envelope: &Envelope) -> Outcome {
        if !self.takes(envelope) {
            return Outcome::Filtered;
        }
        if let Some(filter) = &self.filter {
            match filter.passes(envelope.val()) {
                Ok(true) => {}
                Ok(false) => return Outcome::Filtered,
                Err(e) => return Outcome::Failed(format!("filter: {e}")),
            }
        }
        if self.wasm.is_some() {
            return Outcome::Plugin;
        }
        let Some(transform) = &self.transform else {
            return Outcome::Passthrough;
        };
        match transform.apply(envelope.val()) {
            Ok(messages) if messages.is_empty() => Outcome::Filtered,
            Ok(messages) => Outcome::Messages(messages),
            Err(e) => Outcome::Failed(format!("transform: {e}")),
        }
    }

    /// What of the route runs jq's interpreter, and so in an evaluator child (`"filter"` or
    /// `"transform"`); `None` when nothing does (predicates, projections, pass-through, wasm).
    pub(crate) fn needs_child(&self) -> Option<&'static str> {
        if self.filter.as_ref().is_some_and(|f| f.contained()) {
            Some("filter")
        } else if self.transform.as_ref().is_some_and(|t| t.contained()) {
            Some("transform")
        } else {
            None
        }
    }

    /// Whether the route's `events` list admits this event.
    pub(crate) fn takes(&self, envelope: &Envelope) -> bool {
        self.events
            .as_ref()
            .is_none_or(|names| names.iter().any(|n| envelope.is_named(n)))
    }

    /// Whether the route asks for events of exactly this type by name.
    pub(crate) fn names(&self, event_type: &str) -> bool {
        self.events
            .as_ref()
            .is_some_and(|names| names.iter().any(|n| n == event_type))
    }

    /// The targets a message goes to: its own target if it names one of the route's, else all.
    pub(crate) fn targets_for<'a>(&'a self, message: &'a Message) -> Vec<&'a str> {
        match &message.target {
            Some(t) => self
                .targets
                .iter()
                .filter(|x| *x == t)
                .map(String::as_str)
                .collect(),
            None => self.targets.iter().map(String::as_str).collect(),
        }
    }
}
