//! The store: the durable hand-off between every stage of the pipeline.
//!
//! Ingress writes events; the pipeline reads unrouted events and writes their deliveries in the
//! same transaction that marks them routed; the delivery worker claims due deliveries under a lease
//! and records each attempt. Because every hand-off goes through a commit, a stage that dies (or a
//! request handler that is cancelled) can delay work but never lose it.
//!
//! [`Store`] is the seam between the gateway and its backends: [`sqlite`] (one process owns one
//! file) and [`postgres`] (several instances share one database, taking work under leases).
//! A store never interprets bodies or calls out over the network.

mod commits;
pub(crate) use commits::{BOUNDS as COMMIT_BOUNDS, CommitStats, CommitTimes};
mod filter;
mod linger;
pub(crate) use filter::Scope;
mod data;
pub(crate) mod postgres;
pub(crate) mod retention;
pub(crate) mod sqlite;
mod views;

pub use data::*;
pub(crate) use views::*;

use bytes::Bytes;
use std::sync::Arc;
use tokio::sync::Notify;

/// A store failure. Ingress answers 503 to it, so producers retry.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum StoreError {
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("store query failed: {0}")]
    Query(String),
    #[error("not found")]
    NotFound,
}

/// The events `store` lists (of `event_type`, when given), newest first, as (id, type, routed): what
/// a migration must keep of the events an older version stored.
#[cfg(test)]
pub(crate) async fn listed(
    store: &dyn DeliveryLog,
    event_type: Option<&str>,
) -> Vec<(String, Option<String>, bool)> {
    let query = EventQuery {
        event_type: event_type.map(str::to_string),
        limit: 10,
        ..EventQuery::default()
    };
    let events = store.list_events(query).await.unwrap();
    events
        .into_iter()
        .map(|e| (e.id, e.event_type, e.routed))
        .collect()
}

/// Rows as [`listed`] gives them, from literals.
#[cfg(test)]
pub(crate) fn listing(rows: &[(&str, Option<&str>, bool)]) -> Vec<(String, Option<String>, bool)> {
    rows.iter()
        .map(|(id, t, routed)| (id.to_string(), t.map(str::to_string), *routed))
        .collect()
}

/// Wake-ups a store gives after commits, so stages need not poll in a tight loop.
#[derive(Debug, Clone, Default)]
pub(crate) struct Signals {
    /// New events are committed and await routing.
    pub(crate) events: Arc<Notify>,
    /// New or re-scheduled deliveries are committed.
    pub(crate) deliveries: Arc<Notify>,
    /// Another instance sharing the store changed what instances share: a plugin, a reload, a
    /// target switched off or on (see [`crate::cluster`]).
    pub(crate) cluster: Arc<Notify>,
}

