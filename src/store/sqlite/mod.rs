//! The embedded SQLite store: one file in WAL mode, written by one thread that groups commits.
//!
//! Every operation is sent to the writer thread, which takes whatever has queued up (up to
//! [`MAX_BATCH`] operations), runs it in one transaction, commits once, and only then answers each
//! caller. Under load this turns hundreds of requests into one fsync without ever answering before
//! the commit. Each operation runs inside its own savepoint, so one failing statement fails only
//! its own caller.

use super::*;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use std::sync::mpsc;
use tokio::sync::oneshot;

/// Most operations grouped into one transaction.
pub const MAX_BATCH: usize = 1024;

const MIGRATIONS: &[&str] = &[
    include_str!("../../../migrations/sqlite/0001_init.sql"),
    include_str!("../../../migrations/sqlite/0002_target_state.sql"),
    include_str!("../../../migrations/sqlite/0003_waiting_routes.sql"),
];

/// How hard a commit waits for the disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Sync {
    /// fsync on every commit: survives power loss as well as a killed process.
    #[default]
    Full,
    /// WAL fsync at checkpoints only: survives a killed process, may lose the last commits on power loss.
    Normal,
}

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

enum Op {
    InsertEvent(StoredEvent, Reply<()>),
    Unrouted(usize, Reply<Vec<StoredEvent>>),
    RecordRouting(Arc<[Routing]>, i64, Reply<()>),
    Claim {
        target: String,
        now: i64,
        limit: usize,
        lease_ms: i64,
        reply: Reply<Vec<DueDelivery>>,
    },
    NextDue(i64, Vec<String>, Reply<Option<i64>>),
    QueueDepth(Reply<QueueDepth>),
    UnroutedCount(Reply<u64>),
    RecordAttempt(Attempt, Reply<()>),
    ListDeliveries(DeliveryQuery, Reply<Vec<DeliveryView>>),
    GetDelivery(String, Reply<(DeliveryView, Vec<AttemptView>)>),
    RetryDelivery(String, i64, Reply<bool>),
    RetryDeliveries(DeliveryQuery, i64, Reply<usize>),
    CountRetryable(DeliveryQuery, Reply<usize>),
    GetEvent(String, Reply<EventView>),
    ListEvents(EventQuery, Reply<Vec<EventSummary>>),
    WaitingRoutes(Vec<String>, usize, Reply<Vec<WaitingRoute>>),
    ReplayEvent(String, Reply<()>),
    Prune(i64, usize, Reply<usize>),
    DisabledTargets(Reply<Vec<(String, String)>>),
    SetTargetDisabled(String, Option<String>, Reply<()>),
    Ping(Reply<()>),
}

/// The SQLite backend. Cheap to share: it holds the writer's queue and the signals.
pub struct SqliteStore {
    ops: std::sync::Mutex<mpsc::Sender<Op>>,
    signals: Signals,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, migrates it and starts the writer thread.
    pub fn open(path: &str, sync: Sync) -> Result<Self, StoreError> {
        let conn = Connection::open(path)
            .map_err(|e| StoreError::Unavailable(format!("open {path}: {e}")))?;
        configure(&conn, sync)
            .map_err(|e| StoreError::Unavailable(format!("configure {path}: {e}")))?;
        migrate(&conn).map_err(|e| StoreError::Unavailable(format!("migrate {path}: {e}")))?;
        // This process owns the file: leases left by a previous (killed) process are void.
        conn.execute(
            "UPDATE deliveries SET lease_until = 0 WHERE lease_until > 0",
            [],
        )
        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let (tx, rx) = mpsc::channel();
        let signals = Signals::default();
        let thread_signals = signals.clone();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer_loop(conn, rx, thread_signals))
            .map_err(|e| StoreError::Unavailable(format!("spawn writer: {e}")))?;
        Ok(Self {
            ops: std::sync::Mutex::new(tx),
            signals,
        })
    }

    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Op) -> Result<T, StoreError> {
        let (tx, rx) = oneshot::channel();
        {
            let ops = self
                .ops
                .lock()
                .map_err(|_| StoreError::Unavailable("writer queue poisoned".into()))?;
            ops.send(make(tx))
                .map_err(|_| StoreError::Unavailable("writer thread stopped".into()))?;
        }
        rx.await
            .map_err(|_| StoreError::Unavailable("writer thread stopped".into()))?
    }
}

