//! The PostgreSQL store against a real server: what several instances sharing one database rely on
//! (leases, `SKIP LOCKED`, fenced routing, concurrent migrations) and a round trip of every stage.
//!
//! They need a server: `HOOKGATE_TEST_POSTGRES_URL`, which `./scripts/test` sets (it starts a
//! throwaway one and runs these in its PostgreSQL pass). Without it they return at once, saying so
//! on stderr, unless `HOOKGATE_TEST_STORE=postgres` asks for PostgreSQL: then they fail. Each test
//! creates its own database, so tests stay independent and may run in parallel.

use super::PostgresStore;
use crate::store::*;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

const NOW: i64 = 1_000_000;

/// The integration tests' helper, shared so that both make test databases one way.
#[path = "../../../tests/it/utils/pg_database.rs"]
mod pg_database;

/// A fresh, empty database on the test server (its URL), or `None` when there is no server and
/// none was asked for.
async fn fresh_database(name: &str) -> Option<String> {
    let Ok(base) = std::env::var("HOOKGATE_TEST_POSTGRES_URL") else {
        if std::env::var("HOOKGATE_TEST_STORE").as_deref() == Ok("postgres") {
            panic!("HOOKGATE_TEST_STORE=postgres, but HOOKGATE_TEST_POSTGRES_URL is not set");
        }
        eprintln!("skipped: HOOKGATE_TEST_POSTGRES_URL is not set (./scripts/test sets it)");
        return None;
    };
    Some(pg_database::fresh_postgres_database_on(&base, name).await)
}

/// Leases: claims, routing, hand-overs between instances.
#[path = "tests_leases.rs"]
mod leases;

/// Migrations over stored data.
#[path = "tests_migrate.rs"]
mod migrate;

/// The delivery log's query plans on a large log.
#[path = "tests_plans.rs"]
mod plans;

/// Connections: wake-ups, TLS, driver errors.
#[path = "tests_connect.rs"]
mod connect;

async fn open(url: &str) -> PostgresStore {
    PostgresStore::open(url).await.expect("open postgres store")
}

/// A plain connection to the test database, beside the store's own.
async fn raw_client(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect to the test database");
    tokio::spawn(connection);
    client
}

fn event(id: &str) -> StoredEvent {
    StoredEvent {
        id: id.into(),
        source: "gh".into(),
        received_at: NOW,
        headers: vec![("x-a".into(), "1".into())],
        query: vec![],
        body: bytes::Bytes::from(format!("{{\"id\":\"{id}\"}}")),
        replays: 0,
    }
}

/// A routing with one pending delivery of the event's body to target `t`.
fn routing(event_id: &str, delivery_id: &str) -> Routing {
    Routing {
        event_id: event_id.into(),
        replays: 0,
        event_type: Some("push".into()),
        results: vec![RouteResult {
            route: "r".into(),
            outcome: Outcome::Delivered,
            detail: None,
            elapsed_us: 0,
        }],
        deliveries: vec![NewDelivery {
            id: delivery_id.into(),
            route: "r".into(),
            target: "t".into(),
            body: None,
            headers: vec![("x-b".into(), "2".into())],
            status: DeliveryStatus::Pending,
            error: None,
        }],
        plugin_calls: vec![],
    }
}

fn attempt(id: &str, n: u32, after: AfterAttempt, at: i64) -> Attempt {
    Attempt {
        delivery_id: id.into(),
        attempt: n,
        started_at: at,
        duration_ms: 5,
        status_code: Some(500),
        error: Some("boom".into()),
        response_headers: vec![],
        response_body: bytes::Bytes::from_static(b"nope"),
        after,
        finished_at: at,
    }
}

/// Routings recorded without hand-over (no delivery leased).
fn batch(routings: Vec<Routing>) -> Arc<RoutingBatch> {
    Arc::new(RoutingBatch {
        routings,
        ..Default::default()
    })
}

