//! A real HTTP receiver that records every request and answers from a script of replies.

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub delay: Duration,
    /// The response body; `None` answers "receiver says hi".
    pub body: Option<String>,
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            delay: Duration::ZERO,
            body: None,
        }
    }
    pub fn body(mut self, body: impl Into<String>) -> Self {
        self.body = Some(body.into());
        self
    }
    pub fn header(mut self, k: &'static str, v: impl Into<String>) -> Self {
        self.headers.push((k, v.into()));
        self
    }
    pub fn delay(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }
}

/// A request as it arrived.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// Path and query, as requested.
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
    /// Arrival on tokio's clock, which tests may pause and advance.
    pub tokio_at: tokio::time::Instant,
}

impl Recorded {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("json body")
    }
}

#[derive(Default)]
struct State {
    seen: Vec<Recorded>,
    script: VecDeque<Reply>,
    default: Option<Reply>,
}

#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    state: Arc<Mutex<State>>,
    arrived: Arc<tokio::sync::Notify>,
}

impl Receiver {
    /// Starts a receiver that answers 200 unless scripted otherwise.
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let arrived = Arc::new(tokio::sync::Notify::new());
        let (shared, notify) = (state.clone(), arrived.clone());
        let app = axum::Router::new().fallback(
            move |method: axum::http::Method,
                  uri: axum::http::Uri,
                  headers: HeaderMap,
                  body: Bytes| {
                let state = shared.clone();
                let notify = notify.clone();
                async move {
                    let reply = {
                        let mut s = state.lock().expect("lock");
                        s.seen.push(Recorded {
                            method: method.to_string(),
                            path: uri.path_and_query().map_or("/", |p| p.as_str()).to_string(),
                            headers,
                            body,
                            at: Instant::now(),
                            tokio_at: tokio::time::Instant::now(),
                        });
                        notify.notify_waiters();
                        s.script
                            .pop_front()
                            .or_else(|| s.default.clone())
                            .unwrap_or(Reply::status(200))
                    };
                    if !reply.delay.is_zero() {
                        tokio::time::sleep(reply.delay).await;
                    }
                    let mut resp = axum::http::Response::builder()
                        .status(StatusCode::from_u16(reply.status).expect("status"));
                    for (k, v) in reply.headers {
                        resp = resp.header(k, v);
                    }
                    let body = reply.body.unwrap_or_else(|| "receiver says hi".into());
                    resp.body(axum::body::Body::from(body)).expect("response")
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/in", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url,
            state,
            arrived,
        }
    }

    /// Answers these first, in order.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.lock().expect("lock").script.extend(replies);
    }

    /// Answers this once the script runs out.
    pub fn default_reply(&self, reply: Reply) {
        self.state.lock().expect("lock").default = Some(reply);
    }

    /// Forgets what arrived so far.
    pub fn clear(&self) {
        self.state.lock().expect("lock").seen.clear();
    }

    pub fn seen(&self) -> Vec<Recorded> {
        self.state.lock().expect("lock").seen.clone()
    }

    /// Waits until at least `n` requests arrived; panics after `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Recorded> {
        let deadline = Instant::now() + timeout;
        loop {
            let seen = self.seen();
            if seen.len() >= n {
                return seen;
            }
            assert!(
                Instant::now() < deadline,
                "receiver got {} of {n} requests in {timeout:?}",
                seen.len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits for `n` requests without timers of its own, so that on a paused clock tokio's time
    /// advances only to the gateway's timers. Gives up after 30 s of real time.
    pub async fn wait_for_on_paused_clock(&self, n: usize) -> Vec<Recorded> {
        // A plain thread, not spawn_blocking: a pending blocking task stops tokio's auto-advance.
        let (expired, real_deadline) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(30));
            let _ = expired.send(());
        });
        tokio::pin!(real_deadline);
        loop {
            let arrived = self.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            let seen = self.seen();
            if seen.len() >= n {
                return seen;
            }
            tokio::select! {
                _ = arrived => {}
                _ = &mut real_deadline => panic!("receiver got {} of {n} requests", seen.len()),
            }
        }
    }

    /// Asserts that no more than `n` requests arrive within `settle`.
    pub async fn expect_exactly(&self, n: usize, settle: Duration) -> Vec<Recorded> {
        let seen = self.wait_for(n, Duration::from_secs(10)).await;
        tokio::time::sleep(settle).await;
        let after = self.seen();
        assert_eq!(
            after.len(),
            n,
            "expected exactly {n} requests, got {}",
            after.len()
        );
        let _ = seen;
        after
    }
}
