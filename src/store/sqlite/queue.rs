//! The queue's statements on SQLite: events in, routings recorded, deliveries claimed and their
//! attempts recorded. Run by the writer thread inside its transaction.

use crate::store::*;
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashMap;

pub(super) fn insert_event(c: &Connection, ev: &StoredEvent) -> rusqlite::Result<()> {
    c.prepare_cached(
        "INSERT INTO events (id, source, received_at, headers, query, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        ev.id,
        ev.source,
        ev.received_at,
        pairs_to_json(&ev.headers),
        pairs_to_json(&ev.query),
        &ev.body[..]
    ])?;
    // Its place in the route loop's queue. Atomic with the insert only inside a savepoint: the
    // writer runs inserts in one (see `writer::grouped`).
    c.prepare_cached("INSERT INTO unrouted (seq) VALUES (last_insert_rowid())")?
        .execute([])?;
    Ok(())
}

/// A `StoredEvent` from columns id, source, received_at, headers, query, body, replays (in that
/// order, first).
pub(super) fn event_row(r: &rusqlite::Row) -> rusqlite::Result<StoredEvent> {
    Ok(StoredEvent {
        id: r.get(0)?,
        source: r.get(1)?,
        received_at: r.get(2)?,
        headers: pairs_from_json(&r.get::<_, String>(3)?),
        query: pairs_from_json(&r.get::<_, String>(4)?),
        body: Bytes::from(r.get::<_, Vec<u8>>(5)?),
        replays: r.get(6)?,
    })
}

pub(super) fn unrouted(
    c: &Connection,
    span: Span,
    limit: usize,
) -> rusqlite::Result<Vec<(i64, StoredEvent)>> {
    let mut stmt = c.prepare_cached(
        "SELECT e.id, e.source, e.received_at, e.headers, e.query, e.body, e.replays, e.seq \
         FROM unrouted q JOIN events e ON e.seq = q.seq \
         WHERE q.seq > ?1 AND q.seq <= ?2 ORDER BY q.seq LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![span.after, span.upto, limit as i64], |r| {
        Ok((r.get(7)?, event_row(r)?))
    })?;
    rows.collect()
}

/// See [`Queue::last_seq`]. The writer assigns `seq`s and commits in one order.
pub(super) fn last_seq(c: &Connection) -> rusqlite::Result<i64> {
    c.prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM events")?
        .query_row([], |r| r.get(0))
}

