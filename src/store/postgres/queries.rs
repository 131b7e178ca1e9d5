//! The SQL of the PostgreSQL store, one function per [`Store`](super::super::Store) operation.
//!
//! Each function runs on a connection or a transaction it is handed and never commits, notifies or
//! retries: `mod.rs` owns transactions, signals and error mapping. The statements mirror
//! `sqlite.rs`; where they differ, it is for several instances sharing one database (leases taken
//! with `FOR UPDATE SKIP LOCKED`, routing fenced on the event row).

use super::super::*;
use deadpool_postgres::{ClientWrapper as Client, Transaction};
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use tokio_postgres::{Row, Statement};

/// Statements each pooled connection prepares once (deadpool caches them by text): a query then
/// costs one round trip instead of two (parse, then bind and execute).
pub(super) trait Cached {
    async fn cached(&self, sql: &str) -> Pg<Statement>;
}

impl Cached for Client {
    async fn cached(&self, sql: &str) -> Pg<Statement> {
        self.prepare_cached(sql).await
    }
}

impl Cached for Transaction<'_> {
    async fn cached(&self, sql: &str) -> Pg<Statement> {
        self.prepare_cached(sql).await
    }
}

pub(super) type Pg<T> = Result<T, tokio_postgres::Error>;

/// `s` as PostgreSQL TEXT takes it. TEXT cannot hold NUL, and an event type read from a body, or
/// an error quoting one, may contain `\u0000`: refused, it would fail its whole routing batch again
/// and again. NUL becomes U+FFFD, as invalid bytes do elsewhere in the log.
pub(super) fn text(s: &str) -> Cow<'_, str> {
    if s.contains('\0') {
        Cow::Owned(s.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(s)
    }
}

/// The database's clock in Unix ms: one clock for every instance's routing leases.
const DB_NOW: &str = "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT";

/// An instance that has not beaten for this long is dead: its leases are free at once.
pub(super) const DEAD_AFTER_MS: i64 = 10_000;

/// SQL that is true when the lease holder named by `column` is not a live instance.
fn holder_gone(column: &str) -> String {
    format!(
        "NOT EXISTS (SELECT 1 FROM instances i WHERE i.id = {column} \
         AND i.heartbeat_at > {DB_NOW} - {DEAD_AFTER_MS})"
    )
}

/// Records that instance `id` is alive, on the database's clock.
/// On any connection: the pool's at start, then the instance's own LISTEN connection, so a pool
/// busy to its last connection cannot make a live instance look dead.
pub(super) async fn beat(c: &tokio_postgres::Client, id: &str) -> Pg<()> {
    let sql = format!(
        "INSERT INTO instances (id, started_at, heartbeat_at) VALUES ($1, {DB_NOW}, {DB_NOW}) \
         ON CONFLICT (id) DO UPDATE SET heartbeat_at = EXCLUDED.heartbeat_at"
    );
    c.execute(&sql, &[&id]).await?;
    // Instances gone for a day are only clutter.
    let sql = format!("DELETE FROM instances WHERE heartbeat_at < {DB_NOW} - 86400000");
    c.execute(&sql, &[]).await?;
    Ok(())
}

/// The database's clock now, in Unix ms.
pub(super) async fn db_now(c: &tokio_postgres::Client) -> Pg<i64> {
    c.query_one(&format!("SELECT {DB_NOW}"), &[])
        .await?
        .try_get(0)
}

/// Forgets instance `id`, freeing its leases at once (a graceful stop).
pub(super) async fn leave(c: &Client, id: &str) -> Pg<()> {
    c.execute(
        &c.cached("DELETE FROM instances WHERE id = $1").await?,
        &[&id],
    )
    .await?;
    Ok(())
}

/// Every instance beating now, oldest first.
pub(super) async fn instances(c: &Client) -> Pg<Vec<Instance>> {
    let sql = format!(
        "SELECT id, started_at, {DB_NOW} - heartbeat_at FROM instances \
         WHERE heartbeat_at > {DB_NOW} - {DEAD_AFTER_MS} ORDER BY started_at, id"
    );
    c.query(&c.cached(&sql).await?, &[])
        .await?
        .iter()
        .map(|r| {
            Ok(Instance {
                id: r.try_get(0)?,
                started_at: r.try_get(1)?,
                last_beat_ms_ago: r.try_get(2)?,
                this: false,
            })
        })
        .collect()
}

/// The ids of the instances beating now, oldest first.
pub(super) async fn live_instances(c: &Client) -> Pg<Vec<String>> {
    let sql = format!(
        "SELECT id FROM instances WHERE heartbeat_at > {DB_NOW} - {DEAD_AFTER_MS} ORDER BY started_at, id"
    );
    c.query(&c.cached(&sql).await?, &[])
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect()
}