/// What the stages need of the store: events in, routings recorded, deliveries claimed and their
/// attempts recorded, and the signals that wake the next stage.
#[async_trait::async_trait]
pub(crate) trait Queue: Send + Sync + 'static {
    /// Commits an event. Returns only once it is durable. On a shared store the event is leased
    /// to this instance for routing (ingress hands it to the route loop in memory).
    async fn insert_event(&self, event: Arc<StoredEvent>) -> Result<(), StoreError>;
    /// The oldest events whose routing is not yet recorded (on a shared store: that no other
    /// live instance holds; this instance's own are handed out again).
    async fn unrouted_events(&self, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
        let events = self.unrouted_in(Span::ALL, limit).await?;
        Ok(events.into_iter().map(|(_, e)| e).collect())
    }
    /// [`Queue::unrouted_events`] within `span`, each with its `seq`, oldest first: a page of
    /// what was committed before a moment ([`Queue::last_seq`]), the next page after the last
    /// `seq` returned.
    async fn unrouted_in(
        &self,
        span: Span,
        limit: usize,
    ) -> Result<Vec<(i64, StoredEvent)>, StoreError>;
    /// The highest `seq` of the events committed so far (0 if none): every event committed
    /// later has a higher one on SQLite; on PostgreSQL a lower `seq` may still commit later
    /// (sequence values are taken before the commit), which only an event still being inserted
    /// can do.
    async fn last_seq(&self) -> Result<i64, StoreError>;
    /// The oldest unrouted events no live instance holds, this one included: on a shared store,
    /// what instances that died or gave up left. A store without routing leases holds none, so
    /// this is every unrouted event.
    async fn unheld_events(&self, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
        self.unrouted_events(limit).await
    }
    /// Records routing outcomes and deliveries (those with an attempt in
    /// [`RoutingBatch::attempts`] in the state it left them, with it), and marks the events
    /// routed, atomically.
    /// Fenced on the events: a routing is taken whole while its event is unrouted, and once it is
    /// routed only for routes still `waiting` for their plugin, so an event routed twice (handed
    /// over in memory and found by a scan, say) never gets its deliveries twice. Returns the ids
    /// of the leased deliveries (see [`RoutingBatch::leases`]) it wrote: only those may be
    /// handed over. Shared, not owned: a caller retrying after `Unavailable` hands the same batch
    /// again.
    async fn record_routing(
        &self,
        batch: Arc<RoutingBatch>,
        now: i64,
    ) -> Result<Vec<String>, StoreError>;
    /// Ends this process's leases on deliveries it held in memory but will not attempt (their
    /// target was disabled or its breaker opened meanwhile), so a claim can take them at once.
    async fn release_leases(&self, ids: Vec<String>) -> Result<(), StoreError>;
    /// Leases up to `limit` pending deliveries of `target` that are due at `now`.
    async fn claim_due(
        &self,
        target: &str,
        now: i64,
        limit: usize,
        lease_ms: i64,
    ) -> Result<Vec<DueDelivery>, StoreError>;
    /// When the earliest pending, unleased delivery of one of `targets` falls due, if any.
    async fn next_due_at(&self, now: i64, targets: Vec<String>) -> Result<Option<i64>, StoreError>;
    /// How long an event stays leased for routing to the instance that stored it (Unix ms from
    /// its receipt), so that no other instance routes it meanwhile; `None` for a store one
    /// process owns. A routing recorded after its deliveries' first attempts must land within it.
    fn routing_lease_ms(&self) -> Option<i64> {
        None
    }
    /// Events stored and not yet routed (ingress's backpressure reads it every second).
    async fn unrouted_count(&self) -> Result<u64, StoreError>;
    /// Records an attempt and the delivery's new state, releasing its lease.
    async fn record_attempt(&self, attempt: Attempt) -> Result<(), StoreError>;
    /// Routes waiting for their plugin among `routes`, with their events, oldest first.
    async fn waiting_routes(
        &self,
        routes: Vec<String>,
        limit: usize,
    ) -> Result<Vec<WaitingRoute>, StoreError>;
    /// Succeeds when the store can serve requests and take writes (SQLite: its filesystem has at
    /// least [`sqlite::MIN_FREE_BYTES`] free). `/readyz` answers with it.
    async fn ping(&self) -> Result<(), StoreError>;
    /// Wake-ups after commits.
    fn signals(&self) -> Signals;
}

/// What operators see and change through admin and `/metrics`: events, deliveries and attempts,
/// retries and replays, queue depth, and retention's pruning.
#[async_trait::async_trait]
pub(crate) trait DeliveryLog: Send + Sync + 'static {
    /// Work waiting: unrouted events, pending deliveries per target (for `/metrics`).
    async fn queue_depth(&self) -> Result<QueueDepth, StoreError>;
    /// How long this process's group commits have taken (for `/metrics`).
    fn commit_stats(&self) -> CommitStats;
    /// Deliveries matching `query`, newest first.
    async fn list_deliveries(&self, query: DeliveryQuery) -> Result<Vec<DeliveryView>, StoreError>;
    /// One delivery with every attempt, oldest first.
    async fn get_delivery(&self, id: &str) -> Result<(DeliveryView, Vec<AttemptView>), StoreError>;
    /// Makes a delivery due again at `now`, unless it is pending already or failed in routing.
    async fn retry_delivery(&self, id: &str, now: i64) -> Result<Retry, StoreError>;
    /// Makes up to `query.limit` retryable deliveries matching `query` (see
    /// [`DeliveryQuery::status`]; the cursor is ignored) due at `now`, oldest first; returns how
    /// many.
    async fn retry_deliveries(&self, query: DeliveryQuery, now: i64) -> Result<usize, StoreError>;
    /// How many deliveries match `query` in `scope` (the cursor and limit are ignored); with
    /// [`Scope::Retryable`], how many a bulk retry would take. Changes nothing.
    async fn count_deliveries(
        &self,
        query: DeliveryQuery,
        scope: Scope,
    ) -> Result<usize, StoreError>;
    /// Events matching `query`, newest first.
    async fn list_events(&self, query: EventQuery) -> Result<Vec<EventSummary>, StoreError>;
    async fn get_event(&self, id: &str) -> Result<EventView, StoreError>;
    /// Marks an event unrouted, so the pipeline runs it through the current config again.
    async fn replay_event(&self, id: &str) -> Result<(), StoreError>;
    /// Deletes up to `batch` finished deliveries (with their attempts) and events older than
    /// `before` (Unix ms); pending work is never pruned. Returns how many rows went.
    async fn prune(&self, before: i64, batch: usize) -> Result<usize, StoreError>;
}

