//! Backpressure: past `server.max_backlog` committed-but-unrouted events, ingress answers 503 with
//! `Retry-After` and stores nothing; once routing catches up it accepts again, and every event it
//! acknowledged is delivered. A target that stays down keeps at most `max_queue` deliveries
//! waiting, and never makes ingress refuse events bound for other targets.

use crate::utils::admin::{ADMIN, TOKEN, admin};
use crate::utils::binary::Process;
use crate::utils::{Gateway, Receiver, Reply, client, post_json};
use std::time::{Duration, Instant};

/// One route whose mapping, for `{"slow": true}`, runs until the 2 s deadline: routing stalls on
/// it while the other events pile up unrouted behind it.
fn config(receiver: &str) -> String {
    format!(
        r#"
[sources.s]
kind = "generic"

[targets.t]
url = "{receiver}"

[[routes]]
name = "r"
source = "s"
jq = 'if .body.slow then last(range(1e18)) else .body end'
targets = ["t"]

[jq]
timeout_ms = 2000
"#
    )
}

#[tokio::test]
async fn a_full_backlog_answers_503_with_retry_after_and_loses_nothing() {
    let receiver = Receiver::start().await;
    let gw = Gateway::start_with_server(&config(&receiver.url), "max_backlog = 5").await;
    let (status, _) = post_json(&gw.hook("s"), r#"{"slow": true}"#, &[]).await;
    assert_eq!(status, 202);
    tokio::time::sleep(Duration::from_millis(300)).await;

    // All at once: requests racing for the last places must not all get one.
    let mut posts = tokio::task::JoinSet::new();
    for n in 0..12 {
        let url = gw.hook("s");
        posts.spawn(async move {
            let resp = client()
                .post(url)
                .header("content-type", "application/json")
                .body(format!(r#"{{"n": {n}}}"#))
                .send()
                .await
                .expect("send");
            (n, resp)
        });
    }
    let (mut accepted, mut refused) = (Vec::new(), 0);
    while let Some(done) = posts.join_next().await {
        let (n, resp) = done.expect("post task");
        match resp.status().as_u16() {
            202 => accepted.push(n),
            503 => {
                refused += 1;
                assert_eq!(resp.headers()["retry-after"], "1");
                let body: serde_json::Value = resp.json().await.expect("json");
                let error = body["error"].as_str().unwrap_or_default();
                assert!(error.contains("backlog is full"), "{error}");
            }
            other => panic!("unexpected status {other}"),
        }
    }
    // The slow event and four more fill a backlog of five; the rest are refused, not stored.
    assert_eq!(accepted.len(), 4, "{accepted:?}");
    assert_eq!(refused, 8);
    assert_eq!(gw.db().count("SELECT COUNT(*) FROM events").await, 5);
    let metrics = gw.metrics().await;
    assert!(
        metrics.contains(r#"hookgate_events_rejected_total{source="s",reason="backlog"} 8"#),
        "{metrics}"
    );

    // Routing catches up (the slow event fails at its deadline), and ingress accepts again.
    let seen = receiver.wait_for(4, Duration::from_secs(20)).await;
    let mut delivered: Vec<i64> = seen.iter().filter_map(|r| r.json()["n"].as_i64()).collect();
    delivered.sort();
    accepted.sort();
    assert_eq!(delivered, accepted);
    let started = Instant::now();
    loop {
        let (status, _) = post_json(&gw.hook("s"), r#"{"n": 99}"#, &[]).await;
        if status == 202 {
            break;
        }
        assert_eq!(status, 503);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "backlog never drained"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seen = receiver.wait_for(5, Duration::from_secs(10)).await;
    assert!(seen.iter().any(|r| r.json()["n"] == 99));
}

/// A target that stays down keeps at most `max_queue` deliveries waiting: past it, its new
/// deliveries are recorded dead, with their bodies and the reason, and counted. Ingress never
/// refuses, the other target gets every event, and once the target is back a retry of its dead
/// deliveries delivers them all.
#[tokio::test]
async fn a_target_that_stays_down_sheds_past_max_queue_and_never_holds_up_the_others() {
    let (up, down) = (Receiver::start().await, Receiver::start().await);
    down.default_reply(Reply::status(503));
    let config = format!(
        r#"{ADMIN}
[sources.s]
kind = "generic"

[targets.up]
url = "{}"

[targets.down]
url = "{}"
max_queue = 5
retry = {{ max_attempts = 100, initial = "1h", max = "1h" }}
breaker = "off"

[[routes]]
name = "r"
source = "s"
targets = ["up", "down"]
"#,
        up.url, down.url
    );
    let gw = Gateway::start(&config).await;
    for n in 0..20 {
        let (status, _) = post_json(&gw.hook("s"), format!(r#"{{"n": {n}}}"#), &[]).await;
        assert_eq!(status, 202, "event {n} refused");
    }
    up.wait_for(20, Duration::from_secs(10)).await;
    let db = gw.db();
    let deadline = Instant::now() + Duration::from_secs(10);
    let (pending, dead) = loop {
        let (pending, dead) = (
            down_count(&db, "pending").await,
            down_count(&db, "dead").await,
        );
        if pending + dead == 20 || Instant::now() > deadline {
            break (pending, dead);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!((pending, dead), (5, 15), "{:?}", gw.deliveries().await);
    let errors = db
        .texts("SELECT last_error FROM deliveries WHERE target = 'down' AND status = 'dead'")
        .await;
    assert!(
        errors
            .iter()
            .all(|e| e.contains("targets.down.max_queue = 5")),
        "{errors:?}"
    );
    let metrics = gw.metrics().await;
    assert!(
        metrics.contains(r#"hookgate_deliveries_shed_total{target="down"} 15"#),
        "{metrics}"
    );

    // Back up: the dead deliveries are retried in one call, and every event arrives once.
    down.clear();
    down.default_reply(Reply::status(200));
    let path = "/admin/v1/deliveries/retry?status=dead&target=down";
    let (status, body) = admin(&gw, reqwest::Method::POST, path, Some(TOKEN)).await;
    assert_eq!((status, body["queued"].as_u64()), (202, Some(15)), "{body}");
    let seen = down.wait_for(15, Duration::from_secs(10)).await;
    let mut ns: Vec<i64> = seen.iter().filter_map(|r| r.json()["n"].as_i64()).collect();
    ns.sort();
    ns.dedup();
    assert_eq!(ns.len(), 15, "{ns:?}");
    gw.wait_deliveries(Duration::from_secs(5), |d| {
        let down = |status: &str| d.iter().filter(|x| x.1 == "down" && x.2 == status).count();
        (down("succeeded"), down("pending"), down("dead")) == (15, 5, 0)
    })
    .await;
}

async fn down_count(db: &crate::utils::store::Db, status: &str) -> i64 {
    db.count(&format!(
        "SELECT COUNT(*) FROM deliveries WHERE target = 'down' AND status = '{status}'"
    ))
    .await
}

/// A gateway restarted onto a backlog past its bound refuses from its first request: the count
/// is read from the store before ingress opens, not a second later.
#[tokio::test]
async fn a_restart_onto_a_full_backlog_refuses_from_the_first_request() {
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = crate::utils::store::url_for(dir.path()).await;
    let config = |max_backlog: u64| {
        let path = dir.path().join("hookgate.toml");
        let text = format!(
            r#"[server]
listen = "127.0.0.1:0"
max_backlog = {max_backlog}

[store]
url = "{store}"

[sources.s]
kind = "generic"

[targets.t]
url = "{url}"

[[routes]]
name = "r"
source = "s"
targets = ["t"]
jq = 'if .body.slow then last(range(1e18)) else .body end'

[jq]
timeout_ms = 600000
"#,
            url = receiver.url
        );
        std::fs::write(&path, text).expect("write config");
        path
    };
    let first = Process::serve(&config(100));
    let hook = format!("{}/hooks/s", first.url);
    assert_eq!(post_json(&hook, r#"{"slow": true}"#, &[]).await.0, 202);
    tokio::time::sleep(Duration::from_millis(300)).await;
    for n in 0..10 {
        let (status, _) = post_json(&hook, format!(r#"{{"n": {n}}}"#), &[]).await;
        assert_eq!(status, 202);
    }
    // Routing is stuck on the slow event: eleven events wait when the process dies.
    first.kill9();

    let second = Process::serve(&config(5));
    let (status, body) = post_json(&format!("{}/hooks/s", second.url), r#"{"n": 99}"#, &[]).await;
    assert_eq!(status, 503, "{body}");
    let error = body["error"].as_str().unwrap_or_default();
    assert!(error.contains("backlog is full"), "{body}");
}
