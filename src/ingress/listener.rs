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
//! - **connection cap**: at most [`Limits::max_connections`] connections at once. At the cap, a
//!   new connection takes the place of the oldest one still waiting for its first request head
//!   (a slowloris client never sends one), else of the oldest idle kept-alive one; connections
//!   inside a request are never closed for room, and if all are, the new connection is closed at
//!   once. So a flood of stalled connections cannot keep producers out, and established clients
//!   keep being served. The default stays below the process's open-file limit, leaving room for
//!   the store, the evaluator's pipes and outbound deliveries.
//! - the whole-body deadline ([`Limits::body_read_timeout`]) is applied by the `POST /hooks`
//!   handler, which answers 408 (hyper has no body timeout).

use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

/// How long a client may take to send a request's head (line and headers).
pub(crate) const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send a whole body once its headers are in (a 1 MiB body then
/// needs about 35 KiB/s).
pub(crate) const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// The most connections served at once when the open-file limit allows it.
pub(crate) const DEFAULT_MAX_CONNECTIONS: usize = 1024;

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
pub(crate) fn default_max_connections() -> usize {
    match rlimit::getrlimit(rlimit::Resource::NOFILE) {
        Ok((soft, _)) => {
            let share = usize::try_from(soft / 4 * 3).unwrap_or(usize::MAX);
            share.clamp(1, DEFAULT_MAX_CONNECTIONS)
        }
        Err(_) => DEFAULT_MAX_CONNECTIONS,
    }
}

/// Serves `app` on `listener` under `limits` until `shutdown` resolves, then stops accepting,
/// closes connections outside a request, lets the others finish their request in flight, and
/// returns once they are closed (or after `drain` at most, as every request is bounded by the
/// body deadline anyway).
pub(crate) async fn serve(
    listener: TcpListener,
    app: Arc<super::App>,
    limits: Limits,
    drain: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let table = Arc::new(Mutex::new(Table::default()));
    // Dropping `stop_tx` tells every connection to shut down gracefully; each connection holds a
    // `live_rx`, so `live_tx.closed()` resolves when the last one is gone.
    let (stop_tx, stop_rx) = watch::channel(());
    let (live_tx, live_rx) = watch::channel(());
    let mut shutdown = pin!(shutdown);
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
        let Some((id, state)) = lock(&table).admit(limits.max_connections, peer) else {
            // Every connection is inside a request. Closing at once frees the descriptor and
            // tells the client; leaving it in the backlog would only make it wait for nothing.
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let conn = builder.serve_connection(TokioIo::new(stream), tracked(&app, &state));
        let mut stop = stop_rx.clone();
        let live = live_rx.clone();
        let table = table.clone();
        tokio::spawn(async move {
            let mut conn = pin!(conn);
            let result = tokio::select! {
                result = conn.as_mut() => result,
                // Dropping the connection closes it: another client needed its place.
                () = state.evict.notified() => Ok(()),
                // At shutdown a connection inside a request finishes it; any other (idle, or its
                // head still trickling in) closes at once rather than holding up the drain.
                _ = stop.changed() => {
                    if state.busy.load(Relaxed) {
                        conn.as_mut().graceful_shutdown();
                        conn.await
                    } else {
                        Ok(())
                    }
                }
            };
            if let Err(e) = result {
                // Timeouts and hang-ups are the client's business; they are not worth a warning.
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
            lock(&table).open.remove(&id);
            drop(live);
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

/// `app` as one connection's service, marking the connection busy from the moment its request
/// head is parsed until its response is ready, and served once it has answered a request.
fn tracked(
    app: &Arc<super::App>,
    state: &Arc<Conn>,
) -> impl hyper::service::Service<
    hyper::Request<hyper::body::Incoming>,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future = impl Future<Output = Result<axum::response::Response, std::convert::Infallible>>
             + Send
             + 'static,
> + Send
+ 'static {
    let app = app.clone();
    let state = state.clone();
    hyper::service::service_fn(move |req| {
        state.busy.store(true, Relaxed);
        let answer = app.clone().answer(req);
        let state = state.clone();
        async move {
            let response = answer.await;
            state.busy.store(false, Relaxed);
            state.served.store(true, Relaxed);
            Ok::<_, std::convert::Infallible>(response)
        }
    })
}

/// One open connection, as the cap sees it.
#[derive(Default)]
struct Conn {
    /// Inside a request: its head parsed, its response not yet ready.
    busy: AtomicBool,
    /// Has answered a request: a producer's kept-alive connection rather than a slow starter.
    served: AtomicBool,
    /// Tells the connection's task to close it.
    evict: Notify,
}

/// The open connections, oldest first, for the cap.
#[derive(Default)]
struct Table {
    next_id: u64,
    open: BTreeMap<u64, Arc<Conn>>,
    /// Connections closed or refused for room, for a log line now and then.
    shed: u64,
}

impl Table {
    /// Makes room for one more connection within `max`, and registers it. At the cap, the
    /// oldest connection that has not sent a whole request head yet is closed (a slowloris
    /// client never does), else the oldest idle kept-alive one; connections inside a request
    /// are never closed for room. `None` if every connection is inside a request.
    fn admit(&mut self, max: usize, peer: SocketAddr) -> Option<(u64, Arc<Conn>)> {
        if self.open.len() >= max.max(1) {
            self.shed += 1;
            let victim = self.victim();
            if self.shed.is_power_of_two() {
                tracing::warn!(max, shed = self.shed, %peer, closed_other = victim.is_some(),
                    "ingress at its connection cap");
            }
            let conn = self.open.remove(&victim?)?;
            conn.evict.notify_one();
        }
        let id = self.next_id;
        self.next_id += 1;
        let conn = Arc::new(Conn::default());
        self.open.insert(id, conn.clone());
        Some((id, conn))
    }

    fn victim(&self) -> Option<u64> {
        let idle = || self.open.iter().filter(|(_, c)| !c.busy.load(Relaxed));
        idle()
            .find(|(_, c)| !c.served.load(Relaxed))
            .or_else(|| idle().next())
            .map(|(id, _)| *id)
    }
}

/// The table's lock. Nothing panics while holding it, but a poisoned table is still a table.
fn lock(table: &Mutex<Table>) -> MutexGuard<'_, Table> {
    table.lock().unwrap_or_else(|e| e.into_inner())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 9))
    }

    #[test]
    fn at_the_cap_slow_starters_go_first_then_idle_connections_never_busy_ones() {
        let mut table = Table::default();
        let (a, conn_a) = table.admit(3, peer()).expect("room");
        let (b, conn_b) = table.admit(3, peer()).expect("room");
        let (c, conn_c) = table.admit(3, peer()).expect("room");
        conn_a.served.store(true, Relaxed); // a producer's kept-alive connection, now idle
        conn_c.busy.store(true, Relaxed); // inside a request
        // b has sent no whole head yet: it makes room, although a is older.
        let (d, conn_d) = table.admit(3, peer()).expect("room");
        assert!(!table.open.contains_key(&b));
        assert_eq!(table.open.keys().copied().collect::<Vec<_>>(), [a, c, d]);
        conn_d.busy.store(true, Relaxed);
        // Then the idle kept-alive one.
        let (e, conn_e) = table.admit(3, peer()).expect("room");
        assert!(!table.open.contains_key(&a));
        conn_e.busy.store(true, Relaxed);
        // Every connection inside a request: the newcomer is refused.
        assert!(table.admit(3, peer()).is_none());
        assert_eq!(table.open.keys().copied().collect::<Vec<_>>(), [c, d, e]);
        // The evicted ones were told (a stored permit wakes them even if not yet waiting).
        for evicted in [&conn_a, &conn_b] {
            let notified = evicted.evict.notified();
            let mut notified = std::pin::pin!(notified);
            assert!(notified.as_mut().enable(), "eviction was signalled");
        }
    }
}