/// Inserts events in one statement (one commit for the lot: group commit for ingress).
pub(super) async fn insert_events(c: &Client, events: &[StoredEvent]) -> Pg<u64> {
    let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
    let sources: Vec<&str> = events.iter().map(|e| e.source.as_str()).collect();
    let received: Vec<i64> = events.iter().map(|e| e.received_at).collect();
    let headers: Vec<String> = events.iter().map(|e| pairs_to_json(&e.headers)).collect();
    let queries: Vec<String> = events.iter().map(|e| pairs_to_json(&e.query)).collect();
    let bodies: Vec<&[u8]> = events.iter().map(|e| &e.body[..]).collect();
    c.execute(
        &c.cached("INSERT INTO events (id, source, received_at, headers, query, body) \
         SELECT * FROM unnest($1::TEXT[], $2::TEXT[], $3::BIGINT[], $4::TEXT[], $5::TEXT[], $6::BYTEA[])").await?,
        &[&ids, &sources, &received, &headers, &queries, &bodies],
    )
    .await
}

/// Leases up to `limit` unrouted events to `owner` for `lease_ms`. Events another live instance
/// holds are skipped; events this instance already holds are handed out again (its pipeline asks
/// again only after it gave up on them, e.g. while the evaluator was unavailable).
pub(super) async fn unrouted(
    c: &Client,
    owner: &str,
    limit: usize,
    lease_ms: i64,
) -> Pg<Vec<StoredEvent>> {
    let gone = holder_gone("events.route_owner");
    let sql = format!(
        "WITH clock AS (SELECT {DB_NOW} AS now), \
         picked AS (SELECT seq FROM events, clock \
           WHERE NOT routed AND (route_lease_until <= clock.now OR route_owner = $2 OR {gone}) \
           ORDER BY seq LIMIT $1 FOR UPDATE OF events SKIP LOCKED) \
         UPDATE events e SET route_lease_until = clock.now + $3, route_owner = $2 \
         FROM picked, clock WHERE e.seq = picked.seq \
         RETURNING e.seq, e.id, e.source, e.received_at, e.headers, e.query, e.body"
    );
    let rows = c
        .query(
            &c.cached(&sql).await?,
            &[&(limit as i64), &owner, &lease_ms],
        )
        .await?;
    let mut events = rows
        .iter()
        .map(|r| Ok((r.try_get::<_, i64>(0)?, event_row(r, 1)?)))
        .collect::<Pg<Vec<_>>>()?;
    // RETURNING has no order.
    events.sort_by_key(|(seq, _)| *seq);
    Ok(events.into_iter().map(|(_, e)| e).collect())
}

/// A `StoredEvent` from columns id, source, received_at, headers, query, body starting at `at`.
fn event_row(r: &Row, at: usize) -> Pg<StoredEvent> {
    Ok(StoredEvent {
        id: r.try_get(at)?,
        source: r.try_get(at + 1)?,
        received_at: r.try_get(at + 2)?,
        headers: pairs_from_json(r.try_get(at + 3)?),
        query: pairs_from_json(r.try_get(at + 4)?),
        body: Bytes::from(r.try_get::<_, Vec<u8>>(at + 5)?),
    })
}

