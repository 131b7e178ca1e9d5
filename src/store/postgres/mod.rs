//! The PostgreSQL store: the same [`Store`] as SQLite, for several gateway instances sharing one
//! database.
//!
//! Owns the connection pool, transactions, the mapping of driver errors to [`StoreError`], and the
//! LISTEN connection that turns other instances' commits into local [`Signals`]. Each instance beats in the `instances` table every couple of seconds;
//! a lease is honoured only while its holder is alive and its end has not passed, so the work of
//! an instance that was killed returns to the others within seconds. SQL lives in `queries/` (split as the
//! store's traits are); the LISTEN connection, heartbeats and coalesced NOTIFYs in `listen.rs`; the
//! migrations (`migrations/postgres/`) in `migrate.rs`; group commit in `batch.rs`.
//!
//! Unlike SQLite, opening does not clear leases: other live instances may hold them.
//! TLS to the database is `connect.rs`.

mod batch;
mod connect;
mod listen;
mod migrate;
mod queries;
#[cfg(test)]
mod tests;

use listen::{Wakeups, listen, notify};
#[cfg(test)]
use migrate::MIGRATIONS;
use migrate::migrate;

use super::*;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use std::time::Duration;
use tokio_postgres::NoTls;

/// How long an instance routes an event before others may take it. Routing a batch is bounded by
/// the jq and plugin time limits, far below this; an instance that dies frees its events by then.
const ROUTE_LEASE_MS: i64 = 60_000;

/// Connections per instance: the stages, the admin API and ingress share them.
const POOL_SIZE: usize = 16;

/// How often an instance beats; a holder is dead after `queries::DEAD_AFTER_MS` without one.
const BEAT_EVERY: Duration = Duration::from_secs(2);

/// The PostgreSQL backend. Cheap to share: it holds a pool and the signals.
pub(crate) struct PostgresStore {
    pool: Pool,
    signals: Signals,
    /// Names this instance as the holder of its leases, in `instances`.
    instance: String,
    listener: tokio::task::JoinHandle<()>,
    wakeups: Arc<Wakeups>,
    notifier: tokio::task::JoinHandle<()>,
    /// Group commit for ingress and for finished attempts.
    writers: batch::Writers,
    commits: Arc<CommitTimes>,
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        self.listener.abort();
        self.notifier.abort();
        // A graceful stop frees this instance's leases at once; a crash frees them after
        // DEAD_AFTER_MS. Best effort: there may be no runtime left to run it on.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (pool, id) = (self.pool.clone(), self.instance.clone());
            runtime.spawn(async move {
                if let Ok(c) = get(&pool).await {
                    let _ = queries::leave(&c, &id).await;
                }
            });
        }
    }
}

impl PostgresStore {
    /// Connects to `url` (`postgres://` or `postgresql://`), migrates and starts listening for
    /// other instances' commits.
    pub(crate) async fn open(url: &str) -> Result<Self, StoreError> {
        let connect::Target { config, tls } = connect::target(url)?;
        let manager_config = || ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match &tls {
            Some(tls) => Manager::from_config(config.clone(), tls.clone(), manager_config()),
            None => Manager::from_config(config.clone(), NoTls, manager_config()),
        };
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(10)))
            .create_timeout(Some(Duration::from_secs(10)))
            .build()
            .map_err(|e| StoreError::Unavailable(format!("postgres pool: {e}")))?;
        let mut client = get(&pool).await?;
        migrate(&mut client).await.map_err(store_err)?;
        // Beat before taking any lease, or another instance would see its holder dead.
        let instance = ulid::Ulid::new().to_string();
        queries::beat(&client, &instance).await.map_err(store_err)?;
        warn_on_skew(&client).await;
        drop(client);
        warm_up(&pool).await;
        let signals = Signals::default();
        let listener = tokio::spawn(listen(config, tls, signals.clone(), instance.clone()));
        let wakeups = Arc::new(Wakeups::default());
        let notifier = tokio::spawn(notify(pool.clone(), wakeups.clone()));
        let commits = Arc::new(CommitTimes::default());
        let writers = batch::Writers::spawn(&pool, &commits, &instance, ROUTE_LEASE_MS);
        Ok(Self {
            pool,
            signals,
            instance,
            listener,
            wakeups,
            notifier,
            writers,
            commits,
        })
    }

    /// This instance's id, as it appears in `instances` and as the holder of its leases.
    #[cfg(test)]
    pub(crate) fn instance(&self) -> &str {
        &self.instance
    }

    /// Stops this instance's heartbeat (the listener carries it) without a goodbye, as a kill -9
    /// would; its pool still works.
    #[cfg(test)]
    pub(crate) async fn stop_beating(&self) {
        self.listener.abort();
        // A beat already sent lands within this.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    /// The instances beating now (this one included), oldest first.
    #[cfg(test)]
    pub(crate) async fn live_instances(&self) -> Result<Vec<String>, StoreError> {
        let c = self.client().await?;
        queries::live_instances(&c).await.map_err(store_err)
    }

    async fn client(&self) -> Result<Object, StoreError> {
        get(&self.pool).await
    }
}

