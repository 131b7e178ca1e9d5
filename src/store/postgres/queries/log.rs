//! The delivery log's SQL: what admin and `/metrics` read and change, and pruning (instances
//! take turns under an advisory lock).

use super::*;
use crate::store::filter::{self, Dialect, Param};
use crate::store::*;
use deadpool_postgres::{ClientWrapper as Client, Transaction};
use tokio_postgres::types::ToSql;

pub(in crate::store::postgres) async fn queue_depth(c: &Client) -> Pg<QueueDepth> {
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

pub(in crate::store::postgres) const DELIVERY_COLUMNS: &str =
    "seq, id, event_id, route, target, status, attempts, next_attempt_at, last_error";

pub(in crate::store::postgres) fn delivery_row(r: &Row) -> Pg<DeliveryView> {
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

pub(in crate::store::postgres) async fn list_deliveries(
    c: &Client,
    q: &DeliveryQuery,
) -> Pg<Vec<DeliveryView>> {
    let mut f = filter::deliveries(Dialect::Postgres, q, Scope::Listed, 0);
    let limit = f.bind(filter::limit(q.limit));
    let sql = format!(
        "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE {} ORDER BY seq DESC LIMIT {limit}",
        f.clause
    );
    let rows = c.query(&c.cached(&sql).await?, &bound(&f.params)).await?;
    rows.iter().map(delivery_row).collect()
}

/// The filter's parameters as the driver takes them.
pub(in crate::store::postgres) fn bound(params: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    params
        .iter()
        .map(|p| match p {
            Param::Text(s) => s as &(dyn ToSql + Sync),
            Param::Int(n) => n,
        })
        .collect()
}

pub(in crate::store::postgres) async fn get_delivery(
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
pub(in crate::store::postgres) async fn retry_delivery(
    tx: &Transaction<'_>,
    id: &str,
    now: i64,
) -> Pg<Option<Retry>> {
    let Some(row) = tx
        .query_opt(
            &tx.cached(
                "SELECT status, attempts, event_id FROM deliveries WHERE id = $1 FOR UPDATE",
            )
            .await?,
            &[&id],
        )
        .await?
    else {
        return Ok(None);
    };
    let status: &str = row.try_get(0)?;
    if status == "pending" {
        return Ok(Some(Retry::AlreadyPending));
    }
    if status == "failed" && row.try_get::<_, i64>(1)? == 0 {
        return Ok(Some(Retry::FailedInRouting {
            event_id: row.try_get(2)?,
        }));
    }
    tx.execute(
        &tx.cached("UPDATE deliveries SET status = 'pending', next_attempt_at = $2, lease_until = 0, lease_owner = NULL, updated_at = $2 \
         WHERE id = $1").await?,
        &[&id, &now],
    )
    .await?;
    Ok(Some(Retry::Queued))
}

/// Up to `q.limit` retryable deliveries, oldest first; rows another transaction holds (a retry
/// of the same delivery) are left to it.
pub(in crate::store::postgres) async fn retry_deliveries(
    tx: &Transaction<'_>,
    q: &DeliveryQuery,
    now: i64,
) -> Pg<u64> {
    // $1 is `now`; the filter's parameters follow.
    let mut f = filter::deliveries(Dialect::Postgres, q, Scope::Retryable, 1);
    let limit = f.bind(filter::limit(q.limit));
    let sql = format!(
        "UPDATE deliveries SET status = 'pending', next_attempt_at = $1, lease_until = 0, lease_owner = NULL, updated_at = $1 \
         WHERE seq IN (SELECT seq FROM deliveries WHERE {} ORDER BY seq LIMIT {limit} FOR UPDATE SKIP LOCKED)",
        f.clause
    );
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![&now];
    params.extend(bound(&f.params));
    tx.execute(&tx.cached(&sql).await?, &params).await
}

pub(in crate::store::postgres) async fn count_deliveries(
    c: &Client,
    q: &DeliveryQuery,
    scope: Scope,
) -> Pg<u64> {
    let f = filter::counted(Dialect::Postgres, q, scope);
    let sql = format!("SELECT COUNT(*) FROM deliveries WHERE {}", f.clause);
    let row = c
        .query_one(&c.cached(&sql).await?, &bound(&f.params))
        .await?;
    Ok(u64::try_from(row.try_get::<_, i64>(0)?).unwrap_or(0))
}

pub(in crate::store::postgres) async fn list_events(
    c: &Client,
    q: &EventQuery,
) -> Pg<Vec<EventSummary>> {
    let mut f = filter::events(Dialect::Postgres, q, 0);
    let limit = f.bind(filter::limit(q.limit));
    let sql = format!(
        "SELECT seq, id, source, (SELECT t.event_type FROM event_types t WHERE t.seq = events.seq), \
         received_at, NOT EXISTS (SELECT 1 FROM unrouted q WHERE q.seq = events.seq) \
         FROM events WHERE {} ORDER BY seq DESC LIMIT {limit}",
        f.clause
    );
    let rows = c.query(&c.cached(&sql).await?, &bound(&f.params)).await?;
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

pub(in crate::store::postgres) async fn get_event(c: &Client, id: &str) -> Pg<Option<EventView>> {
    let Some(r) = c
        .query_opt(
            &c.cached(
                "SELECT e.id, e.source, t.event_type, e.received_at, \
             NOT EXISTS (SELECT 1 FROM unrouted q WHERE q.seq = e.seq), e.headers, e.body \
             FROM events e LEFT JOIN event_types t ON t.seq = e.seq WHERE e.id = $1",
            )
            .await?,
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
        .query(&c.cached(&ROUTES_SQL.replace("?1", "$1")).await?, &[&id])
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

/// Puts an event back in the routing queue (its lease free) and counts the replay; false when
/// there is no such event.
pub(in crate::store::postgres) async fn replay_event(c: &Client, id: &str) -> Pg<bool> {
    let n = c
        .execute(
            &c.cached(
                "WITH e AS (UPDATE events SET replays = replays + 1 WHERE id = $1 RETURNING seq) \
                 INSERT INTO unrouted (seq) SELECT seq FROM e \
                 ON CONFLICT (seq) DO UPDATE SET lease_until = 0, owner = NULL",
            )
            .await?,
            &[&id],
        )
        .await?;
    Ok(n > 0)
}

/// Held by the instance pruning: instances share the work by taking turns, not by racing for (and
/// deadlocking on) the same old rows.
pub(in crate::store::postgres) const PRUNE_LOCK: i64 = 0x686f_6f6b_7072_756e; // "hookprun"

pub(in crate::store::postgres) async fn prune(
    tx: &Transaction<'_>,
    before: i64,
    batch: usize,
) -> Pg<u64> {
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
    // An event goes once it is routed and none of its deliveries (or waiting routes) remain. A
    // replay committed meanwhile counted up `replays`, which the delete re-checks on the row it
    // waited for (a check of `unrouted` would still see the statement's snapshot).
    let events = "WITH picked AS (SELECT id, replays FROM events e WHERE received_at < $1 \
                    AND NOT EXISTS (SELECT 1 FROM unrouted q WHERE q.seq = e.seq) \
                    AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id) \
                    AND NOT EXISTS (SELECT 1 FROM route_results r WHERE r.event_id = e.id \
                      AND r.outcome = 'waiting') \
                    ORDER BY seq LIMIT $2), \
                  gone AS (DELETE FROM events e USING picked WHERE e.id = picked.id \
                    AND e.replays = picked.replays RETURNING e.id, e.seq), \
                  types AS (DELETE FROM event_types t USING gone WHERE t.seq = gone.seq), \
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