fn configure(conn: &Connection, sync: Sync) -> rusqlite::Result<()> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(
        None,
        "synchronous",
        if sync == Sync::Full { "FULL" } else { "NORMAL" },
    )?;
    conn.pragma_update(None, "busy_timeout", 5000)?;
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    Ok(())
}

fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        conn.execute_batch(&format!(
            "BEGIN; {sql}; PRAGMA user_version = {}; COMMIT;",
            i + 1
        ))?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn insert_event(&self, event: StoredEvent) -> Result<(), StoreError> {
        self.call(|r| Op::InsertEvent(event, r)).await
    }
    async fn unrouted_events(&self, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
        self.call(|r| Op::Unrouted(limit, r)).await
    }
    async fn record_routing(&self, routings: Arc<[Routing]>, now: i64) -> Result<(), StoreError> {
        self.call(|r| Op::RecordRouting(routings, now, r)).await
    }
    async fn claim_due(
        &self,
        target: &str,
        now: i64,
        limit: usize,
        lease_ms: i64,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        let target = target.to_string();
        self.call(|reply| Op::Claim {
            target,
            now,
            limit,
            lease_ms,
            reply,
        })
        .await
    }
    async fn next_due_at(&self, now: i64, targets: Vec<String>) -> Result<Option<i64>, StoreError> {
        self.call(|r| Op::NextDue(now, targets, r)).await
    }
    async fn queue_depth(&self) -> Result<QueueDepth, StoreError> {
        self.call(Op::QueueDepth).await
    }
    async fn unrouted_count(&self) -> Result<u64, StoreError> {
        self.call(Op::UnroutedCount).await
    }
    async fn record_attempt(&self, attempt: Attempt) -> Result<(), StoreError> {
        self.call(|r| Op::RecordAttempt(attempt, r)).await
    }
    async fn list_deliveries(&self, query: DeliveryQuery) -> Result<Vec<DeliveryView>, StoreError> {
        self.call(|r| Op::ListDeliveries(query, r)).await
    }
    async fn get_delivery(&self, id: &str) -> Result<(DeliveryView, Vec<AttemptView>), StoreError> {
        let id = id.to_string();
        self.call(|r| Op::GetDelivery(id, r)).await
    }
    async fn retry_deliveries(&self, query: DeliveryQuery, now: i64) -> Result<usize, StoreError> {
        self.call(|r| Op::RetryDeliveries(query, now, r)).await
    }
    async fn count_retryable(&self, query: DeliveryQuery) -> Result<usize, StoreError> {
        self.call(|r| Op::CountRetryable(query, r)).await
    }
    async fn waiting_routes(
        &self,
        routes: Vec<String>,
        limit: usize,
    ) -> Result<Vec<WaitingRoute>, StoreError> {
        self.call(|r| Op::WaitingRoutes(routes, limit, r)).await
    }
    async fn list_events(&self, query: EventQuery) -> Result<Vec<EventSummary>, StoreError> {
        self.call(|r| Op::ListEvents(query, r)).await
    }
    async fn get_event(&self, id: &str) -> Result<EventView, StoreError> {
        let id = id.to_string();
        self.call(|r| Op::GetEvent(id, r)).await
    }
    async fn disabled_targets(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.call(Op::DisabledTargets).await
    }
    async fn set_target_disabled(
        &self,
        target: &str,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        let (target, reason) = (target.to_string(), reason.map(str::to_string));
        self.call(|r| Op::SetTargetDisabled(target, reason, r))
            .await
    }
    async fn prune(&self, before: i64, batch: usize) -> Result<usize, StoreError> {
        self.call(|r| Op::Prune(before, batch, r)).await
    }
    async fn replay_event(&self, id: &str) -> Result<(), StoreError> {
        let id = id.to_string();
        self.call(|r| Op::ReplayEvent(id, r)).await
    }
    async fn retry_delivery(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.call(|r| Op::RetryDelivery(id, now, r)).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.call(Op::Ping).await
    }
    fn signals(&self) -> Signals {
        self.signals.clone()
    }
}

