//! `POST /admin/v1/plugins/{name}/diff`: what an upload would change. The stored events of the
//! routes that use plugin `name` run through its active version and through a candidate (the
//! request's body) side by side, and the answer lists each event and route whose result differs:
//! outcome, detail, and the messages each target would get.
//!
//! It must never store, activate or send anything. The candidate is validated and compiled as an
//! upload would be (its compiled code is cached, so pushing it afterwards is quick) but not
//! installed; the routes' filters run in the dry runs' own evaluator child, so a diff cannot stall
//! routing; the run stops at a deadline and says so rather than holding the request open, and
//! stops when the client goes away.

use super::extract::{ApiPath, ApiQuery};
use super::log::parse_since;
use super::{Admin, ApiError};
use crate::config::Config;
use crate::route::rules::Route;
use crate::store::{DeliveryStatus, EventQuery, EventSummary, Routing, StoredEvent};
use crate::transform::wasm::Plugin;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Events compared when the request names no `limit`.
pub(crate) const DEFAULT_LIMIT: usize = 100;
/// The most events one diff compares.
const MAX_LIMIT: usize = 1000;
/// How long a diff runs before it answers with what it compared so far (`truncated`).
const DEADLINE: Duration = Duration::from_secs(60);
/// How long a diff waits for a dry run before it.
const BUSY_WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct DiffParams {
    /// Only events received this long ago or later (`30m`, `1h`, `7d`); all stored events when
    /// absent.
    since: Option<String>,
    /// At most this many events, newest first (default 100, at most 1000).
    limit: Option<usize>,
}

/// What an upload of the candidate would change (`POST /admin/v1/plugins/{name}/diff`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct PluginDiff {
    pub(crate) plugin: String,
    /// The active version's SHA-256; absent when the plugin is not uploaded yet (its routes'
    /// events are then `waiting` on the active side).
    pub(crate) active_sha256: Option<String>,
    pub(crate) candidate_sha256: String,
    /// The routes of the running config that use the plugin.
    pub(crate) routes: Vec<String>,
    /// Events run through both versions.
    pub(crate) compared: usize,
    /// Events with at least one route whose result differs.
    pub(crate) changed: usize,
    /// The deadline stopped the run before every selected event was compared.
    pub(crate) truncated: bool,
    /// Mean time of one call of the active version, in microseconds (instantiation included).
    pub(crate) active_mean_us: Option<u64>,
    /// Mean time of one call of the candidate, in microseconds.
    pub(crate) candidate_mean_us: Option<u64>,
    /// Each event and route whose result differs, newest event first.
    pub(crate) differences: Vec<Difference>,
}

/// One event and route whose result differs between the versions.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Difference {
    pub(crate) event_id: String,
    pub(crate) source: String,
    pub(crate) event_type: Option<String>,
    /// RFC 3339.
    pub(crate) received_at: String,
    pub(crate) route: String,
    pub(crate) active: Side,
    pub(crate) candidate: Side,
}

/// What one version made of the event on one route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub(crate) struct Side {
    /// `delivered`, `filtered`, `failed` or `waiting`.
    pub(crate) outcome: String,
    pub(crate) detail: Option<String>,
    /// What each target would get, in order.
    pub(crate) messages: Vec<Sent>,
}

/// One message for one target: the plugin's headers and body (as text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub(crate) struct Sent {
    pub(crate) target: String,
    /// `[name, value]` pairs the plugin set.
    #[schema(value_type = Vec<Vec<String>>)]
    pub(crate) headers: Vec<(String, String)>,
    /// Absent: the event's body, unchanged.
    pub(crate) body: Option<String>,
}

/// Runs the stored events of the routes using plugin `name` through its active version and
/// through the candidate in the body, and answers where their results differ. Stores, activates
/// and sends nothing.
#[utoipa::path(post, path = "/admin/v1/plugins/{name}/diff", tag = "plugins",
    params(("name" = String, Path, description = "The plugin's name"), DiffParams),
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
        description = "The candidate: a WebAssembly component of hookgate's plugin world (`.wasm`)"),
    responses((status = 200, body = PluginDiff),
        (status = 400, description = "Not a valid plugin, or a bad parameter", body = super::answers::ErrorAnswer),
        (status = 401, body = super::answers::ErrorAnswer),
        (status = 422, description = "No route uses the plugin", body = super::answers::ErrorAnswer),
        (status = 503, body = super::answers::ErrorAnswer)))]