/// Opens every connection of the pool before the store is used: opened one by one as the load
/// asks for them, they held up the first half-second of a gateway started under load (a p50 of
/// 101 ms and p99 191 ms in the load bench's first quarter-second at 5,300 events/s, against 3.5
/// and 15 ms warmed; BENCHMARKS.md). Best effort: a server refusing more connections now refuses
/// them later too, and the pool then works with those it has.
async fn warm_up(pool: &Pool) {
    let opened = futures_util::future::join_all((0..POOL_SIZE).map(|_| get(pool))).await;
    let failed = opened.iter().filter(|c| c.is_err()).count();
    if failed > 0 {
        tracing::debug!(
            failed,
            of = POOL_SIZE,
            "postgres: could not open every connection of the pool at start"
        );
    }
}

async fn get(pool: &Pool) -> Result<Object, StoreError> {
    pool.get()
        .await
        .map_err(|e| StoreError::Unavailable(format!("postgres: {}", with_causes(&e))))
}

/// An error and its causes, one after another: the driver's own message for a failed handshake
/// or connect ("error performing TLS handshake") names no cause; its source does.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let next = c.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        cause = c.source();
    }
    text
}

/// Due times and lease ends come from each instance's own clock (liveness from the database's):
/// instances whose clocks disagree by seconds take each other's leases early or run retries late.
/// Say so at start rather than let it show as stray duplicates.
async fn warn_on_skew(client: &tokio_postgres::Client) {
    let Ok(db_now) = queries::db_now(client).await else {
        return;
    };
    let skew_ms = crate::now_ms() - db_now;
    if skew_ms.abs() > SKEW_WARN_MS {
        tracing::warn!(
            skew_ms,
            "this machine's clock and the database's disagree; keep instances' clocks in sync (NTP) \
             or leases and retry times drift between instances"
        );
    }
}

/// Clock disagreement worth a warning at start.
const SKEW_WARN_MS: i64 = 2_000;

/// Trouble that passes (the connection, the server, the pool, a lock or a statement timing out,
/// a serialisation conflict) is `Unavailable`, so callers retry; anything the server rejected for
/// what was asked is `Query`.
fn store_err(e: tokio_postgres::Error) -> StoreError {
    match e.as_db_error() {
        // 08: connection exception, 53: insufficient resources, 57: operator intervention
        // (shutdown, statement timeout), 40: serialisation failure or deadlock, 55P03: lock
        // timeout.
        Some(db)
            if ["08", "53", "57", "40", "55P03"]
                .iter()
                .any(|c| db.code().code().starts_with(c)) =>
        {
            StoreError::Unavailable(db.to_string())
        }
        Some(db) => StoreError::Query(db.to_string()),
        // The connection is gone or its I/O failed: the server may come back.
        None if e.is_closed() || io_caused(&e) => StoreError::Unavailable(with_causes(&e)),
        // Anything else (a value that does not convert, a protocol surprise) is a fault of ours
        // that retrying cannot cure: say so rather than pass it off as an outage.
        None => StoreError::Query(with_causes(&e)),
    }
}

/// Whether an I/O error is among `e`'s causes.
fn io_caused(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if c.is::<std::io::Error>() {
            return true;
        }
        cause = c.source();
    }
    false
}

/// Runs `$body` (a future using `$tx`) in a transaction and commits it.
macro_rules! in_tx {
    ($self:ident, |$tx:ident| $body:expr) => {{
        let mut client = $self.client().await?;
        let $tx = deadpool_postgres::ClientWrapper::transaction(&mut client)
            .await
            .map_err(store_err)?;
        let out = $body.await.map_err(store_err)?;
        $tx.commit().await.map_err(store_err)?;
        out
    }};
}

