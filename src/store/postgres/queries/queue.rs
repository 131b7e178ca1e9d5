//! The queue's SQL: events in, deliveries claimed under leases, attempts recorded (a routing's
//! record is in `routing`).

use super::*;
use crate::store::*;
use deadpool_postgres::{ClientWrapper as Client, Transaction};

/// Inserts events in one statement (one commit for the lot: group commit for ingress), leased to
/// `owner` for routing: ingress hands them to its own route loop in memory, so other instances
/// leave them alone unless it dies.
pub(in crate::store::postgres) async fn insert_events(
    c: &Client,
    owner: &str,
    lease_ms: i64,
    events: &[Arc<StoredEvent>],
) -> Pg<u64> {
    let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
    let sources: Vec<&str> = events.iter().map(|e| e.source.as_str()).collect();
    let received: Vec<i64> = events.iter().map(|e| e.received_at).collect();
    let headers: Vec<String> = events.iter().map(|e| pairs_to_json(&e.headers)).collect();
    let queries: Vec<String> = events.iter().map(|e| pairs_to_json(&e.query)).collect();
    let bodies: Vec<&[u8]> = events.iter().map(|e| &e.body[..]).collect();
    // The event and its place in the routing queue, in one statement.
    let sql = format!(
        "WITH ins AS (INSERT INTO events (id, source, received_at, headers, query, body) \
           SELECT * FROM unnest($1::TEXT[], $2::TEXT[], $3::BIGINT[], $4::TEXT[], $5::TEXT[], \
           $6::BYTEA[]) RETURNING seq) \
         INSERT INTO unrouted (seq, owner, lease_until) SELECT seq, $7, {DB_NOW} + $8 FROM ins"
    );
    c.execute(
        &c.cached(&sql).await?,
        &[
            &ids, &sources, &received, &headers, &queries, &bodies, &owner, &lease_ms,
        ],
    )
    .await
}

/// Leases up to `limit` unrouted events to `owner` for `lease_ms`. Events another live instance
/// holds are skipped; events this instance already holds are handed out again when `own` (its
/// pipeline asks again only after it gave up on them, e.g. while the evaluator was unavailable),
/// and skipped too when not (a look for what other instances left, while its own are in memory).
pub(in crate::store::postgres) async fn unrouted(
    c: &Client,
    owner: &str,
    span: Span,
    limit: usize,
    lease_ms: i64,
    own: bool,
) -> Pg<Vec<(i64, StoredEvent)>> {
    let gone = holder_gone("unrouted.owner");
    let own = if own { "OR owner = $2" } else { "" };
    let sql = format!(
        "WITH clock AS (SELECT {DB_NOW} AS now), \
         picked AS (SELECT seq FROM unrouted, clock \
           WHERE (lease_until <= clock.now {own} OR {gone}) AND seq > $4 AND seq <= $5 \
           ORDER BY seq LIMIT $1 FOR UPDATE OF unrouted SKIP LOCKED) \
         UPDATE unrouted q SET lease_until = clock.now + $3, owner = $2 \
         FROM picked, clock, events e WHERE q.seq = picked.seq AND e.seq = q.seq \
         RETURNING e.seq, e.id, e.source, e.received_at, e.headers, e.query, e.body, e.replays"
    );
    let rows = c
        .query(
            &c.cached(&sql).await?,
            &[&(limit as i64), &owner, &lease_ms, &span.after, &span.upto],
        )
        .await?;
    let mut events = rows
        .iter()
        .map(|r| Ok((r.try_get::<_, i64>(0)?, event_row(r, 1)?)))
        .collect::<Pg<Vec<_>>>()?;
    // RETURNING has no order.
    events.sort_by_key(|(seq, _)| *seq);
    Ok(events)
}

/// See [`crate::store::Queue::last_seq`].
pub(in crate::store::postgres) async fn last_seq(c: &Client) -> Pg<i64> {
    let row = c
        .query_one(
            &c.cached("SELECT COALESCE(MAX(seq), 0) FROM events").await?,
            &[],
        )
        .await?;
    row.try_get(0)
}

/// A `StoredEvent` from columns id, source, received_at, headers, query, body, replays starting
/// at `at`.
pub(in crate::store::postgres) fn event_row(r: &Row, at: usize) -> Pg<StoredEvent> {
    Ok(StoredEvent {
        id: r.try_get(at)?,
        source: r.try_get(at + 1)?,
        received_at: r.try_get(at + 2)?,
        headers: pairs_from_json(r.try_get(at + 3)?),
        query: pairs_from_json(r.try_get(at + 4)?),
        body: Bytes::from(r.try_get::<_, Vec<u8>>(at + 5)?),
        // Only ever counted up from 0.
        replays: r.try_get::<_, i32>(at + 6)?.max(0) as u32,
    })
}

/// Ends `owner`'s leases on pending deliveries it will not attempt.
pub(in crate::store::postgres) async fn release_leases(
    c: &Client,
    owner: &str,
    ids: &[String],
) -> Pg<u64> {
    c.execute(
        &c.cached(
            "UPDATE deliveries SET lease_until = 0, lease_owner = NULL \
             WHERE id = ANY($1) AND status = 'pending' AND lease_owner = $2",
        )
        .await?,
        &[&ids, &owner],
    )
    .await
}

