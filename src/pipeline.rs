//! The pipeline: the one place that knows the stage order after ingress.
//!
//! stored event ─▶ envelope ─▶ per route: filter ─▶ transform ─▶ deliveries, committed together
//! with the event's "routed" mark. The store is the only hand-off: the loop reads unrouted events
//! from it (woken by its commit signal) and writes deliveries back, so a crash between any two
//! steps repeats the step instead of losing the event.
//!
//! Mappings are operator code running on producer data, so evaluation is contained by
//! [`crate::evaluator`] (a child process under a deadline and a memory cap): a mapping that runs
//! away or crashes fails that event's routes with a clear error, and the loop carries on.

use crate::config::Config;
use crate::envelope::Envelope;
use crate::evaluator::{EvalError, Evaluator};
use crate::metrics::Metrics;
use crate::route::Outcome;
use crate::store::{
    DeliveryStatus, NewDelivery, Outcome as Recorded, RouteResult, Routing, Store, StoredEvent,
};
use std::sync::Arc;
use std::time::Duration;
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
        let started = std::time::Instant::now();
        let outcome = route.evaluate(&envelope);
        let elapsed_us = started.elapsed().as_micros() as u64;
        let results_before = routing.results.len();
        match outcome {
            Outcome::Filtered => routing
                .results
                .push(result(route, Recorded::Filtered, None)),
            Outcome::Failed(why) => fail(&mut routing, route, why),
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
        }
        for r in &mut routing.results[results_before..] {
            r.elapsed_us = elapsed_us;
        }
    }
    routing
}

fn result(route: &crate::route::Route, outcome: Recorded, detail: Option<String>) -> RouteResult {
    RouteResult {
        route: route.name.clone(),
        outcome,
        detail,
        elapsed_us: 0,
    }
}

fn pending(
    route: &crate::route::Route,
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
fn fail(routing: &mut Routing, route: &crate::route::Route, why: String) {
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

/// Runs the routing loop until `shutdown` turns true. `config` carries the current configuration.
pub async fn run(
    store: Arc<dyn Store>,
    config: watch::Receiver<Arc<Config>>,
    mut evaluator: Evaluator,
    clock: crate::Clock,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) {
    let signals = store.signals();
    while !*shutdown.borrow() {
        let events = match store.unrouted_events(BATCH).await {
            Ok(events) => events,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read unrouted events");
                pause(&mut shutdown, Duration::from_millis(500)).await;
                continue;
            }
        };
        if events.is_empty() {
            tokio::select! {
                _ = signals.events.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = shutdown.changed() => {}
            }
            continue;
        }
        let cfg = config.borrow().clone();
        let (contained, inline): (Vec<StoredEvent>, Vec<StoredEvent>) = events
            .into_iter()
            .partition(|e| runs_mappings(&cfg, &e.source));
        let mut routings: Vec<Routing> = inline.iter().map(|e| route_event(&cfg, e)).collect();
        let results = evaluator.route_batch(&cfg, &contained).await;
        let mut unavailable = false;
        for (event, result) in contained.iter().zip(results) {
            match result {
                Ok(r) => routings.push(r),
                Err(e @ (EvalError::Overran(_) | EvalError::Crashed(_))) => {
                    tracing::error!(event = %event.id, error = %e, "route evaluation failed; routes of this event fail");
                    routings.push(failed_everywhere(&cfg, event, &e.to_string()));
                }
                Err(e) => {
                    // Not the event's fault: it stays unrouted and is tried again.
                    tracing::error!(error = %e, "route evaluator unavailable; retrying");
                    unavailable = true;
                }
            }
        }
        if !routings.is_empty() {
            count(&metrics, &routings);
            record(&*store, routings, clock, &mut shutdown).await;
        }
        if unavailable {
            pause(&mut shutdown, Duration::from_secs(1)).await;
        }
    }
}

/// Whether routing an event of `source` runs any jq. Events that only pass through need no
/// containment, so they are routed in place, without a round trip to the evaluator.
fn runs_mappings(config: &Config, source: &str) -> bool {
    let jq_event_type = config
        .sources
        .get(source)
        .is_some_and(|s| matches!(s.event_type, crate::envelope::EventTypeRule::Jq(_)));
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