#[async_trait::async_trait]
impl Queue for PostgresStore {
    async fn insert_event(&self, event: Arc<StoredEvent>) -> Result<(), StoreError> {
        // No wake-up: ingress hands the event to this instance's route loop in memory, and the
        // others leave it alone while this instance holds its lease.
        self.writers.events.submit(event).await
    }
    async fn unrouted_in(
        &self,
        span: Span,
        limit: usize,
    ) -> Result<Vec<(i64, StoredEvent)>, StoreError> {
        let c = self.client().await?;
        queries::unrouted(&c, &self.instance, span, limit, ROUTE_LEASE_MS, true)
            .await
            .map_err(store_err)
    }
    async fn unheld_events(&self, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
        let c = self.client().await?;
        let events = queries::unrouted(&c, &self.instance, Span::ALL, limit, ROUTE_LEASE_MS, false)
            .await
            .map_err(store_err)?;
        Ok(events.into_iter().map(|(_, e)| e).collect())
    }
    async fn last_seq(&self) -> Result<i64, StoreError> {
        let c = self.client().await?;
        queries::last_seq(&c).await.map_err(store_err)
    }
    async fn record_routing(
        &self,
        batch: Arc<RoutingBatch>,
        now: i64,
    ) -> Result<Vec<String>, StoreError> {
        let recorded = in_tx!(self, |tx| queries::record_routing(
            &tx,
            &self.instance,
            &batch,
            now
        ));
        if recorded.claimable {
            self.signals.deliveries.notify_one();
            self.wakeups.deliveries();
        }
        Ok(recorded.leased)
    }
    async fn release_leases(&self, ids: Vec<String>) -> Result<(), StoreError> {
        let c = self.client().await?;
        queries::release_leases(&c, &self.instance, &ids)
            .await
            .map_err(store_err)?;
        self.signals.deliveries.notify_one();
        self.wakeups.deliveries();
        Ok(())
    }
    async fn claim_due(
        &self,
        target: &str,
        now: i64,
        limit: usize,
        lease_ms: i64,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        let c = self.client().await?;
        queries::claim(&c, &self.instance, target, now, limit, lease_ms)
            .await
            .map_err(store_err)
    }
    async fn next_due_at(&self, now: i64, targets: Vec<String>) -> Result<Option<i64>, StoreError> {
        let c = self.client().await?;
        queries::next_due(&c, now, &targets)
            .await
            .map_err(store_err)
    }
    fn routing_lease_ms(&self) -> Option<i64> {
        Some(ROUTE_LEASE_MS)
    }
    async fn unrouted_count(&self) -> Result<u64, StoreError> {
        let c = self.client().await?;
        queries::unrouted_count(&c).await.map_err(store_err)
    }
    async fn record_attempt(&self, attempt: Attempt) -> Result<(), StoreError> {
        let retry = matches!(attempt.after, AfterAttempt::RetryAt(_));
        self.writers.attempts.submit(attempt).await?;
        if retry {
            self.signals.deliveries.notify_one();
            self.wakeups.deliveries();
        }
        Ok(())
    }
    async fn waiting_routes(
        &self,
        routes: Vec<String>,
        limit: usize,
    ) -> Result<Vec<WaitingRoute>, StoreError> {
        let c = self.client().await?;
        queries::waiting_routes(&c, &routes, limit)
            .await
            .map_err(store_err)
    }
    async fn ping(&self) -> Result<(), StoreError> {
        let c = self.client().await?;
        c.execute("SELECT 1", &[]).await.map_err(store_err)?;
        Ok(())
    }
    fn signals(&self) -> Signals {
        self.signals.clone()
    }
}