/// What instances sharing one store keep in step (src/cluster.rs), and disabled targets. A store
/// that one process owns (SQLite) shares nothing but its disabled targets: the defaults say so.
#[async_trait::async_trait]
pub(crate) trait Shared: Send + Sync + 'static {
    /// Targets disabled, with why.
    async fn disabled_targets(&self) -> Result<Vec<(String, String)>, StoreError>;
    /// Disables a target (`Some(reason)`) or enables it (`None`).
    async fn set_target_disabled(
        &self,
        target: &str,
        reason: Option<&str>,
    ) -> Result<(), StoreError>;
    /// Whether other gateway instances may share this store.
    fn is_shared(&self) -> bool {
        false
    }
    /// The instances sharing the store, alive now (none for a store one process owns).
    async fn instances(&self) -> Result<Vec<Instance>, StoreError> {
        Ok(Vec::new())
    }
    /// The plugins shared between instances, deleted ones included.
    async fn shared_plugins(&self) -> Result<Vec<SharedPlugin>, StoreError> {
        Ok(Vec::new())
    }
    /// The bytes of a shared plugin (`None`: not shared, or deleted).
    async fn shared_plugin_bytes(&self, _name: &str) -> Result<Option<Bytes>, StoreError> {
        Ok(None)
    }
    /// Shares an installed plugin (`Some((bytes, sha256))`) or its deletion (`None`).
    async fn share_plugin(
        &self,
        _name: &str,
        _upload: Option<(Bytes, String)>,
    ) -> Result<(), StoreError> {
        Ok(())
    }
    /// Records a config reload, so every other instance re-reads its config file too.
    async fn share_reload(&self) -> Result<(), StoreError> {
        Ok(())
    }
    /// The newest reload shared by another instance (each compares it with what it applied).
    async fn reload_generation(&self) -> Result<i64, StoreError> {
        Ok(0)
    }
}

/// A durable store backend: all three faces, as the server opens it. Each user names the face it
/// needs (`Queue`, `DeliveryLog`, `Shared`) in its imports.
pub(crate) trait Store: Queue + DeliveryLog + Shared {}

impl<T: Queue + DeliveryLog + Shared> Store for T {}

/// Opens the store a `store.url` names, migrating it first. `sync` applies to SQLite only.
pub(crate) async fn open(url: &str, sync: sqlite::Sync) -> Result<Arc<dyn Store>, StoreError> {
    match Backend::of(url) {
        Some(Backend::Sqlite(path)) => Ok(Arc::new(sqlite::SqliteStore::open(path, sync)?)),
        Some(Backend::Postgres) => Ok(Arc::new(postgres::PostgresStore::open(url).await?)),
        None => Err(StoreError::Unavailable(format!(
            "unsupported store url scheme in `{url}` (expected sqlite://PATH or postgres://...)"
        ))),
    }
}

/// The backend a `store.url` selects.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Backend<'a> {
    /// `sqlite://PATH`, with the path.
    Sqlite(&'a str),
    /// `postgres://...` or `postgresql://...` (a libpq-style URL).
    Postgres,
}

impl<'a> Backend<'a> {
    pub(crate) fn of(url: &'a str) -> Option<Self> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            Some(Self::Sqlite(path))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Self::Postgres)
        } else {
            None
        }
    }
}

/// Encodes header pairs for storage.
pub(crate) fn pairs_to_json(pairs: &[(String, String)]) -> String {
    serde_json::to_string(pairs).unwrap_or_else(|_| "[]".into())
}

pub(crate) fn pairs_from_json(text: &str) -> Vec<(String, String)> {
    serde_json::from_str(text).unwrap_or_default()
}
