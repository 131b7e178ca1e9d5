//! The writer thread: the one owner of the SQLite connection. Every operation (reads included)
//! is queued to it as an [`Op`]; it runs all that is queued in one transaction, a savepoint per
//! operation, commits once, and only then answers each caller and signals the next stage.

use super::MAX_BATCH;
use super::log::*;
use super::queue::*;
use super::shared::*;
use crate::store::linger::Linger;
use crate::store::*;
use rusqlite::{Connection, Transaction, TransactionBehavior};
use std::sync::mpsc;
use std::time::Instant;
use tokio::sync::oneshot;

pub(super) type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

pub(super) enum Op {
    InsertEvent(Arc<StoredEvent>, Reply<()>),
    Unrouted(Span, usize, Reply<Vec<(i64, StoredEvent)>>),
    LastSeq(Reply<i64>),
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

pub(super) fn writer_loop(
    mut conn: Connection,
    rx: mpsc::Receiver<Op>,
    signals: Signals,
    commits: &CommitTimes,
) {
    let mut linger = Linger::default();
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        if batch.iter().all(comes_in_streams) && linger.wait(batch.len()) {
            let before = batch.len();
            gather(&rx, &mut batch);
            linger.gathered(batch.len() - before);
        }
        let began = Instant::now();
        let (mut new_events, mut new_deliveries) = (false, false);
        let mut deferred: Vec<Deferred> = Vec::with_capacity(batch.len());
        let (mut inserts, mut attempts) = (Vec::new(), Vec::new());
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
                    match op {
                        Op::InsertEvent(ev, r) => inserts.push((ev, r)),
                        Op::RecordAttempt(a, r) => attempts.push((a, r)),
                        op => deferred.push(run_op(&tx, op)),
                    }
                }
                deferred.extend(grouped(&tx, inserts, |c, ev| insert_event(c, ev)));
                deferred.extend(grouped(&tx, attempts, record_attempt));
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
        commits.observe(began.elapsed());
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

/// Operations many callers send at once, which a short wait lets share a commit: ingress's events
/// (the route loop then gets them in larger batches too), and routings recorded after their
/// deliveries' first attempts (nothing waits on those but bookkeeping: the deliveries went out,
/// their permits are free). Not the routings the route loop waits on, nor attempts (a delivery's
/// permit is held until its attempt is recorded), so that an event waits once on its way to its
/// target, and not reads, which a person or a poller sends one at a time.
fn comes_in_streams(op: &Op) -> bool {
    match op {
        Op::InsertEvent(..) => true,
        Op::RecordRouting(batch, ..) => batch.after_attempts(),
        _ => false,
    }
}

/// Adds what arrives within [`Linger::WAIT`] to `batch`, until it has [`Linger::ENOUGH`] or an
/// operation of another kind arrives (which would only wait with it).
fn gather(rx: &mpsc::Receiver<Op>, batch: &mut Vec<Op>) {
    let until = Instant::now() + Linger::WAIT;
    while batch.len() < Linger::ENOUGH {
        let left = until.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(op) => {
                let alike = comes_in_streams(&op);
                batch.push(op);
                if !alike {
                    break;
                }
            }
            // Timed out, or every sender is gone: commit what there is.
            Err(_) => break,
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
        Op::Unrouted(_, _, r) => defer(r, err()),
        Op::LastSeq(r) => defer(r, err()),
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
        Op::InsertEvent(ev, r) => defer(r, savepoint(tx, |c| insert_event(c, &ev))),
        Op::Unrouted(span, limit, r) => defer(r, direct(tx, |c| unrouted(c, span, limit))),
        Op::LastSeq(r) => defer(r, direct(tx, last_seq)),
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

/// Runs a batch's operations of one kind (events stored, attempts recorded) in one savepoint: a
/// savepoint copies each page it first changes into its sub-journal, and these operations change
/// the same few pages (a table's last leaf, its indexes'), so one savepoint for all costs a
/// fraction of one each. If any fails, all are undone and each runs in its own savepoint, so a bad
/// one fails alone. (Any order of one batch's operations is a valid one: no caller sees a result
/// before the commit.)
fn grouped<T>(
    tx: &Transaction<'_>,
    ops: Vec<(T, Reply<()>)>,
    run: impl Fn(&Connection, &T) -> rusqlite::Result<()>,
) -> Vec<Deferred> {
    if ops.len() > 1 && savepoint(tx, |c| ops.iter().try_for_each(|(op, _)| run(c, op))).is_ok() {
        return ops.into_iter().map(|(_, r)| defer(r, Ok(()))).collect();
    }
    ops.into_iter()
        .map(|(op, r)| defer(r, savepoint(tx, |c| run(c, &op))))
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn migrated() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        for m in super::super::MIGRATIONS {
            conn.execute_batch(m).unwrap();
        }
        conn
    }

    /// Runs `ops` through [`grouped`] in one committed transaction: which succeeded.
    fn run_grouped<T>(
        conn: &mut Connection,
        ops: impl Iterator<Item = T>,
        run: impl Fn(&Connection, &T) -> rusqlite::Result<()>,
    ) -> Vec<bool> {
        let tx = conn.transaction().unwrap();
        let (ops, replies): (Vec<_>, Vec<_>) = ops
            .map(|op| {
                let (tx, rx) = oneshot::channel();
                ((op, tx), rx)
            })
            .unzip();
        for reply in grouped(&tx, ops, run) {
            reply(None);
        }
        tx.commit().unwrap();
        replies
            .into_iter()
            .map(|mut r| r.try_recv().unwrap().is_ok())
            .collect()
    }

    fn attempt(delivery_id: &str) -> Attempt {
        Attempt {
            delivery_id: delivery_id.into(),
            attempt: 1,
            started_at: 1,
            duration_ms: 1,
            status_code: Some(200),
            error: None,
            response_headers: Vec::new(),
            response_body: Bytes::new(),
            after: AfterAttempt::Succeeded,
            finished_at: 2,
        }
    }

    #[test]
    fn a_batch_of_attempts_lands_whole_and_a_bad_one_fails_alone() {
        let mut conn = migrated();
        for id in ["d1", "d2", "d3", "bad"] {
            conn.execute(
                "INSERT INTO deliveries (id, event_id, route, target, status, headers, created_at, updated_at) \
                 VALUES (?1, 'e', 'r', 't', 'pending', '[]', 0, 0)",
                [id],
            )
            .unwrap();
        }
        conn.execute_batch(
            "CREATE TEMP TRIGGER refuse BEFORE INSERT ON attempts WHEN NEW.delivery_id = 'bad' \
             BEGIN SELECT RAISE(ABORT, 'refused'); END;",
        )
        .unwrap();
        let record = |conn: &mut Connection, ids: &[&str]| {
            run_grouped(conn, ids.iter().map(|id| attempt(id)), record_attempt)
        };
        assert_eq!(record(&mut conn, &["d1", "d2"]), [true, true]);
        assert_eq!(record(&mut conn, &["d3", "bad"]), [true, false]);
        let count = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
        // d3 once: the failed batch's savepoint was undone before each ran alone.
        assert_eq!(count("SELECT COUNT(*) FROM attempts"), 3);
        assert_eq!(
            count("SELECT COUNT(*) FROM deliveries WHERE status = 'succeeded'"),
            3
        );
        assert_eq!(
            count("SELECT COUNT(*) FROM deliveries WHERE id = 'bad' AND status = 'pending'"),
            1
        );
    }

    #[test]
    fn only_writes_no_delivery_waits_on_may_wait_for_company() {
        fn reply<T>() -> Reply<T> {
            oneshot::channel().0
        }
        let routing = |attempts: Vec<Attempt>| {
            let batch = RoutingBatch {
                attempts,
                ..RoutingBatch::default()
            };
            Op::RecordRouting(Arc::new(batch), 0, reply())
        };
        assert!(comes_in_streams(&Op::InsertEvent(
            StoredEvent::blank("e", 1).into(),
            reply()
        )));
        // Recorded after its deliveries went out (the late path).
        assert!(comes_in_streams(&routing(vec![attempt("d1")])));
        // The route loop waits for this one before it hands the deliveries over.
        assert!(!comes_in_streams(&routing(Vec::new())));
        // A delivery's permit is held until its attempt is recorded.
        assert!(!comes_in_streams(&Op::RecordAttempt(
            attempt("d1"),
            reply()
        )));
        assert!(!comes_in_streams(&Op::Ping(reply())));
    }

    #[test]
    fn a_batch_of_events_lands_whole_each_queued_and_a_duplicate_fails_alone() {
        let mut conn = migrated();
        let store = |conn: &mut Connection, ids: &[&str]| {
            let events = ids.iter().map(|id| StoredEvent::blank(id, 10));
            run_grouped(conn, events, insert_event)
        };
        assert_eq!(store(&mut conn, &["e1", "e2"]), [true, true]);
        assert_eq!(store(&mut conn, &["e3", "e1", "e4"]), [true, false, true]);
        let ids = |sql: &str| -> Vec<String> {
            let mut s = conn.prepare(sql).unwrap();
            s.query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        // Every event stored once, each with its place in the queue, and nothing queued besides:
        // the failed batch's savepoint took e3's and e4's first inserts and queue rows with it.
        assert_eq!(
            ids("SELECT id FROM events ORDER BY seq"),
            ["e1", "e2", "e3", "e4"]
        );
        assert_eq!(
            ids("SELECT e.id FROM unrouted u JOIN events e USING (seq) ORDER BY u.seq"),
            ["e1", "e2", "e3", "e4"]
        );
        assert_eq!(ids("SELECT CAST(COUNT(*) AS TEXT) FROM unrouted"), ["4"]);
    }
}