pub(super) async fn diff(
    State(state): State<Admin>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(params): ApiQuery<DiffParams>,
    body: Bytes,
) -> Result<Json<PluginDiff>, ApiError> {
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    compare(&state, name, params.since.as_deref(), limit, body)
        .await
        .map(Json)
}

/// The diff itself, for the API and the console: `limit` newest events since `since`.
pub(crate) async fn compare(
    state: &Admin,
    name: String,
    since: Option<&str>,
    limit: usize,
    body: Bytes,
) -> Result<PluginDiff, ApiError> {
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    let since = parse_since(since, state.clock.now_ms())?;
    let running = state.config.borrow().clone();
    let config = Arc::new(only_routes_of(&running, &name));
    if config.routes.is_empty() {
        return Err(ApiError::Unprocessable(format!(
            "no route of the running config uses plugin `{name}`: the diff runs its routes' \
             stored events, so name it in a route first"
        )));
    }
    let registry = Arc::clone(&state.plugins);
    let plugin = name.clone();
    let candidate = tokio::task::spawn_blocking(move || registry.candidate(&plugin, &body))
        .await
        .map_err(|e| ApiError::Unavailable(format!("the candidate did not load: {e}")))??;
    let events = select(state, &config, since, limit).await?;
    let evaluators = tokio::time::timeout(BUSY_WAIT, Arc::clone(&state.evaluators).lock_owned())
        .await
        .map_err(|_| ApiError::Unavailable("a dry run is still running; try again".into()))?;
    // Dropped with this future when the client goes away: the run then stops at the next event
    // and lets the evaluator go, instead of comparing for nobody until the deadline.
    let gone = Gone::default();
    let run = Run {
        state: state.clone(),
        config,
        active: state.plugins.get(&name),
        candidate,
        gone: Arc::clone(&gone.0),
    };
    // Plugins run synchronously (wasmtime bounds them), so the run takes a blocking thread.
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let mut evaluators = evaluators;
        handle.block_on(run.compare(&mut evaluators, &events))
    })
    .await
    .map_err(|e| ApiError::Unavailable(format!("the diff did not finish: {e}")))?
}

/// `config` with only the routes that use plugin `name`: the others need not run.
fn only_routes_of(config: &Config, name: &str) -> Config {
    let routes = config
        .routes
        .iter()
        .filter(|r| r.wasm.as_ref().is_some_and(|w| w.plugin == name))
        .cloned()
        .collect();
    Config {
        routes,
        ..config.clone()
    }
}

/// The newest `limit` stored events of the routes' sources received since `since`.
async fn select(
    state: &Admin,
    config: &Config,
    since: Option<i64>,
    limit: usize,
) -> Result<Vec<EventSummary>, ApiError> {
    let mut sources: Vec<&str> = config.routes.iter().map(|r| r.source.as_str()).collect();
    sources.sort_unstable();
    sources.dedup();
    let mut events = Vec::new();
    for source in sources {
        let query = EventQuery {
            source: Some(source.to_string()),
            event_type: None,
            limit,
            before: None,
            since,
        };
        events.extend(state.store.list_events(query).await?);
    }
    events.sort_by_key(|e| std::cmp::Reverse((e.received_at, e.seq)));
    events.truncate(limit);
    Ok(events)
}

/// One diff: the routes to run, and the two versions.
struct Run {
    state: Admin,
    config: Arc<Config>,
    active: Option<Plugin>,
    candidate: Plugin,
    /// Set once nobody waits for the answer.
    gone: Arc<AtomicBool>,
}

/// Sets its flag when dropped (see [`compare`]).
#[derive(Default)]
struct Gone(Arc<AtomicBool>);

impl Drop for Gone {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Call times of one version, summed.
#[derive(Default)]
struct Timing {
    total_us: u64,
    calls: u64,
}

impl Timing {
    /// Adds the calls `routing` made for the routes in `calls`.
    fn add(&mut self, routing: &Routing, calls: &[String]) {
        for r in routing.results.iter().filter(|r| calls.contains(&r.route)) {
            self.total_us += r.elapsed_us;
            self.calls += 1;
        }
    }