/// A reply held back until the batch's commit.
type Deferred = Box<dyn FnOnce(Option<&str>) + Send>;

fn defer<T: Send + 'static>(reply: Reply<T>, result: Result<T, StoreError>) -> Deferred {
    Box::new(move |commit_error| {
        let result = match commit_error {
            Some(e) => Err(StoreError::Unavailable(format!("commit failed: {e}"))),
            None => result,
        };
        // The caller may have gone away (a cancelled request); its work is committed regardless.
        let _ = reply.send(result);
    })
}

fn writer_loop(mut conn: Connection, rx: mpsc::Receiver<Op>, signals: Signals) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let (mut new_events, mut new_deliveries) = (false, false);
        let mut deferred: Vec<Deferred> = Vec::with_capacity(batch.len());
        let commit_error = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
            Ok(tx) => {
                for op in batch {
                    match &op {
                        Op::InsertEvent(..) | Op::ReplayEvent(..) => new_events = true,
                        Op::RecordRouting(..)
                        | Op::RecordAttempt(..)
                        | Op::RetryDelivery(..)
                        | Op::RetryDeliveries(..)
                        | Op::SetTargetDisabled(..) => new_deliveries = true,
                        _ => {}
                    }
                    deferred.push(run_op(&tx, op));
                }
                tx.commit().err().map(|e| e.to_string())
            }
            Err(e) => {
                let e = e.to_string();
                for op in batch {
                    deferred.push(run_op_failed(op));
                }
                Some(e)
            }
        };
        if let Some(e) = &commit_error {
            tracing::error!(error = %e, "sqlite commit failed");
        }
        for reply in deferred {
            reply(commit_error.as_deref());
        }
        if commit_error.is_none() {
            if new_events {
                signals.events.notify_one();
            }
            if new_deliveries {
                signals.deliveries.notify_one();
            }
        }
    }
}

fn run_op_failed(op: Op) -> Deferred {
    fn err<T>() -> Result<T, StoreError> {
        Err(StoreError::Unavailable(
            "could not begin transaction".into(),
        ))
    }
    match op {
        Op::InsertEvent(_, r)
        | Op::RecordRouting(_, _, r)
        | Op::RecordAttempt(_, r)
        | Op::Ping(r) => defer(r, err()),
        Op::Unrouted(_, r) => defer(r, err()),
        Op::Claim { reply, .. } => defer(reply, err()),
        Op::NextDue(_, _, r) => defer(r, err()),
        Op::QueueDepth(r) => defer(r, err()),
        Op::UnroutedCount(r) => defer(r, err()),
        Op::ListDeliveries(_, r) => defer(r, err()),
        Op::GetDelivery(_, r) => defer(r, err()),
        Op::RetryDelivery(_, _, r) => defer(r, err()),
        Op::RetryDeliveries(_, _, r) => defer(r, err()),
        Op::CountRetryable(_, r) => defer(r, err()),
        Op::GetEvent(_, r) => defer(r, err()),
        Op::ListEvents(_, r) => defer(r, err()),
        Op::WaitingRoutes(_, _, r) => defer(r, err()),
        Op::ReplayEvent(_, r) => defer(r, err()),
        Op::Prune(_, _, r) => defer(r, err()),
        Op::DisabledTargets(r) => defer(r, err()),
        Op::SetTargetDisabled(_, _, r) => defer(r, err()),
    }
}

