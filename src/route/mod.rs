//! The route stage: the routing loop, the one place that knows the stage order after ingress.
//!
//! stored event ─▶ envelope ─▶ per route: filter ─▶ transform ─▶ deliveries, committed together
//! with the event's "routed" mark. The store is the only hand-off: the loop reads unrouted events
//! from it (woken by its commit signal) and writes deliveries back, so a crash between any two
//! steps repeats the step instead of losing the event.
//!
//! Mappings are operator code running on producer data, so evaluation is contained by
//! [`crate::route::evaluator`] (a child process under a deadline and a memory cap): a mapping that runs
//! away or crashes fails that event's routes with a clear error, and the loop carries on.

pub(crate) mod backlog;
pub(crate) mod config;
pub(crate) mod envelope;
pub(crate) mod evaluator;
pub(crate) mod rules;

mod routing;

pub(crate) use routing::{new_event_id, route_event, route_event_only, run_plugins};

use crate::config::Config;
use crate::metrics::Metrics;
use crate::store::{DeliveryStatus, Routing, Store, StoredEvent};
use crate::transform::wasm::registry::Registry;
use evaluator::{EvalError, Pool};
use routing::{fail, failed_everywhere};
use rules::Route;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Events routed per store round trip.
const BATCH: usize = 256;

/// What the routing loop works with.
pub(crate) struct Pipeline {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) config: watch::Receiver<Arc<Config>>,
    pub(crate) evaluators: Pool,
    /// Told how many events each batch routed, so ingress sees the backlog shrink at once.
    pub(crate) backlog: Arc<backlog::Backlog>,
    pub(crate) plugins: Arc<Registry>,
    pub(crate) clock: crate::Clock,
    pub(crate) metrics: Arc<Metrics>,
}

