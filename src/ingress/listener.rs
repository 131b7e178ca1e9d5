//! Serving the public listener under limits, so slow or idle clients cannot hold the gateway.
//!
//! `axum::serve` offers no header timeout and no connection cap (it sets no hyper timer, so
//! hyper's own `header_read_timeout` is inert), and a client trickling one byte every few seconds
//! could hold a connection, and a file descriptor, for as long as it liked: enough of them and
//! `accept` fails with "Too many open files" for every producer. So ingress serves HTTP/1 itself
//! with hyper's connection builder:
//!
//! - **header read timeout**: hyper's `header_read_timeout` (with a tokio timer) closes a
//!   connection whose request head is not complete in time. It also runs while a kept-alive
//!   connection waits for its next request, so idle connections are closed too.
//! - **connection cap**: at most [`Limits::max_connections`] connections at once; past it, a new
//!   connection is closed as soon as it is accepted, while established ones keep being served.
//!   The default stays below the process's open-file limit, leaving room for the store, the
//!   evaluator's pipes and outbound deliveries.
//! - the whole-body deadline ([`Limits::body_read_timeout`]) is applied by the `POST /hooks`
//!   handler, which answers 408 (hyper has no body timeout).

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

/// How long a client may take to send a request's head (line and headers).
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send a whole body once its headers are in (a 1 MiB body then
/// needs about 35 KiB/s).
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// The most connections served at once when the open-file limit allows it.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

/// The listener's limits. Fixed at start; see [`crate::server::Options`].
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
            max_connections: default_max_connections(),
        }
    }
}

/// [`DEFAULT_MAX_CONNECTIONS`], or three quarters of the soft open-file limit if that is less:
/// the other quarter is for everything else the process opens (with `ulimit -n 1024`, 768
/// connections and 256 other files).
pub fn default_max_connections() -> usize {
    match rlimit::getrlimit(rlimit::Resource::NOFILE) {
        Ok((soft, _)) => {
            let share = usize::try_from(soft / 4 * 3).unwrap_or(usize::MAX);
            share.clamp(1, DEFAULT_MAX_CONNECTIONS)
        }
        Err(_) => DEFAULT_MAX_CONNECTIONS,
    }
}

/// Serves `app` on `listener` under `limits` until `shutdown` resolves, then stops accepting,
/// lets each connection finish its request in flight, and returns once they are closed (or
/// after `drain` at most, as every connection is bounded by the timeouts anyway).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    drain: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    // Dropping `stop_tx` tells every connection to shut down gracefully; each connection holds a
    // `live_rx`, so `live_tx.closed()` resolves when the last one is gone.
    let (stop_tx, stop_rx) = watch::channel(());
    let (live_tx, live_rx) = watch::channel(());
    let mut shutdown = pin!(shutdown);
    let mut refused: u64 = 0;
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(conn) => conn,
            Err(e) => {
                accept_failed(e).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            // Closing at once frees the descriptor and tells the client; leaving it in the
            // backlog would only make it wait for nothing.
            drop(stream);
            refused += 1;
            if refused.is_power_of_two() {
                tracing::warn!(max = limits.max_connections, refused, %peer,
                    "connection refused: too many open connections");
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let conn =
            builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        let mut stop = stop_rx.clone();
        let live = live_rx.clone();
        tokio::spawn(async move {
            let mut conn = pin!(conn);
            let result = tokio::select! {
                result = conn.as_mut() => result,
                _ = stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                // Timeouts and hang-ups are the client's business; they are not worth a warning.
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
            drop((permit, live));
        });
    }
    drop(listener);
    drop(stop_tx);
    drop(live_rx);
    if tokio::time::timeout(drain, live_tx.closed()).await.is_err() {
        tracing::warn!(
            "ingress connections still open after {drain:?}; closing them with the process"
        );
    }
}

/// An `accept` that failed: a client that hung up before it was accepted is nothing; anything
/// else (such as running out of file descriptors) is logged, and accepting pauses briefly rather
/// than spinning on the error.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::warn!(error = %e, "accepting a connection failed");
    tokio::time::sleep(Duration::from_millis(100)).await;
}