/// Records routings; true when any delivery was written. A handful of statements per batch,
/// whatever its size: rows go in as arrays (`unnest`), not one statement per event.
///
/// Fenced on the event rows: a routing is taken whole while its event is unrouted, and once it is
/// routed only for routes still `waiting` for their plugin. So an instance whose routing lease ran
/// out (and whose event another instance routed meanwhile), two instances resolving the same
/// waiting route, or a retried call whose commit did succeed, never write deliveries twice.
pub(super) async fn record_routing(
    tx: &Transaction<'_>,
    routings: &[Routing],
    now: i64,
) -> Pg<bool> {
    let ids: Vec<&str> = routings.iter().map(|r| r.event_id.as_str()).collect();
    // Locked in id order, so two instances fencing overlapping batches cannot deadlock.
    let rows = tx
        .query(
            &tx.cached("SELECT id, routed FROM events WHERE id = ANY($1) ORDER BY id FOR UPDATE")
                .await?,
            &[&ids],
        )
        .await?;
    let mut routed: HashMap<String, bool> = HashMap::with_capacity(rows.len());
    for r in &rows {
        routed.insert(r.try_get(0)?, r.try_get(1)?);
    }
    let already: Vec<&str> = routed
        .iter()
        .filter(|(_, routed)| **routed)
        .map(|(id, _)| id.as_str())
        .collect();
    let mut waiting: HashSet<(String, String)> = HashSet::new();
    if !already.is_empty() {
        for r in tx
            .query(
                &tx.cached(
                    "SELECT event_id, route FROM route_results \
                 WHERE event_id = ANY($1) AND outcome = 'waiting'",
                )
                .await?,
                &[&already],
            )
            .await?
        {
            waiting.insert((r.try_get(0)?, r.try_get(1)?));
        }
    }
    // Pruned meanwhile: nothing to attach results to.
    let takes = |event: &str, route: &str| match routed.get(event) {
        None => false,
        Some(false) => true,
        Some(true) => waiting.contains(&(event.to_string(), route.to_string())),
    };
    let mut marks = Rows::default();
    let mut results = Rows::default();
    let mut deliveries = DeliveryRows::default();
    // One row per (event, route) in one statement, or ON CONFLICT refuses it (a batch never
    // routes an event twice; this only keeps that from becoming an error).
    let mut seen_results = HashSet::new();
    for routing in routings {
        let event = routing.event_id.as_str();
        if !routed.contains_key(event) {
            continue;
        }
        marks.push([Some(event.into()), routing.event_type.as_deref().map(text)]);
        for result in routing.results.iter().filter(|r| takes(event, &r.route)) {
            if seen_results.insert((event, result.route.as_str())) {
                results.push([
                    Some(event.into()),
                    Some(result.route.as_str().into()),
                    Some(result.outcome.as_str().into()),
                    result.detail.as_deref().map(text),
                ]);
            }
        }
        for d in routing.deliveries.iter().filter(|d| takes(event, &d.route)) {
            deliveries.push(event, d, now);
        }
    }
    if !marks.is_empty() {
        tx.execute(
            &tx.cached("UPDATE events e SET routed = TRUE, event_type = u.event_type, route_lease_until = 0, \
             route_owner = NULL FROM unnest($1::TEXT[], $2::TEXT[]) AS u(id, event_type) WHERE e.id = u.id").await?,
            &[&marks.col(0), &marks.col(1)],
        )
        .await?;
    }
    if !results.is_empty() {
        tx.execute(
            &tx.cached("INSERT INTO route_results (event_id, route, outcome, detail) \
             SELECT * FROM unnest($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::TEXT[]) \
             ON CONFLICT (event_id, route) DO UPDATE SET outcome = EXCLUDED.outcome, detail = EXCLUDED.detail").await?,
            &[&results.col(0), &results.col(1), &results.col(2), &results.col(3)],
        )
        .await?;
    }
    let wrote = !deliveries.ids.is_empty();
    if wrote {
        deliveries.insert(tx, now).await?;
    }
    Ok(wrote)
}

/// Text columns of rows bound as arrays.
struct Rows<'a, const N: usize> {
    rows: Vec<[Option<Cow<'a, str>>; N]>,
}

impl<const N: usize> Default for Rows<'_, N> {
    fn default() -> Self {
        Self { rows: Vec::new() }
    }
}

impl<'a, const N: usize> Rows<'a, N> {
    fn push(&mut self, row: [Option<Cow<'a, str>>; N]) {
        self.rows.push(row);
    }
    fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
    fn col(&self, i: usize) -> Vec<Option<&str>> {
        self.rows.iter().map(|r| r[i].as_deref()).collect()
    }
}

/// New deliveries as columns, for one `INSERT ... SELECT FROM unnest(...)`.
#[derive(Default)]
struct DeliveryRows<'a> {
    ids: Vec<&'a str>,
    events: Vec<&'a str>,
    routes: Vec<&'a str>,
    targets: Vec<&'a str>,
    statuses: Vec<&'static str>,
    bodies: Vec<Option<&'a [u8]>>,
    headers: Vec<String>,
    next: Vec<Option<i64>>,
    errors: Vec<Option<Cow<'a, str>>>,
}

impl<'a> DeliveryRows<'a> {
    fn push(&mut self, event: &'a str, d: &'a NewDelivery, now: i64) {
        self.ids.push(&d.id);
        self.events.push(event);
        self.routes.push(&d.route);
        self.targets.push(&d.target);
        self.statuses.push(d.status.as_str());
        self.bodies.push(d.body.as_deref());
        self.headers.push(pairs_to_json(&d.headers));
        self.next
            .push((d.status == DeliveryStatus::Pending).then_some(now));
        self.errors.push(d.error.as_deref().map(text));
    }