/// See [`Queue::record_routing`]: the fence is the event's row in `unrouted`, which the first
/// statement deletes only for the first routing of an event, and the `replays` in both: a routing
/// made before a replay (whose delivery ids the store may hold already) is not taken.
pub(super) fn record_routing(
    c: &Connection,
    batch: &RoutingBatch,
    now: i64,
) -> rusqlite::Result<Vec<String>> {
    let mut leased = Vec::new();
    let attempted: HashMap<&str, &Attempt> = batch
        .attempts
        .iter()
        .map(|a| (a.delivery_id.as_str(), a))
        .collect();
    for routing in &batch.routings {
        // The event's `seq`, when this routing is the first taken for it.
        let taken: Option<i64> = c
            .prepare_cached(
                "DELETE FROM unrouted WHERE seq = (SELECT seq FROM events WHERE id = ?1 AND replays = ?2) \
                 RETURNING seq",
            )?
            .query_row(params![routing.event_id, routing.replays], |r| r.get(0))
            .optional()?;
        if let (Some(seq), Some(event_type)) = (taken, &routing.event_type) {
            // Replaced: a replay's routing may find another type (the config changed meanwhile).
            c.prepare_cached(
                "INSERT OR REPLACE INTO event_types (seq, event_type) VALUES (?1, ?2)",
            )?
            .execute(params![seq, event_type])?;
        }
        let first = taken.is_some();
        // Routed already (or pruned): only routes still waiting for their plugin are taken.
        let waiting: Vec<String> = if first {
            Vec::new()
        } else {
            c.prepare_cached(
                "SELECT r.route FROM route_results r JOIN events e ON e.id = r.event_id \
                 WHERE r.event_id = ?1 AND r.outcome = 'waiting' AND e.replays = ?2",
            )?
            .query_map(params![routing.event_id, routing.replays], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?
        };
        let takes = |route: &str| first || waiting.iter().any(|w| w == route);
        for result in routing
            .results
            .iter()
            .filter(|r| takes(&r.route) && !(first && routing.implies(r)))
        {
            c.prepare_cached(
                "INSERT OR REPLACE INTO route_results (event_id, route, outcome, detail) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![routing.event_id, result.route, result.outcome.as_str(), result.detail])?;
        }
        for d in routing.deliveries.iter().filter(|d| takes(&d.route)) {
            let lease = batch.leases.get(&d.id).copied();
            let attempt = attempted.get(d.id.as_str()).copied();
            let (status, next) = match attempt {
                Some(a) => a.after.state(),
                None => (
                    d.status,
                    (d.status == DeliveryStatus::Pending).then_some(now),
                ),
            };
            c.prepare_cached(
                "INSERT INTO deliveries (id, event_id, route, target, status, body, headers, next_attempt_at, \
                 last_error, created_at, updated_at, lease_until, attempts) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            )?
            .execute(params![
                d.id,
                routing.event_id,
                d.route,
                d.target,
                status.as_str(),
                d.body.as_deref(),
                pairs_to_json(&d.headers),
                next,
                attempt.map_or(d.error.as_deref(), |a| a.error.as_deref()),
                now,
                attempt.map_or(now, |a| a.finished_at),
                lease.unwrap_or(0),
                attempt.map_or(0, |a| a.attempt)
            ])?;
            if let Some(a) = attempt {
                insert_attempt(c, a)?;
            } else if lease.is_some() {
                leased.push(d.id.clone());
            }
        }
    }
    Ok(leased)
}

/// Whether recording `batch` leaves a delivery a claim can take (so the worker must look): one
/// pending and not leased, or attempted and due again.
pub(super) fn claimable(batch: &RoutingBatch) -> bool {
    let after: HashMap<&str, AfterAttempt> = batch
        .attempts
        .iter()
        .map(|a| (a.delivery_id.as_str(), a.after))
        .collect();
    batch
        .routings
        .iter()
        .flat_map(|r| &r.deliveries)
        .filter(|d| d.status == DeliveryStatus::Pending && !batch.leases.contains_key(&d.id))
        .any(|d| {
            after
                .get(d.id.as_str())
                .is_none_or(|a| matches!(a, AfterAttempt::RetryAt(_)))
        })
}

pub(super) fn release_leases(c: &Connection, ids: &[String]) -> rusqlite::Result<()> {
    let mut stmt = c.prepare_cached(
        "UPDATE deliveries SET lease_until = 0 WHERE id = ?1 AND status = 'pending'",
    )?;
    for id in ids {
        stmt.execute(params![id])?;
    }
    Ok(())
}

/// A target's due deliveries, oldest due first (`deliveries_due`, a partial index of the pending
/// ones, serves this and [`NEXT_DUE`]: `plans` asserts it).
pub(super) const CLAIM: &str = "SELECT d.seq, d.id, d.event_id, t.event_type, COALESCE(d.body, e.body), d.headers, \
     d.attempts, d.created_at FROM deliveries d JOIN events e ON e.id = d.event_id \
     LEFT JOIN event_types t ON t.seq = e.seq \
     WHERE d.target = ?1 AND d.status = 'pending' AND d.next_attempt_at <= ?2 AND d.lease_until <= ?2 \
     ORDER BY d.next_attempt_at LIMIT ?3";

/// When a target's next pending delivery falls due.
pub(super) const NEXT_DUE: &str = "SELECT MIN(next_attempt_at) FROM deliveries \
     WHERE target = ?1 AND status = 'pending' AND lease_until <= ?2";

pub(super) fn claim(
    c: &Connection,
    target: &str,
    now: i64,
    limit: usize,
    lease_ms: i64,
) -> rusqlite::Result<Vec<DueDelivery>> {
    let mut stmt = c.prepare_cached(CLAIM)?;
    let rows = stmt.query_map(params![target, now, limit as i64], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            DueDelivery {
                id: r.get(1)?,
                event_id: r.get(2)?,
                event_type: r.get(3)?,
                body: Bytes::from(r.get::<_, Vec<u8>>(4)?),
                headers: pairs_from_json(&r.get::<_, String>(5)?),
                attempts: r.get::<_, i64>(6)? as u32,
                created_at: r.get(7)?,
            },
        ))
    })?;
    let claimed: Vec<(i64, DueDelivery)> = rows.collect::<rusqlite::Result<_>>()?;
    let mut lease = c.prepare_cached("UPDATE deliveries SET lease_until = ?2 WHERE seq = ?1")?;
    for (seq, _) in &claimed {
        lease.execute(params![seq, now.saturating_add(lease_ms)])?;
    }
    Ok(claimed.into_iter().map(|(_, d)| d).collect())
}