/// Runs one operation inside a savepoint of the batch's transaction.
fn run_op(tx: &Transaction<'_>, op: Op) -> Deferred {
    match op {
        Op::InsertEvent(ev, r) => defer(r, savepoint(tx, |c| insert_event(c, &ev))),
        Op::Unrouted(limit, r) => defer(r, savepoint(tx, |c| unrouted(c, limit))),
        Op::RecordRouting(rs, now, r) => defer(r, savepoint(tx, |c| record_routing(c, &rs, now))),
        Op::Claim {
            target,
            now,
            limit,
            lease_ms,
            reply,
        } => defer(
            reply,
            savepoint(tx, |c| claim(c, &target, now, limit, lease_ms)),
        ),
        Op::NextDue(now, targets, r) => defer(r, savepoint(tx, |c| next_due(c, now, &targets))),
        Op::QueueDepth(r) => defer(r, savepoint(tx, queue_depth)),
        Op::UnroutedCount(r) => defer(r, savepoint(tx, unrouted_count)),
        Op::RecordAttempt(a, r) => defer(r, savepoint(tx, |c| record_attempt(c, &a))),
        Op::GetDelivery(id, r) => defer(r, get_delivery(tx, &id)),
        Op::RetryDelivery(id, now, r) => defer(r, retry_delivery(tx, &id, now)),
        Op::RetryDeliveries(q, now, r) => defer(r, savepoint(tx, |c| retry_deliveries(c, &q, now))),
        Op::CountRetryable(q, r) => defer(r, savepoint(tx, |c| count_retryable(c, &q))),
        Op::GetEvent(id, r) => defer(r, get_event(tx, &id)),
        Op::ListEvents(q, r) => defer(r, savepoint(tx, |c| list_events(c, &q))),
        Op::WaitingRoutes(routes, limit, r) => {
            defer(r, savepoint(tx, |c| waiting_routes(c, &routes, limit)))
        }
        Op::ReplayEvent(id, r) => defer(r, replay_event(tx, &id)),
        Op::Prune(before, batch, r) => defer(r, savepoint(tx, |c| prune(c, before, batch))),
        Op::DisabledTargets(r) => defer(r, savepoint(tx, disabled_targets)),
        Op::SetTargetDisabled(t, reason, r) => defer(
            r,
            savepoint(tx, |c| set_target_disabled(c, &t, reason.as_deref())),
        ),
        Op::ListDeliveries(query, r) => defer(r, savepoint(tx, |c| list_deliveries(c, &query))),
        Op::Ping(r) => defer(
            r,
            savepoint(tx, |c| c.query_row("SELECT 1", [], |_| Ok(()))),
        ),
    }
}

fn savepoint<T>(
    tx: &Transaction<'_>,
    f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
) -> Result<T, StoreError> {
    let q = |e: rusqlite::Error| StoreError::Query(e.to_string());
    tx.execute_batch("SAVEPOINT op").map_err(q)?;
    match f(tx) {
        Ok(v) => {
            tx.execute_batch("RELEASE op").map_err(q)?;
            Ok(v)
        }
        Err(e) => {
            let _ = tx.execute_batch("ROLLBACK TO op; RELEASE op");
            Err(q(e))
        }
    }
}

fn insert_event(c: &Connection, ev: &StoredEvent) -> rusqlite::Result<()> {
    c.prepare_cached(
        "INSERT INTO events (id, source, received_at, headers, query, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        ev.id,
        ev.source,
        ev.received_at,
        pairs_to_json(&ev.headers),
        pairs_to_json(&ev.query),
        &ev.body[..]
    ])?;
    Ok(())
}

/// A `StoredEvent` from columns id, source, received_at, headers, query, body (in that order,
/// first).
fn event_row(r: &rusqlite::Row) -> rusqlite::Result<StoredEvent> {
    Ok(StoredEvent {
        id: r.get(0)?,
        source: r.get(1)?,
        received_at: r.get(2)?,
        headers: pairs_from_json(&r.get::<_, String>(3)?),
        query: pairs_from_json(&r.get::<_, String>(4)?),
        body: Bytes::from(r.get::<_, Vec<u8>>(5)?),
    })
}

fn unrouted(c: &Connection, limit: usize) -> rusqlite::Result<Vec<StoredEvent>> {
    let mut stmt = c.prepare_cached(
        "SELECT id, source, received_at, headers, query, body FROM events WHERE routed = 0 ORDER BY seq LIMIT ?1",
    )?;
    let rows = stmt.query_map(params![limit as i64], event_row)?;
    rows.collect()
}