    async fn insert(&self, tx: &Transaction<'_>, now: i64) -> Pg<u64> {
        tx.execute(
            &tx.cached(
                "INSERT INTO deliveries (id, event_id, route, target, status, body, headers, \
             next_attempt_at, last_error, created_at, updated_at) \
             SELECT u.*, $10, $10 FROM unnest($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], \
             $5::TEXT[], $6::BYTEA[], $7::TEXT[], $8::BIGINT[], $9::TEXT[]) AS u",
            )
            .await?,
            &[
                &self.ids,
                &self.events,
                &self.routes,
                &self.targets,
                &self.statuses,
                &self.bodies,
                &self.headers,
                &self.next,
                &self.errors.iter().map(|e| e.as_deref()).collect::<Vec<_>>(),
                &now,
            ],
        )
        .await
    }
}

/// Leases due deliveries to `owner`. `SKIP LOCKED` passes over rows another instance is leasing
/// right now; rows it leased and committed no longer match until the lease ends or it dies.
pub(super) async fn claim(
    c: &Client,
    owner: &str,
    target: &str,
    now: i64,
    limit: usize,
    lease_ms: i64,
) -> Pg<Vec<DueDelivery>> {
    let gone = holder_gone("deliveries.lease_owner");
    let sql = format!(
        "WITH picked AS (SELECT seq FROM deliveries \
           WHERE target = $1 AND status = 'pending' AND next_attempt_at <= $2 \
           AND (lease_until <= $2 OR {gone}) \
           ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED), \
         leased AS (UPDATE deliveries d SET lease_until = $2 + $4, lease_owner = $5 \
           FROM picked WHERE d.seq = picked.seq \
           RETURNING d.seq, d.id, d.event_id, d.route, d.target, d.body, d.headers, d.attempts, \
           d.created_at, d.next_attempt_at) \
         SELECT l.id, l.event_id, e.event_type, l.route, l.target, COALESCE(l.body, e.body), l.headers, \
           l.attempts, l.created_at \
         FROM leased l JOIN events e ON e.id = l.event_id ORDER BY l.next_attempt_at, l.seq"
    );
    let rows = c
        .query(
            &c.cached(&sql).await?,
            &[&target, &now, &(limit as i64), &lease_ms, &owner],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(DueDelivery {
                id: r.try_get(0)?,
                event_id: r.try_get(1)?,
                event_type: r.try_get(2)?,
                route: r.try_get(3)?,
                target: r.try_get(4)?,
                body: Bytes::from(r.try_get::<_, Vec<u8>>(5)?),
                headers: pairs_from_json(r.try_get(6)?),
                attempts: r.try_get::<_, i64>(7)? as u32,
                created_at: r.try_get(8)?,
            })
        })
        .collect()
}

/// The earliest due time among `targets`: one index probe per target, in one statement.
pub(super) async fn next_due(c: &Client, now: i64, targets: &[String]) -> Pg<Option<i64>> {
    let gone = holder_gone("deliveries.lease_owner");
    let sql = format!(
        "SELECT MIN(x.at) FROM unnest($1::TEXT[]) AS t(name), LATERAL (\
           SELECT next_attempt_at AS at FROM deliveries \
           WHERE target = t.name AND status = 'pending' AND (lease_until <= $2 OR {gone}) \
           ORDER BY next_attempt_at LIMIT 1) AS x"
    );
    let row = c
        .query_one(&c.cached(&sql).await?, &[&targets, &now])
        .await?;
    row.try_get(0)
}

pub(super) async fn unrouted_count(c: &Client) -> Pg<u64> {
    let n: i64 = c
        .query_one(
            &c.cached("SELECT COUNT(*) FROM events WHERE NOT routed")
                .await?,
            &[],
        )
        .await?
        .try_get(0)?;
    Ok(n.max(0) as u64)
}

pub(super) async fn queue_depth(c: &Client) -> Pg<QueueDepth> {
    let unrouted = unrouted_count(c).await?;
    let pending = c
        .query(
            &c.cached(
                "SELECT target, COUNT(*) FROM deliveries WHERE status = 'pending' GROUP BY target",
            )
            .await?,
            &[],
        )
        .await?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get::<_, i64>(1)? as u64)))
        .collect::<Pg<_>>()?;
    Ok(QueueDepth { unrouted, pending })
}