/// `n` events, routed, each with one pending delivery `d{i}` due at NOW.
async fn seed_deliveries(store: &PostgresStore, n: usize) {
    seed_deliveries_from(store, 0, n).await
}

async fn seed_deliveries_from(store: &PostgresStore, from: usize, n: usize) {
    let mut routings = Vec::new();
    for i in from..from + n {
        store
            .insert_event(event(&format!("e{i}")).into())
            .await
            .unwrap();
        routings.push(routing(&format!("e{i}"), &format!("d{i}")));
    }
    store.record_routing(batch(routings), NOW).await.unwrap();
}

#[tokio::test]
async fn pg_the_pool_is_open_before_the_first_request() {
    let Some(url) = fresh_database("warm_pool").await else {
        return;
    };
    let _store = open(&url).await;
    let others = "SELECT count(*) FROM pg_stat_activity \
                  WHERE datname = current_database() AND pid <> pg_backend_pid()";
    let open_now: i64 = raw_client(&url)
        .await
        .query_one(others, &[])
        .await
        .unwrap()
        .get(0);
    assert!(
        open_now >= super::POOL_SIZE as i64,
        "{open_now} connections open"
    );
}

/// Ingress takes its event back for the route loop without a copy only if the group commit let
/// go of its handle before answering.
#[tokio::test]
async fn pg_an_inserted_event_is_released_before_the_answer() {
    let Some(url) = fresh_database("released_events").await else {
        return;
    };
    let store = open(&url).await;
    let events: Vec<std::sync::Arc<StoredEvent>> = (0..8)
        .map(|i| std::sync::Arc::new(event(&format!("e{i}"))))
        .collect();
    let inserts = events.iter().map(|e| store.insert_event(e.clone()));
    for done in futures_util::future::join_all(inserts).await {
        done.unwrap();
    }
    for e in &events {
        assert_eq!(std::sync::Arc::strong_count(e), 1, "{}", e.id);
    }
}

#[tokio::test]
async fn pg_unrouted_events_come_in_pages_up_to_the_last_seq_asked_for() {
    let Some(url) = fresh_database("unrouted_pages").await else {
        return;
    };
    let store = open(&url).await;
    assert_eq!(store.last_seq().await.unwrap(), 0);
    for id in ["a", "b", "c", "d"] {
        store.insert_event(event(id).into()).await.unwrap();
    }
    let upto = store.last_seq().await.unwrap();
    store.insert_event(event("later").into()).await.unwrap();
    store
        .record_routing(batch(vec![routing("b", "db")]), NOW)
        .await
        .unwrap();
    let ids = |page: &[(i64, StoredEvent)]| -> Vec<String> {
        page.iter().map(|(_, e)| e.id.clone()).collect()
    };
    let first = store.unrouted_in(Span::upto(upto), 2).await.unwrap();
    assert_eq!(ids(&first), ["a", "c"], "routed events are left out");
    let after = first[1].0;
    let rest = store.unrouted_in(Span { after, upto }, 2).await.unwrap();
    assert_eq!(ids(&rest), ["d"], "nothing committed after the bound");
    assert_eq!(store.unrouted_events(10).await.unwrap().len(), 4);
}