fn record_routing(c: &Connection, routings: &[Routing], now: i64) -> rusqlite::Result<()> {
    for routing in routings {
        c.prepare_cached("UPDATE events SET routed = 1, event_type = ?2 WHERE id = ?1")?
            .execute(params![routing.event_id, routing.event_type])?;
        for result in &routing.results {
            c.prepare_cached(
                "INSERT OR REPLACE INTO route_results (event_id, route, outcome, detail) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![routing.event_id, result.route, result.outcome.as_str(), result.detail])?;
        }
        for d in &routing.deliveries {
            let next = (d.status == DeliveryStatus::Pending).then_some(now);
            c.prepare_cached(
                "INSERT INTO deliveries (id, event_id, route, target, status, body, headers, next_attempt_at, \
                 last_error, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)",
            )?
            .execute(params![
                d.id,
                routing.event_id,
                d.route,
                d.target,
                d.status.as_str(),
                d.body.as_deref(),
                pairs_to_json(&d.headers),
                next,
                d.error,
                now
            ])?;
        }
    }
    Ok(())
}

fn claim(
    c: &Connection,
    target: &str,
    now: i64,
    limit: usize,
    lease_ms: i64,
) -> rusqlite::Result<Vec<DueDelivery>> {
    let mut stmt = c.prepare_cached(
        "SELECT d.seq, d.id, d.event_id, e.event_type, d.route, d.target, COALESCE(d.body, e.body), d.headers, d.attempts, d.created_at \
         FROM deliveries d JOIN events e ON e.id = d.event_id \
         WHERE d.target = ?1 AND d.status = 'pending' AND d.next_attempt_at <= ?2 AND d.lease_until <= ?2 \
         ORDER BY d.next_attempt_at LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![target, now, limit as i64], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            DueDelivery {
                id: r.get(1)?,
                event_id: r.get(2)?,
                event_type: r.get(3)?,
                route: r.get(4)?,
                target: r.get(5)?,
                body: Bytes::from(r.get::<_, Vec<u8>>(6)?),
                headers: pairs_from_json(&r.get::<_, String>(7)?),
                attempts: r.get::<_, i64>(8)? as u32,
                created_at: r.get(9)?,
            },
        ))
    })?;
    let claimed: Vec<(i64, DueDelivery)> = rows.collect::<rusqlite::Result<_>>()?;
    let mut lease = c.prepare_cached("UPDATE deliveries SET lease_until = ?2 WHERE seq = ?1")?;
    for (seq, _) in &claimed {
        lease.execute(params![seq, now.saturating_add(lease_ms)])?;
    }
    Ok(claimed.into_iter().map(|(_, d)| d).collect())
}

/// The earliest due time among `targets` (one index seek each).
fn next_due(c: &Connection, now: i64, targets: &[String]) -> rusqlite::Result<Option<i64>> {
    let mut stmt = c.prepare_cached(
        "SELECT MIN(next_attempt_at) FROM deliveries \
         WHERE target = ?1 AND status = 'pending' AND lease_until <= ?2",
    )?;
    let mut earliest = None;
    for t in targets {
        let at = stmt
            .query_row(params![t, now], |r| r.get::<_, Option<i64>>(0))
            .optional()?
            .flatten();
        earliest = earliest.into_iter().chain(at).min();
    }
    Ok(earliest)
}

fn unrouted_count(c: &Connection) -> rusqlite::Result<u64> {
    let n = c
        .prepare_cached("SELECT COUNT(*) FROM events WHERE routed = 0")?
        .query_row([], |r| r.get::<_, i64>(0))?;
    Ok(n.max(0) as u64)
}

fn queue_depth(c: &Connection) -> rusqlite::Result<QueueDepth> {
    let unrouted = unrouted_count(c)?;
    let pending = c
        .prepare_cached(
            "SELECT target, COUNT(*) FROM deliveries WHERE status = 'pending' GROUP BY target",
        )?
        .query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(QueueDepth { unrouted, pending })
}

