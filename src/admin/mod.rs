//! The admin listener: the admin API under `/admin/v1`, every request authenticated with
//! `Authorization: Bearer <admin.token>` (compared in constant time), and the web console
//! ([`console`]) at `/`, signed in with the same token once. It reads and steers the delivery log
//! through the store; it never sends deliveries itself (the worker does, woken by the store's
//! signal after the commit).
//!
//! Errors are [`ApiError`]: a status and a one-line JSON `{"error"}`; internal causes go to the
//! log, never to the client. Answers are admin's own wire types ([`views`]), mapped from the
//! store's views, never the store's types themselves.

use crate::config::Config;
use crate::config::reload::Reloader;
use crate::signature::{Secret, constant_time_eq};
use crate::store::{DeliveryQuery, DeliveryStatus, EventQuery, Retry, Store, StoreError};
use axum::extract::DefaultBodyLimit;
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use std::sync::Arc;
use tokio::sync::watch;

pub(crate) mod console;
mod dry_run;
mod plugins;
mod targets;
pub(crate) mod views;

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
    pub(crate) client: reqwest::Client,
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
    #[error("{0}")]
    Conflict(String),
    #[error("store unavailable")]
    Store(#[source] StoreError),
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0}")]
    Unavailable(String),
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
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
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
        .route("/admin/v1/deliveries", get(list_deliveries))
        .route("/admin/v1/deliveries/{id}", get(get_delivery))
        .route("/admin/v1/deliveries/{id}/retry", post(retry_delivery))
        .route("/admin/v1/deliveries/retry", post(retry_deliveries))
        .route("/admin/v1/events", get(list_events))
        .route("/admin/v1/events/{id}", get(get_event))
        .route("/admin/v1/events/{id}/replay", post(replay_event))
        .route("/admin/v1/targets", get(targets::list))
        .route("/admin/v1/targets/{id}/disable", post(targets::disable))
        .route("/admin/v1/targets/{id}/enable", post(targets::enable))
        .route("/admin/v1/reload", post(reload))
        .route("/admin/v1/instances", get(list_instances))
        .route("/admin/v1/try", post(dry_run::handle))
        .route("/admin/v1/plugins", get(plugins::list))
        .route(
            "/admin/v1/plugins/{name}",
            put(plugins::upload)
                .delete(plugins::remove)
                .layer(DefaultBodyLimit::max(
                    crate::transform::wasm::registry::MAX_PLUGIN_BYTES,
                )),
        )
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .with_state(state.clone())
        .merge(console::router(state))
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

#[derive(Debug, serde::Deserialize)]
struct ListParams {
    status: Option<String>,
    target: Option<String>,
    route: Option<String>,
    source: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
    /// Only deliveries created within this long before now, e.g. `1h`.
    since: Option<String>,
}

fn parse_cursor(cursor: Option<&str>) -> Result<Option<i64>, ApiError> {
    cursor
        .map(|c| {
            c.parse::<i64>()
                .map_err(|_| ApiError::BadRequest(format!("bad cursor `{c}`")))
        })
        .transpose()
}

/// `since=1h` → the Unix ms that long before `now`.
fn parse_since(since: Option<&str>, now: i64) -> Result<Option<i64>, ApiError> {
    since
        .map(|d| {
            humantime::parse_duration(d)
                .map(|d| now.saturating_sub(crate::duration_ms(d)))
                .map_err(|e| ApiError::BadRequest(format!("since must be a duration like 1h: {e}")))
        })
        .transpose()
}

impl ListParams {
    fn query(self, now: i64) -> Result<DeliveryQuery, ApiError> {
        let status = match self.status.as_deref() {
            None => None,
            Some(s) => Some(DeliveryStatus::parse(s).ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "status must be pending, succeeded, failed or dead, not `{s}`"
                ))
            })?),
        };
        let before = parse_cursor(self.cursor.as_deref())?;
        let since = parse_since(self.since.as_deref(), now)?;
        let limit = self.limit.unwrap_or(50).clamp(1, MAX_PAGE);
        Ok(DeliveryQuery {
            status,
            target: self.target,
            route: self.route,
            limit,
            before,
            since,
            source: self.source,
        })
    }
}

async fn list_deliveries(
    State(state): State<Admin>,
    Query(p): Query<ListParams>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let query = p.query(state.clock.now_ms())?;
    let limit = query.limit;
    let page = state.store.list_deliveries(query).await?;
    let next_cursor = (page.len() == limit)
        .then(|| page.last().map(|d| d.seq.to_string()))
        .flatten();
    let page: Vec<views::Delivery> = page.into_iter().map(views::Delivery::from).collect();
    Ok(Json(
        serde_json::json!({ "data": page, "next_cursor": next_cursor }),
    ))
}

async fn get_delivery(
    State(state): State<Admin>,
    Path(id): Path<String>,
) -> Result<Json<views::DeliveryDetail>, ApiError> {
    let (delivery, attempts) = state.store.get_delivery(&id).await?;
    Ok(Json(views::DeliveryDetail::new(delivery, attempts)))
}

