//! What several instances sharing one database rely on: a delivery or an event is worked on by
//! one instance at a time, leases end with their time or their holder, and a routing recorded
//! twice writes its deliveries once.

use super::*;

#[tokio::test]
async fn pg_two_claimers_never_get_the_same_delivery() {
    let Some(url) = fresh_database("skip_locked").await else {
        return;
    };
    let (a, b) = (open(&url).await, open(&url).await);
    seed_deliveries(&a, 200).await;
    async fn drain(store: &PostgresStore) -> Vec<String> {
        let mut got = Vec::new();
        loop {
            let batch = store.claim_due("t", NOW, 7, 60_000).await.unwrap();
            if batch.is_empty() {
                return got;
            }
            got.extend(batch.into_iter().map(|d| d.id));
        }
    }
    let (ga, gb) = tokio::join!(drain(&a), drain(&b));
    let all: HashSet<&String> = ga.iter().chain(&gb).collect();
    assert_eq!(
        all.len(),
        ga.len() + gb.len(),
        "a delivery was claimed twice"
    );
    assert_eq!(all.len(), 200);
}

#[tokio::test]
async fn pg_leases_end_with_their_time_or_their_holder() {
    let Some(url) = fresh_database("lease").await else {
        return;
    };
    let (a, b) = (open(&url).await, open(&url).await);
    seed_deliveries(&a, 2).await;
    assert_eq!(a.claim_due("t", NOW, 1, 1_000).await.unwrap().len(), 1);
    // A live holder keeps its lease until it ends.
    let taken = b.claim_due("t", NOW + 999, 10, 60_000).await.unwrap();
    assert_eq!(taken.len(), 1, "only the unleased one");
    assert_eq!(
        b.next_due_at(NOW + 999, vec!["t".into()]).await.unwrap(),
        None
    );
    let first = b.claim_due("t", NOW + 1_000, 10, 60_000).await.unwrap();
    assert_eq!(first.len(), 1, "the lease ran out");

    // b holds both now, for a minute. b's heart stops (as under kill -9: no goodbye), and its last
    // beat is moved back past the dead line; a takes the work at once. (Stopped first: a beat
    // between the move and the checks made this test flaky.)
    b.stop_beating().await;
    let client = raw_client(&url).await;
    assert!(
        a.claim_due("t", NOW + 2_000, 10, 1_000)
            .await
            .unwrap()
            .is_empty()
    );
    client
        .execute(
            "UPDATE instances SET heartbeat_at = heartbeat_at - 60000 WHERE id = $1",
            &[&b.instance()],
        )
        .await
        .unwrap();
    assert_eq!(
        a.claim_due("t", NOW + 2_000, 10, 1_000)
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        a.live_instances().await.unwrap(),
        vec![a.instance().to_string()]
    );

    // A graceful stop says goodbye: its leases are free without waiting.
    let c = open(&url).await;
    seed_deliveries_from(&c, 2, 1).await;
    assert_eq!(c.claim_due("t", NOW, 10, 60_000).await.unwrap().len(), 1);
    drop(c);
    // The goodbye goes out as the store closes, in the background: poll for the freed lease, for
    // far less than the 60 s it would otherwise hold (a fixed 300 ms failed on a busy machine).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let claimed = a.claim_due("t", NOW, 10, 1_000).await.unwrap().len();
        if claimed == 1 {
            break;
        }
        assert!(
            claimed == 0 && std::time::Instant::now() < deadline,
            "claimed {claimed}: the goodbye did not free the lease within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn pg_unrouted_events_are_not_handed_to_two_routers() {
    let Some(url) = fresh_database("routing_lease").await else {
        return;
    };
    let (a, b) = (open(&url).await, open(&url).await);
    // An instance's own events are leased to it from their insert (its route loop has them in
    // memory): the other leaves them alone.
    a.insert_event(event("mine").into()).await.unwrap();
    assert!(b.unrouted_events(10).await.unwrap().is_empty());
    // Nor does its own look for what others left.
    assert!(a.unheld_events(10).await.unwrap().is_empty());
    assert_eq!(a.unrouted_events(10).await.unwrap().len(), 1);
    // Unleased events (say, of an instance gone) are split between the routers, whether they ask
    // for their own too or only for what others left.
    let client = raw_client(&url).await;
    client
        .batch_execute(
            "WITH e AS (INSERT INTO events (id, source, received_at, headers, query, body) \
             SELECT 'e' || i, 'src', 0, '[]', '[]', '{}'::bytea FROM generate_series(0, 99) AS i \
             RETURNING seq) INSERT INTO unrouted (seq) SELECT seq FROM e",
        )
        .await
        .unwrap();
    let (ea, eb) = tokio::join!(a.unrouted_events(61), b.unheld_events(60));
    let (ea, eb) = (ea.unwrap(), eb.unwrap());
    let ids: HashSet<&String> = ea.iter().chain(&eb).map(|e| &e.id).collect();
    assert_eq!(
        ids.len(),
        ea.len() + eb.len(),
        "an event went to both routers"
    );
    assert_eq!(ids.len(), 101);
    // Each instance gets its own leased events again (its pipeline retries them), never the other's.
    assert_eq!(a.unrouted_events(200).await.unwrap().len(), ea.len());
    assert_eq!(b.unrouted_events(200).await.unwrap().len(), eb.len());

    // Even if both record a routing for one event (a lease ran out mid-routing), it is taken once.
    let e = &ea[0].id;
    a.record_routing(batch(vec![routing(e, "first")]), NOW)
        .await
        .unwrap();
    b.record_routing(batch(vec![routing(e, "second")]), NOW)
        .await
        .unwrap();
    assert_eq!(
        a.get_event(e).await.unwrap().deliveries,
        vec!["first".to_string()]
    );
}

#[tokio::test]
async fn pg_handed_over_deliveries_are_leased_until_given_back() {
    let Some(url) = fresh_database("handed_over").await else {
        return;
    };
    let (a, b) = (open(&url).await, open(&url).await);
    a.insert_event(event("e1").into()).await.unwrap();
    let leased = RoutingBatch {
        routings: vec![routing("e1", "d1")],
        leases: [("d1".to_string(), NOW + 60_000)].into(),
        attempts: Vec::new(),
    };
    let written = a
        .record_routing(Arc::new(leased.clone()), NOW)
        .await
        .unwrap();
    assert_eq!(written, ["d1"]);
    assert!(a.claim_due("t", NOW, 10, 1_000).await.unwrap().is_empty());
    assert!(b.claim_due("t", NOW, 10, 1_000).await.unwrap().is_empty());
    // Recorded again (a duplicate routing of the event): the fence writes nothing.
    let again = a.record_routing(Arc::new(leased), NOW).await.unwrap();
    assert!(again.is_empty());
    // Given back, any instance may claim it.
    a.release_leases(vec!["d1".into()]).await.unwrap();
    assert_eq!(b.claim_due("t", NOW, 10, 1_000).await.unwrap().len(), 1);
}

#[tokio::test]
async fn pg_a_routing_recorded_after_its_first_attempts_writes_what_they_left() {
    let Some(url) = fresh_database("late_routing").await else {
        return;
    };
    let (a, b) = (open(&url).await, open(&url).await);
    for e in ["e1", "e2"] {
        a.insert_event(event(e).into()).await.unwrap();
    }
    // Held by its instance: no other instance routes the event meanwhile.
    assert!(b.unrouted_events(10).await.unwrap().is_empty());
    let mut retried = attempt("d2", 1, AfterAttempt::RetryAt(NOW + 5), NOW);
    retried.status_code = Some(503);
    let late = RoutingBatch {
        routings: vec![routing("e1", "d1"), routing("e2", "d2")],
        leases: Default::default(),
        attempts: vec![attempt("d1", 1, AfterAttempt::Succeeded, NOW), retried],
    };
    let written = a.record_routing(Arc::new(late), NOW).await.unwrap();
    assert!(written.is_empty(), "nothing leased");
    assert!(a.unrouted_events(10).await.unwrap().is_empty());
    let (d1, attempts) = a.get_delivery("d1").await.unwrap();
    assert_eq!((d1.status.as_str(), attempts.len()), ("succeeded", 1));
    let (d2, attempts) = a.get_delivery("d2").await.unwrap();
    assert_eq!((d2.status.as_str(), attempts.len()), ("pending", 1));
    assert_eq!(attempts[0].status_code, Some(503));
    assert!(
        b.claim_due("t", NOW, 10, 1_000).await.unwrap().is_empty(),
        "not due yet"
    );
    let due = b.claim_due("t", NOW + 5, 10, 1_000).await.unwrap();
    assert_eq!((due.len(), due[0].attempts), (1, 1), "due again, unleased");
}

#[tokio::test]
async fn pg_a_routing_committed_while_another_waits_for_the_event_is_not_written_twice() {
    let Some(url) = fresh_database("fence_wait").await else {
        return;
    };
    let store = open(&url).await;
    store.insert_event(event("e1").into()).await.unwrap();
    let mut client = raw_client(&url).await;
    // Another instance's routing of e1, holding the event's lock until it commits.
    let other = client.transaction().await.unwrap();
    other
        .batch_execute(
            "SELECT 1 FROM events WHERE id = 'e1' FOR UPDATE; \
             DELETE FROM unrouted WHERE seq = (SELECT seq FROM events WHERE id = 'e1')",
        )
        .await
        .unwrap();
    let store = Arc::new(store);
    let waiting = tokio::spawn({
        let store = store.clone();
        async move {
            store
                .record_routing(batch(vec![routing("e1", "d1")]), NOW)
                .await
        }
    });
    // The recording has taken its snapshot and waits for the lock.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "the recording did not wait");
    other.commit().await.unwrap();
    waiting.await.unwrap().unwrap();
    let written: i64 = client
        .query_one("SELECT COUNT(*) FROM deliveries", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        written, 0,
        "a routing was taken for an event already routed"
    );
}

#[tokio::test]
async fn pg_a_routing_made_before_a_replay_is_not_taken_and_the_replays_own_is() {
    let Some(url) = fresh_database("fence_replay").await else {
        return;
    };
    let store = open(&url).await;
    store.insert_event(event("e1").into()).await.unwrap();
    store.replay_event("e1").await.unwrap();
    store
        .record_routing(batch(vec![routing("e1", "d0")]), NOW)
        .await
        .unwrap();
    assert!(
        store.get_delivery("d0").await.is_err(),
        "a stale routing was written"
    );
    let queued = store.unrouted_events(10).await.unwrap();
    assert_eq!(queued.len(), 1, "the replay's routing is still to do");
    assert_eq!(queued[0].replays, 1);
    let replayed = Routing {
        replays: 1,
        ..routing("e1", "d1")
    };
    store
        .record_routing(batch(vec![replayed]), NOW)
        .await
        .unwrap();
    assert_eq!(store.get_delivery("d1").await.unwrap().0.status, "pending");
    assert!(store.unrouted_events(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn pg_a_replay_committed_while_a_routing_waits_for_the_event_is_not_lost() {
    let Some(url) = fresh_database("fence_replay_wait").await else {
        return;
    };
    let store = Arc::new(open(&url).await);
    store.insert_event(event("e1").into()).await.unwrap();
    let mut client = raw_client(&url).await;
    // A replay of e1 (the store's own statement), holding its rows until it commits.
    let replay = client.transaction().await.unwrap();
    replay
        .batch_execute(
            "WITH e AS (UPDATE events SET replays = replays + 1 WHERE id = 'e1' RETURNING seq) \
             INSERT INTO unrouted (seq) SELECT seq FROM e \
             ON CONFLICT (seq) DO UPDATE SET lease_until = 0, owner = NULL",
        )
        .await
        .unwrap();
    let waiting = tokio::spawn({
        let store = store.clone();
        async move {
            store
                .record_routing(batch(vec![routing("e1", "d0")]), NOW)
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "the recording did not wait");
    replay.commit().await.unwrap();
    waiting.await.unwrap().unwrap();
    assert!(
        store.get_delivery("d0").await.is_err(),
        "a stale routing was written"
    );
    let queued = store.unrouted_events(10).await.unwrap();
    assert_eq!(
        (queued.len(), queued.first().map(|e| e.replays)),
        (1, Some(1)),
        "the replay was lost"
    );
}
