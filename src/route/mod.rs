//! The pipeline: the one place that knows the stage order after ingress.
//!
//! stored event ─▶ envelope ─▶ per route: filter ─▶ transform ─▶ deliveries, committed together
//! with the event's "routed" mark. The store is the only hand-off: the loop reads unrouted events
//! from it (woken by its commit signal) and writes deliveries back, so a crash between any two
//! steps repeats the step instead of losing the event.
//!
//! Mappings are operator code running on producer data, so evaluation is contained by
//! [`crate::route::evaluator`] (a child process under a deadline and a memory cap): a mapping that runs
//! away or crashes fails that event's routes with a clear error, and the loop carries on.

pub mod envelope;
pub mod evaluator;
pub mod rules;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::route::envelope::Envelope;
use crate::route::evaluator::{EvalError, Evaluator};
use crate::route::rules::{Outcome, Route};
use crate::store::{
    DeliveryStatus, NewDelivery, Outcome as Recorded, RouteResult, Routing, Store, StoredEvent,
};
use crate::transform::wasm::registry::Registry;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Events routed per store round trip.
const BATCH: usize = 256;

/// Routes one event through every route of its source. Pure apart from id generation.
pub fn route_event(config: &Config, event: &StoredEvent) -> Routing {
    let mut routing = Routing {
        event_id: event.id.clone(),
        event_type: None,
        results: Vec::new(),
        deliveries: Vec::new(),
        plugin_calls: Vec::new(),
    };
    let Some(source) = config.sources.get(&event.source) else {
        return routing;
    };
    let routes = config.routes.iter().filter(|r| r.source == event.source);
    let envelope = match Envelope::build(event, source.format, &source.event_type) {
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
                routing
                    .deliveries
                    .push(pending(route, target, None, Vec::new()));
            }
            routing
                .results
                .push(result(route, Recorded::Delivered, None));
        }
        Outcome::Messages(messages) => {
            for m in &messages {
                for target in route.targets_for(m) {
                    routing.deliveries.push(pending(
                        route,
                        target,
                        Some(m.body.clone()),
                        m.headers.clone(),
                    ));
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
pub fn run_plugins(
    config: &Config,
    plugins: &Registry,
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
        .map(|e| e.to_json());
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
        let Some(plugin) = plugins.get(&spec.plugin) else {
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
    route: &Route,
    target: &str,
    body: Option<bytes::Bytes>,
    headers: Vec<(String, String)>,
) -> NewDelivery {
    NewDelivery {
        id: new_delivery_id(),
        route: route.name.clone(),
        target: target.to_string(),
        body,
        headers,
        status: DeliveryStatus::Pending,
        error: None,
    }
}

/// A failed route still leaves one delivery per target in the log, marked failed with the reason.
fn fail(routing: &mut Routing, route: &Route, why: String) {
    for target in &route.targets {
        routing.deliveries.push(NewDelivery {
            id: new_delivery_id(),
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

pub fn new_event_id() -> String {
    format!("evt_{}", ulid::Ulid::new())
}

pub fn new_delivery_id() -> String {
    format!("dlv_{}", ulid::Ulid::new())
}

/// What the routing loop works with.
pub struct Pipeline {
    pub store: Arc<dyn Store>,
    pub config: watch::Receiver<Arc<Config>>,
    pub evaluator: Evaluator,
    pub plugins: Arc<Registry>,
    pub clock: crate::Clock,
    pub metrics: Arc<Metrics>,
}

impl Pipeline {
    /// Runs the routing loop until `shutdown` turns true.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let signals = self.store.signals();
        let mut plugins_changed = self.plugins.subscribe();
        // Routes may wait for plugins uploaded before this process started.
        let mut look_at_waiting = true;
        while !*shutdown.borrow() {
            if look_at_waiting {
                look_at_waiting = self.resolve_waiting(&mut shutdown).await;
            }
            let events = match self.store.unrouted_events(BATCH).await {
                Ok(events) => events,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read unrouted events");
                    pause(&mut shutdown, Duration::from_millis(500)).await;
                    continue;
                }
            };
            if events.is_empty() {
                if look_at_waiting {
                    continue;
                }
                tokio::select! {
                    _ = signals.events.notified() => {}
                    _ = plugins_changed.changed() => look_at_waiting = true,
                    _ = self.config.changed() => look_at_waiting = true,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            let unavailable = self.route_batch(events, &mut shutdown).await;
            if unavailable {
                pause(&mut shutdown, Duration::from_secs(1)).await;
            }
        }
    }

    /// Routes a batch of events and records the result; true when the evaluator was unavailable
    /// (those events stay unrouted and are tried again).
    async fn route_batch(
        &mut self,
        events: Vec<StoredEvent>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> bool {
        let cfg = self.config.borrow().clone();
        let (contained, inline): (Vec<StoredEvent>, Vec<StoredEvent>) = events
            .into_iter()
            .partition(|e| runs_mappings(&cfg, &e.source));
        let mut routed: Vec<(StoredEvent, Routing)> = inline
            .into_iter()
            .map(|e| {
                let r = route_event(&cfg, &e);
                (e, r)
            })
            .collect();
        let results = self.evaluator.route_batch(&cfg, &contained).await;
        let mut unavailable = false;
        for (event, result) in contained.into_iter().zip(results) {
            match result {
                Ok(r) => routed.push((event, r)),
                Err(e @ (EvalError::Overran(_) | EvalError::Crashed(_))) => {
                    tracing::error!(event = %event.id, error = %e, "route evaluation failed; routes of this event fail");
                    let r = failed_everywhere(&cfg, &event, &e.to_string());
                    routed.push((event, r));
                }
                Err(e) => {
                    tracing::error!(error = %e, "route evaluator unavailable; retrying");
                    unavailable = true;
                }
            }
        }
        let routings = self.with_plugins(cfg, routed).await;
        if !routings.is_empty() {
            count(&self.metrics, &routings);
            record(&*self.store, routings, self.clock, shutdown).await;
        }
        unavailable
    }

    /// Runs the plugin calls of a batch on blocking threads, one chunk per core (each call is
    /// bounded by wasmtime), and gives the routings back in order.
    async fn with_plugins(
        &self,
        cfg: Arc<Config>,
        routed: Vec<(StoredEvent, Routing)>,
    ) -> Vec<Routing> {
        if routed.iter().all(|(_, r)| r.plugin_calls.is_empty()) {
            return routed.into_iter().map(|(_, r)| r).collect();
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let chunk = routed.len().div_ceil(cores).max(16);
        let mut rest = routed;
        let mut chunks = Vec::new();
        while !rest.is_empty() {
            let tail = rest.split_off(chunk.min(rest.len()));
            chunks.push(std::mem::replace(&mut rest, tail));
        }
        let tasks: Vec<_> = chunks
            .into_iter()
            .map(|mut part| {
                let (cfg, plugins) = (cfg.clone(), self.plugins.clone());
                tokio::task::spawn_blocking(move || {
                    for (event, routing) in &mut part {
                        run_plugins(&cfg, &plugins, event, routing);
                    }
                    part.into_iter().map(|(_, r)| r).collect::<Vec<_>>()
                })
            })
            .collect();
        let mut routings = Vec::new();
        for task in tasks {
            match task.await {
                Ok(part) => routings.extend(part),
                // A panic in the host is a bug; those events stay unrouted and are tried again.
                Err(e) => tracing::error!(error = %e, "plugin batch panicked"),
            }
        }
        routings
    }

    /// Runs routes that waited for a plugin that is now active. True while more may be left.
    async fn resolve_waiting(&mut self, shutdown: &mut watch::Receiver<bool>) -> bool {
        let cfg = self.config.borrow().clone();
        let ready: Vec<String> = cfg
            .routes
            .iter()
            .filter(|r| {
                r.wasm
                    .as_ref()
                    .is_some_and(|w| self.plugins.get(&w.plugin).is_some())
            })
            .map(|r| r.name.clone())
            .collect();
        if ready.is_empty() {
            return false;
        }
        let waiting = match self.store.waiting_routes(ready, BATCH).await {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read routes waiting for plugins");
                return false;
            }
        };
        if waiting.is_empty() {
            return false;
        }
        let full = waiting.len() == BATCH;
        let routed = waiting
            .into_iter()
            .map(|w| {
                let routing = Routing {
                    event_id: w.event.id.clone(),
                    event_type: w.event_type,
                    results: Vec::new(),
                    deliveries: Vec::new(),
                    plugin_calls: vec![w.route],
                };
                (w.event, routing)
            })
            .collect();
        let routings = self.with_plugins(cfg, routed).await;
        count(&self.metrics, &routings);
        record(&*self.store, routings, self.clock, shutdown).await;
        full
    }
}

/// Whether routing an event of `source` runs any jq. Events that only pass through need no
/// containment, so they are routed in place, without a round trip to the evaluator.
fn runs_mappings(config: &Config, source: &str) -> bool {
    let jq_event_type = config
        .sources
        .get(source)
        .is_some_and(|s| matches!(s.event_type, crate::route::envelope::EventTypeRule::Jq(_)));
    jq_event_type
        || config
            .routes
            .iter()
            .any(|r| r.source == source && (r.filter.is_some() || r.transform.is_some()))
}

/// Transform time per route, and deliveries that were born failed (their route's mapping failed).
fn count(metrics: &Metrics, routings: &[Routing]) {
    for r in routings {
        for result in &r.results {
            metrics.transform_time(&result.route, Duration::from_micros(result.elapsed_us));
        }
        for d in &r.deliveries {
            if d.status == DeliveryStatus::Failed {
                metrics.delivery_finished(&d.target, "failed");
            }
        }
    }
}

/// The routing of an event whose evaluation did not complete: every route fails with `why`.
fn failed_everywhere(config: &Config, event: &StoredEvent, why: &str) -> Routing {
    let mut routing = Routing {
        event_id: event.id.clone(),
        event_type: None,
        results: Vec::new(),
        deliveries: Vec::new(),
        plugin_calls: Vec::new(),
    };
    for route in config.routes.iter().filter(|r| r.source == event.source) {
        fail(&mut routing, route, why.to_string());
    }
    routing
}

/// Records routings, retrying while the store is unavailable: the events stay unrouted until then.
async fn record(
    store: &dyn Store,
    routings: Vec<Routing>,
    clock: crate::Clock,
    shutdown: &mut watch::Receiver<bool>,
) {
    let routings: Arc<[Routing]> = routings.into();
    loop {
        match store.record_routing(routings.clone(), clock.now_ms()).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, "cannot record routing; retrying");
                if pause(shutdown, Duration::from_millis(500)).await {
                    return;
                }
            }
        }
    }
}

/// Sleeps; true when shutdown began meanwhile.
async fn pause(shutdown: &mut watch::Receiver<bool>, d: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = shutdown.changed() => true,
    }
}