/// Logs attempts and moves their deliveries on, in one transaction's two statements.
///
/// Every attempt is logged, but a delivery moves on only while `owner` still holds its lease: if
/// this instance was taken for dead (a missed heartbeat) and another took the delivery over, that
/// one's outcome stands and this late one (a `dead` after its `succeeded`, say) changes nothing.
pub(super) async fn record_attempts(
    tx: &Transaction<'_>,
    owner: &str,
    attempts: &[Attempt],
) -> Pg<()> {
    let ids: Vec<&str> = attempts.iter().map(|a| a.delivery_id.as_str()).collect();
    let numbers: Vec<i64> = attempts.iter().map(|a| i64::from(a.attempt)).collect();
    let started: Vec<i64> = attempts.iter().map(|a| a.started_at).collect();
    let durations: Vec<i64> = attempts.iter().map(|a| a.duration_ms).collect();
    let codes: Vec<Option<i64>> = attempts
        .iter()
        .map(|a| a.status_code.map(i64::from))
        .collect();
    let errors: Vec<Option<Cow<str>>> = attempts
        .iter()
        .map(|a| a.error.as_deref().map(text))
        .collect();
    let errors: Vec<Option<&str>> = errors.iter().map(|e| e.as_deref()).collect();
    let headers: Vec<String> = attempts
        .iter()
        .map(|a| pairs_to_json(&a.response_headers))
        .collect();
    let bodies: Vec<&[u8]> = attempts.iter().map(|a| &a.response_body[..]).collect();
    let (statuses, next): (Vec<&str>, Vec<Option<i64>>) = attempts
        .iter()
        .map(|a| match a.after {
            AfterAttempt::Succeeded => (DeliveryStatus::Succeeded.as_str(), None),
            AfterAttempt::RetryAt(at) => (DeliveryStatus::Pending.as_str(), Some(at)),
            AfterAttempt::Failed => (DeliveryStatus::Failed.as_str(), None),
            AfterAttempt::Dead => (DeliveryStatus::Dead.as_str(), None),
        })
        .unzip();
    let finished: Vec<i64> = attempts.iter().map(|a| a.finished_at).collect();
    tx.execute(
        &tx.cached("INSERT INTO attempts (delivery_id, attempt, started_at, duration_ms, status_code, error, \
         response_headers, response_body) SELECT * FROM unnest($1::TEXT[], $2::BIGINT[], \
         $3::BIGINT[], $4::BIGINT[], $5::BIGINT[], $6::TEXT[], $7::TEXT[], $8::BYTEA[])").await?,
        &[&ids, &numbers, &started, &durations, &codes, &errors, &headers, &bodies],
    )
    .await?;
    // A delivery appears once per batch: its worker awaits each attempt before the next.
    tx.execute(
        &tx.cached("UPDATE deliveries d SET status = u.status, attempts = u.attempt, next_attempt_at = u.next, \
         lease_until = 0, lease_owner = NULL, last_error = u.error, updated_at = u.finished \
         FROM unnest($1::TEXT[], $2::TEXT[], $3::BIGINT[], $4::BIGINT[], $5::TEXT[], $6::BIGINT[]) \
           AS u(id, status, attempt, next, error, finished) \
         WHERE d.id = u.id AND d.lease_owner = $7").await?,
        &[&ids, &statuses, &numbers, &next, &errors, &finished, &owner],
    )
    .await?;
    Ok(())
}

const DELIVERY_COLUMNS: &str =
    "seq, id, event_id, route, target, status, attempts, next_attempt_at, last_error";

fn delivery_row(r: &Row) -> Pg<DeliveryView> {
    Ok(DeliveryView {
        seq: r.try_get(0)?,
        id: r.try_get(1)?,
        event_id: r.try_get(2)?,
        route: r.try_get(3)?,
        target: r.try_get(4)?,
        status: r.try_get(5)?,
        attempts: r.try_get::<_, i64>(6)? as u32,
        next_attempt_at: r.try_get(7)?,
        last_error: r.try_get(8)?,
    })
}

pub(super) async fn list_deliveries(c: &Client, q: &DeliveryQuery) -> Pg<Vec<DeliveryView>> {
    let sql = format!(
        "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE ($1::TEXT IS NULL OR status = $1) \
         AND ($2::TEXT IS NULL OR target = $2) AND ($3::TEXT IS NULL OR route = $3) \
         AND ($4::BIGINT IS NULL OR seq < $4) AND ($6::BIGINT IS NULL OR created_at >= $6) \
         AND ($7::TEXT IS NULL OR event_id IN (SELECT id FROM events WHERE source = $7)) \
         ORDER BY seq DESC LIMIT $5"
    );
    let rows = c
        .query(
            &c.cached(&sql).await?,
            &[
                &q.status.map(|s| s.as_str()),
                &q.target,
                &q.route,
                &q.before,
                &(q.limit as i64),
                &q.since,
                &q.source,
            ],
        )
        .await?;
    rows.iter().map(delivery_row).collect()
}

