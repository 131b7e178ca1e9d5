//! Migrations applied to a database an older version filled: nothing it stored is lost.

use super::super::MIGRATIONS;
use super::{fresh_database, open, raw_client};
use crate::store::*;

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