#[async_trait::async_trait]
impl DeliveryLog for PostgresStore {
    async fn queue_depth(&self) -> Result<QueueDepth, StoreError> {
        let c = self.client().await?;
        queries::queue_depth(&c).await.map_err(store_err)
    }
    fn commit_stats(&self) -> CommitStats {
        self.commits.stats()
    }
    async fn list_deliveries(&self, query: DeliveryQuery) -> Result<Vec<DeliveryView>, StoreError> {
        let c = self.client().await?;
        queries::list_deliveries(&c, &query)
            .await
            .map_err(store_err)
    }
    async fn get_delivery(&self, id: &str) -> Result<(DeliveryView, Vec<AttemptView>), StoreError> {
        let c = self.client().await?;
        queries::get_delivery(&c, id)
            .await
            .map_err(store_err)?
            .ok_or(StoreError::NotFound)
    }
    async fn retry_delivery(&self, id: &str, now: i64) -> Result<Retry, StoreError> {
        let outcome = in_tx!(self, |tx| queries::retry_delivery(&tx, id, now));
        let outcome = outcome.ok_or(StoreError::NotFound)?;
        if outcome == Retry::Queued {
            self.signals.deliveries.notify_one();
            self.wakeups.deliveries();
        }
        Ok(outcome)
    }
    async fn retry_deliveries(&self, query: DeliveryQuery, now: i64) -> Result<usize, StoreError> {
        let n = in_tx!(self, |tx| queries::retry_deliveries(&tx, &query, now));
        self.signals.deliveries.notify_one();
        if n > 0 {
            self.wakeups.deliveries();
        }
        Ok(n as usize)
    }
    async fn count_deliveries(
        &self,
        query: DeliveryQuery,
        scope: Scope,
    ) -> Result<usize, StoreError> {
        let c = self.client().await?;
        let n = queries::count_deliveries(&c, &query, scope)
            .await
            .map_err(store_err)?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }
    async fn list_events(&self, query: EventQuery) -> Result<Vec<EventSummary>, StoreError> {
        let c = self.client().await?;
        queries::list_events(&c, &query).await.map_err(store_err)
    }
    async fn get_event(&self, id: &str) -> Result<EventView, StoreError> {
        let c = self.client().await?;
        queries::get_event(&c, id)
            .await
            .map_err(store_err)?
            .ok_or(StoreError::NotFound)
    }
    async fn replay_event(&self, id: &str) -> Result<(), StoreError> {
        let c = self.client().await?;
        if !queries::replay_event(&c, id).await.map_err(store_err)? {
            return Err(StoreError::NotFound);
        }
        self.signals.events.notify_one();
        self.wakeups.events();
        Ok(())
    }
    async fn prune(&self, before: i64, batch: usize) -> Result<usize, StoreError> {
        let n = in_tx!(self, |tx| queries::prune(&tx, before, batch));
        Ok(n as usize)
    }
}

#[async_trait::async_trait]
impl Shared for PostgresStore {
    async fn disabled_targets(&self) -> Result<Vec<(String, String)>, StoreError> {
        let c = self.client().await?;
        queries::disabled_targets(&c).await.map_err(store_err)
    }
    async fn set_target_disabled(
        &self,
        target: &str,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        let c = self.client().await?;
        queries::set_target_disabled(&c, &self.instance, target, reason)
            .await
            .map_err(store_err)?;
        self.signals.deliveries.notify_one();
        self.wakeups.deliveries();
        Ok(())
    }
    fn is_shared(&self) -> bool {
        true
    }
    async fn instances(&self) -> Result<Vec<Instance>, StoreError> {
        let c = self.client().await?;
        let mut all = queries::instances(&c).await.map_err(store_err)?;
        for i in &mut all {
            i.this = i.id == self.instance;
        }
        Ok(all)
    }
    async fn shared_plugins(&self) -> Result<Vec<SharedPlugin>, StoreError> {
        let c = self.client().await?;
        queries::shared_plugins(&c).await.map_err(store_err)
    }
    async fn shared_plugin_bytes(&self, name: &str) -> Result<Option<Bytes>, StoreError> {
        let c = self.client().await?;
        queries::shared_plugin_bytes(&c, name)
            .await
            .map_err(store_err)
    }
    async fn share_plugin(
        &self,
        name: &str,
        upload: Option<(Bytes, String)>,
    ) -> Result<(), StoreError> {
        let c = self.client().await?;
        let upload = upload.as_ref().map(|(b, sha)| (&b[..], sha.as_str()));
        queries::share_plugin(&c, &self.instance, name, upload)
            .await
            .map_err(store_err)
    }
    async fn share_reload(&self) -> Result<(), StoreError> {
        let c = self.client().await?;
        queries::share_reload(&c, &self.instance)
            .await
            .map_err(store_err)
    }
    async fn reload_generation(&self) -> Result<i64, StoreError> {
        let c = self.client().await?;
        queries::reload_generation(&c, &self.instance)
            .await
            .map_err(store_err)
    }
}
