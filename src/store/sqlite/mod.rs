//! The embedded SQLite store: one file in WAL mode, written by one thread that groups commits.
//!
//! Every operation is sent to the writer thread, which takes whatever has queued up (up to
//! [`MAX_BATCH`] operations; a few events, or routings recorded after their first attempts, wait
//! up to a millisecond for more, `store/linger.rs`), runs it in one transaction, commits once,
//! and only then answers each caller. Under load this turns hundreds of requests into one fsync
//! without ever answering before the commit. Each operation runs inside its own savepoint (the
//! events and the attempts of a batch in one, each again in its own if any fails), so one failing
//! statement fails only its own caller.

mod log;
#[cfg(test)]
mod plans;
mod queue;
mod shared;
#[cfg(test)]
mod tests_migrate;
mod wal_buffer;
mod writer;

use super::*;
use rusqlite::Connection;
use std::sync::mpsc;
use tokio::sync::oneshot;
use writer::{Op, Reply, writer_loop};

/// A filter's parameter as SQLite binds it.
fn value(p: &filter::Param) -> rusqlite::types::Value {
    match p {
        filter::Param::Text(s) => s.clone().into(),
        filter::Param::Int(n) => (*n).into(),
    }
}

/// Most operations grouped into one transaction.
pub(crate) const MAX_BATCH: usize = 1024;

const MIGRATIONS: &[&str] = &[
    include_str!("../../../migrations/sqlite/0001_init.sql"),
    include_str!("../../../migrations/sqlite/0002_target_state.sql"),
    include_str!("../../../migrations/sqlite/0003_waiting_routes.sql"),
    include_str!("../../../migrations/sqlite/0004_log_indexes.sql"),
    include_str!("../../../migrations/sqlite/0005_log_indexes.sql"),
    include_str!("../../../migrations/sqlite/0006_drop_deliveries_next.sql"),
    include_str!("../../../migrations/sqlite/0007_event_replays.sql"),
    include_str!("../../../migrations/sqlite/0008_routing_off_events.sql"),
    include_str!("../../../migrations/sqlite/0009_unrouted_by_ingress.sql"),
];

/// How hard a commit waits for the disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Sync {
    /// fsync on every commit: survives power loss as well as a killed process.
    #[default]
    Full,
    /// WAL fsync at checkpoints only: survives a killed process, may lose the last commits on power loss.
    Normal,
}

/// Free space below which the store reports itself not ready: SQLite needs room for the WAL and
/// a checkpoint, and a commit that hits a full disk fails every operation in its batch. A load
/// balancer reading `/readyz` sends producers elsewhere before that, rather than after.
pub(crate) const MIN_FREE_BYTES: u64 = 16 * 1024 * 1024;

