//! Durability: kill -9 the real binary under load, restart it, and count every delivery.

use crate::utils::binary::Process;
use crate::utils::{Receiver, Reply};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

const EVENTS: usize = 5_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_acknowledged_is_lost_after_kill_9() {
    let receiver = Receiver::start().await;
    // A slow receiver keeps deliveries owed at the moment of the kill.
    receiver.default_reply(Reply::status(200).delay(Duration::from_millis(5)));
    let dir = tempfile::tempdir().expect("tempdir");
    let store = crate::utils::store::url_for(dir.path()).await;
    let config = crate::utils::binary::write_serve_config(
        dir.path(),
        &store,
        &receiver.url,
        "concurrency = 4\nretry = { max_attempts = 50, initial = \"50ms\", max = \"200ms\" }",
        // Not a projection, so the evaluator children are in the pipeline when the gateway is killed.
        "jq = '{n: .body.n, parity: (.body.n % 2)}'",
    );

    let first = Process::serve(&config);
    let client = crate::utils::client();
    let acked = Arc::new(std::sync::Mutex::new(HashSet::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let mut senders = tokio::task::JoinSet::new();
    for worker in 0..16 {
        let (client, url, acked, count) = (
            client.clone(),
            format!("{}/hooks/s", first.url),
            acked.clone(),
            count.clone(),
        );
        senders.spawn(async move {
            for n in (worker..EVENTS).step_by(16) {
                let Ok(resp) = client
                    .post(&url)
                    .body(format!(r#"{{"n":{n}}}"#))
                    .send()
                    .await
                else {
                    return;
                };
                if resp.status().as_u16() == 202 {
                    let json: serde_json::Value = resp.json().await.unwrap_or_default();
                    if let Some(id) = json["id"].as_str() {
                        acked.lock().expect("lock").insert(id.to_string());
                    }
                    count.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
    }
    // Kill half-way through the load, with requests and deliveries in flight.
    while count.load(Ordering::SeqCst) < EVENTS / 2 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    first.kill9();
    while senders.join_next().await.is_some() {}
    let acked: HashSet<String> = acked.lock().expect("lock").clone();
    assert!(acked.len() >= EVENTS / 2, "acknowledged {}", acked.len());
    let before_restart = receiver.seen().len();

    let second = Process::serve(&config);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let seen: HashSet<String> = receiver
            .seen()
            .iter()
            .map(|r| r.header("x-hookgate-event").to_string())
            .collect();
        let missing = acked.difference(&seen).count();
        if missing == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{missing} acknowledged events never delivered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut per_delivery: HashMap<String, usize> = HashMap::new();
    let mut ids_per_event: HashMap<String, HashSet<String>> = HashMap::new();
    for r in receiver.seen() {
        let delivery = r.header("x-hookgate-delivery").to_string();
        ids_per_event
            .entry(r.header("x-hookgate-event").to_string())
            .or_default()
            .insert(delivery.clone());
        *per_delivery.entry(delivery).or_default() += 1;
    }
    let duplicates: usize = per_delivery.values().map(|n| n - 1).sum();
    // One route, one target: an event sent again after the restart (routed again, its first
    // routing lost with the process) carries the same delivery id, so the receiver can dedupe.
    let renamed: Vec<_> = ids_per_event
        .iter()
        .filter(|(_, ids)| ids.len() > 1)
        .collect();
    assert!(
        renamed.is_empty(),
        "{} events arrived under more than one delivery id, e.g. {:?}",
        renamed.len(),
        renamed.first()
    );
    eprintln!(
        "kill -9: {} acknowledged, {} delivered before the kill, {} distinct deliveries, {} duplicates (at least once)",
        acked.len(),
        before_restart,
        per_delivery.len(),
        duplicates
    );
    second.kill9();
}

/// A gateway that starts on a backlog (events a killed one stored but never routed) reads it from
/// the store page by page while its inbox takes the new events: each backlog event arrives, and
/// each new one arrives exactly once (the store's copy and the inbox's are not both routed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_routes_its_backlog_while_new_events_flow_each_new_one_once() {
    const BACKLOG: usize = 1_500;
    const NEW: usize = 600;
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store_url = crate::utils::store::url_for(dir.path()).await;
    // Slow mappings leave most events unrouted while the first process takes them in. Slow, not
    // failing: an event the first process does route (a small first batch) must be delivered.
    // (The sum was once piped into `{n: .body.n}`, a jq error for every event routed there.)
    let slow = "(reduce range(0; 100000) as $i (0; . + $i)) as $sum | ";
    let config = crate::utils::binary::write_serve_config(
        dir.path(),
        &store_url,
        &receiver.url,
        "",
        &format!("jq = '{slow}{{n: .body.n}}'"),
    );
    let first = Process::serve(&config);
    let old = post_all(&first.url, 0..BACKLOG).await;
    first.kill9();
    let store = crate::utils::store::Db::new(store_url.clone());
    let unrouted = store.unrouted().await;
    assert!(
        unrouted > 256,
        "the backlog should span several of the loop's pages, has {unrouted}"
    );

    let fast = std::fs::read_to_string(&config)
        .expect("config")
        .replace(slow, "");
    std::fs::write(&config, fast).expect("config");
    let second = Process::serve(&config);
    let new = post_all(&second.url, BACKLOG..BACKLOG + NEW).await;
    assert_eq!(
        (old.len(), new.len()),
        (BACKLOG, NEW),
        "every event acknowledged"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let counts = loop {
        let mut counts: HashMap<String, usize> = HashMap::new();
        for r in receiver.seen() {
            *counts
                .entry(r.header("x-hookgate-event").to_string())
                .or_default() += 1;
        }
        if old.iter().chain(&new).all(|id| counts.contains_key(id)) {
            break counts;
        }
        if tokio::time::Instant::now() >= deadline {
            let missing: Vec<&String> = old
                .iter()
                .chain(&new)
                .filter(|id| !counts.contains_key(*id))
                .collect();
            panic!(
                "{} of {} events never delivered; the first: {}",
                missing.len(),
                BACKLOG + NEW,
                where_is(&store, missing[0]).await
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // Late copies would come within the loop's next reads: give them time.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let twice: Vec<&String> = new.iter().filter(|id| counts[*id] > 1).collect();
    assert!(twice.is_empty(), "{} new events arrived twice", twice.len());
    assert_eq!(store.unrouted().await, 0);
    second.kill9();
}

/// Where an event stands in the store, for a failure's message: still unrouted, or what its
/// routes made of it and its deliveries' states.
async fn where_is(store: &crate::utils::store::Db, id: &str) -> String {
    let unrouted = store
        .count(&format!(
            "SELECT COUNT(*) FROM unrouted q JOIN events e ON e.seq = q.seq WHERE e.id = '{id}'"
        ))
        .await;
    let deliveries = store
        .texts(&format!(
            "SELECT status || ' after ' || attempts || ' attempts' FROM deliveries WHERE event_id = '{id}'"
        ))
        .await;
    let routes = store
        .texts(&format!(
            "SELECT outcome || ' ' || COALESCE(detail, '') FROM route_results WHERE event_id = '{id}'"
        ))
        .await;
    format!("{id}: unrouted {unrouted}, routes {routes:?}, deliveries {deliveries:?}")
}

/// Posts `{"n": n}` for each n from 16 senders; the ids acknowledged with 202.
async fn post_all(url: &str, ns: std::ops::Range<usize>) -> HashSet<String> {
    let client = crate::utils::client();
    let acked = Arc::new(std::sync::Mutex::new(HashSet::new()));
    let mut senders = tokio::task::JoinSet::new();
    let start = ns.start;
    for worker in 0..16 {
        let (client, url, acked) = (client.clone(), format!("{url}/hooks/s"), acked.clone());
        let ns = ns.clone();
        senders.spawn(async move {
            for n in (start + worker..ns.end).step_by(16) {
                let resp = client
                    .post(&url)
                    .body(format!(r#"{{"n":{n}}}"#))
                    .send()
                    .await
                    .expect("post");
                assert_eq!(resp.status().as_u16(), 202);
                let json: serde_json::Value = resp.json().await.expect("json");
                let id = json["id"].as_str().expect("id").to_string();
                acked.lock().expect("lock").insert(id);
            }
        });
    }
    while let Some(done) = senders.join_next().await {
        done.expect("sender");
    }
    acked.lock().expect("lock").clone()
}
