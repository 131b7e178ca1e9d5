//! Delivery: signing, headers, retries with backoff and Retry-After, dead and failed deliveries,
//! per-target isolation, and many events in flight at once.

use crate::utils::{Gateway, Receiver, Reply, post_json};
use std::time::Duration;

fn config(url: &str, target_extra: &str) -> String {
    format!(
        r#"
[sources.s]
kind = "generic"

[targets.t]
url = "{url}"
timeout = "2s"
{target_extra}

[[routes]]
name = "r"
source = "s"
jq = '{{n: .body.n}}'
targets = ["t"]
"#
    )
}

#[tokio::test]
async fn targets_get_signed_requests_with_delivery_headers() {
    let receiver = Receiver::start().await;
    let gw = Gateway::start(&config(
        &receiver.url,
        r#"sign = { scheme = "github", secret = "target-secret" }"#,
    ))
    .await;
    let (_, json) = post_json(&gw.hook("s"), r#"{"n":1}"#, &[]).await;
    let seen = receiver.wait_for(1, Duration::from_secs(5)).await;
    let r = &seen[0];
    assert_eq!(
        r.header("x-hookgate-event"),
        json["id"].as_str().expect("id")
    );
    assert!(r.header("x-hookgate-delivery").starts_with("dlv_"));
    assert_eq!(r.header("x-hookgate-attempt"), "1");
    assert_eq!(
        r.header("x-hub-signature-256"),
        crate::utils::sha256_header("target-secret", &r.body)
    );
}

#[tokio::test]
async fn credentials_in_the_target_url_go_as_basic_auth_and_nowhere_else() {
    use crate::utils::binary::{Process, write_serve_config};
    let receiver = Receiver::start().await;
    // The first attempt fails, so the log has its warning about this target to search.
    receiver.script([Reply::status(503), Reply::status(200)]);
    let with_credentials = receiver
        .url
        .replacen("http://", "http://relay:p%40ss-5c1e@", 1);
    let dir = tempfile::tempdir().expect("tempdir");
    let store = crate::utils::store::url_for(dir.path()).await;
    let file = write_serve_config(
        dir.path(),
        &store,
        &with_credentials,
        r#"retry = { initial = "50ms", max = "100ms" }"#,
        "",
    );
    let gw = Process::serve(&file);
    let (status, _) = post_json(&format!("{}/hooks/s", gw.url), r#"{"n":1}"#, &[]).await;
    assert_eq!(status, 202);
    let seen = receiver.wait_for(2, Duration::from_secs(5)).await;
    for r in &seen {
        // "relay:p@ss-5c1e", percent-decoded as a browser would.
        assert_eq!(r.header("authorization"), "Basic cmVsYXk6cEBzcy01YzFl");
        assert!(!r.path.contains('@'), "{}", r.path);
        assert!(r.header("user-agent").starts_with("hookgate/"), "{r:?}");
    }
    let logs = gw.logs.lock().expect("logs").join("\n");
    assert!(logs.contains("delivery attempt failed"), "{logs}");
    for secret in ["5c1e", "cmVsYXk6cEBzcy01YzFl"] {
        assert!(!logs.contains(secret), "the log holds `{secret}`");
    }
}

#[tokio::test]
async fn standard_webhooks_signing_uses_the_delivery_id() {
    let receiver = Receiver::start().await;
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let gw = Gateway::start(&config(
        &receiver.url,
        &format!(r#"sign = {{ scheme = "standard-webhooks", secret = "{secret}" }}"#),
    ))
    .await;
    post_json(&gw.hook("s"), r#"{"n":1}"#, &[]).await;
    let r = receiver.wait_for(1, Duration::from_secs(5)).await.remove(0);
    assert_eq!(r.header("webhook-id"), r.header("x-hookgate-delivery"));
    let verifier =
        hookgate::testing::Verifier::standard_webhooks(&[hookgate::testing::Secret::new(secret)]);
    assert_eq!(
        verifier.verify(&r.headers, &r.body, hookgate::testing::now_ms() / 1000),
        Ok(())
    );
}

#[tokio::test]
async fn retries_keep_the_delivery_id_and_back_off() {
    let receiver = Receiver::start().await;
    receiver.script([Reply::status(500), Reply::status(502), Reply::status(200)]);
    let gw = Gateway::start(&config(
        &receiver.url,
        r#"retry = { max_attempts = 5, initial = "100ms", max = "400ms" }"#,
    ))
    .await;
    post_json(&gw.hook("s"), r#"{"n":1}"#, &[]).await;
    let seen = receiver.expect_exactly(3, Duration::from_millis(600)).await;
    let ids: Vec<&str> = seen
        .iter()
        .map(|r| r.header("x-hookgate-delivery"))
        .collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    let attempts: Vec<&str> = seen
        .iter()
        .map(|r| r.header("x-hookgate-attempt"))
        .collect();
    assert_eq!(attempts, ["1", "2", "3"]);
    // Attempt 2 waits in [100ms, 100ms]; attempt 3 in [100ms, 200ms].
    let gaps: Vec<Duration> = seen.windows(2).map(|w| w[1].at - w[0].at).collect();
    assert!(gaps[0] >= Duration::from_millis(95), "{gaps:?}");
    assert!(
        gaps[1] >= Duration::from_millis(95) && gaps[1] < Duration::from_millis(1200),
        "{gaps:?}"
    );
    gw.wait_deliveries(Duration::from_secs(5), |d| {
        d.len() == 1 && d[0].2 == "succeeded"
    })
    .await;
    let attempts = gw.db().count("SELECT COUNT(*) FROM attempts").await;
    assert_eq!(attempts, 3, "every attempt is logged");
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let receiver = Receiver::start().await;
    receiver.script([Reply::status(429).header("retry-after", "1")]);
    let gw = Gateway::start(&config(
        &receiver.url,
        r#"retry = { max_attempts = 3, initial = "50ms", max = "5s" }"#,
    ))
    .await;
    post_json(&gw.hook("s"), r#"{"n":1}"#, &[]).await;
    let seen = receiver.wait_for(2, Duration::from_secs(5)).await;
    let gap = seen[1].at - seen[0].at;
    assert!(gap >= Duration::from_millis(950), "waited only {gap:?}");
}

#[tokio::test]
async fn dead_after_max_attempts() {
    let receiver = Receiver::start().await;
    receiver.default_reply(Reply::status(503));
    let gw = Gateway::start(&config(
        &receiver.url,
        r#"retry = { max_attempts = 3, initial = "20ms", max = "40ms" }"#,
    ))
    .await;
    post_json(&gw.hook("s"), r#"{"n":1}"#, &[]).await;
    receiver.expect_exactly(3, Duration::from_millis(500)).await;
    let d = gw
        .wait_deliveries(Duration::from_secs(5), |d| d.iter().all(|x| x.2 == "dead"))
        .await;
    assert_eq!(d.len(), 1);
    let last = gw
        .db()
        .rows("SELECT status_code, response_body FROM attempts ORDER BY seq DESC LIMIT 1")
        .await;
    assert_eq!(last[0][0].opt_int(), Some(503));
    assert_eq!(
        last[0][1].text(),
        "receiver says hi",
        "the response body is kept"
    );
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let receiver = Receiver::start().await;
    receiver.default_reply(Reply::status(400));
    let gw = Gateway::start(&config(
        &receiver.url,
        r#"retry = { max_attempts = 5, initial = "20ms", max = "40ms" }"#,
    ))
    .await;
    post_json(&gw.hook("s"), r#"{"n":1}"#, &[]).await;
    receiver.expect_exactly(1, Duration::from_millis(400)).await;
    gw.wait_deliveries(Duration::from_secs(5), |d| {
        d.len() == 1 && d[0].2 == "failed"
    })
    .await;
}

#[tokio::test]
async fn a_target_that_is_down_is_retried_until_it_answers() {
    // Reserve a port, then free it: connections are refused until the receiver starts there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let url = format!("http://127.0.0.1:{port}/in");
    let gw = Gateway::start(&config(
        &url,
        r#"retry = { max_attempts = 20, initial = "50ms", max = "100ms" }"#,
    ))
    .await;
    post_json(&gw.hook("s"), r#"{"n":7}"#, &[]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("rebind");
    let (tx, mut rx) = tokio::sync::mpsc::channel::<axum::body::Bytes>(4);
    let app = axum::Router::new().fallback(move |body: axum::body::Bytes| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(body).await;
            "ok"
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    let body = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("delivered")
        .expect("body");
    assert_eq!(&body[..], br#"{"n":7}"#);
    let attempt_errors = gw
        .db()
        .texts("SELECT COALESCE(error, '') FROM attempts ORDER BY seq")
        .await;
    assert!(
        attempt_errors[0].contains("connection failed"),
        "{attempt_errors:?}"
    );
}

#[tokio::test]
async fn a_slow_target_does_not_starve_another() {
    let slow = Receiver::start().await;
    slow.default_reply(Reply::status(200).delay(Duration::from_secs(3)));
    let fast = Receiver::start().await;
    let config = format!(
        r#"
[sources.s]
kind = "generic"

[targets.slow]
url = "{}"
concurrency = 2
timeout = "10s"

[targets.fast]
url = "{}"

[[routes]]
name = "r"
source = "s"
targets = ["slow", "fast"]
"#,
        slow.url, fast.url
    );
    let gw = Gateway::start(&config).await;
    for n in 0..20 {
        post_json(&gw.hook("s"), format!(r#"{{"n":{n}}}"#), &[]).await;
    }
    // All 20 reach the fast target while the slow one holds its two slots.
    fast.wait_for(20, Duration::from_secs(2)).await;
    assert!(
        slow.seen().len() <= 2,
        "slow target got {}",
        slow.seen().len()
    );
}

#[tokio::test]
async fn a_thousand_events_in_flight_at_once() {
    let receiver = Receiver::start().await;
    let gw = Gateway::start(&config(&receiver.url, "")).await;
    let client = crate::utils::client();
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..1000 {
        let (client, url) = (client.clone(), gw.hook("s"));
        tasks.spawn(async move {
            let resp = client
                .post(url)
                .body(format!(r#"{{"n":{n}}}"#))
                .send()
                .await
                .expect("send");
            resp.status().as_u16()
        });
    }
    let mut accepted = 0;
    while let Some(status) = tasks.join_next().await {
        assert_eq!(status.expect("task"), 202);
        accepted += 1;
    }
    assert_eq!(accepted, 1000);
    let seen = receiver.wait_for(1000, Duration::from_secs(30)).await;
    let mut ns: Vec<i64> = seen
        .iter()
        .map(|r| r.json()["n"].as_i64().expect("n"))
        .collect();
    ns.sort_unstable();
    ns.dedup();
    assert_eq!(ns.len(), 1000, "every event delivered");
}

#[tokio::test]
async fn deliveries_owed_at_shutdown_go_out_after_restart() {
    let receiver = Receiver::start().await;
    receiver.script([Reply::status(503).header("retry-after", "1")]);
    let config = config(
        &receiver.url,
        r#"retry = { max_attempts = 5, initial = "50ms", max = "2s" }"#,
    );
    let gw = Gateway::start(&config).await;
    post_json(&gw.hook("s"), r#"{"n":42}"#, &[]).await;
    receiver.wait_for(1, Duration::from_secs(5)).await;
    // Stopped while the retry is owed; a new process on the same store delivers it.
    let dir = gw.stop().await;
    let gw = Gateway::start_in(&config, dir).await;
    let seen = receiver.wait_for(2, Duration::from_secs(5)).await;
    assert_eq!(
        seen[1].header("x-hookgate-delivery"),
        seen[0].header("x-hookgate-delivery")
    );
    assert_eq!(seen[1].header("x-hookgate-attempt"), "2");
    gw.wait_deliveries(Duration::from_secs(5), |d| {
        d.len() == 1 && d[0].2 == "succeeded"
    })
    .await;
}

/// The retry schedule in full, on tokio's paused clock: minutes of backoff run in milliseconds.
/// The route passes bodies through, so no mapping (and no evaluator deadline) is involved.
#[tokio::test(start_paused = true)]
async fn retry_schedule_and_retry_after_on_a_paused_clock() {
    let receiver = Receiver::start().await;
    receiver.script([
        Reply::status(500),
        Reply::status(503),
        Reply::status(429).header("retry-after", "3600"),
        Reply::status(200),
    ]);
    let config = format!(
        r#"
[sources.s]
kind = "generic"

[targets.t]
url = "{}"
timeout = "1h"
retry = {{ max_attempts = 5, initial = "100s", max = "600s" }}

[[routes]]
name = "r"
source = "s"
targets = ["t"]
"#,
        receiver.url
    );
    // Every timer of the gateway is a point paused time can jump to while the runtime waits on the
    // store's writer thread, so the background pruning (a timer of its own) is switched off here.
    let dir = tempfile::tempdir().expect("tempdir");
    let gw = Gateway::start_on_sqlite(&config, dir, "retention = \"off\"").await;
    post_json(&gw.hook("s"), r#"{"n":1}"#, &[]).await;
    let seen = receiver.wait_for_on_paused_clock(4).await;
    let gaps: Vec<Duration> = seen
        .windows(2)
        .map(|w| w[1].tokio_at - w[0].tokio_at)
        .collect();
    // While the runtime waits on the store's writer thread (outside tokio), paused time jumps to
    // the gateway's next own timer, so on this clock a gap runs over by up to ~20 s; never under.
    let slack = Duration::from_secs(30);
    eprintln!("paused-clock retry gaps: {gaps:?}");
    // After attempt 1: exactly `initial`. After attempt 2: within [initial, 2 * initial].
    // After attempt 3: Retry-After (an hour) clamped to `max`.
    let bounds = [(100, 100), (100, 200), (600, 600)];
    for (gap, (lo, hi)) in gaps.iter().zip(bounds) {
        let (lo, hi) = (Duration::from_secs(lo), Duration::from_secs(hi) + slack);
        assert!(
            *gap >= lo && *gap <= hi,
            "gaps {gaps:?}, expected {lo:?}..{hi:?}"
        );
    }
    gw.wait_deliveries(Duration::from_secs(20), |d| {
        d.len() == 1 && d[0].2 == "succeeded"
    })
    .await;
}
