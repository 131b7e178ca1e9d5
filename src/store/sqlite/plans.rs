//! The SQLite plans of the delivery log's filters (`store::filter`) on a migrated store: each one
//! searches an index and none sorts in memory. Also the queue's reads of pending deliveries.

use crate::store::filter::{self, Dialect, Param, Scope};
use crate::store::{DeliveryQuery, DeliveryStatus, EventQuery};
use rusqlite::types::Value;

/// The query plan of `sql` (with `params`) on a migrated, empty store.
fn plan(sql: &str, params: &[Param]) -> String {
    let params: Vec<Value> = params.iter().map(super::value).collect();
    let c = rusqlite::Connection::open_in_memory().expect("open");
    for m in super::MIGRATIONS {
        c.execute_batch(m).expect("migrate");
    }
    let mut stmt = c
        .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
        .expect("prepare");
    let rows = stmt
        .query_map(rusqlite::params_from_iter(&params), |r| {
            r.get::<_, String>(3)
        })
        .expect("plan");
    rows.map(|r| r.expect("row")).collect::<Vec<_>>().join("; ")
}

fn delivery_plan(q: &DeliveryQuery) -> String {
    let f = filter::deliveries(Dialect::Sqlite, q, Scope::Listed, 0);
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
    // A time range reads only its page: the range's first row bounds `seq`, found in the time
    // index, whether the range holds every row or none.
    let since = by(|q| q.since = Some(7));
    assert!(
        since.contains("INDEX deliveries_created (created_at>?)")
            && since.contains("INTEGER PRIMARY KEY (rowid>?)")
            && !since.contains("TEMP B-TREE"),
        "{since}"
    );
    let since_failed = by(|q| {
        q.since = Some(7);
        q.status = Some(DeliveryStatus::Failed);
    });
    assert!(
        since_failed.contains("USING INDEX deliveries_status (status=? AND seq>?)"),
        "{since_failed}"
    );
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
        let f = filter::deliveries(Dialect::Sqlite, &q, Scope::Retryable, 0);
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
fn every_event_filter_searches_an_index() {
    let by = |q: EventQuery, index: &str| {
        let f = filter::events(Dialect::Sqlite, &q, 0);
        let p = plan(
            &format!(
                "SELECT * FROM events WHERE {} ORDER BY seq DESC LIMIT 50",
                f.clause
            ),
            &f.params,
        );
        assert!(p.contains(index), "{p}");
        assert!(!p.contains("TEMP B-TREE"), "{p}");
    };
    let q = EventQuery::default;
    by(
        EventQuery {
            source: Some("gh".into()),
            ..q()
        },
        "USING INDEX events_source",
    );
    by(
        EventQuery {
            event_type: Some("push".into()),
            ..q()
        },
        "USING COVERING INDEX event_types_type",
    );
    by(
        EventQuery {
            since: Some(7),
            ..q()
        },
        "INDEX events_received (received_at>?)",
    );
}

#[test]
fn the_queue_reads_pending_deliveries_through_an_index() {
    let t = || Param::Text("t".into());
    for (sql, params) in [
        (
            super::queue::CLAIM,
            vec![t(), Param::Int(5), Param::Int(10)],
        ),
        (super::queue::NEXT_DUE, vec![t(), Param::Int(5)]),
    ] {
        let p = plan(sql, &params);
        assert!(p.contains("INDEX deliveries_due (target=?"), "{p}");
        assert!(!p.contains("TEMP B-TREE"), "{p}");
    }
    // Pending counts read only the pending rows, whichever index the planner takes.
    let p = plan(super::log::PENDING_BY_TARGET, &[]);
    assert!(
        p.contains("INDEX deliveries_due") || p.contains("INDEX deliveries_status (status=?)"),
        "{p}"
    );
}
