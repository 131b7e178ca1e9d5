//! A plain delivery's POST, through hyper-util's pooled client: the hot path of every attempt.
//!
//! reqwest's conveniences (redirect policy, URL handling, per-request timeout layers) cost the
//! async runtime 9-11 us of CPU per delivered event over hyper's own client (BENCHMARKS.md,
//! issue 12), and an attempt needs none of them: it never follows a redirect, its URL was checked when the config
//! was, and one timeout covers the whole exchange. Port's API calls keep reqwest (`port`); they
//! are few and need its JSON and URL building.
//!
//! This module never decides what an answer means (that is `retry`'s), and never logs a header:
//! they carry signatures and credentials.

use super::client::{RESPONSE_BODY_LIMIT, Sent};
use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderName, HeaderValue};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::time::Duration;

/// Idle keep-alive connections kept per target host: one per attempt a target may have in
/// flight at the default concurrency, with room.
const MAX_IDLE_PER_HOST: usize = 256;
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
const USER_AGENT: &str = concat!("hookgate/", env!("CARGO_PKG_VERSION"));

/// The pooled client of plain deliveries, cheap to clone (the pool is shared).
#[derive(Clone)]
pub(crate) struct Direct {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

/// One POST as the worker has built it.
pub(crate) struct Post<'a> {
    pub(crate) uri: &'a hyper::Uri,
    /// `Authorization` from credentials in the target's URL, as reqwest sent them.
    pub(crate) basic_auth: Option<&'a str>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Bytes,
    pub(crate) timeout: Duration,
}

impl Direct {
    /// A client for http and https targets. Needs the process's rustls provider only for the
    /// platform verifier's set-up, so it fails (instead of panicking) where no roots can load.
    pub(crate) fn new() -> std::io::Result<Self> {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        // The TLS layer wraps it; without this, https URLs are refused before TLS sees them.
        http.enforce_http(false);
        let https = HttpsConnectorBuilder::new()
            .with_provider_and_platform_verifier(rustls::crypto::ring::default_provider())?
            .https_or_http()
            .enable_all_versions()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(IDLE_TIMEOUT)
            .pool_max_idle_per_host(MAX_IDLE_PER_HOST)
            // Without a timer the pool never drops idle connections.
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(https);
        Ok(Self { client })
    }

    /// Sends `post` and reads what came back, all within its timeout.
    pub(crate) async fn send(&self, post: Post<'_>) -> Sent {
        let timeout = post.timeout;
        let request = match request(post) {
            Ok(r) => r,
            Err(why) => return super::client::refused(why),
        };
        match tokio::time::timeout(timeout, self.exchange(request)).await {
            Ok(sent) => sent,
            Err(_) => super::client::transport_error(format!(
                "timed out after {}",
                humantime::format_duration(timeout)
            )),
        }
    }

    async fn exchange(&self, request: hyper::Request<Full<Bytes>>) -> Sent {
        let response = match self.client.request(request).await {
            Ok(r) => r,
            Err(e) => return super::client::transport_error(describe(&e)),
        };
        let (parts, body) = response.into_parts();
        let (body, body_error) = read_prefix(body).await;
        super::client::answered(parts.status.as_u16(), &parts.headers, body, body_error)
    }
}

/// The request, or why it cannot be sent as it is (a header a transform made that HTTP does not
/// allow): retrying would not help.
fn request(post: Post<'_>) -> Result<hyper::Request<Full<Bytes>>, String> {
    let mut request = hyper::Request::post(post.uri.clone())
        .body(Full::new(post.body))
        .map_err(|e| format!("request: {e}"))?;
    let headers = request.headers_mut();
    // Sized once for all of them (and `User-Agent`), rather than grown while they go in.
    headers.reserve(post.headers.len() + 2);
    if let Some(auth) = post.basic_auth {
        let mut value = HeaderValue::try_from(auth).map_err(|_| "credentials in the URL")?;
        value.set_sensitive(true);
        headers.insert(hyper::header::AUTHORIZATION, value);
    }
    // `request_headers` already replaced same-named headers where one must win; a name it left
    // twice is meant to go twice (as reqwest's `header` appended).
    for (k, v) in post.headers {
        let name =
            header_name(&k).map_err(|_| format!("header {k:?} is not a valid HTTP header name"))?;
        let value = HeaderValue::try_from(v)
            .map_err(|_| format!("header {k} has a value HTTP does not allow"))?;
        headers.append(name, value);
    }
    // Ours only when neither the config, the transform nor the scheme sent one.
    headers
        .entry(hyper::header::USER_AGENT)
        .or_insert(HeaderValue::from_static(USER_AGENT));
    Ok(request)
}

/// The names hookgate's own headers and its signing schemes send on every attempt, parsed once:
/// parsing a name that is not one of HTTP's standard ones copies it, lower-cased, each time.
static OWN_NAMES: std::sync::LazyLock<Vec<HeaderName>> = std::sync::LazyLock::new(|| {
    [
        "x-hookgate-delivery",
        "x-hookgate-event",
        "x-hookgate-attempt",
        "x-hub-signature-256",
        "x-github-event",
        "x-github-delivery",
        "x-signature-256",
        "x-signature",
        "pulumi-webhook-signature",
        "pulumi-webhook-id",
        "pulumi-webhook-kind",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "x-gitlab-token",
        "x-gitlab-event",
        "x-gitlab-event-uuid",
        "idempotency-key",
        "x-hcp-webhook-signature",
        "x-tfe-notification-signature",
    ]
    .into_iter()
    .map(HeaderName::from_static)
    .collect()
});

