//! Group commit for the PostgreSQL store: writes that arrive while others are committing go out
//! together, in one statement or transaction, so a burst of ingress requests (or of finished
//! attempts) costs a few commits rather than one each. A small batch first waits up to a
//! millisecond for more (`store/linger.rs`), so moderate rates share commits too.
//!
//! Each caller still gets its own answer only after the commit that holds its write. A batch the
//! server refuses is retried one write at a time, so one bad write fails alone; a batch that fails
//! because the database is away fails whole (callers retry, ingress answers 503).

use super::{StoreError, get, queries, store_err};
use crate::store::linger::Linger;
use crate::store::{Attempt, CommitTimes, StoredEvent};
use deadpool_postgres::Pool;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Most writes in one batch.
const MAX_BATCH: usize = 512;

type Write<T> = Arc<
    dyn Fn(Pool, Arc<[T]>) -> Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send>>
        + Send
        + Sync,
>;

struct Job<T> {
    item: T,
    done: oneshot::Sender<Result<(), StoreError>>,
}

/// The store's group commits, one queue per kind of write.
pub(super) struct Writers {
    /// Ingress's events, each with its place in the routing queue, leased to this instance.
    pub(super) events: Batcher<Arc<StoredEvent>>,
    /// Finished attempts of deliveries already recorded.
    pub(super) attempts: Batcher<Attempt>,
}

impl Writers {
    /// Starts both batchers; `owner` (this instance) holds the leases they write, events' for
    /// `route_lease_ms`.
    pub(super) fn spawn(
        pool: &Pool,
        commits: &Arc<CommitTimes>,
        owner: &str,
        route_lease_ms: i64,
    ) -> Self {
        let o = owner.to_string();
        let events = Batcher::spawn(
            pool.clone(),
            commits.clone(),
            move |pool, events: Arc<[Arc<StoredEvent>]>| {
                let owner = o.clone();
                async move {
                    let c = get(&pool).await?;
                    queries::insert_events(&c, &owner, route_lease_ms, &events)
                        .await
                        .map_err(store_err)?;
                    Ok(())
                }
            },
        );
        let o = owner.to_string();
        let attempts = Batcher::spawn(
            pool.clone(),
            commits.clone(),
            move |pool, attempts: Arc<[Attempt]>| {
                let owner = o.clone();
                async move {
                    let mut c = get(&pool).await?;
                    let tx = c.transaction().await.map_err(store_err)?;
                    queries::record_attempts(&tx, &owner, &attempts)
                        .await
                        .map_err(store_err)?;
                    tx.commit().await.map_err(store_err)
                }
            },
        );
        Self { events, attempts }
    }
}

/// A queue of writes of one kind and the task that commits them in batches.
pub(super) struct Batcher<T> {
    queue: mpsc::UnboundedSender<Job<T>>,
    task: tokio::task::JoinHandle<()>,
}

impl<T> Drop for Batcher<T> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl<T: Clone + Send + Sync + 'static> Batcher<T> {
    /// Starts the task; `write` commits one batch, and each commit's time goes to `commits`.
    pub(super) fn spawn<F, Fut>(pool: Pool, commits: Arc<CommitTimes>, write: F) -> Self
    where
        F: Fn(Pool, Arc<[T]>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), StoreError>> + Send + 'static,
    {
        let write: Write<T> = Arc::new(move |pool, items| Box::pin(write(pool, items)));
        let (queue, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(pool, write, commits, rx));
        Self { queue, task }
    }

    /// Queues `item` and waits for the commit that holds it.
    pub(super) async fn submit(&self, item: T) -> Result<(), StoreError> {
        let (done, answer) = oneshot::channel();
        self.queue
            .send(Job { item, done })
            .map_err(|_| StoreError::Unavailable("postgres writer stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("postgres writer stopped".into()))?
    }
}

async fn run<T: Clone + Send + Sync + 'static>(
    pool: Pool,
    write: Write<T>,
    commits: Arc<CommitTimes>,
    mut rx: mpsc::UnboundedReceiver<Job<T>>,
) {
    // One batch commits at a time; whatever queues meanwhile goes in the next. Each statement has
    // a fixed cost on the server, so larger batches cost less per event (a quarter to a third less
    // at 100 events than at 20: benches/postgres/replay.py). In the load bench's closed loop, four
    // batches in flight made smaller ones: the server spent 181–287 µs of CPU per event against
    // 127–226 with one, and the gateway's async runtime 78–89 µs against 63–70.
    let mut linger = Linger::default();
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        if linger.wait(jobs.len()) {
            let before = jobs.len();
            gather(&mut rx, &mut jobs).await;
            linger.gathered(jobs.len() - before);
        }
        let (pool, write, commits) = (pool.clone(), write.clone(), commits.clone());
        // A task of its own, so that a commit under way still finishes and answers its callers
        // when the batcher is dropped (which aborts this loop).
        let committing = tokio::spawn(async move { commit(&pool, &write, &commits, jobs).await });
        if let Err(e) = committing.await {
            // Its callers see their answer dropped ("postgres writer stopped").
            tracing::error!(error = %e, "postgres batch commit panicked");
        }
    }
}

/// Adds what arrives within [`Linger::WAIT`] to `jobs`, until it has [`Linger::ENOUGH`].
async fn gather<T>(rx: &mut mpsc::UnboundedReceiver<Job<T>>, jobs: &mut Vec<Job<T>>) {
    let until = tokio::time::Instant::now() + Linger::WAIT;
    while jobs.len() < Linger::ENOUGH {
        match tokio::time::timeout_at(until, rx.recv()).await {
            Ok(Some(job)) => jobs.push(job),
            // Timed out, or the batcher is going: commit what there is.
            Ok(None) | Err(_) => break,
        }
    }
}

async fn commit<T: Clone>(pool: &Pool, write: &Write<T>, commits: &CommitTimes, jobs: Vec<Job<T>>) {
    let (items, dones): (Vec<T>, Vec<_>) = jobs.into_iter().map(|j| (j.item, j.done)).unzip();
    let items: Arc<[T]> = items.into();
    let began = std::time::Instant::now();
    let written = write(pool.clone(), items.clone()).await;
    commits.observe(began.elapsed());
    match written {
        Ok(()) => {
            // Before the answers: a caller may take back sole ownership of what it wrote.
            drop(items);
            for done in dones {
                let _ = done.send(Ok(()));
            }
        }
        Err(e @ StoreError::Query(_)) if items.len() > 1 => {
            tracing::debug!(error = %e, n = items.len(), "batch refused; writing one at a time");
            for (item, done) in items.iter().zip(dones) {
                let _ = done.send(write(pool.clone(), Arc::from([item.clone()])).await);
            }
        }
        Err(e) => {
            for done in dones {
                let _ = done.send(Err(e.clone()));
            }
        }
    }
}
