//! Migrations applied to a database an older version filled: nothing it stored is lost. And the
//! schema they leave, where the database's own settings could change what it does.

use super::super::MIGRATIONS;
use super::{batch, event, fresh_database, open, raw_client, routing};
use crate::store::*;

/// A database whose default collation is a real locale's (ICU's `en-US`, where `a < b < B`), as
/// a production server's often is; the suite's server defaults to `C.UTF-8`.
async fn database_with_a_locale(name: &str) -> Option<String> {
    let url = fresh_database(name).await?;
    let mut base = url::Url::parse(&url).expect("test url");
    let db = base.path().trim_start_matches('/').to_string();
    base.set_path("/postgres");
    let admin = raw_client(base.as_str()).await;
    admin
        .batch_execute(&format!("DROP DATABASE {db}"))
        .await
        .expect("drop the fresh database");
    admin
        .batch_execute(&format!(
            "CREATE DATABASE {db} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US'"
        ))
        .await
        .expect("a database with ICU's en-US collation (the server needs ICU)");
    Some(url)
}

/// Text keys compare as bytes whatever the database's locale (migration 0006): in the order
/// SQLite's BINARY gives them, so both stores list alike, and with `memcmp` rather than the
/// locale's string comparison on every index entry each event writes.
#[tokio::test]
async fn pg_text_keys_compare_as_bytes_in_a_database_with_a_locale() {
    let Some(url) = database_with_a_locale("collate").await else {
        return;
    };
    let store = open(&url).await;
    store.insert_event(event("e1").into()).await.unwrap();
    let results = ["b", "B", "a"].map(|route| RouteResult {
        route: route.into(),
        outcome: Outcome::Filtered,
        detail: None,
        elapsed_us: 0,
    });
    let mut filtered = routing("e1", "d1");
    filtered.results = results.to_vec();
    filtered.deliveries.clear();
    store
        .record_routing(batch(vec![filtered]), 1)
        .await
        .unwrap();
    let routes: Vec<String> = store
        .get_event("e1")
        .await
        .unwrap()
        .routes
        .into_iter()
        .map(|r| r.route)
        .collect();
    assert_eq!(routes, ["B", "a", "b"], "byte order, not en-US's a, b, B");

    // Every index over text compares bytes, but the instances' (one row per instance; its key is
    // compared with the lease holders' columns, which keep the database's collation).
    let client = raw_client(&url).await;
    let rows = client
        .query(
            "SELECT DISTINCT t.relname || '.' || a.attname FROM pg_index i \
             JOIN pg_class t ON t.oid = i.indrelid \
             JOIN pg_namespace n ON n.oid = t.relnamespace AND n.nspname = current_schema() \
             JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = ANY(i.indkey::int2[]) \
             JOIN pg_collation k ON k.oid = a.attcollation \
             WHERE k.collname <> 'C' ORDER BY 1",
            &[],
        )
        .await
        .unwrap();
    let locale_keyed: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(locale_keyed, ["instances.id"]);
}

#[tokio::test]
async fn pg_routing_state_moves_off_events_with_what_they_held() {
    let Some(url) = fresh_database("migrate_routing").await else {
        return;
    };
    let client = raw_client(&url).await;
    // The schema as version 4 left it: one event routed (of type `push`), one not.
    client
        .batch_execute(
            "CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
        )
        .await
        .unwrap();
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v <= 4) {
        client.batch_execute(sql).await.unwrap();
        client
            .execute("INSERT INTO schema_migrations VALUES ($1, 0)", &[version])
            .await
            .unwrap();
    }
    client
        .batch_execute(
            "INSERT INTO events (id, source, event_type, received_at, headers, query, body, routed) \
             VALUES ('e1', 'gh', 'push', 1, '[]', '[]', '\\x7b7d', TRUE), \
                    ('e2', 'gh', NULL, 2, '[[\"x-a\",\"1\"]]', '[]', '\\x5b5d', FALSE)",
        )
        .await
        .unwrap();

    let store = open(&url).await;
    let unrouted = store.unrouted_events(10).await.unwrap();
    assert_eq!(unrouted.len(), 1);
    assert_eq!(unrouted[0].id, "e2");
    assert_eq!(&unrouted[0].body[..], b"[]");
    assert_eq!(unrouted[0].headers, vec![("x-a".into(), "1".into())]);
    let seen = listed(&store, None).await;
    assert_eq!(
        seen,
        listing(&[("e2", None, false), ("e1", Some("push"), true)])
    );
    assert_eq!(
        listed(&store, Some("push")).await,
        listing(&[("e1", Some("push"), true)])
    );
    assert_eq!(store.queue_depth().await.unwrap().unrouted, 1);
}
