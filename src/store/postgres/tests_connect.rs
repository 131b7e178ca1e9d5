//! The store's connections: commits of one instance wake the others (LISTEN/NOTIFY), TLS verifies
//! the server and carries every connection, and the driver's errors are typed by cause.

use super::*;

#[tokio::test]
async fn pg_commits_of_one_instance_wake_the_others() {
    let Some(url) = fresh_database("notify").await else {
        return;
    };
    let (a, b) = (open(&url).await, open(&url).await);
    let signals = b.signals();
    // Let b's listener connect, then take the wake-up it gives on connecting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = tokio::time::timeout(Duration::from_millis(100), signals.events.notified()).await;
    let _ = tokio::time::timeout(Duration::from_millis(100), signals.deliveries.notified()).await;
    a.insert_event(event("e1").into()).await.unwrap();
    a.record_routing(batch(vec![routing("e1", "d1")]), NOW)
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(5), signals.deliveries.notified())
        .await
        .expect("b woken for a's delivery");
    // A new event goes to a's own route loop in memory; a replay is for whoever is free.
    a.replay_event("e1").await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), signals.events.notified())
        .await
        .expect("b woken for a's replay");
}

#[tokio::test]
async fn pg_tls_verifies_the_server_and_carries_every_connection() {
    let Some(url) = fresh_database("tls").await else {
        return;
    };
    let ca = std::env::var("HOOKGATE_TEST_POSTGRES_CA").expect(
        "HOOKGATE_TEST_POSTGRES_CA: the CA `scripts/pg start` made (./scripts/test sets it)",
    );
    let store = open(&format!("{url}?sslmode=verify-full&sslrootcert={ca}")).await;
    store.insert_event(event("e1").into()).await.unwrap();
    store
        .record_routing(batch(vec![routing("e1", "d1")]), NOW)
        .await
        .unwrap();
    assert_eq!(store.claim_due("t", NOW, 10, 1_000).await.unwrap().len(), 1);
    // Every connection the store holds (pool and LISTEN) is encrypted.
    let client = raw_client(&url).await;
    // The LISTEN connection is opened in the background: wait for it to show up.
    let mut counts = (0, 0);
    for _ in 0..100 {
        let row = client
            .query_one(
                "SELECT COUNT(*), COUNT(*) FILTER (WHERE s.ssl) FROM pg_stat_activity a \
                 JOIN pg_stat_ssl s USING (pid) WHERE a.datname = current_database() \
                 AND a.pid <> pg_backend_pid()",
                &[],
            )
            .await
            .unwrap();
        counts = (row.get(0), row.get(1));
        if counts.0 >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (all, encrypted): (i64, i64) = counts;
    assert!(all >= 2, "pool and listener connections: {all}");
    assert_eq!(encrypted, all, "a connection went unencrypted");

    // A server the CA does not vouch for is refused, with the reason.
    let err = PostgresStore::open(&format!("{url}?sslmode=require"))
        .await
        .err()
        .expect("an unknown CA is refused")
        .to_string();
    assert!(
        err.contains("certificate") || err.contains("sslrootcert"),
        "{err}"
    );
    let other_ca = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(other_ca.path(), "not a certificate").unwrap();
    let err = PostgresStore::open(&format!(
        "{url}?sslmode=require&sslrootcert={}",
        other_ca.path().display()
    ))
    .await
    .err()
    .expect("an empty CA file is refused")
    .to_string();
    assert!(err.contains("no certificate in sslrootcert"), "{err}");
}

/// The driver's errors are typed by what the caller can do: a value that does not convert is a
/// query fault (retrying cannot cure it), a connection the server ended is an outage.
#[tokio::test]
async fn driver_errors_are_typed_by_cause() {
    let Some(url) = fresh_database("pg_errors").await else {
        return;
    };
    let store = open(&url).await;
    let client = store.client().await.expect("client");
    let row = client
        .query_one("SELECT 'text'::text", &[])
        .await
        .expect("query");
    let wrong = row.try_get::<_, i64>(0).expect_err("text is not an i64");
    assert!(
        matches!(super::super::store_err(wrong), StoreError::Query(_)),
        "a conversion fault is a query fault"
    );
    let ended = client
        .execute("SELECT pg_terminate_backend(pg_backend_pid())", &[])
        .await
        .expect_err("the server ends this connection");
    assert!(matches!(
        super::super::store_err(ended),
        StoreError::Unavailable(_)
    ));
    let closed = client.query_one("SELECT 1", &[]).await.expect_err("closed");
    assert!(
        matches!(super::super::store_err(closed), StoreError::Unavailable(_)),
        "a closed connection is an outage"
    );
}
