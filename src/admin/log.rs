//! The delivery log over HTTP: deliveries (filters, cursor pages, attempts), retry and bulk
//! retry, events and replay; and the instances on the store and config reload. Every answer is a
//! typed view ([`super::views`], [`super::answers`]), so the OpenAPI document describes what is
//! really sent.

use super::answers::{
    BulkCount, BulkQueued, DeliveryPage, ErrorAnswer, EventPage, Instances, ReloadAnswer,
    ReloadSummary, Replayed, RetryQueued,
};
use super::extract::{ApiPath, ApiQuery};
use super::{Admin, ApiError, DEFAULT_BULK_RETRY, MAX_BULK_RETRY, MAX_PAGE, views};
use crate::store::{DeliveryQuery, DeliveryStatus, EventQuery, Retry, Scope};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// The filters of the delivery list.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ListParams {
    /// `pending`, `succeeded`, `failed` or `dead`.
    status: Option<String>,
    target: Option<String>,
    route: Option<String>,
    /// The event's source.
    source: Option<String>,
    /// Items per page, 1 to 500 (50 when absent).
    limit: Option<usize>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Only deliveries created within this long before now, e.g. `1h`.
    since: Option<String>,
}

pub(crate) fn parse_cursor(cursor: Option<&str>) -> Result<Option<i64>, ApiError> {
    cursor
        .map(|c| {
            c.parse::<i64>()
                .map_err(|_| ApiError::BadRequest(format!("bad cursor `{c}`")))
        })
        .transpose()
}

/// `since=1h` → the Unix ms that long before `now`.
pub(crate) fn parse_since(since: Option<&str>, now: i64) -> Result<Option<i64>, ApiError> {
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

/// Deliveries, newest first, filtered.
#[utoipa::path(get, path = "/admin/v1/deliveries", tag = "deliveries", params(ListParams),
    responses((status = 200, body = DeliveryPage), (status = 400, body = ErrorAnswer),
        (status = 401, body = ErrorAnswer), (status = 503, body = ErrorAnswer)))]
pub(super) async fn list_deliveries(
    State(state): State<Admin>,
    ApiQuery(p): ApiQuery<ListParams>,
) -> Result<Json<DeliveryPage>, ApiError> {
    let query = p.query(state.clock.now_ms())?;
    let limit = query.limit;
    let page = state.store.list_deliveries(query).await?;
    let next_cursor = (page.len() == limit)
        .then(|| page.last().map(|d| d.seq.to_string()))
        .flatten();
    let data = page.into_iter().map(views::Delivery::from).collect();
    Ok(Json(DeliveryPage { data, next_cursor }))
}

/// One delivery with every attempt.
#[utoipa::path(get, path = "/admin/v1/deliveries/{id}", tag = "deliveries",
    params(("id" = String, Path, description = "The delivery's id (`dlv_…`)")),
    responses((status = 200, body = views::DeliveryDetail), (status = 400, body = ErrorAnswer),
        (status = 401, body = ErrorAnswer), (status = 404, body = ErrorAnswer),
        (status = 503, body = ErrorAnswer)))]
pub(super) async fn get_delivery(
    State(state): State<Admin>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<views::DeliveryDetail>, ApiError> {
    let (delivery, attempts) = state.store.get_delivery(&id).await?;
    Ok(Json(views::DeliveryDetail::new(delivery, attempts)))
}

/// Queues a failed, dead or succeeded delivery again, with its stored body.
#[utoipa::path(post, path = "/admin/v1/deliveries/{id}/retry", tag = "deliveries",
    params(("id" = String, Path, description = "The delivery's id (`dlv_…`)")),
    responses((status = 202, body = RetryQueued), (status = 400, body = ErrorAnswer),
        (status = 401, body = ErrorAnswer), (status = 404, body = ErrorAnswer),
        (status = 409, description = "Already pending, or failed in routing (replay its event)",
            body = ErrorAnswer),
        (status = 503, body = ErrorAnswer)))]
pub(super) async fn retry_delivery(
    State(state): State<Admin>,
    ApiPath(id): ApiPath<String>,
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
    let queued = RetryQueued {
        id,
        status: "pending".into(),
    };
    Ok((StatusCode::ACCEPTED, Json(queued)).into_response())
}

/// The filters of `POST /admin/v1/deliveries/retry`: those of the listing (the cursor aside),
/// a `limit` of up to [`MAX_BULK_RETRY`], and `dry_run`.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct BulkRetryParams {
    /// `failed`, `dead` or `succeeded` (failed and dead when absent).
    status: Option<String>,
    target: Option<String>,
    route: Option<String>,
    /// The event's source.
    source: Option<String>,
    /// Only deliveries created within this long before now, e.g. `1h`.
    since: Option<String>,
    /// At most this many, oldest first: 1 to 10,000 (1,000 when absent).
    limit: Option<usize>,
    /// Count what would be queued, change nothing.
    #[serde(default)]
    dry_run: bool,
}

