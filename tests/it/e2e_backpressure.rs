//! Backpressure: past `server.max_backlog` committed-but-unrouted events, ingress answers 503 with
//! `Retry-After` and stores nothing; once routing catches up it accepts again, and every event it
//! acknowledged is delivered.

use crate::utils::{Gateway, Receiver, client, post_json};
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

    let (mut accepted, mut refused) = (Vec::new(), 0);
    for n in 0..12 {
        let resp = client()
            .post(gw.hook("s"))
            .header("content-type", "application/json")
            .body(format!(r#"{{"n": {n}}}"#))
            .send()
            .await
            .expect("send");
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
    assert_eq!(delivered, [0, 1, 2, 3]);
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
