//! The route stage: the routing loop, the one place that knows the stage order after ingress.
//!
//! stored event ─▶ envelope ─▶ per route: filter ─▶ transform ─▶ deliveries, committed together
//! with the event's "routed" mark. Events come from the [`inbox`] ingress offers them to after
//! their commit, or from a scan of the store when the inbox may have missed some; fresh
//! deliveries go to the worker in memory after their commit ([`record`]), or, when the worker has
//! room for all of an event's, before it, the routing then committed with their first attempts
//! ([`late`]). The store is the source of truth: a crash between any two steps repeats the step
//! instead of losing the event (with the same delivery ids), and the commit is fenced so that an
//! event routed twice gets its deliveries once.
//!
//! Mappings are operator code running on producer data, so evaluation is contained by
//! [`crate::route::evaluator`] (a child process under a deadline and a memory cap): a mapping that runs
//! away or crashes fails that event's routes with a clear error, and the loop carries on.

pub(crate) mod backlog;
pub(crate) mod config;
pub(crate) mod envelope;
pub(crate) mod evaluator;
pub(crate) mod inbox;
pub(crate) mod needs;
pub(crate) mod rules;
pub(crate) mod shed;

mod late;
mod pace;
mod record;
mod routing;
mod seen;
mod source;

pub(crate) use routing::{
    new_event_id, route_event, route_event_only, run_plugins, run_plugins_with,
};

use crate::config::Config;
use crate::deliver::handoff::Handoff;
use crate::metrics::Metrics;
use crate::store::{DeliveryStatus, Routing, RoutingBatch, Store, StoredEvent};
use crate::transform::wasm::registry::Registry;
use evaluator::{EvalError, Pool};
use record::Recording;
use routing::{fail, failed_everywhere};
use rules::Route;
use seen::Seen;
use source::Source;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Events routed per store round trip.
const BATCH: usize = 256;
/// How often a shared store is read for unrouted events even while the inbox keeps the loop busy:
/// the events of an instance that died are routed by the others.
const SCAN_SHARED_EVERY: Duration = Duration::from_secs(10);

