//! The pipeline: the one place that knows the stage order after ingress.
//!
//! stored event ─▶ envelope ─▶ per route: filter ─▶ transform ─▶ deliveries, committed together
//! with the event's "routed" mark. The store is the only hand-off: the loop reads unrouted events
//! from it (woken by its commit signal) and writes deliveries back, so a crash between any two
//! steps repeats the step instead of losing the event.
//!
//! Mappings are operator code running on producer data, so evaluation happens on a dedicated
//! thread with a large stack, under a deadline per event: a mapping that runs away fails that
//! event's routes with a clear error, and the loop carries on with a fresh evaluator thread.

use crate::config::Config;
use crate::envelope::Envelope;
use crate::route::Outcome;
use crate::store::{DeliveryStatus, NewDelivery, RouteResult, Routing, Store, StoredEvent};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Events routed per store round trip.
const BATCH: usize = 256;
/// Evaluation thread stack: deep but finite recursion in a mapping must not overflow it.
const EVAL_STACK: usize = 256 * 1024 * 1024;

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
    for route in routes {
        match route.evaluate(&envelope) {
            Outcome::Filtered => routing.results.push(result(route, "filtered", None)),
            Outcome::Failed(why) => fail(&mut routing, route, why),
            Outcome::Passthrough => {
                for target in &route.targets {
                    routing
                        .deliveries
                        .push(pending(route, target, None, Vec::new()));
                }
                routing.results.push(result(route, "delivered", None));
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
                    "delivered",
                    Some(format!("{} message(s)", messages.len())),
                ));
            }
        }
    }
    routing
}

fn result(
    route: &crate::route::Route,
    outcome: &'static str,
    detail: Option<String>,
) -> RouteResult {
    RouteResult {
        route: route.name.clone(),
        outcome,
        detail,
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
    routing.results.push(result(route, "failed", Some(why)));
}

pub fn new_event_id() -> String {
    format!("evt_{}", ulid::Ulid::new())
}

pub fn new_delivery_id() -> String {
    format!("dlv_{}", ulid::Ulid::new())
}

type Job = (
    Arc<Config>,
    StoredEvent,
    tokio::sync::oneshot::Sender<Routing>,
);

/// A thread that evaluates routes; replaced when a mapping overruns its deadline.
struct Evaluator {
    jobs: std::sync::mpsc::Sender<Job>,
}

impl Evaluator {
    fn spawn() -> std::io::Result<Self> {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("route-eval".into())
            .stack_size(EVAL_STACK)
            .spawn(move || {
                while let Ok((config, event, reply)) = rx.recv() {
                    let _ = reply.send(route_event(&config, &event));
                }
            })?;
        Ok(Self { jobs: tx })
    }

    async fn route(
        &self,
        config: Arc<Config>,
        event: StoredEvent,
        deadline: Duration,
    ) -> Option<Routing> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.jobs.send((config, event, tx)).ok()?;
        tokio::time::timeout(deadline, rx).await.ok()?.ok()
    }
}

/// Runs the routing loop until `shutdown` turns true. `config` carries the current configuration.
pub async fn run(
    store: Arc<dyn Store>,
    config: watch::Receiver<Arc<Config>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let signals = store.signals();
    let mut evaluator = match Evaluator::spawn() {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the route evaluator thread");
            return;
        }
    };
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
        let mut routings = Vec::with_capacity(events.len());
        for event in events {
            match evaluator
                .route(cfg.clone(), event.clone(), cfg.jq_timeout)
                .await
            {
                Some(r) => routings.push(r),
                None => {
                    tracing::error!(event = %event.id, timeout = ?cfg.jq_timeout, "route evaluation overran its deadline; abandoning the evaluator thread");
                    routings.push(overran(&cfg, &event));
                    match Evaluator::spawn() {
                        Ok(e) => evaluator = e,
                        Err(e) => {
                            tracing::error!(error = %e, "cannot start a new evaluator thread");
                            return;
                        }
                    }
                }
            }
        }
        record(&*store, routings, &mut shutdown).await;
    }
}

/// The routing of an event whose evaluation did not finish in time: every route fails.
fn overran(config: &Config, event: &StoredEvent) -> Routing {
    let mut routing = Routing {
        event_id: event.id.clone(),
        event_type: None,
        results: Vec::new(),
        deliveries: Vec::new(),
    };
    for route in config.routes.iter().filter(|r| r.source == event.source) {
        fail(
            &mut routing,
            route,
            format!(
                "evaluation exceeded the {:?} deadline (jq.timeout_ms)",
                config.jq_timeout
            ),
        );
    }
    routing
}

/// Records routings, retrying while the store is unavailable: the events stay unrouted until then.
async fn record(store: &dyn Store, routings: Vec<Routing>, shutdown: &mut watch::Receiver<bool>) {
    loop {
        match store.record_routing(routings.clone()).await {
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
