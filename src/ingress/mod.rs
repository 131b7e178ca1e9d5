//! Ingress: the public listener. `POST /hooks/{source}` accepts one event: find the source, read
//! the body (never more than `server.max_body_bytes`, within [`Limits::body_read_timeout`]),
//! verify its signature, check it is JSON routing can read ([`json`]), commit it, and only then
//! answer 202 with its id. Also `/healthz`, `/readyz` and `/metrics`.
//!
//! Ingress never routes, transforms or delivers: once the event is committed it hands it to the
//! route loop's inbox, and the store has it whatever happens next, so a client that hangs up
//! after the commit cannot lose it.
//!
//! No one request may stop the gateway: [`listener`] serves connections with a header read
//! timeout and a connection cap, bodies have a whole-body deadline, JSON nesting is bounded
//! before anything recursive reads it, and credentials (including a source's shared token) are
//! never stored.

pub(crate) mod config;
pub(crate) mod drift;
pub(crate) mod json;
pub(crate) mod listener;
pub(crate) mod verify;

pub use listener::Limits;

use crate::config::Config;
use crate::ingress::config::Source;
use crate::log_safe::Escaped;
use crate::metrics::{Gauges, Metrics};
use crate::store::{Store, StoredEvent};
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use http_body_util::BodyExt;
use std::sync::Arc;
use tokio::sync::watch;

/// Headers that are used for verification but never stored: they are credentials.
const UNSTORED_HEADERS: &[&str] = &["authorization", "cookie", "proxy-authorization"];

/// Shared state of the ingress handlers.
#[derive(Clone)]
pub(crate) struct Ingress {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) config: watch::Receiver<Arc<Config>>,
    pub(crate) metrics: Arc<Metrics>,
    /// For the breaker and disabled-target gauges on `/metrics`.
    pub(crate) gates: crate::deliver::Gates,
    pub(crate) switch: crate::deliver::TargetSwitch,
    /// Committed-but-unrouted events: past `server.max_backlog`, new events get 503.
    pub(crate) backlog: Arc<crate::route::backlog::Backlog>,
    /// Committed events go to the route loop this way (the store has them anyway).
    pub(crate) inbox: crate::route::inbox::Inbox,
    /// The whole-body deadline comes from here (the listener applies the rest).
    pub(crate) limits: Limits,
    /// Sources with `validate` log schema drift through this, once a minute per type.
    pub(crate) drift: Arc<drift::Throttle>,
}