pub(super) async fn get_delivery(
    c: &Client,
    id: &str,
) -> Pg<Option<(DeliveryView, Vec<AttemptView>)>> {
    let sql = format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = $1");
    let Some(row) = c.query_opt(&c.cached(&sql).await?, &[&id]).await? else {
        return Ok(None);
    };
    let delivery = delivery_row(&row)?;
    let rows = c
        .query(
            &c.cached("SELECT attempt, started_at, duration_ms, status_code, error, response_headers, response_body \
             FROM attempts WHERE delivery_id = $1 ORDER BY attempt, seq").await?,
            &[&id],
        )
        .await?;
    let attempts = rows
        .iter()
        .map(|r| {
            Ok(AttemptView {
                attempt: r.try_get::<_, i64>(0)? as u32,
                started_at: r.try_get(1)?,
                duration_ms: r.try_get(2)?,
                status_code: r.try_get::<_, Option<i64>>(3)?.map(|s| s as u16),
                error: r.try_get(4)?,
                response_headers: pairs_from_json(r.try_get(5)?),
                response_body: String::from_utf8_lossy(r.try_get::<_, &[u8]>(6)?).into_owned(),
            })
        })
        .collect::<Pg<_>>()?;
    Ok(Some((delivery, attempts)))
}

/// `None` when there is no such delivery; `Some(false)` when it is already pending.
pub(super) async fn retry_delivery(tx: &Transaction<'_>, id: &str, now: i64) -> Pg<Option<bool>> {
    let Some(row) = tx
        .query_opt(
            &tx.cached("SELECT status FROM deliveries WHERE id = $1 FOR UPDATE")
                .await?,
            &[&id],
        )
        .await?
    else {
        return Ok(None);
    };
    if row.try_get::<_, &str>(0)? == "pending" {
        return Ok(Some(false));
    }
    tx.execute(
        &tx.cached("UPDATE deliveries SET status = 'pending', next_attempt_at = $2, lease_until = 0, lease_owner = NULL, updated_at = $2 \
         WHERE id = $1").await?,
        &[&id, &now],
    )
    .await?;
    Ok(Some(true))
}

/// The deliveries a bulk retry takes, with $1 status, $2 target, $3 route, $4 since, $5 source:
/// never pending ones, and succeeded ones only when $1 names them.
const RETRYABLE: &str = "status != 'pending' \
     AND (($1::TEXT IS NULL AND status != 'succeeded') OR status = $1) \
     AND ($2::TEXT IS NULL OR target = $2) AND ($3::TEXT IS NULL OR route = $3) \
     AND ($4::BIGINT IS NULL OR created_at >= $4) \
     AND ($5::TEXT IS NULL OR event_id IN (SELECT id FROM events WHERE source = $5))";

/// Up to `q.limit` retryable deliveries, oldest first; rows another transaction holds (a retry
/// of the same delivery) are left to it.
pub(super) async fn retry_deliveries(tx: &Transaction<'_>, q: &DeliveryQuery, now: i64) -> Pg<u64> {
    let sql = format!(
        "UPDATE deliveries SET status = 'pending', next_attempt_at = $6, lease_until = 0, lease_owner = NULL, updated_at = $6 \
         WHERE seq IN (SELECT seq FROM deliveries WHERE {RETRYABLE} ORDER BY seq LIMIT $7 FOR UPDATE SKIP LOCKED)"
    );
    tx.execute(
        &tx.cached(&sql).await?,
        &[
            &q.status.map(|s| s.as_str()),
            &q.target,
            &q.route,
            &q.since,
            &q.source,
            &now,
            &i64::try_from(q.limit).unwrap_or(i64::MAX),
        ],
    )
    .await
}

pub(super) async fn count_retryable(c: &Client, q: &DeliveryQuery) -> Pg<u64> {
    let sql = format!("SELECT COUNT(*) FROM deliveries WHERE {RETRYABLE}");
    let row = c
        .query_one(
            &c.cached(&sql).await?,
            &[
                &q.status.map(|s| s.as_str()),
                &q.target,
                &q.route,
                &q.since,
                &q.source,
            ],
        )
        .await?;
    Ok(u64::try_from(row.try_get::<_, i64>(0)?).unwrap_or(0))
}

/// Events with a route waiting for its plugin, for the routes in `routes`, oldest first.
pub(super) async fn waiting_routes(
    c: &Client,
    routes: &[String],
    limit: usize,
) -> Pg<Vec<WaitingRoute>> {
    let stmt = c
        .prepare(
            "SELECT e.id, e.source, e.received_at, e.headers, e.query, e.body, e.event_type, r.route \
             FROM route_results r JOIN events e ON e.id = r.event_id \
             WHERE r.outcome = 'waiting' AND r.route = $1 ORDER BY e.seq LIMIT $2",
        )
        .await?;
    let mut out = Vec::new();
    for route in routes {
        let left = limit.saturating_sub(out.len());
        if left == 0 {
            break;
        }
        for r in c.query(&stmt, &[route, &(left as i64)]).await? {
            out.push(WaitingRoute {
                event: event_row(&r, 0)?,
                event_type: r.try_get(6)?,
                route: r.try_get(7)?,
            });
        }
    }
    Ok(out)
}

