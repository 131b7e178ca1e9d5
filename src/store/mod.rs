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
pub(crate) mod postgres;
pub(crate) mod retention;
pub(crate) mod sqlite;
mod views;

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

/// An event as ingress accepted it.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub id: String,
    pub source: String,
    /// Unix milliseconds.
    pub received_at: i64,
    /// Lower-cased names, in the order received.
    pub headers: Vec<(String, String)>,
    pub query: Vec<(String, String)>,
    pub body: Bytes,
    /// How many times an operator replayed it (0 as ingress stores it): its deliveries' ids
    /// derive from it, so each replay gets new ones.
    pub replays: u32,
}

#[cfg(test)]
impl NewDelivery {
    /// A pending delivery `id` of route `r` to target `t`, for tests.
    pub(crate) fn pending(id: &str) -> Self {
        Self {
            id: id.into(),
            route: "r".into(),
            target: "t".into(),
            body: None,
            headers: Vec::new(),
            status: DeliveryStatus::Pending,
            error: None,
        }
    }
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

#[cfg(test)]
impl StoredEvent {
    /// An event of source `s` whose body is `size` blanks, for tests.
    pub(crate) fn blank(id: &str, size: usize) -> Self {
        Self {
            id: id.into(),
            source: "s".into(),
            received_at: 0,
            headers: Vec::new(),
            query: Vec::new(),
            body: vec![b' '; size].into(),
            replays: 0,
        }
    }
}

/// Status of a delivery, as the delivery log shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    Pending,
    Succeeded,
    /// Final without retries: a 4xx answer, or the route's transform failed.
    Failed,
    /// Every allowed attempt was used.
    Dead,
}

impl DeliveryStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Dead => "dead",
        }
    }
    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "succeeded" => Some(Self::Succeeded),
            "failed" => Some(Self::Failed),
            "dead" => Some(Self::Dead),
            _ => None,
        }
    }
}

/// A delivery the pipeline creates.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub(crate) id: String,
    pub(crate) route: String,
    pub(crate) target: String,
    /// `None`: the event's body, unchanged.
    pub(crate) body: Option<Bytes>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) status: DeliveryStatus,
    pub(crate) error: Option<String>,
}

/// What one route made of one event.
#[derive(Debug, Clone)]
pub struct RouteResult {
    pub(crate) route: String,
    /// `delivered`, `filtered` or `failed`.
    pub(crate) outcome: Outcome,
    pub(crate) detail: Option<String>,
    /// Time the route's filter and transform took (for `/metrics`; not stored).
    pub(crate) elapsed_us: u64,
}

/// What a route did with an event, as `route_results` records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Delivered,
    Filtered,
    Failed,
    /// The route's wasm plugin is not uploaded yet; the route runs when it is.
    Waiting,
}

impl Outcome {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Filtered => "filtered",
            Self::Failed => "failed",
            Self::Waiting => "waiting",
        }
    }
}

impl Routing {
    /// Nothing learned yet about `event`.
    pub(crate) fn new(event: &StoredEvent) -> Self {
        Self {
            event_id: event.id.clone(),
            replays: event.replays,
            event_type: None,
            results: Vec::new(),
            deliveries: Vec::new(),
            plugin_calls: Vec::new(),
        }
    }
}

/// Everything the route stage learned about one event, committed in one transaction.
#[derive(Debug, Clone)]
pub struct Routing {
    pub(crate) event_id: String,
    /// The event's [`StoredEvent::replays`], from which its deliveries' ids derive.
    pub(crate) replays: u32,
    pub(crate) event_type: Option<String>,
    pub(crate) results: Vec<RouteResult>,
    pub(crate) deliveries: Vec<NewDelivery>,
    /// Routes whose filter passed and whose wasm plugin is still to run (in the gateway process,
    /// after contained evaluation). Empty by the time the routing is recorded.
    pub(crate) plugin_calls: Vec<String>,
}

/// Routings to record in one transaction, and which of their deliveries the route loop hands
/// straight to the delivery worker in memory: those are written leased to this process until the
/// given time (Unix ms, scheduling clock), so that no claim, here or on another instance, takes
/// them meanwhile. The others are written claimable, unless an attempt of theirs comes along.
#[derive(Debug, Clone, Default)]
pub struct RoutingBatch {
    pub routings: Vec<Routing>,
    /// Delivery id → lease end.
    pub leases: std::collections::HashMap<String, i64>,
    /// First attempts made before their routing was recorded (the route loop handed the
    /// deliveries over unrecorded, `crate::deliver::unrecorded`): each such delivery is written
    /// in the state its attempt left it, beside the attempt. Attempts of deliveries the fence
    /// does not take are dropped (the routing that was taken sends its own).
    pub attempts: Vec<Attempt>,
}