async fn retry_delivery(
    State(state): State<Admin>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    match state
        .store
        .retry_delivery(&id, state.clock.now_ms())
        .await?
    {
        Retry::Queued => {}
        Retry::AlreadyPending => {
            return Err(ApiError::Conflict("delivery is already pending".into()));
        }
        Retry::FailedInRouting { event_id } => {
            return Err(ApiError::Conflict(format!(
                "delivery failed in routing (its route's filter or transform failed), so it has \
                 no body of its own and retrying it would send the raw event; replay the event \
                 to route it again: POST /admin/v1/events/{event_id}/replay"
            )));
        }
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "id": id, "status": "pending" })),
    )
        .into_response())
}

/// The filters of `POST /admin/v1/deliveries/retry`: those of the listing (the cursor aside),
/// a `limit` of up to [`MAX_BULK_RETRY`], and `dry_run`.
#[derive(Debug, serde::Deserialize)]
struct BulkRetryParams {
    status: Option<String>,
    target: Option<String>,
    route: Option<String>,
    source: Option<String>,
    since: Option<String>,
    limit: Option<usize>,
    /// Count what would be queued, change nothing.
    #[serde(default)]
    dry_run: bool,
}

/// Queues failed and dead deliveries (succeeded ones only with `status=succeeded`) matching the
/// filters, oldest first, at most `limit` of them; `dry_run=true` only counts them, so an
/// operator sees the size of a redrive before sending it.
async fn retry_deliveries(
    State(state): State<Admin>,
    Query(p): Query<BulkRetryParams>,
) -> Result<Response, ApiError> {
    let limit = p.limit.unwrap_or(DEFAULT_BULK_RETRY);
    if !(1..=MAX_BULK_RETRY).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit must be from 1 to {MAX_BULK_RETRY}"
        )));
    }
    if p.status.as_deref() == Some("pending") {
        return Err(ApiError::BadRequest(
            "pending deliveries are queued already; retry failed, dead or succeeded ones".into(),
        ));
    }
    let now = state.clock.now_ms();
    let list = ListParams {
        status: p.status,
        target: p.target,
        route: p.route,
        source: p.source,
        limit: None,
        cursor: None,
        since: p.since,
    };
    let query = DeliveryQuery {
        limit,
        ..list.query(now)?
    };
    if p.dry_run {
        let matching = state.store.count_retryable(query).await?;
        return Ok(Json(serde_json::json!({
            "would_queue": matching.min(limit),
            "matching": matching,
            "limit": limit,
        }))
        .into_response());
    }
    let queued = state.store.retry_deliveries(query, now).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "queued": queued, "limit": limit })),
    )
        .into_response())
}

#[derive(Debug, serde::Deserialize)]
struct EventParams {
    source: Option<String>,
    event_type: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
    since: Option<String>,
}

async fn list_events(
    State(state): State<Admin>,
    Query(p): Query<EventParams>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let limit = p.limit.unwrap_or(50).clamp(1, MAX_PAGE);
    let query = EventQuery {
        source: p.source,
        event_type: p.event_type,
        limit,
        before: parse_cursor(p.cursor.as_deref())?,
        since: parse_since(p.since.as_deref(), state.clock.now_ms())?,
    };
    let page = state.store.list_events(query).await?;
    let next_cursor = (page.len() == limit)
        .then(|| page.last().map(|e| e.seq.to_string()))
        .flatten();
    let page: Vec<views::EventSummary> = page.into_iter().map(views::EventSummary::from).collect();
    Ok(Json(
        serde_json::json!({ "data": page, "next_cursor": next_cursor }),
    ))
}

async fn get_event(
    State(state): State<Admin>,
    Path(id): Path<String>,
) -> Result<Json<views::Event>, ApiError> {
    Ok(Json(views::Event::from(state.store.get_event(&id).await?)))
}

async fn replay_event(
    State(state): State<Admin>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    state.store.replay_event(&id).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "id": id, "replayed": true })),
    )
        .into_response())
}

/// The gateway instances sharing this store, alive now. A store one process owns (SQLite) is
/// shared by no one: the list is empty and `shared` false.
async fn list_instances(State(state): State<Admin>) -> Result<Json<serde_json::Value>, ApiError> {
    let instances: Vec<views::Instance> = (state.store.instances().await?)
        .into_iter()
        .map(views::Instance::from)
        .collect();
    Ok(Json(serde_json::json!({
        "shared": state.store.is_shared(),
        "data": instances,
    })))
}

/// Re-reads the config file; a file with problems changes nothing and the answer lists them.
async fn reload(State(state): State<Admin>) -> Result<Json<serde_json::Value>, ApiError> {
    match state.reloader.reload().await {
        Ok(done) => {
            tracing::info!(
                routes = done.routes,
                targets = done.targets,
                "config reloaded"
            );
            // Every other instance on the store re-reads its own config file.
            state.store.share_reload().await.map_err(|e| {
                ApiError::Unavailable(format!(
                    "config reloaded on this instance, but the other instances could not be \
                     told ({e}); repeat the request"
                ))
            })?;
            Ok(Json(
                serde_json::json!({ "reloaded": true, "summary": done }),
            ))
        }
        Err(e) => {
            tracing::warn!(error = %e, "config reload refused");
            Err(ApiError::Unprocessable(format!(
                "reload refused, nothing changed: {e}"
            )))
        }
    }
}