/// Leases due deliveries to `owner`. `SKIP LOCKED` passes over rows another instance is leasing
/// right now; rows it leased and committed no longer match until the lease ends or it dies.
pub(in crate::store::postgres) async fn claim(
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
           RETURNING d.seq, d.id, d.event_id, d.body, d.headers, d.attempts, \
           d.created_at, d.next_attempt_at) \
         SELECT l.id, l.event_id, t.event_type, COALESCE(l.body, e.body), l.headers, \
           l.attempts, l.created_at \
         FROM leased l JOIN events e ON e.id = l.event_id \
         LEFT JOIN event_types t ON t.seq = e.seq ORDER BY l.next_attempt_at, l.seq"
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
                body: Bytes::from(r.try_get::<_, Vec<u8>>(3)?),
                headers: pairs_from_json(r.try_get(4)?),
                attempts: r.try_get::<_, i64>(5)? as u32,
                created_at: r.try_get(6)?,
            })
        })
        .collect()
}

/// The earliest due time among `targets`: one index probe per target, in one statement.
pub(in crate::store::postgres) async fn next_due(
    c: &Client,
    now: i64,
    targets: &[String],
) -> Pg<Option<i64>> {
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

pub(in crate::store::postgres) async fn unrouted_count(c: &Client) -> Pg<u64> {
    let n: i64 = c
        .query_one(&c.cached("SELECT COUNT(*) FROM unrouted").await?, &[])
        .await?
        .try_get(0)?;
    Ok(n.max(0) as u64)
}

/// Logs attempts and moves their deliveries on, in one transaction's two statements.
///
/// Every attempt is logged, but a delivery moves on only while `owner` still holds its lease: if
/// this instance was taken for dead (a missed heartbeat) and another took the delivery over, that
/// one's outcome stands and this late one (a `dead` after its `succeeded`, say) changes nothing.
pub(in crate::store::postgres) async fn record_attempts(
    tx: &Transaction<'_>,
    owner: &str,
    attempts: &[Attempt],
) -> Pg<()> {
    let ids: Vec<&str> = attempts.iter().map(|a| a.delivery_id.as_str()).collect();
    let numbers: Vec<i64> = attempts.iter().map(|a| i64::from(a.attempt)).collect();
    let errors: Vec<Option<Cow<str>>> = attempts
        .iter()
        .map(|a| a.error.as_deref().map(text))
        .collect();
    let errors: Vec<Option<&str>> = errors.iter().map(|e| e.as_deref()).collect();
    let (statuses, next): (Vec<&str>, Vec<Option<i64>>) = attempts
        .iter()
        .map(|a| {
            let (status, next) = a.after.state();
            (status.as_str(), next)
        })
        .unzip();
    let finished: Vec<i64> = attempts.iter().map(|a| a.finished_at).collect();
    insert_attempts(tx, attempts.iter()).await?;
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

/// Events with a route waiting for its plugin, for the routes in `routes`, oldest first.
pub(in crate::store::postgres) async fn waiting_routes(
    c: &Client,
    routes: &[String],
    limit: usize,
) -> Pg<Vec<WaitingRoute>> {
    let stmt = c
        .prepare(
            "SELECT e.id, e.source, e.received_at, e.headers, e.query, e.body, e.replays, t.event_type, r.route \
             FROM route_results r JOIN events e ON e.id = r.event_id \
             LEFT JOIN event_types t ON t.seq = e.seq \
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
                event_type: r.try_get(7)?,
                route: r.try_get(8)?,
            });
        }
    }
    Ok(out)
}

/// Logs attempts (their deliveries' state is the caller's), in one statement; none, in none.
pub(super) async fn insert_attempts<'a>(
    tx: &Transaction<'_>,
    attempts: impl Iterator<Item = &'a Attempt> + Clone,
) -> Pg<u64> {
    if attempts.clone().next().is_none() {
        return Ok(0);
    }
    let ids: Vec<&str> = attempts.clone().map(|a| a.delivery_id.as_str()).collect();
    let numbers: Vec<i64> = attempts.clone().map(|a| i64::from(a.attempt)).collect();
    let started: Vec<i64> = attempts.clone().map(|a| a.started_at).collect();
    let durations: Vec<i64> = attempts.clone().map(|a| a.duration_ms).collect();
    let codes: Vec<Option<i64>> = attempts
        .clone()
        .map(|a| a.status_code.map(i64::from))
        .collect();
    let errors: Vec<Option<Cow<str>>> = attempts
        .clone()
        .map(|a| a.error.as_deref().map(text))
        .collect();
    let errors: Vec<Option<&str>> = errors.iter().map(|e| e.as_deref()).collect();
    let headers: Vec<String> = attempts
        .clone()
        .map(|a| pairs_to_json(&a.response_headers))
        .collect();
    let bodies: Vec<&[u8]> = attempts.map(|a| &a.response_body[..]).collect();
    tx.execute(
        &tx.cached("INSERT INTO attempts (delivery_id, attempt, started_at, duration_ms, status_code, error, \
         response_headers, response_body) SELECT * FROM unnest($1::TEXT[], $2::BIGINT[], \
         $3::BIGINT[], $4::BIGINT[], $5::BIGINT[], $6::TEXT[], $7::TEXT[], $8::BYTEA[])").await?,
        &[&ids, &numbers, &started, &durations, &codes, &errors, &headers, &bodies],
    )
    .await
}