/// As on SQLite (`sqlite::queue`'s test of the same name): `route_results` holds no row for a
/// route that delivered on the event's first routing, the views still show it, and a replay's
/// routing writes its own.
#[tokio::test]
async fn pg_a_first_routing_leaves_delivered_routes_to_their_deliveries() {
    let Some(url) = fresh_database("implied_routes").await else {
        return;
    };
    let store = open(&url).await;
    store.insert_event(event("e1").into()).await.unwrap();
    let mut first = routing("e1", "d1");
    first.results.push(RouteResult {
        route: "f".into(),
        outcome: Outcome::Filtered,
        detail: None,
        elapsed_us: 0,
    });
    store.record_routing(batch(vec![first]), NOW).await.unwrap();
    let rows: i64 = raw_client(&url)
        .await
        .query_one("SELECT COUNT(*) FROM route_results", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 1, "only `f`: `r`'s delivery says it delivered");
    let routes = |e: EventView| -> Vec<(String, String)> {
        e.routes.into_iter().map(|r| (r.route, r.outcome)).collect()
    };
    let view = |r: &str, o: &str| (r.to_string(), o.to_string());
    let e = store.get_event("e1").await.unwrap();
    assert_eq!(routes(e), [view("f", "filtered"), view("r", "delivered")]);

    store.replay_event("e1").await.unwrap();
    let mut replayed = routing("e1", "d2");
    replayed.replays = 1;
    replayed.results[0].outcome = Outcome::Filtered;
    replayed.deliveries.clear();
    store
        .record_routing(batch(vec![replayed]), NOW)
        .await
        .unwrap();
    let e = store.get_event("e1").await.unwrap();
    assert_eq!(
        routes(e),
        [view("f", "filtered"), view("r", "filtered")],
        "the replay's outcome, not the first routing's delivery"
    );
}