/// What the routing loop works with.
pub(crate) struct Pipeline {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) config: watch::Receiver<Arc<Config>>,
    pub(crate) evaluators: Pool,
    /// Told how many events each batch routed, so ingress sees the backlog shrink at once.
    pub(crate) backlog: Arc<backlog::Backlog>,
    /// Events ingress committed, handed over in memory.
    pub(crate) inbox: inbox::Mailbox,
    /// Fresh deliveries go to the worker this way.
    pub(crate) handoff: Handoff,
    /// Bounds each target's queue: past it, new deliveries are recorded dead.
    pub(crate) queues: shed::Queues,
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
        // The batch being committed while the next one is evaluated.
        // With the backlog's ticket taken as it began (see `backlog::Backlog::routed`).
        let mut recording: Option<(Recording, backlog::Ticket)> = None;
        let mut from = self.backlog_until_now().await;
        let mut glanced = Instant::now();
        let mut seen = Seen::default();
        let mut pace = pace::Pace::default();
        let cfg = self.config.borrow().clone();
        if cfg.sources.keys().any(|source| runs_mappings(&cfg, source)) {
            self.evaluators.start(&cfg).await;
        }
        let (late, recorder) = late::Late::start(
            self.store.clone(),
            self.backlog.clone(),
            self.clock,
            shutdown.clone(),
        );
        while !*shutdown.borrow() {
            if look_at_waiting {
                look_at_waiting = self.resolve_waiting(&mut shutdown).await;
            }
            if self.inbox.missed() {
                from = Source::Store;
            } else if from == Source::Settling && self.inbox.unsettled() == 0 {
                from = Source::Glance;
            } else if from == Source::Inbox
                && self.store.is_shared()
                && glanced.elapsed() >= SCAN_SHARED_EVERY
            {
                from = Source::Left;
            }
            let read = match from {
                Source::Backlog(span) => self
                    .backlog_page(span, recording.as_ref().map(|(r, _)| r), &late, &mut seen)
                    .await
                    .map(|(e, next)| {
                        from = next.map_or(Source::Inbox, Source::Backlog);
                        (e, false)
                    }),
                _ => {
                    self.next_batch(from, recording.as_ref().map(|(r, _)| r), &late, &mut seen)
                        .await
                }
            };
            let events = match read {
                Ok((events, more)) => {
                    match (from, more) {
                        (Source::Backlog(_) | Source::Inbox | Source::Settling, _)
                        | (Source::Store, true) => {}
                        (Source::Store, false) => {
                            self.inbox.reopen();
                            from = Source::Settling;
                        }
                        (Source::Glance | Source::Left, more) => {
                            glanced = Instant::now();
                            from = if more { Source::Store } else { Source::Inbox };
                        }
                    }
                    events
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read unrouted events");
                    pause(&mut shutdown, Duration::from_millis(500)).await;
                    continue;
                }
            };
            if events.is_empty() {
                if let Some((r, ticket)) = recording.take() {
                    self.finish(r, ticket).await;
                    continue;
                }
                // Glance now rather than after the next event: idle, it is cheap. A backlog page
                // of events all in flight is not the backlog's end.
                if look_at_waiting
                    || matches!(from, Source::Glance | Source::Left | Source::Backlog(_))
                {
                    continue;
                }
                let settling = from == Source::Settling;
                let mut look = false;
                tokio::select! {
                    _ = self.inbox.ready() => {}
                    _ = signals.events.notified() => look = true,
                    _ = plugins_changed.changed() => look_at_waiting = true,
                    _ = self.config.changed() => look_at_waiting = true,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => look = true,
                    // Commits take milliseconds: look again soon.
                    _ = tokio::time::sleep(Duration::from_millis(2)), if settling => {}
                    _ = shutdown.changed() => {}
                }
                if look && !settling {
                    from = self.backlog_until_now().await;
                }
                continue;
            }
            let taken = events.len();
            let (mut routed, unavailable) = self.route_batch(events).await;
            if routed.len() < taken {
                // Events left unrouted (evaluator unavailable, a plugin batch that panicked) are
                // still in the store: read them from there.
                from = Source::Store;
            }
            if let Some((r, ticket)) = recording.take() {
                self.finish(r, ticket).await;
            }
            if !routed.is_empty() {
                let cfg = self.config.borrow().clone();
                self.settle(&cfg, routed.iter_mut().map(|(_, r)| r));
                pace.wait_for_room(
                    &mut self.handoff,
                    &cfg,
                    routed.iter().map(|(_, r)| r),
                    self.clock,
                    &mut shutdown,
                )
                .await;
                let ticket = self.backlog.ticket();
                recording = Recording::start(
                    self.store.clone(),
                    &mut self.handoff,
                    &late,
                    &cfg,
                    routed,
                    self.clock,
                    shutdown.clone(),
                )
                .map(|r| (r, ticket));
            }
            if unavailable {
                pause(&mut shutdown, Duration::from_secs(1)).await;
            }
        }
        if let Some((r, ticket)) = recording.take() {
            self.finish(r, ticket).await;
        }
        // Routings still out are recorded as the worker finishes or drops their deliveries.
        drop(late);
        if let Err(e) = recorder.await {
            tracing::error!(error = %e, "the late routings' recorder panicked");
        }
    }

    /// Waits for a batch's commit; ingress sees the backlog shrink as soon as it lands.
    async fn finish(&self, recording: Recording, ticket: backlog::Ticket) {
        let routed = recording.ids.len() as u64;
        if recording.finish().await {
            self.backlog.routed(ticket, routed);
        }
    }

    /// Routes a batch of events, each kept beside its routing; true beside them when the
    /// evaluator was unavailable (those events have no routing and are tried again).
    async fn route_batch(
        &mut self,
        events: Vec<StoredEvent>,
    ) -> (Vec<(StoredEvent, Routing)>, bool) {
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
                    self.metrics.evaluation_failed("too_large");
                    tracing::error!(event = %event.id, error = %e, "event cannot be evaluated; its routes fail");
                    let r = failed_everywhere(&cfg, &event, &e.to_string());
                    routed.push((event, r));
                }
                Err(e @ (EvalError::Overran(_) | EvalError::Crashed(_))) => {
                    self.metrics.evaluation_failed(match e {
                        EvalError::Overran(_) => "overran",
                        _ => "crashed",
                    });
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
    ) -> Vec<(StoredEvent, Routing)> {
        if routed.iter().all(|(_, r)| r.plugin_calls.is_empty()) {
            return routed;
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
                    part
                })
            })
            .collect();
        let mut routings = Vec::new();
        for task in tasks {
            match task.await {
                Ok(part) => routings.extend(part),
                // A panic in the host is a bug; those events stay unrouted and the loop reads
                // them from the store again.
                Err(e) => tracing::error!(error = %e, "plugin batch panicked"),
            }
        }
        routings
    }

    /// What every batch goes through before it is recorded, from the inbox, the store or routes
    /// that waited for a plugin: deliveries to a full target are recorded dead (`shed`), and
    /// what the batch did is counted.
    fn settle<'a>(&mut self, cfg: &Config, routings: impl IntoIterator<Item = &'a mut Routing>) {
        let mut routings: Vec<&mut Routing> = routings.into_iter().collect();
        self.queues
            .shed(cfg, &self.metrics, routings.iter_mut().map(|r| &mut **r));
        count(&self.metrics, routings.iter().map(|r| &**r));
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
                    event_type: w.event_type,
                    plugin_calls: vec![w.route],
                    ..Routing::new(&w.event)
                };
                (w.event, routing)
            })
            .collect();
        let mut routings: Vec<Routing> = self
            .with_plugins(cfg.clone(), routed)
            .await
            .into_iter()
            .map(|(_, r)| r)
            .collect();
        self.settle(&cfg, routings.iter_mut());
        let batch = Arc::new(RoutingBatch {
            routings,
            ..Default::default()
        });
        record::record(&*self.store, batch, self.clock, shutdown).await;
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
    let mut merged = Routing::new(event);
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

/// Whether routing an event of `source` runs any jq program. Events whose routes only pass
/// through or project (`transform::projection`), behind filters that are predicates
/// (`transform::predicate`) or none, need no containment, so they are routed in place, without a
/// round trip to the evaluator.
fn runs_mappings(config: &Config, source: &str) -> bool {
    let jq_event_type = config
        .sources
        .get(source)
        .is_some_and(|s| matches!(s.event_type, crate::route::envelope::EventTypeRule::Jq(_)));
    jq_event_type
        || config
            .routes
            .iter()
            .any(|r| r.source == source && r.needs_child().is_some())
}

/// Transform time per route, and deliveries that were born failed (their route's mapping failed).
fn count<'a>(metrics: &Metrics, routings: impl IntoIterator<Item = &'a Routing>) {
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

/// Sleeps; true when shutdown began meanwhile.
async fn pause(shutdown: &mut watch::Receiver<bool>, d: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = shutdown.changed() => true,
    }
}
