//! `POST /admin/v1/try`: a dry run of an event (pasted, or a stored one by id) through the
//! configured routes of its source or through a candidate route, and what each target would get
//! ([`crate::dry_run`]). The console's playground calls [`try_it`] too.
//!
//! It must never write to the store or send anything; it runs mappings in its own evaluator
//! child, one request at a time, so trying a runaway mapping cannot stall routing.

use super::answers::{ErrorAnswer, Problem, ProblemsAnswer};
use super::extract::ApiJson;
use super::views::TryView;
use super::{Admin, ApiError};
use crate::dry_run::{self, DryRun, DryRunError, Input};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// The most a `POST /admin/v1/try` request may carry: an event body (JSON-escaped) and headers.
pub(super) const MAX_REQUEST: usize = 8 * 1024 * 1024;
/// How long a dry run waits for the one before it.
const BUSY_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// What the playground and `POST /admin/v1/try` take.
#[derive(Debug, Default, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TryRequest {
    /// The source the event arrives at; a stored event's own when `event_id` is given.
    pub(crate) source: Option<String>,
    /// A stored event whose body and headers to use (either may be overridden).
    pub(crate) event_id: Option<String>,
    pub(crate) body: Option<String>,
    /// `[name, value]` pairs.
    #[serde(default)]
    #[schema(value_type = Vec<Vec<String>>)]
    pub(crate) headers: Vec<(String, String)>,
    /// Refuse the event when ingress would (a bad signature) instead of only reporting it.
    #[serde(default)]
    pub(crate) verify: bool,
    /// A candidate route, as `[[routes]]` holds one (`filter`, `events`, one of `jq`, `map`,
    /// `wasm`, and `targets`); absent: the configured routes.
    #[schema(value_type = Option<CandidateRoute>)]
    pub(crate) route: Option<serde_json::Value>,
}

/// A route as `[[routes]]` holds one, for the document only: the request keeps it as JSON and
/// validates it the way a config load does, so its problems come back keyed `route.<field>`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // Describes JSON; never built.
pub(crate) struct CandidateRoute {
    /// `playground` when absent.
    name: Option<String>,
    /// The request's `source` when absent.
    source: Option<String>,
    /// A jq program; the event passes when its first output is `true`.
    filter: Option<String>,
    /// Event types the route takes.
    events: Option<Vec<String>>,
    /// A jq program whose output is the body sent (at most one of `jq`, `map`, `wasm`).
    jq: Option<String>,
    /// A Port-style mapping: an object of jq expressions.
    #[schema(value_type = Option<Object>)]
    map: Option<serde_json::Value>,
    /// `{ "plugin": name, "config": {...} }`.
    #[schema(value_type = Option<Object>)]
    wasm: Option<serde_json::Value>,
    /// The targets' names; at least one.
    targets: Vec<String>,
}

/// A dry run's result, and the candidate route as TOML.
#[derive(Debug)]
pub(crate) struct Tried {
    pub(crate) run: DryRun,
    pub(crate) toml: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum TryError {
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The candidate route does not validate: each problem with its key (`route.jq`…).
    #[error("the route is not valid")]
    Invalid(crate::dry_run::Problems),
}

impl IntoResponse for TryError {
    fn into_response(self) -> Response {
        match self {
            Self::Api(e) => e.into_response(),
            Self::Invalid(problems) => {
                let body = ProblemsAnswer {
                    error: "the route is not valid".into(),
                    problems: problems
                        .into_iter()
                        .map(|(key, message)| Problem { key, message })
                        .collect(),
                };
                (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response()
            }
        }
    }
}

/// A dry run: the event (pasted, or stored, by `event_id`) through the configured routes of its
/// source, or through `route`; what each target would get. Stores and sends nothing.
#[utoipa::path(post, path = "/admin/v1/try", tag = "try", request_body = TryRequest,
    responses((status = 200, body = TryView), (status = 400, body = ErrorAnswer),
        (status = 401, body = ErrorAnswer), (status = 404, body = ErrorAnswer),
        (status = 413, body = ErrorAnswer),
        (status = 422, description = "The route is not valid (`problems`), or the event cannot be tried (`error`)",
            body = ProblemsAnswer),
        (status = 503, body = ErrorAnswer)))]
pub(super) async fn handle(
    State(state): State<Admin>,
    ApiJson(req): ApiJson<TryRequest>,
) -> Result<Json<TryView>, TryError> {
    let tried = try_it(&state, req).await?;
    Ok(Json(TryView::from(tried)))
}

/// Runs `req`; see the module docs.
pub(crate) async fn try_it(state: &Admin, req: TryRequest) -> Result<Tried, TryError> {
    let (source, body, headers) = match &req.event_id {
        Some(id) => {
            let event = state.store.get_event(id).await.map_err(ApiError::from)?;
            let headers = match req.headers.is_empty() {
                true => event.headers,
                false => req.headers,
            };
            (
                req.source.unwrap_or(event.source),
                req.body.unwrap_or(event.body),
                headers,
            )
        }
        None => {
            let source = req
                .source
                .ok_or_else(|| ApiError::BadRequest("`source` is required".into()))?;
            let body = req.body.ok_or_else(|| {
                ApiError::BadRequest("`body` (or a stored event's `event_id`) is required".into())
            })?;
            (source, body, req.headers)
        }
    };
    let running = state.config.borrow().clone();
    let (config, toml) = match &req.route {
        Some(route) => {
            let (config, toml) =
                dry_run::with_candidate(&running, &source, route).map_err(TryError::Invalid)?;
            (config, Some(toml))
        }
        None => (running, None),
    };
    let input = Input {
        source,
        body: body.into(),
        headers: headers
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect(),
        verify: req.verify,
    };
    // One dry run at a time. Waiting happens here, on the async side, so queued requests hold no
    // blocking thread, and a request the browser gave up on stops waiting when it is dropped.
    let mut evaluators =
        tokio::time::timeout(BUSY_WAIT, Arc::clone(&state.evaluators).lock_owned())
            .await
            .map_err(|_| {
                ApiError::Unavailable("another dry run is still running; try again".into())
            })?;
    let plugins = Arc::clone(&state.plugins);
    // Plugins run synchronously (wasmtime bounds them), so the run takes a blocking thread.
    let handle = tokio::runtime::Handle::current();
    let run = tokio::task::spawn_blocking(move || {
        handle.block_on(dry_run::run(&config, &plugins, &mut evaluators, input))
    })
    .await
    .map_err(|e| ApiError::Unavailable(format!("the dry run did not finish: {e}")))?
    .map_err(|e| match e {
        DryRunError::Eval(_) => ApiError::Unavailable(e.to_string()),
        _ => ApiError::Unprocessable(e.to_string()),
    })?;
    Ok(Tried { run, toml })
}