fn header_name(name: &str) -> Result<HeaderName, hyper::header::InvalidHeaderName> {
    match OWN_NAMES
        .iter()
        .find(|own| own.as_str().eq_ignore_ascii_case(name))
    {
        Some(own) => Ok(own.clone()),
        None => HeaderName::try_from(name),
    }
}

/// Reads at most [`RESPONSE_BODY_LIMIT`] bytes of the body; the rest is not waited for.
async fn read_prefix(mut body: hyper::body::Incoming) -> (Bytes, Option<String>) {
    let mut buf = BytesMut::new();
    while buf.len() < RESPONSE_BODY_LIMIT {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(chunk) = frame.into_data() {
                    let room = RESPONSE_BODY_LIMIT - buf.len();
                    buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
            }
            None => break,
            Some(Err(e)) => {
                let why = super::client::with_causes("reading response".into(), Some(&e));
                return (buf.freeze(), Some(why));
            }
        }
    }
    (buf.freeze(), None)
}

/// A one-line cause: the client's own message ("client error (Connect)") hides the useful part
/// in its source chain.
fn describe(e: &hyper_util::client::legacy::Error) -> String {
    let kind = if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    super::client::with_causes(kind.to_string(), std::error::Error::source(e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deliver::retry::AttemptResult;

    fn post(headers: Vec<(&str, &str)>) -> Result<hyper::Request<Full<Bytes>>, String> {
        let uri = hyper::Uri::from_static("http://127.0.0.1:9/hook");
        request(Post {
            uri: &uri,
            basic_auth: None,
            headers: headers
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: Bytes::from_static(b"{}"),
            timeout: Duration::from_secs(1),
        })
    }

    #[test]
    fn a_configured_user_agent_replaces_ours_and_repeated_names_go_twice() {
        let r = post(vec![("User-Agent", "mine/1"), ("X-A", "1"), ("X-A", "2")]).expect("ok");
        let agents: Vec<_> = r.headers().get_all("user-agent").iter().collect();
        assert_eq!(agents, ["mine/1"]);
        assert_eq!(r.headers().get_all("x-a").iter().count(), 2);
        let r = post(vec![]).expect("ok");
        assert_eq!(r.headers()["user-agent"], USER_AGENT);
    }

    /// A listener that reads what comes and answers `answer` (or nothing, held open).
    async fn listener(answer: Option<&'static [u8]>) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = l.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = l.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = conn.read(&mut buf).await;
                    match answer {
                        Some(a) => drop(conn.write_all(a).await),
                        None => tokio::time::sleep(Duration::from_secs(30)).await,
                    }
                });
            }
        });
        addr.to_string()
    }

    async fn send_to(url: &str, timeout: Duration) -> Sent {
        let uri = hyper::Uri::try_from(url).expect("uri");
        let direct = Direct::new().expect("client");
        direct
            .send(Post {
                uri: &uri,
                basic_auth: None,
                headers: Vec::new(),
                body: Bytes::from_static(b"{}"),
                timeout,
            })
            .await
    }

    #[tokio::test]
    async fn https_speaks_tls_and_a_plain_http_answer_fails_the_handshake() {
        let addr = listener(Some(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")).await;
        let plain = send_to(&format!("http://{addr}/"), Duration::from_secs(5)).await;
        assert_eq!(plain.status_code, Some(200), "{:?}", plain.error);
        let tls = send_to(&format!("https://{addr}/"), Duration::from_secs(5)).await;
        assert_eq!(tls.result, AttemptResult::TransportError);
        let why = tls.error.unwrap_or_default();
        assert!(why.starts_with("connection failed"), "{why}");
    }

    #[tokio::test]
    async fn a_target_that_never_answers_times_out() {
        let addr = listener(None).await;
        let sent = send_to(&format!("http://{addr}/"), Duration::from_millis(200)).await;
        assert_eq!(sent.result, AttemptResult::TransportError);
        assert_eq!(sent.error.as_deref(), Some("timed out after 200ms"));
    }

    #[test]
    fn own_names_are_found_in_any_case_and_others_parsed() {
        for name in [
            "X-Hookgate-Delivery",
            "x-hub-signature-256",
            "X-Custom",
            "Content-Type",
        ] {
            let parsed = header_name(name).expect("valid");
            assert_eq!(parsed.as_str(), name.to_ascii_lowercase());
        }
        assert!(header_name("bad name").is_err());
    }

    #[test]
    fn a_header_http_does_not_allow_is_refused_with_its_name() {
        let err = post(vec![("X-Bad", "a\nb")]).expect_err("refused");
        assert!(err.contains("X-Bad"), "{err}");
        let err = post(vec![("bad name", "v")]).expect_err("refused");
        assert!(err.contains("bad name"), "{err}");
    }
}
