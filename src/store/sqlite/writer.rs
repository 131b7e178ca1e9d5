//! The writer thread: the one owner of the SQLite connection. Every operation (reads included)
//! is queued to it as an [`Op`]; it runs all that is queued in one transaction, a savepoint per
//! operation, commits once, and only then answers each caller and signals the next stage.

use super::MAX_BATCH;
use super::log::*;
use super::queue::*;
use super::shared::*;
use crate::store::*;
use rusqlite::{Connection, Transaction, TransactionBehavior};
use std::sync::mpsc;
use tokio::sync::oneshot;

pub(super) type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

pub(super) enum Op {
    InsertEvent(StoredEvent, Reply<()>),
    Unrouted(usize, Reply<Vec<StoredEvent>>),
    RecordRouting(Arc<RoutingBatch>, i64, Reply<Vec<String>>),
    ReleaseLeases(Vec<String>, Reply<()>),
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
    RetryDelivery(String, i64, Reply<Retry>),
    RetryDeliveries(DeliveryQuery, i64, Reply<usize>),
    CountDeliveries(DeliveryQuery, Scope, Reply<usize>),
    GetEvent(String, Reply<EventView>),
    ListEvents(EventQuery, Reply<Vec<EventSummary>>),
    WaitingRoutes(Vec<String>, usize, Reply<Vec<WaitingRoute>>),
    ReplayEvent(String, Reply<()>),
    Prune(i64, usize, Reply<usize>),
    DisabledTargets(Reply<Vec<(String, String)>>),
    SetTargetDisabled(String, Option<String>, Reply<()>),
    Ping(Reply<()>),
}

/// A reply held back until the batch's commit.
pub(super) type Deferred = Box<dyn FnOnce(Option<&str>) + Send>;

pub(super) fn defer<T: Send + 'static>(reply: Reply<T>, result: Result<T, StoreError>) -> Deferred {
    Box::new(move |commit_error| {
        let result = match commit_error {
            Some(e) => Err(StoreError::Unavailable(format!("commit failed: {e}"))),
            None => result,
        };
        // The caller may have gone away (a cancelled request); its work is committed regardless.
        let _ = reply.send(result);
    })
}

pub(super) fn writer_loop(mut conn: Connection, rx: mpsc::Receiver<Op>, signals: Signals) {
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
                    // Ingress hands new events to the route loop in memory, and the route loop
                    // hands most deliveries to the worker the same way: the signals are for work
                    // only the store knows of.
                    match &op {
                        Op::ReplayEvent(..) => new_events = true,
                        Op::RecordRouting(batch, ..) if claimable(batch) => new_deliveries = true,
                        Op::RecordAttempt(a, _) if matches!(a.after, AfterAttempt::RetryAt(_)) => {
                            new_deliveries = true
                        }
                        Op::ReleaseLeases(..)
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

pub(super) fn run_op_failed(op: Op) -> Deferred {
    fn err<T>() -> Result<T, StoreError> {
        Err(StoreError::Unavailable(
            "could not begin transaction".into(),
        ))
    }
    match op {
        Op::RecordRouting(_, _, r) => defer(r, err()),
        Op::InsertEvent(_, r) | Op::ReleaseLeases(_, r) | Op::RecordAttempt(_, r) | Op::Ping(r) => {
            defer(r, err())
        }
        Op::Unrouted(_, r) => defer(r, err()),
        Op::Claim { reply, .. } => defer(reply, err()),
        Op::NextDue(_, _, r) => defer(r, err()),
        Op::QueueDepth(r) => defer(r, err()),
        Op::UnroutedCount(r) => defer(r, err()),
        Op::ListDeliveries(_, r) => defer(r, err()),
        Op::GetDelivery(_, r) => defer(r, err()),
        Op::RetryDelivery(_, _, r) => defer(r, err()),
        Op::RetryDeliveries(_, _, r) => defer(r, err()),
        Op::CountDeliveries(_, _, r) => defer(r, err()),
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
pub(super) fn run_op(tx: &Transaction<'_>, op: Op) -> Deferred {
    match op {
        // One statement: atomic on its own, so no savepoint.
        Op::InsertEvent(ev, r) => defer(r, direct(tx, |c| insert_event(c, &ev))),
        Op::Unrouted(limit, r) => defer(r, direct(tx, |c| unrouted(c, limit))),
        Op::RecordRouting(rs, now, r) => defer(r, savepoint(tx, |c| record_routing(c, &rs, now))),
        Op::ReleaseLeases(ids, r) => defer(r, savepoint(tx, |c| release_leases(c, &ids))),
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
        Op::NextDue(now, targets, r) => defer(r, direct(tx, |c| next_due(c, now, &targets))),
        Op::QueueDepth(r) => defer(r, direct(tx, queue_depth)),
        Op::UnroutedCount(r) => defer(r, direct(tx, unrouted_count)),
        Op::RecordAttempt(a, r) => defer(r, savepoint(tx, |c| record_attempt(c, &a))),
        Op::GetDelivery(id, r) => defer(r, get_delivery(tx, &id)),
        Op::RetryDelivery(id, now, r) => defer(r, retry_delivery(tx, &id, now)),
        Op::RetryDeliveries(q, now, r) => defer(r, savepoint(tx, |c| retry_deliveries(c, &q, now))),
        Op::CountDeliveries(q, scope, r) => {
            defer(r, direct(tx, |c| count_deliveries(c, &q, scope)))
        }
        Op::GetEvent(id, r) => defer(r, get_event(tx, &id)),
        Op::ListEvents(q, r) => defer(r, direct(tx, |c| list_events(c, &q))),
        Op::WaitingRoutes(routes, limit, r) => {
            defer(r, direct(tx, |c| waiting_routes(c, &routes, limit)))
        }
        Op::ReplayEvent(id, r) => defer(r, replay_event(tx, &id)),
        Op::Prune(before, batch, r) => defer(r, savepoint(tx, |c| prune(c, before, batch))),
        Op::DisabledTargets(r) => defer(r, direct(tx, disabled_targets)),
        Op::SetTargetDisabled(t, reason, r) => defer(
            r,
            savepoint(tx, |c| set_target_disabled(c, &t, reason.as_deref())),
        ),
        Op::ListDeliveries(query, r) => defer(r, direct(tx, |c| list_deliveries(c, &query))),
        Op::Ping(r) => defer(r, direct(tx, |c| c.query_row("SELECT 1", [], |_| Ok(())))),
    }
}

/// Runs an operation that needs no savepoint to undo: a read, or a single statement (atomic on
/// its own).
fn direct<T>(
    tx: &Transaction<'_>,
    f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
) -> Result<T, StoreError> {
    f(tx).map_err(|e| StoreError::Query(e.to_string()))
}

pub(super) fn savepoint<T>(
    tx: &Transaction<'_>,
    f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
) -> Result<T, StoreError> {
    let q = |e: rusqlite::Error| StoreError::Query(e.to_string());
    // Cached statements: parsing them anew for every operation cost more than running them.
    let run = |sql: &str| tx.prepare_cached(sql).and_then(|mut s| s.execute([]));
    run("SAVEPOINT op").map_err(q)?;
    match f(tx) {
        Ok(v) => {
            run("RELEASE op").map_err(q)?;
            Ok(v)
        }
        Err(e) => {
            let _ = tx.execute_batch("ROLLBACK TO op; RELEASE op");
            Err(q(e))
        }
    }
}
