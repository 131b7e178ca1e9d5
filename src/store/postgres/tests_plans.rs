//! The delivery log's queries as PostgreSQL plans them on a log of 100,000 deliveries with the
//! spread a busy gateway has (rare failures, one busy target and route): no filter reads the whole
//! table, and the rare ones go straight to their index.

use super::{fresh_database, open};
use crate::store::filter::{self, Dialect, Scope};
use crate::store::postgres::queries::bound;
use crate::store::*;

/// Seeds the log: 1 in 200 deliveries failed, 1 in 500 dead, 1 in 1000 pending, the rest
/// succeeded; target `t2` and route `r2` take 1 in 50 and 1 in 20; 1 event in 100 is from `gh`
/// and of type `push`.
const SEED: &str = "
INSERT INTO events (id, source, received_at, headers, query, body)
  SELECT 'evt_' || i, CASE WHEN i % 100 = 0 THEN 'gh' ELSE 'plain' END, i, '[]', '[]', '\\x7b7d'
  FROM generate_series(1, 50000) i;
INSERT INTO event_types (seq, event_type)
  SELECT seq, CASE WHEN seq % 100 = 0 THEN 'push' ELSE 'run' END FROM events;
INSERT INTO deliveries (id, event_id, route, target, status, headers, attempts, created_at, updated_at)
  SELECT 'dlv_' || i, 'evt_' || (i / 2 + 1),
         CASE WHEN i % 20 = 0 THEN 'r2' ELSE 'r' END,
         CASE WHEN i % 50 = 0 THEN 't2' ELSE 't' END,
         CASE WHEN i % 200 = 0 THEN 'failed' WHEN i % 500 = 1 THEN 'dead'
              WHEN i % 1000 = 2 THEN 'pending' ELSE 'succeeded' END,
         '[]', 1, i, i
  FROM generate_series(1, 100000) i;
ANALYZE events;
ANALYZE event_types;
ANALYZE deliveries;
";

#[tokio::test]
async fn pg_every_log_filter_avoids_reading_the_whole_table() {
    let Some(url) = fresh_database("plans").await else {
        return;
    };
    let store = open(&url).await;
    let client = store.client().await.expect("client");
    client.batch_execute(SEED).await.expect("seed");
    let plan = |sql: String, f: filter::Filter| {
        let client = &client;
        async move {
            let rows = client
                .query(&format!("EXPLAIN {sql}"), &bound(&f.params))
                .await
                .expect("explain");
            rows.iter()
                .map(|r| r.get::<_, String>(0))
                .collect::<Vec<_>>()
                .join("\n")
        }
    };
    let listed = |q: DeliveryQuery| {
        let mut f = filter::deliveries(Dialect::Postgres, &q, Scope::Listed, 0);
        let limit = f.bind(filter::limit(50));
        let sql = format!(
            "SELECT * FROM deliveries WHERE {} ORDER BY seq DESC LIMIT {limit}",
            f.clause
        );
        plan(sql, f)
    };
    let q = |f: fn(&mut DeliveryQuery)| {
        let mut q = DeliveryQuery::default();
        f(&mut q);
        q
    };

    let failed = listed(q(|q| q.status = Some(DeliveryStatus::Failed))).await;
    assert!(failed.contains("deliveries_status"), "{failed}");
    let rare_target = listed(q(|q| q.target = Some("t2".into()))).await;
    assert!(rare_target.contains("deliveries_target"), "{rare_target}");
    let rare_route_failed = listed(q(|q| {
        q.route = Some("r2".into());
        q.status = Some(DeliveryStatus::Dead);
    }))
    .await;
    let cases = [
        failed,
        rare_target,
        rare_route_failed,
        listed(q(|_| {})).await,
        listed(q(|q| q.target = Some("t".into()))).await,
        listed(q(|q| q.route = Some("r2".into()))).await,
        listed(q(|q| {
            q.target = Some("t".into());
            q.status = Some(DeliveryStatus::Succeeded);
        }))
        .await,
        listed(q(|q| {
            q.source = Some("gh".into());
            q.since = Some(90_000);
        }))
        .await,
        listed(q(|q| q.before = Some(500))).await,
        // A time range that holds nothing, and one that holds every row.
        listed(q(|q| q.since = Some(200_000))).await,
        listed(q(|q| q.since = Some(1))).await,
    ];
    for p in &cases {
        assert!(
            !p.contains("Seq Scan on deliveries"),
            "reads every delivery:\n{p}"
        );
    }

    let retryable = filter::deliveries(
        Dialect::Postgres,
        &DeliveryQuery::default(),
        Scope::Retryable,
        0,
    );
    let count = plan(
        format!("SELECT COUNT(*) FROM deliveries WHERE {}", retryable.clause),
        retryable,
    )
    .await;
    assert!(count.contains("deliveries_status"), "{count}");

    for (source, event_type, since) in [
        (Some("gh"), None, None),
        (None, Some("push"), None),
        (None, None, Some(60_000)),
    ] {
        let eq = EventQuery {
            source: source.map(Into::into),
            event_type: event_type.map(Into::into),
            since,
            ..EventQuery::default()
        };
        let mut f = filter::events(Dialect::Postgres, &eq, 0);
        let limit = f.bind(filter::limit(50));
        let sql = format!(
            "SELECT seq, id FROM events WHERE {} ORDER BY seq DESC LIMIT {limit}",
            f.clause
        );
        let p = plan(sql, f).await;
        assert!(!p.contains("Seq Scan on events"), "reads every event:\n{p}");
        assert!(
            !p.contains("Seq Scan on event_types"),
            "reads every type:\n{p}"
        );
    }
}
