//! The delivery log's statements on SQLite: what admin and `/metrics` read (events, deliveries,
//! attempts, queue depth) and change (retries, replays), and retention's pruning.

use super::queue::unrouted_count;
use super::value;
use crate::store::filter::{self, Dialect};
use crate::store::*;
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

/// Pending deliveries per target, for `/metrics` and the console.
pub(super) const PENDING_BY_TARGET: &str =
    "SELECT target, COUNT(*) FROM deliveries WHERE status = 'pending' GROUP BY target";

pub(super) fn queue_depth(c: &Connection) -> rusqlite::Result<QueueDepth> {
    let unrouted = unrouted_count(c)?;
    let pending = c
        .prepare_cached(PENDING_BY_TARGET)?
        .query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(QueueDepth { unrouted, pending })
}

pub(super) const DELIVERY_COLUMNS: &str =
    "seq, id, event_id, route, target, status, attempts, next_attempt_at, last_error";

pub(super) fn delivery_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DeliveryView> {
    Ok(DeliveryView {
        seq: r.get(0)?,
        id: r.get(1)?,
        event_id: r.get(2)?,
        route: r.get(3)?,
        target: r.get(4)?,
        status: r.get(5)?,
        attempts: r.get::<_, i64>(6)? as u32,
        next_attempt_at: r.get(7)?,
        last_error: r.get(8)?,
    })
}

pub(super) fn list_deliveries(
    c: &Connection,
    q: &DeliveryQuery,
) -> rusqlite::Result<Vec<DeliveryView>> {
    let mut f = filter::deliveries(Dialect::Sqlite, q, Scope::Listed, 0);
    let limit = f.bind(filter::limit(q.limit));
    let sql = format!(
        "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE {} ORDER BY seq DESC LIMIT {limit}",
        f.clause
    );
    let mut stmt = c.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(f.params.iter().map(value)), delivery_row)?;
    rows.collect()
}

pub(super) fn get_delivery(
    c: &Connection,
    id: &str,
) -> Result<(DeliveryView, Vec<AttemptView>), StoreError> {
    let q = |e: rusqlite::Error| StoreError::Query(e.to_string());
    let sql = format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = ?1");
    let delivery = c
        .prepare_cached(&sql)
        .map_err(q)?
        .query_row(params![id], delivery_row)
        .optional()
        .map_err(q)?
        .ok_or(StoreError::NotFound)?;
    let mut stmt = c
        .prepare_cached(
            "SELECT attempt, started_at, duration_ms, status_code, error, response_headers, response_body \
             FROM attempts WHERE delivery_id = ?1 ORDER BY attempt, seq",
        )
        .map_err(q)?;
    let attempts = stmt
        .query_map(params![id], |r| {
            Ok(AttemptView {
                attempt: r.get::<_, i64>(0)? as u32,
                started_at: r.get(1)?,
                duration_ms: r.get(2)?,
                status_code: r.get::<_, Option<i64>>(3)?.map(|s| s as u16),
                error: r.get(4)?,
                response_headers: pairs_from_json(&r.get::<_, String>(5)?),
                response_body: String::from_utf8_lossy(&r.get::<_, Vec<u8>>(6)?).into_owned(),
            })
        })
        .map_err(q)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(q)?;
    Ok((delivery, attempts))
}

