//! Port's REST API as a target (`[targets.NAME] port = { client_id, client_secret }`, `url` the
//! API's base, e.g. `https://api.getport.io`): each message of a `port` route
//! (`{operation, blueprint, entity}`, see `transform::port`) becomes Port's own call, an upsert
//! (`POST /v1/blueprints/{blueprint}/entities?upsert=true&merge=true`, relations included) or a
//! delete (`DELETE /v1/blueprints/{blueprint}/entities/{identifier}?delete_dependents=…`).
//!
//! The access token comes from `POST /v1/auth/access_token` with the client id and secret, is
//! kept until shortly before it expires, and is fetched again when Port answers 401 (once per
//! attempt). Port's 429s and `Retry-After` go through the target's retry policy like any other
//! answer. The client secret is a [`Secret`]: never logged, shown or stored.

use crate::deliver::client::{self, Sent};
use crate::deliver::config::Target;
use crate::signature::Secret;
use crate::store::DueDelivery;
use bytes::{Bytes, BytesMut};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A token is fetched again this long before Port says it expires.
const EARLY: Duration = Duration::from_secs(60);

/// The credentials of a Port target, and the token they last got (shared by the target's clones).
#[derive(Clone)]
pub(crate) struct PortApi {
    client_id: String,
    client_secret: Secret,
    token: Arc<tokio::sync::Mutex<Option<(String, Instant)>>>,
}

impl std::fmt::Debug for PortApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortApi")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl PortApi {
    pub(crate) fn new(client_id: String, client_secret: Secret) -> Self {
        Self {
            client_id,
            client_secret,
            token: Arc::default(),
        }
    }
}

/// What a message asks of Port.
#[derive(Debug, PartialEq)]
struct Call {
    delete: Option<bool>,
    blueprint: String,
    identifier: String,
    entity: Value,
}

/// Reads a `port` route's message; anything else cannot be sent to Port's API.
fn call(body: &[u8]) -> Result<Call, String> {
    let not = |why: &str| {
        format!(
            "not an entity message of a `port` route ({why}): a Port API target takes \
             `{{operation, blueprint, entity}}`"
        )
    };
    let v: Value = serde_json::from_slice(body).map_err(|_| not("not JSON"))?;
    let blueprint = v["blueprint"].as_str().ok_or_else(|| not("no blueprint"))?;
    let identifier = match &v["entity"]["identifier"] {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return Err(not("the entity has no identifier")),
    };
    let delete = match v["operation"].as_str() {
        Some("create") | None => None,
        Some("delete") => Some(v["deleteDependents"].as_bool().unwrap_or(false)),
        Some(other) => return Err(not(&format!("operation `{other}`"))),
    };
    Ok(Call {
        delete,
        blueprint: blueprint.to_string(),
        identifier,
        entity: v["entity"].clone(),
    })
}

/// The URL of `call` under Port's API at `base`.
fn url(base: &str, call: &Call) -> Result<reqwest::Url, String> {
    let mut url = reqwest::Url::parse(base).map_err(|e| format!("target url: {e}"))?;
    {
        let mut path = url
            .path_segments_mut()
            .map_err(|()| "target url cannot be a base".to_string())?;
        path.pop_if_empty()
            .extend(["v1", "blueprints", &call.blueprint, "entities"]);
        if call.delete.is_some() {
            path.push(&call.identifier);
        }
    }
    match call.delete {
        None => url.set_query(Some("upsert=true&merge=true")),
        Some(dependents) => url.set_query(Some(&format!("delete_dependents={dependents}"))),
    }
    Ok(url)
}

/// The request Port's API gets for a message (what [`send`] sends, and what a dry run shows).
#[derive(Debug, PartialEq)]
pub(crate) struct PortRequest {
    pub(crate) method: reqwest::Method,
    pub(crate) url: reqwest::Url,
    /// The entity, for an upsert; a delete has no body.
    pub(crate) body: Option<String>,
}

/// The request for message `body` under Port's API at `base`, or why the message cannot be sent.
pub(crate) fn request(base: &str, body: &[u8]) -> Result<PortRequest, String> {
    let call = call(body)?;
    let url = url(base, &call)?;
    Ok(match call.delete {
        None => PortRequest {
            method: reqwest::Method::POST,
            url,
            body: Some(call.entity.to_string()),
        },
        Some(_) => PortRequest {
            method: reqwest::Method::DELETE,
            url,
            body: None,
        },
    })
}

/// The headers of Port's call: `base` (the target's and hookgate's own) without its content type,
/// then the access token and, for an upsert, JSON's content type. What [`send`] sends, and what a
/// dry run shows (with the token masked).
pub(crate) fn call_headers(
    base: Vec<(String, String)>,
    port: &PortRequest,
    token: &str,
) -> Vec<(String, String)> {
    let mut headers = vec![("Authorization".to_string(), format!("Bearer {token}"))];
    if port.body.is_some() {
        headers.push(("Content-Type".into(), "application/json".into()));
    }
    headers.extend(
        base.into_iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case("content-type")),
    );
    headers
}

