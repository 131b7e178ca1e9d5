//! One HTTP attempt: build the request a target receives, send it, and read what came back.

use crate::deliver::config::Target;
use crate::deliver::retry::AttemptResult;
use crate::deliver::sign::SignInput;
use crate::store::DueDelivery;
use bytes::Bytes;
use std::time::{Duration, SystemTime};

/// How much of a response body the delivery log keeps.
pub(crate) const RESPONSE_BODY_LIMIT: usize = 4096;

/// What one attempt came to.
#[derive(Debug)]
pub(crate) struct Sent {
    pub(crate) result: AttemptResult,
    pub(crate) status_code: Option<u16>,
    pub(crate) error: Option<String>,
    pub(crate) response_headers: Vec<(String, String)>,
    pub(crate) response_body: Bytes,
    pub(crate) retry_after: Option<Duration>,
}

/// Every header a target receives for this attempt, in the order they are sent.
pub(crate) fn request_headers(
    target: &Target,
    d: &DueDelivery,
    attempt: u32,
    now_s: i64,
) -> Vec<(String, String)> {
    let mut h: Vec<(String, String)> = vec![("Content-Type".into(), "application/json".into())];
    h.extend(target.headers.iter().cloned());
    for (k, v) in &d.headers {
        // A transform's own Content-Type replaces the default instead of adding a second one.
        h.retain(|(name, _)| !name.eq_ignore_ascii_case(k));
        h.push((k.clone(), v.clone()));
    }
    h.push(("X-Hookgate-Delivery".into(), d.id.clone()));
    h.push(("X-Hookgate-Event".into(), d.event_id.clone()));
    h.push(("X-Hookgate-Attempt".into(), attempt.to_string()));
    // The scheme's headers win over same-named ones from the config or the transform (a
    // `User-Agent` the github scheme must send), rather than going out twice.
    for (k, v) in target.signer.headers(SignInput {
        delivery_id: &d.id,
        event_type: d.event_type.as_deref(),
        body: &d.body,
        now_s,
    }) {
        h.retain(|(name, _)| !name.eq_ignore_ascii_case(&k));
        h.push((k, v));
    }
    h
}

/// The outbound clients every attempt shares, and the admin API's ping with them: cheap to
/// clone, one connection pool per process.
#[derive(Clone)]
pub(crate) struct Http {
    /// Plain deliveries: hyper's pooled client (`direct`).
    pub(crate) direct: super::direct::Direct,
    /// Port's REST API calls (`port`).
    pub(crate) api: reqwest::Client,
}

impl Http {
    pub(crate) fn new() -> Result<Self, ClientError> {
        let api = reqwest::Client::builder()
            .user_agent(concat!("hookgate/", env!("CARGO_PKG_VERSION")))
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(ClientError::Api)?;
        let direct = super::direct::Direct::new().map_err(ClientError::Tls)?;
        Ok(Self { direct, api })
    }
}

/// Why the outbound clients could not be built (at start, never per attempt).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClientError {
    #[error("building the Port API client: {0}")]
    Api(#[source] reqwest::Error),
    #[error("loading TLS roots for deliveries: {0}")]
    Tls(#[source] std::io::Error),
}

/// Sends attempt number `attempt` (1-based) of `d` to `target`.
pub(crate) async fn send(http: &Http, target: &Target, d: &DueDelivery, attempt: u32) -> Sent {
    if let Some(api) = &target.port {
        return super::port::send(&http.api, target, api, d, attempt).await;
    }
    let now_s = crate::now_ms() / 1000;
    let post = super::direct::Post {
        uri: &target.uri,
        basic_auth: target.basic_auth.as_ref().map(|s| s.expose()),
        headers: request_headers(target, d, attempt, now_s),
        body: d.body.clone(),
        timeout: target.timeout,
    };
    http.direct.send(post).await
}

/// What an answer came to: its status, headers and `Retry-After` as the log and the retry policy
/// read them, and for a non-2xx the body's read error, if any, or the status as the error.
pub(crate) fn answered(
    status: u16,
    headers: &hyper::HeaderMap,
    response_body: Bytes,
    body_error: Option<String>,
) -> Sent {
    let response_headers = headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let retry_after = headers
        .get(hyper::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| super::retry::parse_retry_after(v, SystemTime::now()));
    Sent {
        result: AttemptResult::Status(status),
        status_code: Some(status),
        error: if (200..300).contains(&status) {
            None
        } else {
            Some(body_error.unwrap_or_else(|| format!("HTTP {status}")))
        },
        response_headers,
        response_body,
        retry_after,
    }
}

/// An attempt that was not made because the message cannot be sent as it is: retrying cannot
/// help, so it fails (as a 4xx would) with `why` in the delivery log.
pub(crate) fn refused(why: String) -> Sent {
    Sent {
        result: AttemptResult::Status(400),
        status_code: None,
        error: Some(why),
        response_headers: Vec::new(),
        response_body: Bytes::new(),
        retry_after: None,
    }
}

pub(crate) fn transport_error(error: String) -> Sent {
    Sent {
        result: AttemptResult::TransportError,
        status_code: None,
        error: Some(error),
        response_headers: Vec::new(),
        response_body: Bytes::new(),
        retry_after: None,
    }
}

/// `head`, then `: cause` for `first` and each error beneath it.
pub(crate) fn with_causes(mut head: String, first: Option<&dyn std::error::Error>) -> String {
    let mut source = first;
    while let Some(s) = source {
        head.push_str(": ");
        head.push_str(&s.to_string());
        source = s.source();
    }
    head
}
