//! `POST /admin/v1/try`: a dry run of an event (pasted, or a stored one by id) through the
//! configured routes of its source or through a candidate route, and what each target would get
//! ([`crate::dry_run`]). The console's playground calls [`try_it`] too.
//!
//! It must never write to the store or send anything; it runs mappings in its own evaluator
//! child, one request at a time, so trying a runaway mapping cannot stall routing.

use super::{Admin, ApiError};
use crate::dry_run::{self, DryRun, DryRunError, Input};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// What the playground and `POST /admin/v1/try` take.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TryRequest {
    /// The source the event arrives at; a stored event's own when `event_id` is given.
    pub(crate) source: Option<String>,
    /// A stored event whose body and headers to use (either may be overridden).
    pub(crate) event_id: Option<String>,
    pub(crate) body: Option<String>,
    /// `[name, value]` pairs.
    #[serde(default)]
    pub(crate) headers: Vec<(String, String)>,
    /// Refuse the event when ingress would (a bad signature) instead of only reporting it.
    #[serde(default)]
    pub(crate) verify: bool,
    /// A candidate route, as `[[routes]]` holds one; absent: the configured routes.
    pub(crate) route: Option<serde_json::Value>,
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
                let problems: Vec<_> = problems
                    .into_iter()
                    .map(|(key, message)| serde_json::json!({ "key": key, "message": message }))
                    .collect();
                let body = serde_json::json!({
                    "error": "the route is not valid",
                    "problems": problems,
                });
                (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response()
            }
        }
    }
}

pub(super) async fn handle(
    State(state): State<Admin>,
    Json(req): Json<TryRequest>,
) -> Result<Json<super::views::TryView>, TryError> {
    let tried = try_it(&state, req).await?;
    Ok(Json(super::views::TryView::from(tried)))
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
    let (plugins, evaluators) = (Arc::clone(&state.plugins), Arc::clone(&state.evaluators));
    // Plugins run synchronously (wasmtime bounds them), so the whole run takes a blocking thread.
    let handle = tokio::runtime::Handle::current();
    let run = tokio::task::spawn_blocking(move || {
        handle.block_on(async {
            let mut evaluators = evaluators.lock().await;
            dry_run::run(&config, &plugins, &mut evaluators, input).await
        })
    })
    .await
    .map_err(|e| ApiError::Unavailable(format!("the dry run did not finish: {e}")))?
    .map_err(|e| match e {
        DryRunError::Eval(_) => ApiError::Unavailable(e.to_string()),
        _ => ApiError::Unprocessable(e.to_string()),
    })?;
    Ok(Tried { run, toml })
}