pub(super) async fn list_events(c: &Client, q: &EventQuery) -> Pg<Vec<EventSummary>> {
    let rows = c
        .query(
            &c.cached(
                "SELECT seq, id, source, event_type, received_at, routed FROM events \
             WHERE ($1::TEXT IS NULL OR source = $1) AND ($2::TEXT IS NULL OR event_type = $2) \
             AND ($3::BIGINT IS NULL OR seq < $3) AND ($4::BIGINT IS NULL OR received_at >= $4) \
             ORDER BY seq DESC LIMIT $5",
            )
            .await?,
            &[
                &q.source,
                &q.event_type,
                &q.before,
                &q.since,
                &(q.limit as i64),
            ],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(EventSummary {
                seq: r.try_get(0)?,
                id: r.try_get(1)?,
                source: r.try_get(2)?,
                event_type: r.try_get(3)?,
                received_at: r.try_get(4)?,
                routed: r.try_get(5)?,
            })
        })
        .collect()
}

pub(super) async fn get_event(c: &Client, id: &str) -> Pg<Option<EventView>> {
    let Some(r) = c
        .query_opt(
            &c.cached("SELECT id, source, event_type, received_at, routed, headers, body FROM events WHERE id = $1").await?,
            &[&id],
        )
        .await?
    else {
        return Ok(None);
    };
    let mut event = EventView {
        id: r.try_get(0)?,
        source: r.try_get(1)?,
        event_type: r.try_get(2)?,
        received_at: r.try_get(3)?,
        routed: r.try_get(4)?,
        headers: pairs_from_json(r.try_get(5)?),
        body: String::from_utf8_lossy(r.try_get::<_, &[u8]>(6)?).into_owned(),
        deliveries: Vec::new(),
        routes: Vec::new(),
    };
    event.deliveries = c
        .query(
            &c.cached("SELECT id FROM deliveries WHERE event_id = $1 ORDER BY seq")
                .await?,
            &[&id],
        )
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Pg<_>>()?;
    event.routes = c
        .query(
            &c.cached("SELECT route, outcome, detail FROM route_results WHERE event_id = $1 ORDER BY route").await?,
            &[&id],
        )
        .await?
        .iter()
        .map(|r| {
            Ok(RouteOutcomeView {
                route: r.try_get(0)?,
                outcome: r.try_get(1)?,
                detail: r.try_get(2)?,
            })
        })
        .collect::<Pg<_>>()?;
    Ok(Some(event))
}

/// Marks an event unrouted (and its routing lease free); false when there is no such event.
pub(super) async fn replay_event(c: &Client, id: &str) -> Pg<bool> {
    let n = c
        .execute(
            &c.cached("UPDATE events SET routed = FALSE, route_lease_until = 0, route_owner = NULL WHERE id = $1").await?,
            &[&id],
        )
        .await?;
    Ok(n > 0)
}

/// Held by the instance pruning: instances share the work by taking turns, not by racing for (and
/// deadlocking on) the same old rows.
const PRUNE_LOCK: i64 = 0x686f_6f6b_7072_756e; // "hookprun"

pub(super) async fn prune(tx: &Transaction<'_>, before: i64, batch: usize) -> Pg<u64> {
    let turn: bool = tx
        .query_one(
            &tx.cached("SELECT pg_try_advisory_xact_lock($1)").await?,
            &[&PRUNE_LOCK],
        )
        .await?
        .try_get(0)?;
    if !turn {
        return Ok(0);
    }
    let limit = batch as i64;
    // One statement per table pair, each re-checking its rows as it deletes them: a delivery an
    // operator retried meanwhile (pending again) or an event replayed meanwhile (unrouted again)
    // stays, with its history.
    let deliveries = "WITH picked AS (SELECT id FROM deliveries WHERE created_at < $1 \
                        AND status != 'pending' ORDER BY seq LIMIT $2), \
                      gone AS (DELETE FROM deliveries d USING picked WHERE d.id = picked.id \
                        AND d.status != 'pending' RETURNING d.id), \
                      logs AS (DELETE FROM attempts a USING gone WHERE a.delivery_id = gone.id RETURNING 1) \
                      SELECT (SELECT COUNT(*) FROM gone) + (SELECT COUNT(*) FROM logs)";
    // An event goes once it is routed and none of its deliveries (or waiting routes) remain.
    let events = "WITH picked AS (SELECT id FROM events e WHERE received_at < $1 AND routed \
                    AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id) \
                    AND NOT EXISTS (SELECT 1 FROM route_results r WHERE r.event_id = e.id \
                      AND r.outcome = 'waiting') \
                    ORDER BY seq LIMIT $2), \
                  gone AS (DELETE FROM events e USING picked WHERE e.id = picked.id AND e.routed \
                    RETURNING e.id), \
                  results AS (DELETE FROM route_results r USING gone WHERE r.event_id = gone.id \
                    RETURNING 1) \
                  SELECT (SELECT COUNT(*) FROM gone) + (SELECT COUNT(*) FROM results)";
    let mut n = 0;
    for sql in [deliveries, events] {
        let row = tx
            .query_one(&tx.cached(sql).await?, &[&before, &limit])
            .await?;
        n += row.try_get::<_, i64>(0)? as u64;
    }
    Ok(n)
}