/// The earliest due time among `targets` (one index seek each).
pub(super) fn next_due(
    c: &Connection,
    now: i64,
    targets: &[String],
) -> rusqlite::Result<Option<i64>> {
    let mut stmt = c.prepare_cached(NEXT_DUE)?;
    let mut earliest = None;
    for t in targets {
        let at = stmt
            .query_row(params![t, now], |r| r.get::<_, Option<i64>>(0))
            .optional()?
            .flatten();
        earliest = earliest.into_iter().chain(at).min();
    }
    Ok(earliest)
}

pub(super) fn unrouted_count(c: &Connection) -> rusqlite::Result<u64> {
    let n = c
        .prepare_cached("SELECT COUNT(*) FROM unrouted")?
        .query_row([], |r| r.get::<_, i64>(0))?;
    Ok(n.max(0) as u64)
}

pub(super) fn record_attempt(c: &Connection, a: &Attempt) -> rusqlite::Result<()> {
    insert_attempt(c, a)?;
    let (status, next) = a.after.state();
    c.prepare_cached(
        "UPDATE deliveries SET status = ?2, attempts = ?3, next_attempt_at = ?4, lease_until = 0, last_error = ?5, \
         updated_at = ?6 WHERE id = ?1",
    )?
    .execute(params![a.delivery_id, status.as_str(), a.attempt, next, a.error, a.finished_at])?;
    Ok(())
}

/// Logs an attempt (its delivery's state is the caller's).
fn insert_attempt(c: &Connection, a: &Attempt) -> rusqlite::Result<()> {
    c.prepare_cached(
        "INSERT INTO attempts (delivery_id, attempt, started_at, duration_ms, status_code, error, response_headers, \
         response_body) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        a.delivery_id,
        a.attempt,
        a.started_at,
        a.duration_ms,
        a.status_code,
        a.error,
        pairs_to_json(&a.response_headers),
        &a.response_body[..]
    ])?;
    Ok(())
}

