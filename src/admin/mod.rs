//! The admin listener: the admin API under `/admin/v1`, every request authenticated with
//! `Authorization: Bearer <admin.token>` (compared in constant time), and the web console
//! ([`console`]) at `/`, signed in with the same token once. It reads and steers the delivery log
//! through the store; it never sends deliveries itself (the worker does, woken by the store's
//! signal after the commit).
//!
//! Errors are [`ApiError`]: a status and a one-line JSON `{"error"}` (refused paths, queries
//! and bodies too, through [`extract`], and unknown paths); internal causes go to the log, never
//! to the client. Answers are admin's own wire types ([`views`], [`answers`]), mapped from the
//! store's views, never the store's types themselves; [`openapi`] describes them all.

use crate::config::Config;
use crate::config::reload::Reloader;
use crate::signature::{Secret, constant_time_eq};
use crate::store::{Store, StoreError};
use axum::extract::DefaultBodyLimit;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use std::sync::Arc;
use tokio::sync::watch;

mod answers;
mod catalog;
pub(crate) mod console;
mod dry_run;
mod extract;
mod log;
mod openapi;
pub(crate) mod plugin_diff;
mod plugins;
mod targets;
pub(crate) mod views;

pub(crate) use log::{parse_cursor, parse_since};

/// Most items one page may hold.
pub(crate) const MAX_PAGE: usize = 500;
/// Deliveries one bulk retry queues when the request names no `limit`…
pub(crate) const DEFAULT_BULK_RETRY: usize = 1000;
/// …and the most it may name: a larger redrive is several requests, each seen before it is sent.
pub(crate) const MAX_BULK_RETRY: usize = 10_000;

#[derive(Clone)]
pub(crate) struct Admin {
    pub(crate) store: Arc<dyn Store>,
    /// The current config: targets, and the admin token itself (a reload may rotate it).
    pub(crate) config: watch::Receiver<Arc<Config>>,
    pub(crate) reloader: Arc<Reloader>,
    pub(crate) plugins: Arc<crate::transform::wasm::registry::Registry>,
    pub(crate) clock: crate::Clock,
    pub(crate) switch: crate::deliver::TargetSwitch,
    pub(crate) gates: crate::deliver::Gates,
    /// For the ping an enable sends.
    pub(crate) client: crate::deliver::client::Http,
    /// The console's activity chart reads it.
    pub(crate) metrics: Arc<crate::metrics::Metrics>,
    /// The console's signed-in users.
    pub(crate) sessions: Arc<console::session::Sessions>,
    /// The dry runs' own evaluator child (one at a time), apart from routing's.
    pub(crate) evaluators: Arc<tokio::sync::Mutex<crate::route::evaluator::Pool>>,
}

impl Admin {
    fn token(&self) -> Option<Secret> {
        self.config.borrow().admin.as_ref().map(|a| a.token.clone())
    }
}

/// What an admin request can fail with.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    #[error("missing or wrong bearer token")]
    Unauthorized,
    #[error("{0}")]
    BadRequest(String),
    #[error("not found")]
    NotFound,
    /// Not found, with what was meant (the closest names).
    #[error("{0}")]
    Missing(String),
    #[error("{0}")]
    Conflict(String),
    #[error("store unavailable")]
    Store(#[source] StoreError),
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    TooLarge(String),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::NotFound,
            other => Self::Store(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound | Self::Missing(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Store(e) => {
                tracing::error!(error = %e, "admin request failed");
                StatusCode::SERVICE_UNAVAILABLE
            }
        };
        (
            status,
            Json(serde_json::json!({ "error": self.to_string() })),
        )
            .into_response()
    }
}

pub(crate) fn router(state: Admin) -> Router {
    Router::new()
        .route("/admin/v1/deliveries", get(log::list_deliveries))
        .route("/admin/v1/deliveries/{id}", get(log::get_delivery))
        .route("/admin/v1/deliveries/{id}/retry", post(log::retry_delivery))
        .route("/admin/v1/deliveries/retry", post(log::retry_deliveries))
        .route("/admin/v1/events", get(log::list_events))
        .route("/admin/v1/events/{id}", get(log::get_event))
        .route("/admin/v1/events/{id}/replay", post(log::replay_event))
        .route("/admin/v1/targets", get(targets::list))
        .route("/admin/v1/targets/{id}/disable", post(targets::disable))
        .route("/admin/v1/targets/{id}/enable", post(targets::enable))
        .route("/admin/v1/reload", post(log::reload))
        .route("/admin/v1/instances", get(log::list_instances))
        .route(
            "/admin/v1/try",
            post(dry_run::handle).layer(DefaultBodyLimit::max(dry_run::MAX_REQUEST)),
        )
        .route("/admin/v1/catalog", get(catalog::list))
        .route(
            "/admin/v1/catalog/{preset}/events/{event}",
            get(catalog::event),
        )
        .route("/admin/v1/plugins", get(plugins::list))
        .route(
            "/admin/v1/plugins/{name}",
            put(plugins::upload)
                .delete(plugins::remove)
                .layer(DefaultBodyLimit::max(
                    crate::transform::wasm::registry::MAX_PLUGIN_BYTES,
                )),
        )
        .route(
            "/admin/v1/plugins/{name}/diff",
            post(plugin_diff::diff).layer(DefaultBodyLimit::max(
                crate::transform::wasm::registry::MAX_PLUGIN_BYTES,
            )),
        )
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .route("/admin/v1/openapi.json", get(openapi::document))
        .with_state(state.clone())
        .merge(console::router(state))
        .fallback(|| async { ApiError::NotFound })
}

async fn authenticate(State(state): State<Admin>, request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let ok = state
        .token()
        .is_some_and(|t| constant_time_eq(given.as_bytes(), t.expose().as_bytes()));
    if ok {
        next.run(request).await
    } else {
        ApiError::Unauthorized.into_response()
    }
}