/// The SQLite backend. Cheap to share: it holds the writer's queue and the signals.
pub(crate) struct SqliteStore {
    ops: std::sync::Mutex<mpsc::Sender<Op>>,
    signals: Signals,
    /// The directory holding the database (and its WAL), whose filesystem `ping` checks for free
    /// space; `None` for an in-memory database.
    dir: Option<std::path::PathBuf>,
    commits: Arc<CommitTimes>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, migrates it and starts the writer thread.
    pub(crate) fn open(path: &str, sync: Sync) -> Result<Self, StoreError> {
        let conn = open_file(path, sync)
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
        let commits = Arc::new(CommitTimes::default());
        let thread_commits = commits.clone();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer_loop(conn, rx, thread_signals, &thread_commits))
            .map_err(|e| StoreError::Unavailable(format!("spawn writer: {e}")))?;
        Ok(Self {
            ops: std::sync::Mutex::new(tx),
            signals,
            dir: database_dir(path),
            commits,
        })
    }

    /// Errs when the database's filesystem has less than [`MIN_FREE_BYTES`] free for this
    /// process (blocks available to unprivileged users, as SQLite writes as one).
    fn check_free_space(&self) -> Result<(), StoreError> {
        let Some(dir) = &self.dir else { return Ok(()) };
        let stat = rustix::fs::statvfs(dir.as_path()).map_err(|e| {
            StoreError::Unavailable(format!("cannot read free space of {}: {e}", dir.display()))
        })?;
        let free = stat.f_bavail.saturating_mul(stat.f_frsize);
        if free < MIN_FREE_BYTES {
            return Err(StoreError::Unavailable(format!(
                "{} KiB free on the database's filesystem ({}), under {} MiB: writes would fail",
                free / 1024,
                dir.display(),
                MIN_FREE_BYTES / (1024 * 1024)
            )));
        }
        Ok(())
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

/// Opens the file; with `Sync::Full`, through the VFS that writes each commit's WAL frames at
/// once (`wal_buffer`), which is only sound when every commit syncs the WAL.
fn open_file(path: &str, sync: Sync) -> rusqlite::Result<Connection> {
    if sync != Sync::Full {
        return Connection::open(path);
    }
    wal_buffer::register().map_err(|code| {
        rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(code),
            Some("registering the WAL write buffer".into()),
        )
    })?;
    Connection::open_with_flags_and_vfs(path, rusqlite::OpenFlags::default(), wal_buffer::NAME)
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
    // Each operation runs in a savepoint; its sub-journal stays in memory instead of a temp file.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
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
impl Queue for SqliteStore {
    async fn insert_event(&self, event: Arc<StoredEvent>) -> Result<(), StoreError> {
        self.call(|r| Op::InsertEvent(event, r)).await
    }
    async fn unrouted_in(
        &self,
        span: Span,
        limit: usize,
    ) -> Result<Vec<(i64, StoredEvent)>, StoreError> {
        self.call(|r| Op::Unrouted(span, limit, r)).await
    }
    async fn last_seq(&self) -> Result<i64, StoreError> {
        self.call(Op::LastSeq).await
    }
    async fn record_routing(
        &self,
        batch: Arc<RoutingBatch>,
        now: i64,
    ) -> Result<Vec<String>, StoreError> {
        self.call(|r| Op::RecordRouting(batch, now, r)).await
    }
    async fn release_leases(&self, ids: Vec<String>) -> Result<(), StoreError> {
        self.call(|r| Op::ReleaseLeases(ids, r)).await
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
    async fn unrouted_count(&self) -> Result<u64, StoreError> {
        self.call(Op::UnroutedCount).await
    }
    async fn record_attempt(&self, attempt: Attempt) -> Result<(), StoreError> {
        self.call(|r| Op::RecordAttempt(attempt, r)).await
    }
    async fn waiting_routes(
        &self,
        routes: Vec<String>,
        limit: usize,
    ) -> Result<Vec<WaitingRoute>, StoreError> {
        self.call(|r| Op::WaitingRoutes(routes, limit, r)).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.call(Op::Ping).await?;
        // A full disk still answers reads: readiness is about taking writes.
        self.check_free_space()
    }
    fn signals(&self) -> Signals {
        self.signals.clone()
    }
}

#[async_trait::async_trait]
impl DeliveryLog for SqliteStore {
    async fn queue_depth(&self) -> Result<QueueDepth, StoreError> {
        self.call(Op::QueueDepth).await
    }
    fn commit_stats(&self) -> CommitStats {
        self.commits.stats()
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
    async fn count_deliveries(
        &self,
        query: DeliveryQuery,
        scope: Scope,
    ) -> Result<usize, StoreError> {
        self.call(|r| Op::CountDeliveries(query, scope, r)).await
    }
    async fn list_events(&self, query: EventQuery) -> Result<Vec<EventSummary>, StoreError> {
        self.call(|r| Op::ListEvents(query, r)).await
    }
    async fn get_event(&self, id: &str) -> Result<EventView, StoreError> {
        let id = id.to_string();
        self.call(|r| Op::GetEvent(id, r)).await
    }
    async fn prune(&self, before: i64, batch: usize) -> Result<usize, StoreError> {
        self.call(|r| Op::Prune(before, batch, r)).await
    }
    async fn replay_event(&self, id: &str) -> Result<(), StoreError> {
        let id = id.to_string();
        self.call(|r| Op::ReplayEvent(id, r)).await
    }
    async fn retry_delivery(&self, id: &str, now: i64) -> Result<Retry, StoreError> {
        let id = id.to_string();
        self.call(|r| Op::RetryDelivery(id, now, r)).await
    }
}

#[async_trait::async_trait]
impl Shared for SqliteStore {
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
}

/// The directory of the database file at `path` (as given to `sqlite://`), or `None` when the
/// database is not a file (`:memory:`, a `file:` URI, which SQLite resolves itself).
fn database_dir(path: &str) -> Option<std::path::PathBuf> {
    if path.is_empty() || path == ":memory:" || path.starts_with("file:") {
        return None;
    }
    let parent = std::path::Path::new(path).parent()?;
    Some(if parent.as_os_str().is_empty() {
        std::path::PathBuf::from(".")
    } else {
        parent.to_path_buf()
    })
}

#[cfg(test)]
mod free_space_tests {
    use super::database_dir;
    use std::path::PathBuf;

    #[test]
    fn the_database_dir_is_the_files_parent() {
        assert_eq!(
            database_dir("/var/lib/h/gw.db"),
            Some(PathBuf::from("/var/lib/h"))
        );
        assert_eq!(database_dir("gw.db"), Some(PathBuf::from(".")));
        assert_eq!(database_dir(":memory:"), None);
        assert_eq!(database_dir("file:x?mode=memory"), None);
    }
}

#[cfg(test)]
mod handle_tests {
    use super::*;

    /// Ingress takes its event back for the route loop without a copy only if the store let go
    /// of its handle before answering, in a group commit or alone.
    #[tokio::test]
    async fn an_inserted_event_is_released_before_the_answer() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("gw.db");
        let store = SqliteStore::open(&path.to_string_lossy(), Sync::Full).expect("open");
        let events: Vec<Arc<StoredEvent>> = (0..8)
            .map(|i| Arc::new(StoredEvent::blank(&format!("e{i}"), 10)))
            .collect();
        let inserts = events.iter().map(|e| store.insert_event(e.clone()));
        for done in futures_util::future::join_all(inserts).await {
            done.expect("stored");
        }
        let alone = Arc::new(StoredEvent::blank("alone", 10));
        store.insert_event(alone.clone()).await.expect("stored");
        for e in events.iter().chain([&alone]) {
            assert_eq!(Arc::strong_count(e), 1, "{}", e.id);
        }
    }
}