pub(super) async fn disabled_targets(c: &Client) -> Pg<Vec<(String, String)>> {
    c.query(
        &c.cached("SELECT name, COALESCE(reason, '') FROM target_state WHERE disabled")
            .await?,
        &[],
    )
    .await?
    .iter()
    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
    .collect()
}

pub(super) async fn set_target_disabled(
    c: &Client,
    instance: &str,
    target: &str,
    reason: Option<&str>,
) -> Pg<()> {
    c.execute(
        &c.cached("WITH up AS (INSERT INTO target_state (name, disabled, reason, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (name) DO UPDATE SET disabled = $2, reason = $3, updated_at = $4 RETURNING 1) \
         SELECT pg_notify('hookgate_cluster', $5) FROM up").await?,
        &[&target, &reason.is_some(), &reason, &crate::now_ms(), &instance],
    )
    .await?;
    Ok(())
}

pub(super) async fn shared_plugins(c: &Client) -> Pg<Vec<SharedPlugin>> {
    c.query(
        &c.cached("SELECT name, sha256, deleted FROM plugins ORDER BY name")
            .await?,
        &[],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(SharedPlugin {
            name: r.try_get(0)?,
            sha256: r.try_get(1)?,
            deleted: r.try_get(2)?,
        })
    })
    .collect()
}

pub(super) async fn shared_plugin_bytes(c: &Client, name: &str) -> Pg<Option<Bytes>> {
    let row = c
        .query_opt(
            &c.cached("SELECT bytes FROM plugins WHERE name = $1 AND NOT deleted")
                .await?,
            &[&name],
        )
        .await?;
    Ok(row
        .map(|r| r.try_get::<_, Option<Vec<u8>>>(0))
        .transpose()?
        .flatten()
        .map(Bytes::from))
}

/// Shares an upload (`Some`) or a delete (`None`) and tells the other instances.
pub(super) async fn share_plugin(
    c: &Client,
    instance: &str,
    name: &str,
    upload: Option<(&[u8], &str)>,
) -> Pg<()> {
    let (bytes, sha256) = match upload {
        Some((bytes, sha256)) => (Some(bytes), sha256),
        None => (None, ""),
    };
    c.execute(
        &c.cached("WITH up AS (INSERT INTO plugins (name, sha256, bytes, deleted, updated_at, updated_by) \
           VALUES ($1, $2, $3::BYTEA, $3::BYTEA IS NULL, $4, $5) \
           ON CONFLICT (name) DO UPDATE SET sha256 = EXCLUDED.sha256, bytes = EXCLUDED.bytes, \
           deleted = EXCLUDED.deleted, updated_at = EXCLUDED.updated_at, updated_by = EXCLUDED.updated_by \
           RETURNING 1) \
         SELECT pg_notify('hookgate_cluster', $5) FROM up").await?,
        &[&name, &sha256, &bytes, &crate::now_ms(), &instance],
    )
    .await?;
    Ok(())
}

pub(super) async fn share_reload(c: &Client, instance: &str) -> Pg<()> {
    c.execute(
        &c.cached("WITH up AS (INSERT INTO config_reloads (requested_at, requested_by) VALUES ($1, $2) RETURNING 1) \
         SELECT pg_notify('hookgate_cluster', $2) FROM up").await?,
        &[&crate::now_ms(), &instance],
    )
    .await?;
    Ok(())
}

/// The newest reload another instance asked for (an instance has applied its own already).
pub(super) async fn reload_generation(c: &Client, instance: &str) -> Pg<i64> {
    c.query_one(
        &c.cached(
            "SELECT COALESCE(MAX(generation), 0) FROM config_reloads WHERE requested_by <> $1",
        )
        .await?,
        &[&instance],
    )
    .await?
    .try_get(0)
}