fn record_attempt(c: &Connection, a: &Attempt) -> rusqlite::Result<()> {
    c.prepare_cached(
        "INSERT INTO attempts (delivery_id, attempt, started_at, duration_ms, status_code, error, response_headers, \
         response_body) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        a.delivery_id,
        a.attempt,
        a.started_at,
        a.duration_ms,
        a.status_code,
        a.error,
        pairs_to_json(&a.response_headers),
        &a.response_body[..]
    ])?;
    let (status, next) = match a.after {
        AfterAttempt::Succeeded => (DeliveryStatus::Succeeded, None),
        AfterAttempt::RetryAt(at) => (DeliveryStatus::Pending, Some(at)),
        AfterAttempt::Failed => (DeliveryStatus::Failed, None),
        AfterAttempt::Dead => (DeliveryStatus::Dead, None),
    };
    c.prepare_cached(
        "UPDATE deliveries SET status = ?2, attempts = ?3, next_attempt_at = ?4, lease_until = 0, last_error = ?5, \
         updated_at = ?6 WHERE id = ?1",
    )?
    .execute(params![a.delivery_id, status.as_str(), a.attempt, next, a.error, a.finished_at])?;
    Ok(())
}

const DELIVERY_COLUMNS: &str =
    "seq, id, event_id, route, target, status, attempts, next_attempt_at, last_error";

fn delivery_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DeliveryView> {
    Ok(DeliveryView {
        seq: r.get(0)?,
        id: r.get(1)?,
        event_id: r.get(2)?,
        route: r.get(3)?,
        target: r.get(4)?,
        status: r.get(5)?,
        attempts: r.get::<_, i64>(6)? as u32,
        next_attempt_at: r.get(7)?,
        last_error: r.get(8)?,
    })
}

fn list_deliveries(c: &Connection, q: &DeliveryQuery) -> rusqlite::Result<Vec<DeliveryView>> {
    let sql = format!(
        "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE (?1 IS NULL OR status = ?1) \
         AND (?2 IS NULL OR target = ?2) AND (?3 IS NULL OR route = ?3) AND (?4 IS NULL OR seq < ?4) \
         AND (?6 IS NULL OR created_at >= ?6) \
         AND (?7 IS NULL OR event_id IN (SELECT id FROM events WHERE source = ?7)) \
         ORDER BY seq DESC LIMIT ?5"
    );
    let mut stmt = c.prepare_cached(&sql)?;
    let rows = stmt.query_map(
        params![
            q.status.map(|s| s.as_str()),
            q.target,
            q.route,
            q.before,
            q.limit as i64,
            q.since,
            q.source
        ],
        delivery_row,
    )?;
    rows.collect()
}

fn get_delivery(c: &Connection, id: &str) -> Result<(DeliveryView, Vec<AttemptView>), StoreError> {
    let q = |e: rusqlite::Error| StoreError::Query(e.to_string());
    let sql = format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = ?1");
    let delivery = c
        .prepare_cached(&sql)
        .map_err(q)?
        .query_row(params![id], delivery_row)
        .optional()
        .map_err(q)?
        .ok_or(StoreError::NotFound)?;
    let mut stmt = c
        .prepare_cached(
            "SELECT attempt, started_at, duration_ms, status_code, error, response_headers, response_body \
             FROM attempts WHERE delivery_id = ?1 ORDER BY attempt, seq",
        )
        .map_err(q)?;
    let attempts = stmt
        .query_map(params![id], |r| {
            Ok(AttemptView {
                attempt: r.get::<_, i64>(0)? as u32,
                started_at: r.get(1)?,
                duration_ms: r.get(2)?,
                status_code: r.get::<_, Option<i64>>(3)?.map(|s| s as u16),
                error: r.get(4)?,
                response_headers: pairs_from_json(&r.get::<_, String>(5)?),
                response_body: String::from_utf8_lossy(&r.get::<_, Vec<u8>>(6)?).into_owned(),
            })
        })
        .map_err(q)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(q)?;
    Ok((delivery, attempts))
}

fn retry_delivery(c: &Connection, id: &str, now: i64) -> Result<bool, StoreError> {
    let q = |e: rusqlite::Error| StoreError::Query(e.to_string());
    let status: Option<String> = c
        .prepare_cached("SELECT status FROM deliveries WHERE id = ?1")
        .map_err(q)?
        .query_row(params![id], |r| r.get(0))
        .optional()
        .map_err(q)?;
    match status.as_deref() {
        None => Err(StoreError::NotFound),
        Some("pending") => Ok(false),
        Some(_) => {
            c.prepare_cached(
                "UPDATE deliveries SET status = 'pending', next_attempt_at = ?2, lease_until = 0, updated_at = ?2 \
                 WHERE id = ?1",
            )
            .map_err(q)?
            .execute(params![id, now])
            .map_err(q)?;
            Ok(true)
        }
    }
}