pub(super) fn retry_delivery(c: &Connection, id: &str, now: i64) -> Result<Retry, StoreError> {
    let q = |e: rusqlite::Error| StoreError::Query(e.to_string());
    let row: Option<(String, i64, String)> = c
        .prepare_cached("SELECT status, attempts, event_id FROM deliveries WHERE id = ?1")
        .map_err(q)?
        .query_row(params![id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()
        .map_err(q)?;
    match row {
        None => Err(StoreError::NotFound),
        Some((status, _, _)) if status == "pending" => Ok(Retry::AlreadyPending),
        Some((status, 0, event_id)) if status == "failed" => {
            Ok(Retry::FailedInRouting { event_id })
        }
        Some(_) => {
            c.prepare_cached(
                "UPDATE deliveries SET status = 'pending', next_attempt_at = ?2, lease_until = 0, updated_at = ?2 \
                 WHERE id = ?1",
            )
            .map_err(q)?
            .execute(params![id, now])
            .map_err(q)?;
            Ok(Retry::Queued)
        }
    }
}

pub(super) fn retry_deliveries(
    c: &Connection,
    q: &DeliveryQuery,
    now: i64,
) -> rusqlite::Result<usize> {
    // ?1 is `now`; the filter's parameters follow.
    let mut f = filter::deliveries(Dialect::Sqlite, q, Scope::Retryable, 1);
    let limit = f.bind(filter::limit(q.limit));
    let sql = format!(
        "UPDATE deliveries SET status = 'pending', next_attempt_at = ?1, lease_until = 0, updated_at = ?1 \
         WHERE seq IN (SELECT seq FROM deliveries WHERE {} ORDER BY seq LIMIT {limit})",
        f.clause
    );
    let params = [Value::from(now)]
        .into_iter()
        .chain(f.params.iter().map(value));
    c.prepare_cached(&sql)?.execute(params_from_iter(params))
}

pub(super) fn count_deliveries(
    c: &Connection,
    q: &DeliveryQuery,
    scope: Scope,
) -> rusqlite::Result<usize> {
    let f = filter::counted(Dialect::Sqlite, q, scope);
    let sql = format!("SELECT COUNT(*) FROM deliveries WHERE {}", f.clause);
    let n: i64 = c
        .prepare_cached(&sql)?
        .query_row(params_from_iter(f.params.iter().map(value)), |r| r.get(0))?;
    Ok(usize::try_from(n).unwrap_or(0))
}

pub(super) fn list_events(c: &Connection, q: &EventQuery) -> rusqlite::Result<Vec<EventSummary>> {
    let mut f = filter::events(Dialect::Sqlite, q, 0);
    let limit = f.bind(filter::limit(q.limit));
    let sql = format!(
        "SELECT seq, id, source, (SELECT t.event_type FROM event_types t WHERE t.seq = events.seq), \
         received_at, NOT EXISTS (SELECT 1 FROM unrouted q WHERE q.seq = events.seq) FROM events \
         WHERE {} ORDER BY seq DESC LIMIT {limit}",
        f.clause
    );
    let mut stmt = c.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(f.params.iter().map(value)), |r| {
        Ok(EventSummary {
            seq: r.get(0)?,
            id: r.get(1)?,
            source: r.get(2)?,
            event_type: r.get(3)?,
            received_at: r.get(4)?,
            routed: r.get(5)?,
        })
    })?;
    rows.collect()
}

pub(super) fn get_event(c: &Connection, id: &str) -> Result<EventView, StoreError> {
    let q = |e: rusqlite::Error| StoreError::Query(e.to_string());
    let mut event = c
        .prepare_cached(
            "SELECT e.id, e.source, t.event_type, e.received_at, \
             NOT EXISTS (SELECT 1 FROM unrouted q WHERE q.seq = e.seq), e.headers, e.body \
             FROM events e LEFT JOIN event_types t ON t.seq = e.seq WHERE e.id = ?1",
        )
        .map_err(q)?
        .query_row(params![id], |r| {
            Ok(EventView {
                id: r.get(0)?,
                source: r.get(1)?,
                event_type: r.get(2)?,
                received_at: r.get(3)?,
                routed: r.get(4)?,
                headers: pairs_from_json(&r.get::<_, String>(5)?),
                body: String::from_utf8_lossy(&r.get::<_, Vec<u8>>(6)?).into_owned(),
                deliveries: Vec::new(),
                routes: Vec::new(),
            })
        })
        .optional()
        .map_err(q)?
        .ok_or(StoreError::NotFound)?;
    let mut stmt = c
        .prepare_cached("SELECT id FROM deliveries WHERE event_id = ?1 ORDER BY seq")
        .map_err(q)?;
    event.deliveries = stmt
        .query_map(params![id], |r| r.get(0))
        .map_err(q)?
        .collect::<rusqlite::Result<Vec<String>>>()
        .map_err(q)?;
    let mut stmt = c.prepare_cached(ROUTES_SQL).map_err(q)?;
    event.routes = stmt
        .query_map(params![id], |r| {
            Ok(RouteOutcomeView {
                route: r.get(0)?,
                outcome: r.get(1)?,
                detail: r.get(2)?,
            })
        })
        .map_err(q)?
        .collect::<rusqlite::Result<_>>()
        .map_err(q)?;
    Ok(event)
}

pub(super) fn replay_event(c: &Connection, id: &str) -> Result<(), StoreError> {
    let changed = c
        // Queued for routing again by trigger `events_replayed` (migrations/sqlite/0008): replays
        // are rare, so the trigger's statement journal costs nothing that matters.
        .prepare_cached("UPDATE events SET replays = replays + 1 WHERE id = ?1")
        .and_then(|mut s| s.execute(params![id]))
        .map_err(|e| StoreError::Query(e.to_string()))?;
    if changed == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

pub(super) fn prune(c: &Connection, before: i64, batch: usize) -> rusqlite::Result<usize> {
    let limit = batch as i64;
    let old_deliveries = "SELECT id FROM deliveries WHERE created_at < ?1 AND status != 'pending' ORDER BY seq LIMIT ?2";
    let mut n = c.execute(
        &format!("DELETE FROM attempts WHERE delivery_id IN ({old_deliveries})"),
        params![before, limit],
    )?;
    n += c.execute(
        &format!("DELETE FROM deliveries WHERE id IN ({old_deliveries})"),
        params![before, limit],
    )?;
    // An event goes once it is routed and none of its deliveries remain.
    let old = |column: &str| {
        format!(
            "SELECT {column} FROM events e WHERE received_at < ?1 \
             AND NOT EXISTS (SELECT 1 FROM unrouted q WHERE q.seq = e.seq) \
             AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id) \
             AND NOT EXISTS (SELECT 1 FROM route_results r WHERE r.event_id = e.id AND r.outcome = 'waiting') \
             ORDER BY seq LIMIT ?2"
        )
    };
    let old_events = old("id");
    n += c.execute(
        &format!("DELETE FROM route_results WHERE event_id IN ({old_events})"),
        params![before, limit],
    )?;
    // Not counted, as on PostgreSQL: a type is part of its event.
    c.execute(
        &format!("DELETE FROM event_types WHERE seq IN ({})", old("seq")),
        params![before, limit],
    )?;
    n += c.execute(
        &format!("DELETE FROM events WHERE id IN ({old_events})"),
        params![before, limit],
    )?;
    Ok(n)
}
