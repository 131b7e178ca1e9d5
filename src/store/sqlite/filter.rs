//! The delivery log's filters as SQL: a `WHERE` clause holding only the filters given, with its
//! parameters in order. A clause like `(?1 IS NULL OR status = ?1)` keeps one statement for every
//! combination but hides the equality from SQLite's planner, which then scans the whole table
//! for a rare status or target; with only the given filters it searches the index that fits
//! (`deliveries (status, seq)`, `(target, seq)`, `(route, seq)`, `events (source, seq)`), so a
//! console page costs the same with a million deliveries as with a hundred.

use crate::store::{DeliveryQuery, EventQuery};
use rusqlite::types::Value;

/// A `WHERE` clause (never empty: `1` when nothing filters) and its parameters.
pub(super) struct Filter {
    pub(super) clause: String,
    pub(super) params: Vec<Value>,
}

impl Filter {
    fn new() -> Self {
        Self {
            clause: String::new(),
            params: Vec::new(),
        }
    }

    /// Adds `condition`, whose one `?` takes `value`.
    fn and(&mut self, condition: &str, value: impl Into<Value>) {
        self.and_plain(condition);
        self.params.push(value.into());
    }

    /// Adds `condition`, which takes no parameter.
    fn and_plain(&mut self, condition: &str) {
        if !self.clause.is_empty() {
            self.clause.push_str(" AND ");
        }
        self.clause.push_str(condition);
    }

    fn done(mut self) -> Self {
        if self.clause.is_empty() {
            self.clause.push('1');
        }
        self
    }
}

/// Which deliveries a query selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scope {
    /// The delivery log: every status unless one is asked for; `before` pages.
    Listed,
    /// What a bulk retry takes: never pending ones, never those that failed in routing (no
    /// attempt: their mapping failed, and sending them would send the raw event), and succeeded
    /// ones only when the query names them.
    Retryable,
}

pub(super) fn deliveries(q: &DeliveryQuery, scope: Scope) -> Filter {
    let mut f = Filter::new();
    match (scope, q.status) {
        (_, Some(status)) => f.and("status = ?", status.as_str().to_string()),
        (Scope::Retryable, None) => f.and_plain("status IN ('failed', 'dead')"),
        (Scope::Listed, None) => {}
    }
    if scope == Scope::Retryable {
        f.and_plain("status != 'pending' AND NOT (status = 'failed' AND attempts = 0)");
    }
    // One index serves a query. Without statistics SQLite may pick any equality's index, and
    // `route` of a busy route with a rare status scans that whole route; so the others are
    // written `+column` (no index) and the index is chosen here: status first (failed and dead
    // are the rare ones people look for), then route, then target.
    let (route_col, target_col) = match (q.status.is_some() || scope == Scope::Retryable, &q.route)
    {
        (true, _) => ("+route = ?", "+target = ?"),
        (false, Some(_)) => ("route = ?", "+target = ?"),
        (false, None) => ("route = ?", "target = ?"),
    };
    if let Some(t) = &q.target {
        f.and(target_col, t.clone());
    }
    if let Some(r) = &q.route {
        f.and(route_col, r.clone());
    }
    if let (Scope::Listed, Some(before)) = (scope, q.before) {
        f.and("seq < ?", before);
    }
    if let Some(since) = q.since {
        f.and("created_at >= ?", since);
    }
    if let Some(source) = &q.source {
        f.and(
            "event_id IN (SELECT id FROM events WHERE source = ?)",
            source.clone(),
        );
    }
    f.done()
}

pub(super) fn events(q: &EventQuery) -> Filter {
    let mut f = Filter::new();
    if let Some(s) = &q.source {
        f.and("source = ?", s.clone());
    }
    if let Some(t) = &q.event_type {
        f.and("event_type = ?", t.clone());
    }
    if let Some(before) = q.before {
        f.and("seq < ?", before);
    }
    if let Some(since) = q.since {
        f.and("received_at >= ?", since);
    }
    f.done()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::DeliveryStatus;

    /// The query plan of `sql` (with `params`) on a migrated, empty store.
    fn plan(sql: &str, params: &[Value]) -> String {
        let c = rusqlite::Connection::open_in_memory().expect("open");
        for m in super::super::MIGRATIONS {
            c.execute_batch(m).expect("migrate");
        }
        let mut stmt = c
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .expect("prepare");
        let rows = stmt
            .query_map(rusqlite::params_from_iter(params), |r| {
                r.get::<_, String>(3)
            })
            .expect("plan");
        rows.map(|r| r.expect("row")).collect::<Vec<_>>().join("; ")
    }

    fn delivery_plan(q: &DeliveryQuery) -> String {
        let f = deliveries(q, Scope::Listed);
        plan(
            &format!(
                "SELECT * FROM deliveries WHERE {} ORDER BY seq DESC LIMIT 50",
                f.clause
            ),
            &f.params,
        )
    }

    #[test]
    fn every_delivery_filter_searches_an_index() {
        let by = |f: fn(&mut DeliveryQuery)| {
            let mut q = DeliveryQuery::default();
            f(&mut q);
            delivery_plan(&q)
        };
        let status = by(|q| q.status = Some(DeliveryStatus::Failed));
        assert!(status.contains("USING INDEX deliveries_status"), "{status}");
        let target = by(|q| q.target = Some("t".into()));
        assert!(target.contains("USING INDEX deliveries_target"), "{target}");
        let route = by(|q| q.route = Some("r".into()));
        assert!(route.contains("USING INDEX deliveries_route"), "{route}");
        let rare_status_on_a_busy_route = by(|q| {
            q.status = Some(DeliveryStatus::Failed);
            q.route = Some("r".into());
            q.target = Some("t".into());
        });
        assert!(
            rare_status_on_a_busy_route.contains("USING INDEX deliveries_status"),
            "{rare_status_on_a_busy_route}"
        );
        let route_and_target = by(|q| {
            q.route = Some("r".into());
            q.target = Some("t".into());
        });
        assert!(
            route_and_target.contains("USING INDEX deliveries_route"),
            "{route_and_target}"
        );
        for p in [
            &status,
            &target,
            &route,
            &rare_status_on_a_busy_route,
            &route_and_target,
        ] {
            assert!(!p.contains("TEMP B-TREE"), "sorted in memory: {p}");
        }
        // Nothing to filter: the newest rows in key order, LIMIT stops the scan.
        let all = by(|_| {});
        assert!(
            all.contains("SCAN deliveries") && !all.contains("TEMP B-TREE"),
            "{all}"
        );
    }

    #[test]
    fn counting_what_a_bulk_retry_takes_searches_the_status_index() {
        for status in [None, Some(DeliveryStatus::Dead)] {
            let q = DeliveryQuery {
                status,
                ..DeliveryQuery::default()
            };
            let f = deliveries(&q, Scope::Retryable);
            let p = plan(
                &format!("SELECT COUNT(*) FROM deliveries WHERE {}", f.clause),
                &f.params,
            );
            assert!(
                p.contains("USING") && p.contains("INDEX deliveries_status"),
                "{p}"
            );
        }
    }

    #[test]
    fn an_event_source_filter_searches_its_index() {
        let q = EventQuery {
            source: Some("gh".into()),
            ..EventQuery::default()
        };
        let f = events(&q);
        let p = plan(
            &format!(
                "SELECT * FROM events WHERE {} ORDER BY seq DESC LIMIT 50",
                f.clause
            ),
            &f.params,
        );
        assert!(p.contains("USING INDEX events_source"), "{p}");
        assert!(!p.contains("TEMP B-TREE"), "{p}");
    }
}