/// The deliveries a bulk retry takes, with ?1 status, ?2 target, ?3 route, ?4 since, ?5 source:
/// never pending ones, and succeeded ones only when ?1 names them.
const RETRYABLE: &str = "status != 'pending' \
     AND ((?1 IS NULL AND status != 'succeeded') OR status = ?1) \
     AND (?2 IS NULL OR target = ?2) AND (?3 IS NULL OR route = ?3) \
     AND (?4 IS NULL OR created_at >= ?4) \
     AND (?5 IS NULL OR event_id IN (SELECT id FROM events WHERE source = ?5))";

fn retry_deliveries(c: &Connection, q: &DeliveryQuery, now: i64) -> rusqlite::Result<usize> {
    let sql = format!(
        "UPDATE deliveries SET status = 'pending', next_attempt_at = ?6, lease_until = 0, updated_at = ?6 \
         WHERE seq IN (SELECT seq FROM deliveries WHERE {RETRYABLE} ORDER BY seq LIMIT ?7)"
    );
    c.prepare_cached(&sql)?.execute(params![
        q.status.map(|s| s.as_str()),
        q.target,
        q.route,
        q.since,
        q.source,
        now,
        i64::try_from(q.limit).unwrap_or(i64::MAX),
    ])
}

fn count_retryable(c: &Connection, q: &DeliveryQuery) -> rusqlite::Result<usize> {
    let sql = format!("SELECT COUNT(*) FROM deliveries WHERE {RETRYABLE}");
    let n: i64 = c.prepare_cached(&sql)?.query_row(
        params![
            q.status.map(|s| s.as_str()),
            q.target,
            q.route,
            q.since,
            q.source
        ],
        |r| r.get(0),
    )?;
    Ok(usize::try_from(n).unwrap_or(0))
}

/// Events with a route waiting for its plugin, for the routes in `routes`, oldest first.
fn waiting_routes(
    c: &Connection,
    routes: &[String],
    limit: usize,
) -> rusqlite::Result<Vec<WaitingRoute>> {
    let mut stmt = c.prepare_cached(
        "SELECT e.id, e.source, e.received_at, e.headers, e.query, e.body, e.event_type, r.route \
         FROM route_results r JOIN events e ON e.id = r.event_id \
         WHERE r.outcome = 'waiting' AND r.route = ?1 ORDER BY e.seq LIMIT ?2",
    )?;
    let mut out = Vec::new();
    for route in routes {
        let left = limit.saturating_sub(out.len());
        if left == 0 {
            break;
        }
        let rows = stmt.query_map(params![route, left as i64], |r| {
            Ok(WaitingRoute {
                event: event_row(r)?,
                event_type: r.get(6)?,
                route: r.get(7)?,
            })
        })?;
        for row in rows {
            out.push(row?);
        }
    }
    Ok(out)
}

fn list_events(c: &Connection, q: &EventQuery) -> rusqlite::Result<Vec<EventSummary>> {
    let mut stmt = c.prepare_cached(
        "SELECT seq, id, source, event_type, received_at, routed FROM events \
         WHERE (?1 IS NULL OR source = ?1) AND (?2 IS NULL OR event_type = ?2) \
         AND (?3 IS NULL OR seq < ?3) AND (?4 IS NULL OR received_at >= ?4) \
         ORDER BY seq DESC LIMIT ?5",
    )?;
    let rows = stmt.query_map(
        params![q.source, q.event_type, q.before, q.since, q.limit as i64],
        |r| {
            Ok(EventSummary {
                seq: r.get(0)?,
                id: r.get(1)?,
                source: r.get(2)?,
                event_type: r.get(3)?,
                received_at: r.get(4)?,
                routed: r.get::<_, i64>(5)? != 0,
            })
        },
    )?;
    rows.collect()
}

