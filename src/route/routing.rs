//! Routing one event, pure: its envelope, then per route the verdict (filter, transform) and what
//! it makes — deliveries to store, a failure with its cause, or a plugin call still to run.
//!
//! Nothing here does I/O or knows about batches, children or the store's transactions: the loop
//! in [`super`] and the evaluator child ([`super::evaluator`]) both call [`route_event`], and the
//! loop runs [`run_plugins`] on a blocking thread. A route is evaluated on its own: its failure
//! never changes another route's result.

use super::envelope::Envelope;
use super::rules::{Outcome, Route};
use crate::config::Config;
use crate::store::{
    DeliveryStatus, NewDelivery, Outcome as Recorded, RouteResult, Routing, StoredEvent,
};
use crate::transform::wasm::Plugin;
use crate::transform::wasm::registry::Registry;
use std::time::{Duration, Instant};

/// Routes one event through every route of its source. Pure apart from id generation.
pub(crate) fn route_event(config: &Config, event: &StoredEvent) -> Routing {
    route_event_only(config, event, None)
}

/// Routes one event through the routes of its source, or through route `only` alone: the loop
/// evaluates a route on its own when the event as a whole ran away, to tell which route did.
pub(crate) fn route_event_only(
    config: &Config,
    event: &StoredEvent,
    only: Option<&str>,
) -> Routing {
    let mut routing = Routing::new(event);
    let Some(source) = config.sources.get(&event.source) else {
        return routing;
    };
    let routes = config
        .routes
        .iter()
        .filter(|r| r.source == event.source && only.is_none_or(|name| r.name == name));
    let everything = super::needs::Tree::all();
    let needs = config
        .envelope_needs
        .get(&event.source)
        .unwrap_or(&everything);
    let envelope = match Envelope::build_pruned(event, source.format, &source.event_type, needs) {
        Ok(e) => e,
        Err(e) => {
            for route in routes {
                fail(&mut routing, route, e.to_string());
            }
            return routing;
        }
    };
    routing.event_type = envelope.event_type().map(str::to_string);
    let control = source
        .control_event_type()
        .filter(|t| envelope.event_type() == Some(*t));
    for route in routes {
        if let Some(kind) = control.filter(|t| !route.names(t)) {
            let detail = format!("`{kind}` is a handshake; list it in `events` to route it");
            routing
                .results
                .push(result(route, Recorded::Filtered, Some(detail)));
            continue;
        }
        let started = Instant::now();
        let outcome = route.evaluate(&envelope);
        if outcome == Outcome::Plugin {
            routing.plugin_calls.push(route.name.clone());
            continue;
        }
        apply(&mut routing, route, outcome, started.elapsed());
    }
    routing
}

/// Records what `route` made of the event: deliveries and the route's result.
fn apply(routing: &mut Routing, route: &Route, outcome: Outcome, elapsed: Duration) {
    let results_before = routing.results.len();
    match outcome {
        Outcome::Filtered => routing
            .results
            .push(result(route, Recorded::Filtered, None)),
        Outcome::Failed(why) => fail(routing, route, why),
        Outcome::Passthrough => {
            for target in &route.targets {
                let d = pending(routing, route, target, 0, None, Vec::new());
                routing.deliveries.push(d);
            }
            routing
                .results
                .push(result(route, Recorded::Delivered, None));
        }
        Outcome::Messages(messages) => {
            for (i, m) in messages.iter().enumerate() {
                for target in route.targets_for(m) {
                    let body = Some(m.body.clone());
                    let d = pending(routing, route, target, i, body, m.headers.clone());
                    routing.deliveries.push(d);
                }
            }
            routing.results.push(result(
                route,
                Recorded::Delivered,
                Some(format!("{} message(s)", messages.len())),
            ));
        }
        Outcome::Plugin => {
            routing.plugin_calls.push(route.name.clone());
        }
    }
    for r in &mut routing.results[results_before..] {
        r.elapsed_us = elapsed.as_micros() as u64;
    }
}

/// Runs the wasm plugins of the routes in `routing.plugin_calls`, in this process: wasmtime
/// bounds each call's time and memory. A route whose plugin is not uploaded yet is recorded as
/// waiting and runs when it arrives. Blocking: call it on a blocking thread.
pub(crate) fn run_plugins(
    config: &Config,
    plugins: &Registry,
    event: &StoredEvent,
    routing: &mut Routing,
) {
    run_plugins_with(config, &|name| plugins.get(name), event, routing);
}

/// [`run_plugins`] with the plugins `plugin` answers for each name instead of the registry's
/// active ones (`plugin diff` runs a candidate in place of the active version).
pub(crate) fn run_plugins_with(
    config: &Config,
    plugin: &dyn Fn(&str) -> Option<Plugin>,
    event: &StoredEvent,
    routing: &mut Routing,
) {
    let calls = std::mem::take(&mut routing.plugin_calls);
    if calls.is_empty() {
        return;
    }
    let envelope = config
        .sources
        .get(&event.source)
        .ok_or_else(|| format!("source `{}` is no longer configured", event.source))
        .and_then(|s| {
            Envelope::with_type(event, s.format, routing.event_type.clone())
                .map_err(|e| e.to_string())
        })
        .and_then(|e| e.to_json().map_err(|e| format!("envelope: {e}")));
    for name in calls {
        let Some(route) = config.routes.iter().find(|r| r.name == name) else {
            continue;
        };
        let Some(spec) = &route.wasm else {
            continue;
        };
        let envelope = match &envelope {
            Ok(e) => e,
            Err(why) => {
                fail(routing, route, why.clone());
                continue;
            }
        };
        let Some(plugin) = plugin(&spec.plugin) else {
            let why = format!("waiting for plugin `{}` to be uploaded", spec.plugin);
            routing
                .results
                .push(result(route, Recorded::Waiting, Some(why)));
            continue;
        };
        let started = Instant::now();
        let outcome = match plugin.call(envelope, &spec.config) {
            Ok(messages) if messages.is_empty() => Outcome::Filtered,
            Ok(messages) => Outcome::Messages(messages),
            Err(e) => Outcome::Failed(e.to_string()),
        };
        apply(routing, route, outcome, started.elapsed());
    }
}