/// Queues failed and dead deliveries (succeeded ones only with `status=succeeded`) matching the
/// filters, oldest first, at most `limit` of them; `dry_run=true` only counts them, so an
/// operator sees the size of a redrive before sending it.
#[utoipa::path(post, path = "/admin/v1/deliveries/retry", tag = "deliveries",
    params(BulkRetryParams),
    responses((status = 200, description = "`dry_run=true`: the count, nothing queued", body = BulkCount),
        (status = 202, body = BulkQueued), (status = 400, body = ErrorAnswer),
        (status = 401, body = ErrorAnswer), (status = 503, body = ErrorAnswer)))]
pub(super) async fn retry_deliveries(
    State(state): State<Admin>,
    ApiQuery(p): ApiQuery<BulkRetryParams>,
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
        let matching = state
            .store
            .count_deliveries(query, Scope::Retryable)
            .await?;
        let count = BulkCount {
            would_queue: matching.min(limit),
            matching,
            limit,
        };
        return Ok(Json(count).into_response());
    }
    let queued = state.store.retry_deliveries(query, now).await?;
    Ok((StatusCode::ACCEPTED, Json(BulkQueued { queued, limit })).into_response())
}

/// The filters of the event list.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct EventParams {
    source: Option<String>,
    event_type: Option<String>,
    /// Items per page, 1 to 500 (50 when absent).
    limit: Option<usize>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Only events received within this long before now, e.g. `1h`.
    since: Option<String>,
}

/// Events, newest first, filtered.
#[utoipa::path(get, path = "/admin/v1/events", tag = "events", params(EventParams),
    responses((status = 200, body = EventPage), (status = 400, body = ErrorAnswer),
        (status = 401, body = ErrorAnswer), (status = 503, body = ErrorAnswer)))]
pub(super) async fn list_events(
    State(state): State<Admin>,
    ApiQuery(p): ApiQuery<EventParams>,
) -> Result<Json<EventPage>, ApiError> {
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
    let data = page.into_iter().map(views::EventSummary::from).collect();
    Ok(Json(EventPage { data, next_cursor }))
}

/// One event: headers, body, what every route made of it, its deliveries.
#[utoipa::path(get, path = "/admin/v1/events/{id}", tag = "events",
    params(("id" = String, Path, description = "The event's id (`evt_…`)")),
    responses((status = 200, body = views::Event), (status = 400, body = ErrorAnswer),
        (status = 401, body = ErrorAnswer), (status = 404, body = ErrorAnswer),
        (status = 503, body = ErrorAnswer)))]
pub(super) async fn get_event(
    State(state): State<Admin>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<views::Event>, ApiError> {
    Ok(Json(views::Event::from(state.store.get_event(&id).await?)))
}

/// Routes the event again with the current config.
#[utoipa::path(post, path = "/admin/v1/events/{id}/replay", tag = "events",
    params(("id" = String, Path, description = "The event's id (`evt_…`)")),
    responses((status = 202, body = Replayed), (status = 400, body = ErrorAnswer),
        (status = 401, body = ErrorAnswer), (status = 404, body = ErrorAnswer),
        (status = 503, body = ErrorAnswer)))]
pub(super) async fn replay_event(
    State(state): State<Admin>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    state.store.replay_event(&id).await?;
    let replayed = Replayed { id, replayed: true };
    Ok((StatusCode::ACCEPTED, Json(replayed)).into_response())
}

/// The gateway instances sharing this store, alive now. A store one process owns (SQLite) is
/// shared by no one: the list is empty and `shared` false.
#[utoipa::path(get, path = "/admin/v1/instances", tag = "instances",
    responses((status = 200, body = Instances), (status = 401, body = ErrorAnswer),
        (status = 503, body = ErrorAnswer)))]
pub(super) async fn list_instances(
    State(state): State<Admin>,
) -> Result<Json<Instances>, ApiError> {
    let data = (state.store.instances().await?)
        .into_iter()
        .map(views::Instance::from)
        .collect();
    Ok(Json(Instances {
        shared: state.store.is_shared(),
        data,
    }))
}

/// Re-reads the config file; a file with problems changes nothing and the answer lists them.
#[utoipa::path(post, path = "/admin/v1/reload", tag = "config",
    responses((status = 200, body = ReloadAnswer), (status = 401, body = ErrorAnswer),
        (status = 422, description = "The file has problems (listed); nothing changed",
            body = ErrorAnswer),
        (status = 503, body = ErrorAnswer)))]
pub(super) async fn reload(State(state): State<Admin>) -> Result<Json<ReloadAnswer>, ApiError> {
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
            let summary = ReloadSummary {
                sources: done.sources,
                targets: done.targets,
                routes: done.routes,
                restart_needed: done.restart_needed.iter().map(|s| s.to_string()).collect(),
                warnings: done.warnings.clone(),
            };
            Ok(Json(ReloadAnswer {
                reloaded: true,
                summary,
            }))
        }
        Err(e) => {
            tracing::warn!(error = %e, "config reload refused");
            Err(ApiError::Unprocessable(format!(
                "reload refused, nothing changed: {e}"
            )))
        }
    }
}
