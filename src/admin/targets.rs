//! `/admin/v1/targets`: the targets of the current config with their switch, breaker and rate
//! limit; disable, and enable after a ping the target answers.

use super::answers::{Breaker, ErrorAnswer, Switched, TargetList, TargetState};
use super::extract::ApiPath;
use super::{Admin, ApiError};
use crate::deliver::breaker::BreakerState;
use crate::deliver::config::Target;
use axum::Json;
use axum::extract::State;
use std::sync::Arc;

/// Scheme and host only: a target URL can carry a secret (Slack's webhook URLs do).
pub(super) fn public_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => format!("{}://{}", u.scheme(), u.host_str().unwrap_or("")),
        Err(_) => "(invalid)".into(),
    }
}

/// Where a tried request would go, as the admin API and the console show it: the origin, and for
/// a Port API target also Port's own path (`/v1/…`, not a credential); a path the target's URL
/// itself has stays hidden as `/…`.
pub(super) fn tried_url(q: &crate::dry_run::Request) -> String {
    let origin = public_url(&q.url);
    let (Some(_), Ok(full), Ok(base)) = (
        &q.target.port,
        reqwest::Url::parse(&q.url),
        reqwest::Url::parse(&q.target.url),
    ) else {
        return origin;
    };
    let base_path = base.path().trim_end_matches('/');
    let ports = full.path().strip_prefix(base_path).unwrap_or(full.path());
    let hidden = if base_path.is_empty() { "" } else { "/…" };
    match full.query() {
        Some(query) => format!("{origin}{hidden}{ports}?{query}"),
        None => format!("{origin}{hidden}{ports}"),
    }
}

/// The targets of the running config with their switch, breaker and rate limit.
#[utoipa::path(get, path = "/admin/v1/targets", tag = "targets",
    responses((status = 200, body = TargetList), (status = 401, body = ErrorAnswer)))]
pub(super) async fn list(State(state): State<Admin>) -> Json<TargetList> {
    let config = state.config.borrow().clone();
    let data = config
        .targets
        .values()
        .map(|t| TargetState {
            name: t.name.clone(),
            url: public_url(&t.url),
            disabled: state.switch.is_disabled(&t.name),
            reason: state.switch.reason(&t.name),
            breaker: breaker_view(state.gates.state(&t.name)),
            rate_limit_per_second: t.rate_limit.map(|r| r.per_second),
        })
        .collect();
    Json(TargetList { data })
}

fn breaker_view(state: Option<BreakerState>) -> Breaker {
    let (name, consecutive_failures, until) = match state {
        None => ("off", None, None),
        Some(BreakerState::Closed { failures }) => ("closed", Some(failures), None),
        Some(BreakerState::Open { until }) => ("open", None, Some(crate::rfc3339(until))),
        Some(BreakerState::HalfOpen { .. }) => ("half-open", None, None),
    };
    Breaker {
        state: name.into(),
        consecutive_failures,
        until,
    }
}

fn target(state: &Admin, name: &str) -> Result<Arc<Target>, ApiError> {
    let config = state.config.borrow().clone();
    config.targets.get(name).cloned().ok_or(ApiError::NotFound)
}

/// Pauses deliveries to a target; they wait, pending, until it is enabled.
#[utoipa::path(post, path = "/admin/v1/targets/{name}/disable", tag = "targets",
    params(("name" = String, Path, description = "The target's name")),
    responses((status = 200, body = Switched), (status = 400, body = ErrorAnswer),
        (status = 401, body = ErrorAnswer), (status = 404, body = ErrorAnswer),
        (status = 503, body = ErrorAnswer)))]
pub(super) async fn disable(
    State(state): State<Admin>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Switched>, ApiError> {
    switch_off(&state, &name).await?;
    Ok(Json(Switched {
        name,
        disabled: true,
    }))
}

/// Enabling first sends a signed ping, as HCP does: only a 2xx answer enables the target.
#[utoipa::path(post, path = "/admin/v1/targets/{name}/enable", tag = "targets",
    params(("name" = String, Path, description = "The target's name")),
    responses((status = 200, body = Switched), (status = 400, body = ErrorAnswer),
        (status = 401, body = ErrorAnswer), (status = 404, body = ErrorAnswer),
        (status = 409, description = "The target did not answer the ping with a 2xx", body = ErrorAnswer),
        (status = 503, body = ErrorAnswer)))]
pub(super) async fn enable(
    State(state): State<Admin>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Switched>, ApiError> {
    switch_on(&state, &name).await?;
    Ok(Json(Switched {
        name,
        disabled: false,
    }))
}

/// Pauses deliveries to `name` (on every instance of a shared store).
pub(super) async fn switch_off(state: &Admin, name: &str) -> Result<(), ApiError> {
    target(state, name)?;
    state
        .switch
        .disable(&*state.store, name, "disabled by an operator")
        .await?;
    Ok(())
}

/// Pings `name`, then resumes its deliveries if it answered 2xx; the refusal says what the ping
/// got.
pub(super) async fn switch_on(state: &Admin, name: &str) -> Result<(), ApiError> {
    let t = target(state, name)?;
    let ping = crate::store::DueDelivery {
        id: format!("ping_{}", ulid::Ulid::new()),
        event_id: "ping".into(),
        event_type: Some("hookgate.ping".into()),
        body: bytes::Bytes::from(
            serde_json::json!({ "type": "hookgate.ping", "target": name }).to_string(),
        ),
        headers: Vec::new(),
        attempts: 0,
        created_at: 0,
    };
    let sent = crate::deliver::client::send(&state.client, &t, &ping, 1).await;
    if !sent.status_code.is_some_and(|s| (200..300).contains(&s)) {
        let why = match (sent.status_code, sent.error) {
            (_, Some(e)) => e,
            (Some(code), None) => format!("HTTP {code}"),
            (None, None) => "no answer".into(),
        };
        return Err(ApiError::Conflict(format!(
            "ping failed ({why}); the target stays disabled"
        )));
    }
    state.switch.enable(&*state.store, name).await?;
    state.gates.reset(name, state.clock.now_ms());
    Ok(())
}