fn result(route: &Route, outcome: Recorded, detail: Option<String>) -> RouteResult {
    RouteResult {
        route: route.name.clone(),
        outcome,
        detail,
        elapsed_us: 0,
    }
}

fn pending(
    routing: &Routing,
    route: &Route,
    target: &str,
    message: usize,
    body: Option<bytes::Bytes>,
    headers: Vec<(String, String)>,
) -> NewDelivery {
    NewDelivery {
        id: delivery_id(routing, &route.name, target, message),
        route: route.name.clone(),
        target: target.to_string(),
        body,
        headers,
        status: DeliveryStatus::Pending,
        error: None,
    }
}

/// A failed route still leaves one delivery per target in the log, marked failed with the reason.
pub(super) fn fail(routing: &mut Routing, route: &Route, why: String) {
    for target in &route.targets {
        routing.deliveries.push(NewDelivery {
            id: delivery_id(routing, &route.name, target, 0),
            route: route.name.clone(),
            target: target.clone(),
            body: None,
            headers: Vec::new(),
            status: DeliveryStatus::Failed,
            error: Some(why.clone()),
        });
    }
    routing
        .results
        .push(result(route, Recorded::Failed, Some(why)));
}

pub(crate) fn new_event_id() -> String {
    format!("evt_{}", ulid::Ulid::new())
}

/// The id of the delivery of message `message` of `route` to `target`, for this routing of its
/// event. The same each time the event is routed (an event routed again after a crash, before
/// or after its deliveries were attempted, sends the same `webhook-id`, so receivers dedupe),
/// and new for each replay. A ULID like the others: the event's time, then 80 bits of a hash.
pub(crate) fn delivery_id(routing: &Routing, route: &str, target: &str, message: usize) -> String {
    use sha2::Digest;
    let mut hash = sha2::Sha256::new();
    for part in [
        routing.event_id.as_bytes(),
        route.as_bytes(),
        target.as_bytes(),
    ] {
        // Length-prefixed, so no two different triples hash the same bytes.
        hash.update((part.len() as u64).to_le_bytes());
        hash.update(part);
    }
    hash.update(routing.replays.to_le_bytes());
    hash.update((message as u64).to_le_bytes());
    let mut random = [0u8; 16];
    random[6..].copy_from_slice(&hash.finalize()[..10]);
    let time = routing
        .event_id
        .strip_prefix("evt_")
        .and_then(|u| ulid::Ulid::from_string(u).ok())
        .map_or(0, |u| u.timestamp_ms());
    format!(
        "dlv_{}",
        ulid::Ulid::from_parts(time, u128::from_be_bytes(random))
    )
}

/// The routing of an event whose evaluation did not complete: every route fails with `why`.
pub(super) fn failed_everywhere(config: &Config, event: &StoredEvent, why: &str) -> Routing {
    let mut routing = Routing::new(event);
    for route in config.routes.iter().filter(|r| r.source == event.source) {
        fail(&mut routing, route, why.to_string());
    }
    routing
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routing(event_id: &str, replays: u32) -> Routing {
        let event = StoredEvent {
            replays,
            ..StoredEvent::blank(event_id, 0)
        };
        Routing::new(&event)
    }

    #[test]
    fn a_delivery_id_is_the_same_each_time_an_event_is_routed_and_new_for_each_replay() {
        let event = format!("evt_{}", ulid::Ulid::from_parts(1_700_000_000_000, 7));
        let first = delivery_id(&routing(&event, 0), "r", "t", 0);
        assert_eq!(first, delivery_id(&routing(&event, 0), "r", "t", 0));
        let others = [
            delivery_id(&routing(&event, 1), "r", "t", 0),
            delivery_id(&routing(&event, 0), "r2", "t", 0),
            delivery_id(&routing(&event, 0), "r", "t2", 0),
            delivery_id(&routing(&event, 0), "r", "t", 1),
            // The parts are length-prefixed: moving a byte from route to target changes the id.
            delivery_id(&routing(&event, 0), "rt", "", 0),
            delivery_id(&routing("evt_other", 0), "r", "t", 0),
        ];
        let mut all: Vec<&String> = others.iter().chain([&first]).collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), others.len() + 1, "every id differs: {all:?}");
        let ulid = first.strip_prefix("dlv_").expect("dlv_ prefix");
        let ulid = ulid::Ulid::from_string(ulid).expect("a ULID");
        assert_eq!(ulid.timestamp_ms(), 1_700_000_000_000, "the event's time");
    }
}