    fn mean(&self) -> Option<u64> {
        self.total_us.checked_div(self.calls)
    }
}

impl Run {
    async fn compare(
        self,
        evaluators: &mut crate::route::evaluator::Pool,
        events: &[EventSummary],
    ) -> Result<PluginDiff, ApiError> {
        let started = Instant::now();
        let (mut active_time, mut candidate_time) = (Timing::default(), Timing::default());
        let mut differences = Vec::new();
        let (mut compared, mut changed, mut truncated) = (0, 0, false);
        for summary in events {
            if started.elapsed() > DEADLINE || self.gone.load(Ordering::Relaxed) {
                truncated = true;
                break;
            }
            let event = match self.state.store.get_event(&summary.id).await {
                Ok(view) => StoredEvent {
                    id: view.id,
                    source: view.source,
                    received_at: view.received_at,
                    headers: view.headers,
                    query: Vec::new(),
                    body: view.body.into(),
                    replays: 0,
                },
                // Pruned since it was listed: there is nothing left to compare.
                Err(crate::store::StoreError::NotFound) => continue,
                Err(e) => return Err(e.into()),
            };
            let routing = crate::route::route_contained(evaluators, &self.config, &event)
                .await
                .map_err(|e| ApiError::Unavailable(format!("cannot evaluate the routes: {e}")))?;
            let calls = routing.plugin_calls.clone();
            let before = self.through(self.active.clone(), &event, routing.clone());
            let after = self.through(Some(self.candidate.clone()), &event, routing);
            if self.active.is_some() {
                active_time.add(&before, &calls);
            }
            candidate_time.add(&after, &calls);
            compared += 1;
            let found = self.differences(&event, &before, &after);
            changed += usize::from(!found.is_empty());
            differences.extend(found);
        }
        Ok(PluginDiff {
            plugin: self.candidate.name().to_string(),
            active_sha256: self.active.as_ref().map(|p| p.sha256().to_string()),
            candidate_sha256: self.candidate.sha256().to_string(),
            routes: self.config.routes.iter().map(|r| r.name.clone()).collect(),
            compared,
            changed,
            truncated,
            active_mean_us: active_time.mean(),
            candidate_mean_us: candidate_time.mean(),
            differences,
        })
    }

    /// `routing` (the routes' filters already run) with the plugin calls made by `plugin`.
    fn through(
        &self,
        plugin: Option<Plugin>,
        event: &StoredEvent,
        mut routing: Routing,
    ) -> Routing {
        crate::route::run_plugins_with(&self.config, &|_| plugin.clone(), event, &mut routing);
        routing
    }

    fn differences(
        &self,
        event: &StoredEvent,
        before: &Routing,
        after: &Routing,
    ) -> Vec<Difference> {
        self.config
            .routes
            .iter()
            .filter(|r| r.source == event.source)
            .filter_map(|route| {
                let active = side(&self.config, before, route);
                let candidate = side(&self.config, after, route);
                (active != candidate).then(|| Difference {
                    event_id: event.id.clone(),
                    source: event.source.clone(),
                    event_type: after.event_type.clone(),
                    received_at: crate::rfc3339(event.received_at),
                    route: route.name.clone(),
                    active,
                    candidate,
                })
            })
            .collect()
    }
}

/// What `routing` holds for `route`, the config's interpolated values masked (a plugin may copy
/// its config's secrets into what it sends).
fn side(config: &Config, routing: &Routing, route: &Route) -> Side {
    let result = routing.results.iter().find(|r| r.route == route.name);
    Side {
        outcome: result.map_or("unknown", |r| r.outcome.as_str()).to_string(),
        detail: result.and_then(|r| r.detail.as_deref().map(|d| config.mask(d))),
        messages: routing
            .deliveries
            .iter()
            .filter(|d| d.route == route.name && d.status == DeliveryStatus::Pending)
            .map(|d| Sent {
                target: d.target.clone(),
                headers: d
                    .headers
                    .iter()
                    .map(|(k, v)| (k.clone(), config.mask(v)))
                    .collect(),
                body: d
                    .body
                    .as_ref()
                    .map(|b| config.mask(&String::from_utf8_lossy(b))),
            })
            .collect(),
    }
}