/// Sends attempt `attempt` of `d` to Port's API.
pub(crate) async fn send(
    http: &reqwest::Client,
    target: &Target,
    api: &PortApi,
    d: &DueDelivery,
    attempt: u32,
) -> Sent {
    let port = match request(&target.url, &d.body) {
        Ok(r) => r,
        Err(why) => return client::refused(why),
    };
    for fresh in [false, true] {
        let token = match token(http, target, api, fresh).await {
            Ok(t) => t,
            Err(sent) => return sent,
        };
        let mut req = http
            .request(port.method.clone(), port.url.clone())
            .timeout(target.timeout);
        if let Some(body) = &port.body {
            req = req.body(body.clone());
        }
        let base = client::request_headers(target, d, attempt, crate::now_ms() / 1000);
        for (k, v) in call_headers(base, &port, &token) {
            req = match reqwest::header::HeaderValue::from_str(&v) {
                Ok(mut value) => {
                    // As `bearer_auth` does: the token stays out of any debug output.
                    value.set_sensitive(k.eq_ignore_ascii_case("authorization"));
                    req.header(k, value)
                }
                // reqwest reports it when the request is sent, as for any other header.
                Err(_) => req.header(k, v),
            };
        }
        let sent = execute(req).await;
        if sent.status_code == Some(401) && !fresh {
            // Revoked or expired early: one more try with a new token.
            continue;
        }
        return sent;
    }
    client::refused("Port refused a fresh access token".into())
}

/// The cached token, or a new one (always when `fresh`).
async fn token(
    http: &reqwest::Client,
    target: &Target,
    api: &PortApi,
    fresh: bool,
) -> Result<String, Sent> {
    let mut cached = api.token.lock().await;
    if !fresh
        && let Some((token, until)) = cached.as_ref()
        && Instant::now() < *until
    {
        return Ok(token.clone());
    }
    let mut url = reqwest::Url::parse(&target.url).map_err(|e| client::refused(e.to_string()))?;
    url.path_segments_mut()
        .map_err(|()| client::refused("target url cannot be a base".into()))?
        .pop_if_empty()
        .extend(["v1", "auth", "access_token"]);
    let req = http
        .post(url)
        .timeout(target.timeout)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(
            serde_json::json!({
                "clientId": api.client_id,
                "clientSecret": api.client_secret.expose(),
            })
            .to_string(),
        );
    let sent = execute(req).await;
    if sent.error.is_some() {
        return Err(Sent {
            error: sent.error.map(|e| format!("Port access token: {e}")),
            ..sent
        });
    }
    let answer: Value = match serde_json::from_slice(&sent.response_body) {
        Ok(a) => a,
        Err(e) => {
            return Err(client::refused(format!(
                "Port access token: the answer is not JSON: {e}"
            )));
        }
    };
    let Some(token) = answer["accessToken"].as_str() else {
        return Err(client::refused(
            "Port access token: the answer has no accessToken".into(),
        ));
    };
    let lifetime = Duration::from_secs(answer["expiresIn"].as_u64().unwrap_or(3600));
    let until = Instant::now() + lifetime.saturating_sub(EARLY);
    *cached = Some((token.to_string(), until));
    Ok(token.to_string())
}

/// Sends `req` and reads what came back.
async fn execute(req: reqwest::RequestBuilder) -> Sent {
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) => return client::transport_error(describe(&e)),
    };
    let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
    let (body, body_error) = read_prefix(resp).await;
    client::answered(status, &headers, body, body_error)
}

/// Reads at most [`client::RESPONSE_BODY_LIMIT`] bytes of the body; the rest is not waited for.
async fn read_prefix(mut resp: reqwest::Response) -> (Bytes, Option<String>) {
    let mut buf = BytesMut::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                let room = client::RESPONSE_BODY_LIMIT - buf.len();
                buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if buf.len() >= client::RESPONSE_BODY_LIMIT {
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

/// A one-line cause: reqwest's own message hides the useful part in its source chain.
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    client::with_causes(kind.to_string(), std::error::Error::source(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_become_ports_calls() {
        let create = call(
            br#"{"operation":"create","blueprint":"svc","entity":{"identifier":"a b","title":"A"}}"#,
        )
        .expect("a call");
        assert_eq!(
            url("https://api.getport.io", &create)
                .expect("url")
                .as_str(),
            "https://api.getport.io/v1/blueprints/svc/entities?upsert=true&merge=true"
        );
        let delete = call(
            br#"{"operation":"delete","blueprint":"svc","deleteDependents":true,"entity":{"identifier":"a b"}}"#,
        )
        .expect("a call");
        assert_eq!(
            url("http://127.0.0.1:9/port/", &delete)
                .expect("url")
                .as_str(),
            "http://127.0.0.1:9/port/v1/blueprints/svc/entities/a%20b?delete_dependents=true"
        );
        assert!(call(br#"{"text":"hi"}"#).is_err());
    }

    #[test]
    fn the_secret_is_not_in_debug() {
        let api = PortApi::new("id".into(), Secret::new("s3cr3t-value"));
        assert!(!format!("{api:?}").contains("s3cr3t"));
    }
}