#[tokio::test]
async fn pg_round_trip_insert_route_claim_attempt_retry() {
    let Some(url) = fresh_database("round_trip").await else {
        return;
    };
    let store = open(&url).await;
    store.insert_event(event("e1").into()).await.unwrap();
    let unrouted = store.unrouted_events(10).await.unwrap();
    assert_eq!(unrouted.len(), 1);
    assert_eq!(unrouted[0].headers, vec![("x-a".into(), "1".into())]);
    store
        .record_routing(batch(vec![routing("e1", "d1")]), NOW)
        .await
        .unwrap();
    assert!(store.unrouted_events(10).await.unwrap().is_empty());

    let claimed = store.claim_due("t", NOW, 10, 30_000).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(
        &claimed[0].body[..],
        b"{\"id\":\"e1\"}",
        "the event's body, unchanged"
    );
    assert_eq!(claimed[0].event_type.as_deref(), Some("push"));
    assert!(
        store
            .claim_due("t", NOW, 10, 30_000)
            .await
            .unwrap()
            .is_empty(),
        "leased"
    );

    let retry_at = NOW + 1_000;
    store
        .record_attempt(attempt("d1", 1, AfterAttempt::RetryAt(retry_at), NOW))
        .await
        .unwrap();
    assert!(
        store
            .claim_due("t", NOW, 10, 30_000)
            .await
            .unwrap()
            .is_empty(),
        "not yet due"
    );
    assert_eq!(
        store
            .next_due_at(NOW, vec!["t".into(), "other".into()])
            .await
            .unwrap(),
        Some(retry_at)
    );
    let again = store.claim_due("t", retry_at, 10, 30_000).await.unwrap();
    assert_eq!(again[0].attempts, 1);
    store
        .record_attempt(attempt("d1", 2, AfterAttempt::Dead, retry_at))
        .await
        .unwrap();

    let (view, attempts) = store.get_delivery("d1").await.unwrap();
    assert_eq!((view.status.as_str(), attempts.len()), ("dead", 2));
    assert_eq!(attempts[0].response_body, "nope");
    assert_eq!(
        store.retry_delivery("d1", retry_at).await.unwrap(),
        Retry::Queued
    );
    assert_eq!(
        store.retry_delivery("d1", retry_at).await.unwrap(),
        Retry::AlreadyPending
    );
    assert!(matches!(
        store.retry_delivery("nope", NOW).await,
        Err(StoreError::NotFound)
    ));
    let depth = store.queue_depth().await.unwrap();
    assert_eq!(
        (depth.unrouted, depth.pending),
        (0, vec![("t".to_string(), 1)])
    );

    let listed = store
        .list_deliveries(DeliveryQuery {
            limit: 10,
            source: Some("gh".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    let ev = store.get_event("e1").await.unwrap();
    assert!(ev.routed);
    assert_eq!(ev.deliveries, vec!["d1".to_string()]);
    store.replay_event("e1").await.unwrap();
    let replayed = store.unrouted_events(10).await.unwrap();
    assert_eq!((replayed.len(), replayed[0].replays), (1, 1));
    // A routing made before the replay (with the ids the store holds) is not taken...
    store
        .record_routing(batch(vec![routing("e1", "d1")]), NOW)
        .await
        .unwrap();
    assert_eq!(store.unrouted_events(10).await.unwrap().len(), 1);
    // ...the replay's own is.
    let again = Routing {
        replays: 1,
        ..routing("e1", "d1-replay")
    };
    store.record_routing(batch(vec![again]), NOW).await.unwrap();
    assert!(store.unrouted_events(10).await.unwrap().is_empty());
    assert_eq!(store.get_event("e1").await.unwrap().deliveries.len(), 2);
    store.ping().await.unwrap();
}

#[tokio::test]
async fn pg_targets_retry_many_list_events_waiting_and_prune() {
    let Some(url) = fresh_database("misc").await else {
        return;
    };
    let store = open(&url).await;
    store.set_target_disabled("t", Some("gone")).await.unwrap();
    assert_eq!(
        store.disabled_targets().await.unwrap(),
        vec![("t".into(), "gone".into())]
    );
    store.set_target_disabled("t", None).await.unwrap();
    assert!(store.disabled_targets().await.unwrap().is_empty());

    seed_deliveries(&store, 3).await;
    for d in store.claim_due("t", NOW, 10, 1_000).await.unwrap() {
        store
            .record_attempt(attempt(&d.id, 1, AfterAttempt::Failed, NOW))
            .await
            .unwrap();
    }
    let q = DeliveryQuery {
        status: Some(DeliveryStatus::Failed),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(
        store
            .count_deliveries(q.clone(), Scope::Retryable)
            .await
            .unwrap(),
        3
    );
    assert_eq!(store.retry_deliveries(q, NOW).await.unwrap(), 3);
    let events = store
        .list_events(EventQuery {
            limit: 2,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        events.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        ["e2", "e1"]
    );

    store.insert_event(event("w").into()).await.unwrap();
    let mut waiting = routing("w", "dw");
    waiting.results[0].outcome = Outcome::Waiting;
    waiting.deliveries.clear();
    store
        .record_routing(batch(vec![waiting]), NOW)
        .await
        .unwrap();
    let w = store.waiting_routes(vec!["r".into()], 10).await.unwrap();
    assert_eq!((w.len(), w[0].event.id.as_str()), (1, "w"));
    // The plugin arrived: the waiting route is recorded once, even if two instances resolve it.
    store
        .record_routing(batch(vec![routing("w", "dw")]), NOW)
        .await
        .unwrap();
    store
        .record_routing(batch(vec![routing("w", "dw2")]), NOW)
        .await
        .unwrap();
    assert_eq!(
        store.get_event("w").await.unwrap().deliveries,
        vec!["dw".to_string()]
    );

    for d in store.claim_due("t", NOW, 10, 1_000).await.unwrap() {
        store
            .record_attempt(attempt(&d.id, 2, AfterAttempt::Succeeded, NOW))
            .await
            .unwrap();
    }
    let pruned = store.prune(NOW + 1, 500).await.unwrap();
    assert!(
        pruned >= 4 * 3,
        "attempts, deliveries, results and events: {pruned}"
    );
    assert!(
        store
            .list_events(EventQuery {
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn pg_migrations_are_idempotent_and_safe_from_many_instances() {
    let Some(url) = fresh_database("migrate").await else {
        return;
    };
    let opened = futures_util::future::join_all((0..4).map(|_| PostgresStore::open(&url))).await;
    for store in &opened {
        assert!(
            store.is_ok(),
            "concurrent open failed: {:?}",
            store.as_ref().err()
        );
    }
    drop(opened);
    let store = open(&url).await;
    store.ping().await.unwrap();
    let client = raw_client(&url).await;
    let n: i64 = client
        .query_one("SELECT COUNT(*) FROM schema_migrations", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, super::MIGRATIONS.len() as i64);
}