/// Events with a route waiting for its plugin, for the routes in `routes`, oldest first.
pub(super) fn waiting_routes(
    c: &Connection,
    routes: &[String],
    limit: usize,
) -> rusqlite::Result<Vec<WaitingRoute>> {
    let mut stmt = c.prepare_cached(
        "SELECT e.id, e.source, e.received_at, e.headers, e.query, e.body, e.replays, t.event_type, r.route \
         FROM route_results r JOIN events e ON e.id = r.event_id LEFT JOIN event_types t ON t.seq = e.seq \
         WHERE r.outcome = 'waiting' AND r.route = ?1 ORDER BY e.seq LIMIT ?2",
    )?;
    let mut out = Vec::new();
    for route in routes {
        let left = limit.saturating_sub(out.len());
        if left == 0 {
            break;
        }
        let rows = stmt.query_map(params![route, left as i64], |r| {
            Ok(WaitingRoute {
                event: event_row(r)?,
                event_type: r.get(7)?,
                route: r.get(8)?,
            })
        })?;
        for row in rows {
            out.push(row?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_unrouted(c: &Connection) -> Vec<StoredEvent> {
        let events = unrouted(c, Span::ALL, 100).unwrap();
        events.into_iter().map(|(_, e)| e).collect()
    }

    fn ids(page: &[(i64, StoredEvent)]) -> Vec<&str> {
        page.iter().map(|(_, e)| e.id.as_str()).collect()
    }

    #[test]
    fn unrouted_events_come_in_pages_up_to_the_last_seq_asked_for() {
        let conn = Connection::open_in_memory().unwrap();
        for m in super::super::MIGRATIONS {
            conn.execute_batch(m).unwrap();
        }
        assert_eq!(last_seq(&conn).unwrap(), 0);
        for id in ["a", "b", "c", "d"] {
            insert_event(&conn, &StoredEvent::blank(id, 0)).unwrap();
        }
        let upto = last_seq(&conn).unwrap();
        insert_event(&conn, &StoredEvent::blank("later", 0)).unwrap();
        conn.execute(
            "DELETE FROM unrouted WHERE seq = (SELECT seq FROM events WHERE id = 'b')",
            [],
        )
        .unwrap();
        let first = unrouted(&conn, Span::upto(upto), 2).unwrap();
        assert_eq!(ids(&first), ["a", "c"], "routed events are left out");
        let after = first[1].0;
        let rest = unrouted(&conn, Span { after, upto }, 2).unwrap();
        assert_eq!(ids(&rest), ["d"], "nothing committed after the bound");
        assert_eq!(all_unrouted(&conn).len(), 4);
    }

    fn routing(replays: u32, delivery: &str) -> RoutingBatch {
        let mut routing = Routing::new(&StoredEvent {
            replays,
            ..StoredEvent::blank("e", 0)
        });
        routing.deliveries.push(NewDelivery::pending(delivery));
        RoutingBatch {
            routings: vec![routing],
            ..Default::default()
        }
    }

    #[test]
    fn a_routing_made_before_a_replay_is_not_taken_and_the_replays_own_is() {
        let conn = Connection::open_in_memory().unwrap();
        for m in super::super::MIGRATIONS {
            conn.execute_batch(m).unwrap();
        }
        insert_event(&conn, &StoredEvent::blank("e", 0)).unwrap();
        record_routing(&conn, &routing(0, "d0"), 1).unwrap();
        super::super::log::replay_event(&conn, "e").unwrap();
        let replayed = all_unrouted(&conn);
        assert_eq!((replayed.len(), replayed[0].replays), (1, 1));
        // Its delivery id is in the store already: taking it again would fail the whole batch.
        record_routing(&conn, &routing(0, "d0"), 2).unwrap();
        assert_eq!(all_unrouted(&conn).len(), 1, "still unrouted");
        record_routing(&conn, &routing(1, "d1"), 3).unwrap();
        assert!(all_unrouted(&conn).is_empty());
        let deliveries: i64 = conn
            .query_row("SELECT COUNT(*) FROM deliveries", [], |r| r.get(0))
            .unwrap();
        assert_eq!(deliveries, 2);
    }

    #[test]
    fn a_first_routing_leaves_delivered_routes_to_their_deliveries_and_a_replay_writes_them() {
        let conn = Connection::open_in_memory().unwrap();
        for m in super::super::MIGRATIONS {
            conn.execute_batch(m).unwrap();
        }
        insert_event(&conn, &StoredEvent::blank("e", 0)).unwrap();
        let outcome = |route: &str, outcome, detail: Option<&str>| RouteResult {
            route: route.into(),
            outcome,
            detail: detail.map(Into::into),
            elapsed_us: 0,
        };
        let mut batch = routing(0, "d0");
        batch.routings[0].results = vec![
            outcome("r", Outcome::Delivered, Some("1 message(s)")),
            outcome("f", Outcome::Filtered, None),
            outcome("none", Outcome::Delivered, Some("1 message(s)")),
        ];
        record_routing(&conn, &batch, 1).unwrap();
        let rows = |c: &Connection| -> i64 {
            c.query_row("SELECT COUNT(*) FROM route_results", [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(rows(&conn), 2, "`r` delivered: its delivery says so");
        let routes = |c: &Connection| -> Vec<(String, String, Option<String>)> {
            let event = super::super::log::get_event(c, "e").unwrap();
            let routes = event.routes.into_iter();
            routes.map(|r| (r.route, r.outcome, r.detail)).collect()
        };
        let view = |route: &str, outcome: &str, detail: Option<&str>| {
            (
                route.to_string(),
                outcome.to_string(),
                detail.map(Into::into),
            )
        };
        assert_eq!(
            routes(&conn),
            [
                view("f", "filtered", None),
                view("none", "delivered", Some("1 message(s)")),
                view("r", "delivered", None),
            ]
        );

        super::super::log::replay_event(&conn, "e").unwrap();
        let mut replayed = routing(1, "d1");
        replayed.routings[0].results = vec![outcome("r", Outcome::Delivered, Some("2 message(s)"))];
        record_routing(&conn, &replayed, 2).unwrap();
        let r: Vec<_> = routes(&conn).into_iter().filter(|v| v.0 == "r").collect();
        assert_eq!(r, [view("r", "delivered", Some("2 message(s)"))], "written");
    }

    fn attempt(delivery: &str, after: AfterAttempt) -> Attempt {
        Attempt {
            delivery_id: delivery.into(),
            attempt: 1,
            started_at: 5,
            duration_ms: 1,
            status_code: Some(503),
            error: Some("HTTP 503".into()),
            response_headers: Vec::new(),
            response_body: Bytes::new(),
            after,
            finished_at: 6,
        }
    }

    #[test]
    fn a_routing_recorded_after_its_first_attempts_writes_each_delivery_as_its_attempt_left_it() {
        let conn = Connection::open_in_memory().unwrap();
        for m in super::super::MIGRATIONS {
            conn.execute_batch(m).unwrap();
        }
        insert_event(&conn, &StoredEvent::blank("e", 0)).unwrap();
        let mut batch = routing(0, "retried");
        let mut second = batch.routings[0].deliveries[0].clone();
        second.id = "done".into();
        batch.routings[0].deliveries.push(second);
        let mut third = batch.routings[0].deliveries[0].clone();
        third.id = "unattempted".into();
        batch.routings[0].deliveries.push(third);
        batch.attempts = vec![
            attempt("retried", AfterAttempt::RetryAt(100)),
            attempt("done", AfterAttempt::Succeeded),
        ];
        assert!(
            claimable(&batch),
            "a retry is due later, and one went unattempted"
        );
        record_routing(&conn, &batch, 1).unwrap();
        let rows: Vec<(String, String, i64, Option<i64>, i64)> = conn
            .prepare("SELECT id, status, attempts, next_attempt_at, lease_until FROM deliveries ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(
            rows,
            [
                ("done".into(), "succeeded".into(), 1, None, 0),
                ("retried".into(), "pending".into(), 1, Some(100), 0),
                ("unattempted".into(), "pending".into(), 0, Some(1), 0),
            ]
        );
        let logged: i64 = conn
            .query_row("SELECT COUNT(*) FROM attempts", [], |r| r.get(0))
            .unwrap();
        assert_eq!(logged, 2);
        assert!(all_unrouted(&conn).is_empty());

        batch.routings[0].deliveries.truncate(2);
        batch.attempts[0].after = AfterAttempt::Succeeded;
        assert!(!claimable(&batch), "nothing left for a claim");
    }
}