/// Why a request was not accepted. Each maps to one status code and a JSON `{"error"}` body.
#[derive(Debug, thiserror::Error)]
pub(crate) enum IngressError {
    #[error("unknown source `{0}`")]
    UnknownSource(String),
    #[error("{0}")]
    Unauthorized(#[from] crate::ingress::verify::VerifyError),
    #[error("body exceeds {0} bytes")]
    TooLarge(usize),
    #[error(transparent)]
    NotJson(#[from] json::JsonError),
    #[error("could not read body: {0}")]
    BadBody(String),
    #[error("body not received within {} s", .0.as_secs_f64())]
    BodyTimeout(std::time::Duration),
    #[error("store unavailable, retry later")]
    Unavailable(#[source] crate::store::StoreError),
    #[error("{0}")]
    Backlogged(#[from] crate::route::backlog::Full),
    /// `validate = "reject"`: the payload breaks its event's schema.
    #[error("{0}")]
    Schema(String),
}

impl IngressError {
    fn status(&self) -> StatusCode {
        match self {
            Self::UnknownSource(_) => StatusCode::NOT_FOUND,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::NotJson(_) | Self::BadBody(_) | Self::Schema(_) => StatusCode::BAD_REQUEST,
            Self::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::Unavailable(_) | Self::Backlogged(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The label `/metrics` counts rejections under.
    fn reason(&self) -> &'static str {
        match self {
            Self::UnknownSource(_) => "unknown_source",
            Self::Unauthorized(_) => "signature",
            Self::TooLarge(_) => "too_large",
            Self::NotJson(json::JsonError::TooDeep(_)) => "too_deep",
            Self::NotJson(_) | Self::BadBody(_) => "bad_body",
            Self::BodyTimeout(_) => "body_timeout",
            Self::Unavailable(_) => "store_unavailable",
            Self::Backlogged(_) => "backlog",
            Self::Schema(_) => "schema",
        }
    }
}

impl IntoResponse for IngressError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let Self::Unavailable(_) | Self::Backlogged(_) = &self {
            if let Self::Unavailable(e) = &self {
                // The cause stays in the log: clients learn only that they should retry. A
                // database's message may quote what the producer sent: escaped.
                tracing::error!(error = %Escaped(e), "event not stored");
            }
            let mut resp = (
                status,
                Json(serde_json::json!({ "error": self.to_string() })),
            )
                .into_response();
            resp.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            return resp;
        }
        let mut resp = (
            status,
            Json(serde_json::json!({ "error": self.to_string() })),
        )
            .into_response();
        if let Self::BodyTimeout(_) = self {
            // The rest of the body may still trickle in: close rather than read it for reuse.
            resp.headers_mut().insert(
                header::CONNECTION,
                header::HeaderValue::from_static("close"),
            );
        }
        resp
    }
}

/// What the public listener serves: `POST /hooks/{source}` straight to its handler, everything
/// else through axum's router.
pub(crate) struct App {
    router: Router,
    ingress: Ingress,
}

impl App {
    pub(crate) fn new(state: Ingress) -> Self {
        let router = Router::new()
            .route("/hooks/{source}", post(receive))
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/readyz", get(ready))
            .route("/metrics", get(metrics))
            .with_state(state.clone());
        Self {
            router,
            ingress: state,
        }
    }

    /// Answers one request. An event's `POST` skips the router (matching its path, building its
    /// extractors from a clone of the state, boxing its handler's future): the gateway spent
    /// 9–11 % less CPU per event without it (BENCHMARKS.md). The router still answers whatever
    /// that plain match does not take (a percent-encoded name, another method), as it always has.
    pub(crate) async fn answer(
        self: Arc<Self>,
        req: hyper::Request<hyper::body::Incoming>,
    ) -> Response {
        let source = (req.method() == axum::http::Method::POST)
            .then(|| event_source(req.uri().path()))
            .flatten()
            .map(str::to_owned);
        match source {
            Some(source) => {
                let (parts, body) = req.into_parts();
                let query = parts.uri.query().map(str::to_owned);
                let body = Body::new(body);
                receive_event(&self.ingress, source, query, parts.headers, body).await
            }
            None => {
                let router = hyper_util::service::TowerToHyperService::new(self.router.clone());
                match hyper::service::Service::call(&router, req).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                }
            }
        }
    }
}

/// The source an event's path names, when the path is `/hooks/` and one segment of characters
/// that percent-decoding leaves as they are (every source name a config allows).
fn event_source(path: &str) -> Option<&str> {
    let name = path.strip_prefix("/hooks/")?;
    let unreserved = |b: &u8| b.is_ascii_alphanumeric() || b"-._~".contains(b);
    (!name.is_empty() && name.bytes().all(|b| unreserved(&b))).then_some(name)
}

/// The `202`, with the event's id: `{"id":"evt_…"}`.
///
/// Written out rather than through axum's `Json`, whose serialiser and header map cost a
/// percent of the runtime's time per event: an id is `evt_` and a ULID, which JSON takes as is
/// (anything else would go through the serialiser).
fn accepted(id: &str) -> Response {
    let body = if id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        format!(r#"{{"id":"{id}"}}"#)
    } else {
        serde_json::json!({ "id": id }).to_string()
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = StatusCode::ACCEPTED;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

async fn receive(
    State(state): State<Ingress>,
    Path(source_name): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    receive_event(&state, source_name, query, headers, body).await
}

async fn receive_event(
    state: &Ingress,
    source_name: String,
    query: Option<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let source_label = source_name.clone();
    match accept(state, source_name, query, headers, body).await {
        Ok(id) => {
            state.metrics.event_received(&source_label);
            accepted(&id)
        }
        Err(e) => {
            // Unknown names share one label so random paths cannot grow the metric without bound.
            let label = if matches!(e, IngressError::UnknownSource(_)) {
                "_unknown"
            } else {
                &source_label
            };
            state.metrics.event_rejected(label, e.reason());
            if !matches!(
                e,
                IngressError::Unavailable(_) | IngressError::Backlogged(_)
            ) {
                // Both come from the producer (the path, quoted bodies): escaped, or a newline in
                // them would forge a line of the text log.
                tracing::info!(source = %Escaped(&source_label), error = %Escaped(&e), "event rejected");
            }
            e.into_response()
        }
    }
}

async fn accept(
    state: &Ingress,
    source_name: String,
    query: Option<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<String, IngressError> {
    let config = state.config.borrow().clone();
    let source = config
        .sources
        .get(&source_name)
        .ok_or(IngressError::UnknownSource(source_name))?;
    // Before reading the body: an overloaded gateway spends nothing on what it will refuse.
    state.backlog.admit(config.server.max_backlog)?;
    // One deadline for the whole body, however it trickles: hyper's timeouts cover only headers.
    let deadline = state.limits.body_read_timeout;
    let body = tokio::time::timeout(
        deadline,
        read_limited(body, &headers, config.server.max_body_bytes),
    )
    .await
    .map_err(|_| IngressError::BodyTimeout(deadline))??;
    check(source, &headers, query.as_deref(), &body)?;
    let event = StoredEvent {
        id: crate::route::new_event_id(),
        source: source.name.clone(),
        received_at: crate::now_ms(),
        headers: stored_headers(&headers, source),
        query: query
            .as_deref()
            .map(|q| parse_query(q, source))
            .unwrap_or_default(),
        body,
        replays: 0,
    };
    if let Some(mode) = source.validate
        && let Some(finding) = drift::check_event(source, &event)
    {
        state.metrics.schema_mismatch(&source.name, finding.label());
        state.drift.log(&source.name, mode, &finding);
        if let (drift::Mode::Reject, Some(why)) = (mode, finding.refusal()) {
            return Err(IngressError::Schema(why));
        }
    }
    // Before the inbox's promise: a refusal here stores nothing, so it must not count as a miss
    // (which sends the route loop back to the store).
    let place = state.backlog.reserve(config.server.max_backlog)?;
    let id = event.id.clone();
    let promise = state.inbox.promise();
    // Shared with the store, not copied: it lets go of its handle before it answers, so the
    // route loop's is the only one left.
    let event = std::sync::Arc::new(event);
    let copy = promise.wanted().then(|| event.clone());
    if let Err(e) = state.store.insert_event(event).await {
        place.release();
        return Err(IngressError::Unavailable(e));
    }
    drop(place);
    promise.keep(copy.map(|event| {
        std::sync::Arc::try_unwrap(event).unwrap_or_else(|shared| StoredEvent::clone(&shared))
    }));
    Ok(id)
}

/// Verification and format checks: everything about a request that needs no store.
pub(crate) fn check(
    source: &Source,
    headers: &HeaderMap,
    query: Option<&str>,
    body: &[u8],
) -> Result<(), IngressError> {
    if let Some(verifier) = &source.verifier {
        verifier.verify_request(headers, query, body, crate::now_ms() / 1000)?;
    }
    if source.format == crate::route::envelope::BodyFormat::Json {
        json::check(body)?;
    }
    Ok(())
}

/// Reads the body, refusing as soon as it is known to exceed `limit`: a declared Content-Length
/// is refused before reading, and a streamed body is cut off at the first chunk past the limit.
async fn read_limited(
    body: Body,
    headers: &HeaderMap,
    limit: usize,
) -> Result<Bytes, IngressError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(IngressError::TooLarge(limit));
    }
    let limited = http_body_util::Limited::new(body, limit);
    match limited.collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(IngressError::TooLarge(limit))
        }
        Err(e) => Err(IngressError::BadBody(e.to_string())),
    }
}

/// Headers as stored: credentials are dropped, and so is the header a shared token arrives in
/// (unlike a MAC, the token itself is the secret; stored, it would reach the admin API and every
/// mapping's `.headers`), whether or not this source checks it: a GitLab webhook may carry its
/// token to a source configured without one.
fn stored_headers(headers: &HeaderMap, source: &Source) -> Vec<(String, String)> {
    let token_header = source.kind.token_header();
    headers
        .iter()
        .filter(|(k, _)| !UNSTORED_HEADERS.contains(&k.as_str()))
        // `HeaderName`s are lower case; the configured name may not be.
        .filter(|(k, _)| !token_header.is_some_and(|t| t.eq_ignore_ascii_case(k.as_str())))
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// Query parameters as stored: a preset's token parameter is a credential and is dropped.
fn parse_query(q: &str, source: &Source) -> Vec<(String, String)> {
    let token_param = source.kind.token_query();
    url::form_urlencoded::parse(q.as_bytes())
        .filter(|(k, _)| Some(k.as_ref()) != token_param)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// `/readyz`: 503 with the reason while the store cannot take writes (unreachable, or a disk
/// about to fill), so a load balancer sends producers elsewhere; `/healthz` stays 200 meanwhile.
async fn ready(State(state): State<Ingress>) -> Response {
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {e}\n")).into_response(),
    }
}

async fn metrics(State(state): State<Ingress>) -> Response {
    let mut gauges = Gauges {
        commits: state.store.commit_stats(),
        ..Gauges::default()
    };
    match state.store.queue_depth().await {
        Ok(depth) => {
            gauges.unrouted = depth.unrouted;
            gauges.pending = depth.pending;
        }
        Err(e) => tracing::warn!(error = %e, "metrics: cannot read queue depth"),
    }
    gauges.breaker = state
        .gates
        .states()
        .into_iter()
        .map(|(t, s)| (t, s.gauge()))
        .collect();
    let config = state.config.borrow().clone();
    gauges.disabled = config
        .targets
        .keys()
        .filter(|t| state.switch.is_disabled(t))
        .cloned()
        .collect();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(&gauges),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::event_source;

    fn body_of(response: super::Response) -> bytes::Bytes {
        let collect = http_body_util::BodyExt::collect(response.into_body());
        futures_util::FutureExt::now_or_never(collect)
            .expect("a whole body at once")
            .expect("body")
            .to_bytes()
    }

    #[test]
    fn the_202_is_the_ids_json() {
        let id = crate::route::new_event_id();
        let response = super::accepted(&id);
        assert_eq!(response.status(), 202);
        assert_eq!(response.headers()["content-type"], "application/json");
        let json: serde_json::Value = serde_json::from_slice(&body_of(response)).expect("json");
        assert_eq!(json, serde_json::json!({ "id": id }));
        let odd = body_of(super::accepted("a\"b"));
        assert_eq!(&odd[..], br#"{"id":"a\"b"}"#);
    }

    #[test]
    fn only_a_plain_hooks_segment_skips_the_router() {
        assert_eq!(
            event_source("/hooks/spacelift-prod_2.x~"),
            Some("spacelift-prod_2.x~")
        );
        for path in [
            "/hooks/",
            "/hooks",
            "/hooks/a/b",
            "/hooks/a%2Db",
            "/hooks/a b",
            "/hooks//a",
            "/other/a",
            "/hooks/é",
        ] {
            assert_eq!(event_source(path), None, "{path}");
        }
    }
}
