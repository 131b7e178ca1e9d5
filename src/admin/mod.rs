//! The admin API: its own listener, every request authenticated with `Authorization: Bearer
//! <admin.token>` (compared in constant time). It reads and steers the delivery log through the
//! store; it never sends deliveries itself (the worker does, woken by the store's commit signal).
//!
//! Errors are [`ApiError`]: a status and a one-line JSON `{"error"}`; internal causes go to the
//! log, never to the client.

use crate::signature::{Secret, constant_time_eq};
use crate::store::{DeliveryQuery, DeliveryStatus, Store, StoreError};
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use std::sync::Arc;

/// Most items one page may hold.
pub const MAX_PAGE: usize = 500;

#[derive(Clone)]
pub struct Admin {
    pub store: Arc<dyn Store>,
    pub token: Secret,
    pub clock: crate::Clock,
    pub switch: crate::deliver::TargetSwitch,
    pub targets: std::collections::BTreeMap<String, Arc<crate::config::Target>>,
    /// For the ping an enable sends.
    pub client: reqwest::Client,
}

/// What an admin request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
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

pub fn router(state: Admin) -> Router {
    Router::new()
        .route("/admin/v1/deliveries", get(list_deliveries))
        .route("/admin/v1/deliveries/{id}", get(get_delivery))
        .route("/admin/v1/deliveries/{id}/retry", post(retry_delivery))
        .route("/admin/v1/deliveries/retry", post(retry_deliveries))
        .route("/admin/v1/events/{id}", get(get_event))
        .route("/admin/v1/events/{id}/replay", post(replay_event))
        .route("/admin/v1/targets", get(list_targets))
        .route("/admin/v1/targets/{id}/disable", post(disable_target))
        .route("/admin/v1/targets/{id}/enable", post(enable_target))
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .with_state(state)
}

async fn authenticate(State(state): State<Admin>, request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if constant_time_eq(given.as_bytes(), state.token.expose().as_bytes()) {
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
    limit: Option<usize>,
    cursor: Option<String>,
    /// Only deliveries created within this long before now, e.g. `1h`.
    since: Option<String>,
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
        let before = match self.cursor.as_deref() {
            None => None,
            Some(c) => Some(
                c.parse::<i64>()
                    .map_err(|_| ApiError::BadRequest(format!("bad cursor `{c}`")))?,
            ),
        };
        let since = match self.since.as_deref() {
            None => None,
            Some(d) => {
                let d = humantime::parse_duration(d).map_err(|e| {
                    ApiError::BadRequest(format!("since must be a duration like 1h: {e}"))
                })?;
                Some(now - d.as_millis() as i64)
            }
        };
        let limit = self.limit.unwrap_or(50).clamp(1, MAX_PAGE);
        Ok(DeliveryQuery {
            status,
            target: self.target,
            route: self.route,
            limit,
            before,
            since,
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
    Ok(Json(
        serde_json::json!({ "data": page, "next_cursor": next_cursor }),
    ))
}

async fn get_delivery(
    State(state): State<Admin>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (delivery, attempts) = state.store.get_delivery(&id).await?;
    let mut body =
        serde_json::to_value(&delivery).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    body["attempts"] =
        serde_json::to_value(&attempts).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    Ok(Json(body))
}

async fn retry_delivery(
    State(state): State<Admin>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if !state
        .store
        .retry_delivery(&id, state.clock.now_ms())
        .await?
    {
        return Err(ApiError::Conflict("delivery is already pending".into()));
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "id": id, "status": "pending" })),
    )
        .into_response())
}

async fn retry_deliveries(
    State(state): State<Admin>,
    Query(p): Query<ListParams>,
) -> Result<Response, ApiError> {
    let now = state.clock.now_ms();
    let queued = state.store.retry_deliveries(p.query(now)?, now).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "queued": queued })),
    )
        .into_response())
}

async fn get_event(
    State(state): State<Admin>,
    Path(id): Path<String>,
) -> Result<Json<crate::store::EventView>, ApiError> {
    Ok(Json(state.store.get_event(&id).await?))
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

/// Scheme and host only: a target URL can carry a secret (Slack's webhook URLs do).
fn public_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => format!("{}://{}", u.scheme(), u.host_str().unwrap_or("")),
        Err(_) => "(invalid)".into(),
    }
}

async fn list_targets(State(state): State<Admin>) -> Json<serde_json::Value> {
    let targets: Vec<serde_json::Value> = state
        .targets
        .values()
        .map(|t| {
            serde_json::json!({
                "name": t.name,
                "url": public_url(&t.url),
                "disabled": state.switch.is_disabled(&t.name),
                "reason": state.switch.reason(&t.name),
            })
        })
        .collect();
    Json(serde_json::json!({ "data": targets }))
}

fn target(state: &Admin, name: &str) -> Result<Arc<crate::config::Target>, ApiError> {
    state.targets.get(name).cloned().ok_or(ApiError::NotFound)
}

async fn disable_target(
    State(state): State<Admin>,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    target(&state, &name)?;
    state
        .switch
        .disable(&*state.store, &name, "disabled by an operator")
        .await?;
    Ok(Json(serde_json::json!({ "name": name, "disabled": true })))
}

/// Enabling first sends a signed ping, as HCP does: only a 2xx answer enables the target.
async fn enable_target(
    State(state): State<Admin>,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let t = target(&state, &name)?;
    let ping = crate::store::DueDelivery {
        id: format!("ping_{}", ulid::Ulid::new()),
        event_id: "ping".into(),
        event_type: Some("hookgate.ping".into()),
        route: "admin".into(),
        target: name.clone(),
        body: bytes::Bytes::from(
            serde_json::json!({ "type": "hookgate.ping", "target": name }).to_string(),
        ),
        headers: Vec::new(),
        attempts: 0,
    };
    let sent = crate::deliver::client::send(&state.client, &t, &ping, 1).await;
    if !sent.status_code.is_some_and(|s| (200..300).contains(&s)) {
        let why = sent.error.unwrap_or_else(|| "no answer".into());
        return Err(ApiError::Conflict(format!(
            "ping failed ({why}); the target stays disabled"
        )));
    }
    state.switch.enable(&*state.store, &name).await?;
    Ok(Json(serde_json::json!({ "name": name, "disabled": false })))
}
