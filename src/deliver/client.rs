//! One HTTP attempt: build the request a target receives, send it, and read what came back.

use crate::deliver::config::Target;
use crate::deliver::retry::AttemptResult;
use crate::deliver::sign::SignInput;
use crate::store::DueDelivery;
use bytes::{Bytes, BytesMut};
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

/// Sends attempt number `attempt` (1-based) of `d` to `target`.
pub(crate) async fn send(
    client: &reqwest::Client,
    target: &Target,
    d: &DueDelivery,
    attempt: u32,
) -> Sent {
    if let Some(api) = &target.port {
        return super::port::send(client, target, api, d, attempt).await;
    }
    let now_s = crate::now_ms() / 1000;
    let mut req = client
        .post(&target.url)
        .timeout(target.timeout)
        .body(d.body.clone());
    for (k, v) in request_headers(target, d, attempt, now_s) {
        req = req.header(k, v);
    }
    execute(req).await
}

/// Sends `req` and reads what came back.
pub(crate) async fn execute(req: reqwest::RequestBuilder) -> Sent {
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) => return transport_error(describe(&e)),
    };
    let status = resp.status().as_u16();
    let response_headers: Vec<(String, String)> = resp
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| super::retry::parse_retry_after(v, SystemTime::now()));
    let (response_body, body_error) = read_prefix(resp).await;
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

/// Reads at most [`RESPONSE_BODY_LIMIT`] bytes of the body; the rest is not waited for.
async fn read_prefix(mut resp: reqwest::Response) -> (Bytes, Option<String>) {
    let mut buf = BytesMut::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                let room = RESPONSE_BODY_LIMIT - buf.len();
                buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if buf.len() >= RESPONSE_BODY_LIMIT {
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => {
                return (
                    buf.freeze(),
                    Some(format!("reading response: {}", describe(&e))),
                );
            }
        }
    }
    (buf.freeze(), None)
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

fn transport_error(error: String) -> Sent {
    Sent {
        result: AttemptResult::TransportError,
        status_code: None,
        error: Some(error),
        response_headers: Vec::new(),
        response_body: Bytes::new(),
        retry_after: None,
    }
}

/// A one-line cause: reqwest's own message hides the useful part in its source chain.
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let mut msg = kind.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}