impl Pipeline {
    /// Runs the routing loop until `shutdown` turns true.
    pub(crate) async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let signals = self.store.signals();
        let mut plugins_changed = self.plugins.subscribe();
        // Routes may wait for plugins uploaded before this process started.
        let mut look_at_waiting = true;
        // The batch being committed while the next one is evaluated (one at most, so the events
        // of a batch are committed in order and memory stays bounded).
        let mut recording: Option<Recording> = None;
        while !*shutdown.borrow() {
            if look_at_waiting {
                look_at_waiting = self.resolve_waiting(&mut shutdown).await;
            }
            // Events being committed are still unrouted in the store: read past them.
            let skip = recording.as_ref().map_or(0, |r| r.ids.len());
            let events: Vec<StoredEvent> = match self.store.unrouted_events(BATCH + skip).await {
                Ok(events) => events
                    .into_iter()
                    .filter(|e| !recording.as_ref().is_some_and(|r| r.ids.contains(&e.id)))
                    .take(BATCH)
                    .collect(),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read unrouted events");
                    pause(&mut shutdown, Duration::from_millis(500)).await;
                    continue;
                }
            };
            if events.is_empty() {
                if let Some(r) = recording.take() {
                    self.finish(r).await;
                    continue;
                }
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
            let (routings, unavailable) = self.route_batch(events).await;
            if let Some(r) = recording.take() {
                self.finish(r).await;
            }
            if !routings.is_empty() {
                count(&self.metrics, &routings);
                recording = Some(self.start_recording(routings, shutdown.clone()));
            }
            if unavailable {
                pause(&mut shutdown, Duration::from_secs(1)).await;
            }
        }
        if let Some(r) = recording.take() {
            self.finish(r).await;
        }
    }

    /// Commits `routings` in the background, so the next batch is evaluated meanwhile.
    fn start_recording(
        &self,
        routings: Vec<Routing>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Recording {
        let ids = routings.iter().map(|r| r.event_id.clone()).collect();
        let (store, clock) = (self.store.clone(), self.clock);
        let task =
            tokio::spawn(async move { record(&*store, routings, clock, &mut shutdown).await });
        Recording { task, ids }
    }

    /// Waits for a batch's commit; ingress sees the backlog shrink as soon as it lands.
    async fn finish(&self, recording: Recording) {
        match recording.task.await {
            Ok(true) => self.backlog.routed(recording.ids.len() as u64),
            Ok(false) => {} // shutdown came first: the events stay unrouted
            Err(e) => tracing::error!(error = %e, "recording a routing batch panicked"),
        }
    }

    /// Routes a batch of events; true beside them when the evaluator was unavailable (those
    /// events have no routing and are tried again).
    async fn route_batch(&mut self, events: Vec<StoredEvent>) -> (Vec<Routing>, bool) {
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
        let results = self.evaluators.route_batch(&cfg, &contained).await;
        let mut unavailable = false;
        for (event, result) in contained.into_iter().zip(results) {
            // Left unevaluated behind a failure in its run: it comes back next round.
            let Some(result) = result else { continue };
            match result {
                Ok(r) => routed.push((event, r)),
                Err(e @ EvalError::TooLarge(_)) => {
                    tracing::error!(event = %event.id, error = %e, "event cannot be evaluated; its routes fail");
                    let r = failed_everywhere(&cfg, &event, &e.to_string());
                    routed.push((event, r));
                }
                Err(e @ (EvalError::Overran(_) | EvalError::Crashed(_))) => {
                    tracing::warn!(event = %event.id, error = %e, "route evaluation failed; evaluating its routes one by one");
                    match self.isolate(&cfg, &event, &e).await {
                        Some(r) => routed.push((event, r)),
                        None => unavailable = true,
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "route evaluator unavailable; retrying");
                    unavailable = true;
                }
            }
        }
        (self.with_plugins(cfg, routed).await, unavailable)
    }

    /// See [`isolate`].
    async fn isolate(
        &mut self,
        cfg: &Arc<Config>,
        event: &StoredEvent,
        first: &EvalError,
    ) -> Option<Routing> {
        isolate(&mut self.evaluators, cfg, event, first).await
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

/// Routes one event the way the loop does, contained: in place when it runs no jq, else in an
/// evaluator child under the deadline, and, when that runs away or crashes, route by route so only
/// the routes at fault fail (with the cause). Plugin calls are left to the caller. `hookgate try`
/// runs this, so a dry run is bounded like the server. Errs only when no evaluator is available.
pub(crate) async fn route_contained(
    evaluators: &mut Pool,
    cfg: &Arc<Config>,
    event: &StoredEvent,
) -> Result<Routing, EvalError> {
    if !runs_mappings(cfg, &event.source) {
        return Ok(route_event(cfg, event));
    }
    let answer = evaluators
        .route_batch(cfg, std::slice::from_ref(event))
        .await
        .pop()
        .flatten()
        .unwrap_or_else(|| Err(EvalError::Unavailable("no answer".into())));
    match answer {
        Ok(r) => Ok(r),
        Err(e @ EvalError::TooLarge(_)) => Ok(failed_everywhere(cfg, event, &e.to_string())),
        Err(e @ (EvalError::Overran(_) | EvalError::Crashed(_))) => {
            isolate(evaluators, cfg, event, &e).await.ok_or(e)
        }
        Err(e) => Err(e),
    }
}

/// Evaluates each route of an event that ran away or crashed on its own, in a fresh child, so
/// that only the routes at fault fail and the others deliver. An event whose child died of
/// something else (killed from outside, say) routes normally the second time. `None` when the
/// evaluator became unavailable: the event stays unrouted and is tried again.
async fn isolate(
    evaluators: &mut Pool,
    cfg: &Arc<Config>,
    event: &StoredEvent,
    first: &EvalError,
) -> Option<Routing> {
    tracing::debug!(event = %event.id, error = %first, "evaluating each route on its own");
    let routes: Vec<&Route> = cfg
        .routes
        .iter()
        .filter(|r| r.source == event.source)
        .map(|r| &**r)
        .collect();
    let mut merged = Routing::new(&event.id);
    for route in routes {
        match evaluators.route_alone(cfg, event, &route.name).await {
            Ok(r) => {
                merged.event_type = merged.event_type.or(r.event_type);
                merged.results.extend(r.results);
                merged.deliveries.extend(r.deliveries);
                merged.plugin_calls.extend(r.plugin_calls);
            }
            Err(EvalError::Unavailable(why)) => {
                tracing::error!(error = %why, "route evaluator unavailable; retrying");
                return None;
            }
            Err(e) => {
                tracing::error!(event = %event.id, route = %route.name, error = %e, "route evaluation failed; this route fails");
                fail(&mut merged, route, e.to_string());
            }
        }
    }
    Some(merged)
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

/// A batch of routings being committed, and the events they route.
struct Recording {
    task: tokio::task::JoinHandle<bool>,
    ids: std::collections::HashSet<String>,
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

/// Records routings, retrying while the store is unavailable: the events stay unrouted until then.
/// False when shutdown came first.
async fn record(
    store: &dyn Store,
    routings: Vec<Routing>,
    clock: crate::Clock,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    let routings: Arc<[Routing]> = routings.into();
    loop {
        match store.record_routing(routings.clone(), clock.now_ms()).await {
            Ok(()) => return true,
            Err(e) => {
                // A database's message may quote event types or details taken from bodies.
                tracing::warn!(error = %crate::log_safe::Escaped(&e), "cannot record routing; retrying");
                if pause(shutdown, Duration::from_millis(500)).await {
                    return false;
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
