//! Migrations applied to a database an older version filled: nothing it stored is lost.

use super::{MIGRATIONS, SqliteStore, Sync};
use crate::store::*;
use rusqlite::Connection;

#[tokio::test]
async fn routing_state_moves_off_events_with_what_they_held() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        // The schema as version 7 left it: one event routed (of type `push`), one not, and one
        // replayed since its routing (unrouted again).
        let conn = Connection::open(&path).unwrap();
        for sql in &MIGRATIONS[..7] {
            conn.execute_batch(sql).unwrap();
        }
        conn.execute_batch(
            "PRAGMA user_version = 7; \
             INSERT INTO events (id, source, event_type, received_at, headers, query, body, routed, replays) \
             VALUES ('e1', 'gh', 'push', 1, '[]', '[]', X'7b7d', 1, 0), \
                    ('e2', 'gh', NULL, 2, '[[\"x-a\",\"1\"]]', '[]', X'5b5d', 0, 0), \
                    ('e3', 'gh', 'pull', 3, '[]', '[]', X'7b7d', 0, 1);",
        )
        .unwrap();
    }

    let store = SqliteStore::open(path.to_str().unwrap(), Sync::Full).unwrap();
    let unrouted = store.unrouted_events(10).await.unwrap();
    let ids: Vec<&str> = unrouted.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["e2", "e3"]);
    assert_eq!(&unrouted[0].body[..], b"[]");
    assert_eq!(unrouted[0].headers, vec![("x-a".into(), "1".into())]);
    assert_eq!(unrouted[1].replays, 1);
    let seen = listed(&store, None).await;
    assert_eq!(
        seen,
        listing(&[
            ("e3", Some("pull"), false),
            ("e2", None, false),
            ("e1", Some("push"), true)
        ])
    );
    assert_eq!(
        listed(&store, Some("push")).await,
        listing(&[("e1", Some("push"), true)])
    );
    assert_eq!(store.queue_depth().await.unwrap().unrouted, 2);

    // What is stored (by the insert itself, migration 0009) and replayed (the trigger) from now on
    // is queued.
    store
        .insert_event(StoredEvent::blank("e4", 2).into())
        .await
        .unwrap();
    store.replay_event("e1").await.unwrap();
    let ids: Vec<String> = store
        .unrouted_events(10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(ids, ["e1", "e2", "e3", "e4"]);
}