impl RoutingBatch {
    /// Recorded after its deliveries' first attempts (the late path): their targets have them
    /// already, so no delivery waits on this commit.
    pub(crate) fn after_attempts(&self) -> bool {
        !self.attempts.is_empty()
    }
}

/// A route that waits for its plugin, with its event.
#[derive(Debug, Clone)]
pub(crate) struct WaitingRoute {
    pub(crate) event: StoredEvent,
    pub(crate) event_type: Option<String>,
    pub(crate) route: String,
}

/// A delivery claimed for an attempt.
#[derive(Debug, Clone)]
pub(crate) struct DueDelivery {
    pub(crate) id: String,
    pub(crate) event_id: String,
    pub(crate) event_type: Option<String>,
    pub(crate) body: Bytes,
    pub(crate) headers: Vec<(String, String)>,
    /// Attempts made before this one.
    pub(crate) attempts: u32,
    /// Unix ms when the delivery was created (routed).
    pub(crate) created_at: i64,
}

/// A stretch of the events' commit order (`seq`), for reading unrouted events in pages: those
/// after `after`, up to and including `upto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) after: i64,
    pub(crate) upto: i64,
}

impl Span {
    /// Every event.
    pub(crate) const ALL: Span = Span {
        after: i64::MIN,
        upto: i64::MAX,
    };

    /// Every event up to `upto`, from the first.
    pub(crate) fn upto(upto: i64) -> Span {
        Span {
            after: i64::MIN,
            upto,
        }
    }
}

/// Work waiting in the store.
#[derive(Debug, Clone, Default)]
pub(crate) struct QueueDepth {
    pub(crate) unrouted: u64,
    pub(crate) pending: Vec<(String, u64)>,
}

/// What the worker decided after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AfterAttempt {
    Succeeded,
    RetryAt(i64),
    Failed,
    Dead,
}

impl AfterAttempt {
    /// The delivery's status after the attempt, and when it is due again (while pending).
    pub(crate) fn state(self) -> (DeliveryStatus, Option<i64>) {
        match self {
            Self::Succeeded => (DeliveryStatus::Succeeded, None),
            Self::RetryAt(at) => (DeliveryStatus::Pending, Some(at)),
            Self::Failed => (DeliveryStatus::Failed, None),
            Self::Dead => (DeliveryStatus::Dead, None),
        }
    }
}

/// One attempt, as the delivery log keeps it.
#[derive(Debug, Clone)]
pub(crate) struct Attempt {
    pub(crate) delivery_id: String,
    pub(crate) attempt: u32,
    pub(crate) started_at: i64,
    pub(crate) duration_ms: i64,
    pub(crate) status_code: Option<u16>,
    pub(crate) error: Option<String>,
    pub(crate) response_headers: Vec<(String, String)>,
    pub(crate) response_body: Bytes,
    pub(crate) after: AfterAttempt,
    /// The scheduling clock when the attempt ended.
    pub(crate) finished_at: i64,
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

/// A gateway instance beating on a shared store.
#[derive(Debug, Clone)]
pub(crate) struct Instance {
    pub(crate) id: String,
    /// Unix ms, on the database's clock.
    pub(crate) started_at: i64,
    pub(crate) last_beat_ms_ago: i64,
    /// The instance answering.
    pub(crate) this: bool,
}

/// A plugin as a shared store holds it for every instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SharedPlugin {
    pub(crate) name: String,
    pub(crate) sha256: String,
    /// Deleted: instances unload it (kept so an instance that was away learns of the delete).
    pub(crate) deleted: bool,
}

/// What the stages need of the store: events in, routings recorded, deliveries claimed and their
/// attempts recorded, and the signals that wake the next stage.
#[async_trait::async_trait]
pub(crate) trait Queue: Send + Sync + 'static {
    /// Commits an event. Returns only once it is durable. On a shared store the event is leased
    /// to this instance for routing (ingress hands it to the route loop in memory).
    async fn insert_event(&self, event: StoredEvent) -> Result<(), StoreError>;
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