fn get_event(c: &Connection, id: &str) -> Result<EventView, StoreError> {
    let q = |e: rusqlite::Error| StoreError::Query(e.to_string());
    let mut event = c
        .prepare_cached("SELECT id, source, event_type, received_at, routed, headers, body FROM events WHERE id = ?1")
        .map_err(q)?
        .query_row(params![id], |r| {
            Ok(EventView {
                id: r.get(0)?,
                source: r.get(1)?,
                event_type: r.get(2)?,
                received_at: r.get(3)?,
                routed: r.get::<_, i64>(4)? != 0,
                headers: pairs_from_json(&r.get::<_, String>(5)?),
                body: String::from_utf8_lossy(&r.get::<_, Vec<u8>>(6)?).into_owned(),
                deliveries: Vec::new(),
                routes: Vec::new(),
            })
        })
        .optional()
        .map_err(q)?
        .ok_or(StoreError::NotFound)?;
    let mut stmt = c
        .prepare_cached("SELECT id FROM deliveries WHERE event_id = ?1 ORDER BY seq")
        .map_err(q)?;
    event.deliveries = stmt
        .query_map(params![id], |r| r.get(0))
        .map_err(q)?
        .collect::<rusqlite::Result<Vec<String>>>()
        .map_err(q)?;
    let mut stmt = c
        .prepare_cached(
            "SELECT route, outcome, detail FROM route_results WHERE event_id = ?1 ORDER BY route",
        )
        .map_err(q)?;
    event.routes = stmt
        .query_map(params![id], |r| {
            Ok(RouteOutcomeView {
                route: r.get(0)?,
                outcome: r.get(1)?,
                detail: r.get(2)?,
            })
        })
        .map_err(q)?
        .collect::<rusqlite::Result<_>>()
        .map_err(q)?;
    Ok(event)
}

fn replay_event(c: &Connection, id: &str) -> Result<(), StoreError> {
    let changed = c
        .prepare_cached("UPDATE events SET routed = 0 WHERE id = ?1")
        .and_then(|mut s| s.execute(params![id]))
        .map_err(|e| StoreError::Query(e.to_string()))?;
    if changed == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

fn prune(c: &Connection, before: i64, batch: usize) -> rusqlite::Result<usize> {
    let limit = batch as i64;
    let old_deliveries = "SELECT id FROM deliveries WHERE created_at < ?1 AND status != 'pending' ORDER BY seq LIMIT ?2";
    let mut n = c.execute(
        &format!("DELETE FROM attempts WHERE delivery_id IN ({old_deliveries})"),
        params![before, limit],
    )?;
    n += c.execute(
        &format!("DELETE FROM deliveries WHERE id IN ({old_deliveries})"),
        params![before, limit],
    )?;
    // An event goes once it is routed and none of its deliveries remain.
    let old_events = "SELECT id FROM events e WHERE received_at < ?1 AND routed = 1 \
                      AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id) \
                      AND NOT EXISTS (SELECT 1 FROM route_results r WHERE r.event_id = e.id AND r.outcome = 'waiting') \
                      ORDER BY seq LIMIT ?2";
    n += c.execute(
        &format!("DELETE FROM route_results WHERE event_id IN ({old_events})"),
        params![before, limit],
    )?;
    n += c.execute(
        &format!("DELETE FROM events WHERE id IN ({old_events})"),
        params![before, limit],
    )?;
    Ok(n)
}

fn disabled_targets(c: &Connection) -> rusqlite::Result<Vec<(String, String)>> {
    let mut stmt =
        c.prepare_cached("SELECT name, COALESCE(reason, '') FROM target_state WHERE disabled = 1")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

fn set_target_disabled(c: &Connection, target: &str, reason: Option<&str>) -> rusqlite::Result<()> {
    c.prepare_cached(
        "INSERT INTO target_state (name, disabled, reason, updated_at) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (name) DO UPDATE SET disabled = ?2, reason = ?3, updated_at = ?4",
    )?
    .execute(params![target, reason.is_some(), reason, crate::now_ms()])?;
    Ok(())
}
