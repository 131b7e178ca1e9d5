//! Operations: targets under stress (flapping, circuit breaker, rate limit), `/metrics`, the event
//! list, and config reload (admin API, SIGHUP, under load).

use crate::utils::admin::{ADMIN, TOKEN, admin};
use crate::utils::binary::Process;
use crate::utils::metrics::sample;
use crate::utils::{Gateway, Receiver, Reply, client, post_json};
use reqwest::Method;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// One source `s`, one target `t` with `target_extra` keys, one route `r` running `jq`.
fn config(receiver: &Receiver, target_extra: &str, jq: &str) -> String {
    format!(
        r#"
{ADMIN}

[sources.s]
kind = "generic"

[targets.t]
url = "{}"
{target_extra}

[[routes]]
name = "r"
source = "s"
jq = '{jq}'
targets = ["t"]
"#,
        receiver.url
    )
}

async fn breaker_state(gw: &Gateway) -> String {
    let (_, targets) = admin(gw, Method::GET, "/admin/v1/targets", Some(TOKEN)).await;
    targets["data"][0]["breaker"]["state"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn wait_until(what: &str, timeout: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn flapping_target_gets_everything_and_metrics_count_it() {
    let receiver = Receiver::start().await;
    receiver.script((0..40).map(|i| Reply::status(if i % 2 == 0 { 500 } else { 200 })));
    let retry = r#"retry = { max_attempts = 10, initial = "10ms", max = "50ms" }"#;
    let gw = Gateway::start(&config(&receiver, retry, "{n: .body.n}")).await;
    for n in 0..20 {
        post_json(&gw.hook("s"), format!(r#"{{"n":{n}}}"#), &[]).await;
    }
    gw.wait_deliveries(Duration::from_secs(10), |d| {
        d.len() == 20 && d.iter().all(|x| x.2 == "succeeded")
    })
    .await;
    let seen = receiver.seen();
    let ok: BTreeSet<String> = seen
        .iter()
        .filter(|r| r.json()["n"].is_number())
        .map(|r| r.header("x-hookgate-delivery").to_string())
        .collect();
    assert_eq!(ok.len(), 20);

    let m = gw.metrics().await;
    let attempts = seen.len() as f64;
    assert_eq!(
        sample(&m, r#"hookgate_events_received_total{source="s"}"#),
        Some(20.0)
    );
    assert_eq!(
        sample(
            &m,
            r#"hookgate_deliveries_total{target="t",outcome="succeeded"}"#
        ),
        Some(20.0)
    );
    assert_eq!(
        sample(
            &m,
            r#"hookgate_delivery_attempts_total{target="t",result="success"}"#
        ),
        Some(20.0)
    );
    assert_eq!(
        sample(
            &m,
            r#"hookgate_delivery_attempts_total{target="t",result="retry"}"#
        ),
        Some(attempts - 20.0)
    );
    assert!(sample(&m, r#"hookgate_delivery_retries_total{target="t"}"#).unwrap_or(0.0) >= 1.0);
    assert_eq!(
        sample(&m, r#"hookgate_attempt_duration_seconds_count{target="t"}"#),
        Some(attempts)
    );
    assert_eq!(
        sample(&m, r#"hookgate_delivery_latency_seconds_count{target="t"}"#),
        Some(20.0)
    );
    // Each event is evaluated once, though it may be both handed over in memory and found by a
    // read of the store.
    assert_eq!(
        sample(&m, r#"hookgate_transform_seconds_count{route="r"}"#),
        Some(20.0),
        "{m}"
    );
    assert_eq!(
        sample::<f64>(&m, r#"hookgate_queue_depth{target="t"}"#),
        None,
        "{m}"
    );
    assert_eq!(sample(&m, "hookgate_unrouted_events"), Some(0.0));
    // Every event's insert waited for a commit of the store, and so did its attempts'.
    let commits = sample(&m, "hookgate_store_commit_seconds_count").unwrap_or(0.0);
    assert!(commits >= 1.0, "{m}");
    assert_eq!(
        sample(&m, r#"hookgate_store_commit_seconds_bucket{le="+Inf"}"#),
        Some(commits)
    );
    // Alternating answers never make ten consecutive failures: the breaker stayed closed.
    assert_eq!(
        sample(&m, r#"hookgate_breaker_state{target="t"}"#),
        Some(0.0)
    );
    assert!(!m.contains("hookgate_breaker_opened_total{"), "{m}");
}

#[tokio::test]
async fn breaker_opens_on_a_dead_target_probes_half_open_and_closes() {
    let receiver = Receiver::start().await;
    receiver.default_reply(Reply::status(503));
    let extra = r#"concurrency = 1
retry = { max_attempts = 4, initial = "50ms", max = "100ms" }
breaker = { failures = 3, cool_down = "1500ms" }"#;
    let gw = Gateway::start(&config(&receiver, extra, ".body")).await;
    for n in 0..10 {
        post_json(&gw.hook("s"), format!(r#"{{"n":{n}}}"#), &[]).await;
    }
    wait_until("the breaker to open", Duration::from_secs(5), async || {
        breaker_state(&gw).await == "open"
    })
    .await;
    let at_open = receiver.seen().len();
    assert_eq!(at_open, 3, "three consecutive failures open it");

    // Open: nothing goes out until the cool-down ends, then exactly one probe, which fails.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(receiver.seen().len(), at_open, "no attempt while open");
    receiver.wait_for(at_open + 1, Duration::from_secs(3)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.seen().len(), at_open + 1, "one probe only");
    assert_eq!(breaker_state(&gw).await, "open");

    // The target recovers: the next probe succeeds, the breaker closes, everything goes out.
    receiver.default_reply(Reply::status(200));
    gw.wait_deliveries(Duration::from_secs(10), |d| {
        d.len() == 10 && d.iter().all(|x| x.2 == "succeeded")
    })
    .await;
    assert_eq!(breaker_state(&gw).await, "closed");
    // A dead target did not burn every event's retries: 4 failed attempts in all, none dead.
    assert_eq!(receiver.seen().len(), 4 + 10);
    let m = gw.metrics().await;
    assert_eq!(
        sample(&m, r#"hookgate_breaker_opened_total{target="t"}"#),
        Some(2.0)
    );
    assert_eq!(
        sample(&m, r#"hookgate_breaker_state{target="t"}"#),
        Some(0.0)
    );
    assert_eq!(
        sample::<f64>(
            &m,
            r#"hookgate_deliveries_total{target="t",outcome="dead"}"#
        ),
        None
    );
}

#[tokio::test]
async fn rate_limit_spaces_deliveries_out() {
    let receiver = Receiver::start().await;
    let gw = Gateway::start(&config(&receiver, r#"rate_limit = "20/s""#, ".body")).await;
    let started = Instant::now();
    for n in 0..40 {
        post_json(&gw.hook("s"), format!(r#"{{"n":{n}}}"#), &[]).await;
    }
    let seen = receiver.wait_for(40, Duration::from_secs(10)).await;
    // A burst of one second's worth (20), then 20 per second: the 40th cannot come before ~1 s.
    let span = seen[39].at.duration_since(started);
    assert!(
        span >= Duration::from_millis(900),
        "40 deliveries in {span:?}"
    );
    let early = seen
        .iter()
        .filter(|r| r.at.duration_since(started) < Duration::from_millis(500))
        .count();
    assert!(early <= 31, "{early} deliveries in the first 500 ms");
    let (_, targets) = admin(&gw, Method::GET, "/admin/v1/targets", Some(TOKEN)).await;
    assert_eq!(targets["data"][0]["rate_limit_per_second"], 20.0);
}

#[tokio::test]
async fn event_list_pages_and_filters_by_source_and_type() {
    let receiver = Receiver::start().await;
    let config = format!(
        r#"
{ADMIN}
[sources.a]
kind = "generic"
event_type = ".body.kind"

[sources.b]
kind = "generic"

[targets.t]
url = "{}"

[[routes]]
name = "ra"
source = "a"
targets = ["t"]

[[routes]]
name = "rb"
source = "b"
targets = ["t"]
"#,
        receiver.url
    );
    let gw = Gateway::start(&config).await;
    for kind in ["x", "y", "x"] {
        post_json(&gw.hook("a"), format!(r#"{{"kind":"{kind}"}}"#), &[]).await;
    }
    for _ in 0..2 {
        post_json(&gw.hook("b"), "{}".to_string(), &[]).await;
    }
    receiver.wait_for(5, Duration::from_secs(5)).await;
    gw.wait_routed().await;

    let (status, page) = admin(
        &gw,
        Method::GET,
        "/admin/v1/events?source=a&limit=2",
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["data"].as_array().map(Vec::len), Some(2));
    assert!(
        page["data"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|e| e["source"] == "a")
    );
    let cursor = page["next_cursor"]
        .as_str()
        .expect("a second page")
        .to_string();
    let path = format!("/admin/v1/events?source=a&limit=2&cursor={cursor}");
    let (_, next) = admin(&gw, Method::GET, &path, Some(TOKEN)).await;
    assert_eq!(next["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(next["data"][0]["event_type"], "x");
    assert_eq!(next["next_cursor"], serde_json::Value::Null);

    let (_, xs) = admin(
        &gw,
        Method::GET,
        "/admin/v1/events?event_type=x",
        Some(TOKEN),
    )
    .await;
    assert_eq!(xs["data"].as_array().map(Vec::len), Some(2));
    let (_, of_b) = admin(
        &gw,
        Method::GET,
        "/admin/v1/deliveries?source=b",
        Some(TOKEN),
    )
    .await;
    assert_eq!(of_b["data"].as_array().map(Vec::len), Some(2));
    assert!(
        of_b["data"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|d| d["route"] == "rb")
    );
    let (status, _) = admin(&gw, Method::GET, "/admin/v1/events", None).await;
    assert_eq!(status, 401);
    let (status, _) = admin(&gw, Method::GET, "/admin/v1/events?since=soon", Some(TOKEN)).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn reload_applies_a_good_file_and_a_bad_one_changes_nothing() {
    let receiver = Receiver::start().await;
    let gw = Gateway::start(&config(&receiver, "", "{v: 1}")).await;
    post_json(&gw.hook("s"), "{}", &[]).await;
    assert_eq!(
        receiver.wait_for(1, Duration::from_secs(5)).await[0].json()["v"],
        1
    );

    let (status, _) = admin(&gw, Method::POST, "/admin/v1/reload", None).await;
    assert_eq!(status, 401);

    // A broken mapping and an unknown target: refused with both problems, v1 keeps running.
    let broken =
        config(&receiver, "", "{v: }").replace(r#"targets = ["t"]"#, r#"targets = ["nope"]"#);
    gw.rewrite_config(&broken);
    let (status, body) = admin(&gw, Method::POST, "/admin/v1/reload", Some(TOKEN)).await;
    assert_eq!(status, 422, "{body}");
    let why = body["error"].as_str().unwrap_or_default();
    assert!(
        why.contains("routes[0].jq") && why.contains("nope"),
        "{why}"
    );
    post_json(&gw.hook("s"), "{}", &[]).await;
    assert_eq!(
        receiver.wait_for(2, Duration::from_secs(5)).await[1].json()["v"],
        1
    );

    // A new store cannot be swapped in place.
    gw.rewrite_config(&config(&receiver, "", "{v: 1}"));
    let moved = std::fs::read_to_string(gw.config_file())
        .expect("config")
        .replace(&gw.store_url, "sqlite:///tmp/elsewhere.db");
    std::fs::write(gw.config_file(), moved).expect("write");
    let (status, body) = admin(&gw, Method::POST, "/admin/v1/reload", Some(TOKEN)).await;
    assert_eq!(status, 422);
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("store.url"),
        "{body}"
    );

    gw.rewrite_config(&config(&receiver, "", "{v: 2}"));
    let (status, body) = admin(&gw, Method::POST, "/admin/v1/reload", Some(TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["summary"]["routes"], 1);
    post_json(&gw.hook("s"), "{}", &[]).await;
    assert_eq!(
        receiver.wait_for(3, Duration::from_secs(5)).await[2].json()["v"],
        2
    );
}

#[tokio::test]
async fn reload_under_load_loses_nothing() {
    let receiver = Receiver::start().await;
    let v1 = config(&receiver, "concurrency = 4", "{v: 1, n: .body.n}");
    let v2 = config(&receiver, "concurrency = 16", "{v: 2, n: .body.n}");
    let gw = Gateway::start(&v1).await;
    let hook = gw.hook("s");
    let senders: Vec<_> = (0..8)
        .map(|s| {
            let hook = hook.clone();
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for i in 0..50 {
                    let resp = client()
                        .post(&hook)
                        .header("content-type", "application/json")
                        .body(format!(r#"{{"n":{}}}"#, s * 1000 + i))
                        .send()
                        .await
                        .expect("send");
                    assert_eq!(resp.status(), 202);
                    let body: serde_json::Value = resp.json().await.expect("json");
                    ids.push(body["id"].as_str().expect("id").to_string());
                }
                ids
            })
        })
        .collect();
    for i in 0..10 {
        gw.rewrite_config(if i % 2 == 0 { &v2 } else { &v1 });
        let (status, body) = admin(&gw, Method::POST, "/admin/v1/reload", Some(TOKEN)).await;
        assert_eq!(status, 200, "{body}");
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    let mut acked = BTreeSet::new();
    for s in senders {
        acked.extend(s.await.expect("sender"));
    }
    assert_eq!(acked.len(), 400);
    gw.wait_deliveries(Duration::from_secs(20), |d| {
        d.len() == 400 && d.iter().all(|x| x.2 == "succeeded")
    })
    .await;
    let seen = receiver.seen();
    let arrived: BTreeSet<String> = seen
        .iter()
        .map(|r| r.header("x-hookgate-event").to_string())
        .collect();
    assert_eq!(arrived, acked, "every acknowledged event arrived");
    let versions: BTreeSet<i64> = seen.iter().filter_map(|r| r.json()["v"].as_i64()).collect();
    assert!(versions.is_subset(&[1, 2].into()), "{versions:?}");
}

#[tokio::test]
async fn sighup_reloads_the_config_file() {
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = crate::utils::store::url_for(dir.path()).await;
    let write = |v: u32| {
        crate::utils::binary::write_serve_config(
            dir.path(),
            &store,
            &receiver.url,
            "",
            &format!("jq = '{{v: {v}}}'"),
        )
    };
    let file = write(1);
    let gw = Process::serve(&file);
    post_json(&format!("{}/hooks/s", gw.url), "{}", &[]).await;
    assert_eq!(
        receiver.wait_for(1, Duration::from_secs(10)).await[0].json()["v"],
        1
    );

    write(2);
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &gw.child.id().to_string()])
        .status()
        .expect("kill -HUP");
    assert!(hup.success());
    // The reload is asynchronous: keep sending until the new mapping shows.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n = receiver.seen().len();
        post_json(&format!("{}/hooks/s", gw.url), "{}", &[]).await;
        let last = receiver.wait_for(n + 1, Duration::from_secs(5)).await;
        if last[n].json()["v"] == 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "SIGHUP never applied the new config"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn sigterm_drains_the_attempt_in_flight_then_exits() {
    let receiver = Receiver::start().await;
    receiver.default_reply(Reply::status(200).delay(Duration::from_millis(1500)));
    let dir = tempfile::tempdir().expect("tempdir");
    let store = crate::utils::store::url_for(dir.path()).await;
    let file = crate::utils::binary::write_serve_config(dir.path(), &store, &receiver.url, "", "");
    let mut gw = Process::serve(&file);
    post_json(&format!("{}/hooks/s", gw.url), "{}", &[]).await;
    receiver.wait_for(1, Duration::from_secs(10)).await;
    let term = std::process::Command::new("kill")
        .args(["-TERM", &gw.child.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(term.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = gw.child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "hookgate did not exit after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "{status}");
    // The attempt in flight finished and was recorded: nothing is owed after the restart.
    let rows = crate::utils::store::Db::new(store)
        .rows("SELECT status, attempts FROM deliveries")
        .await;
    assert_eq!(rows.len(), 1, "one delivery: {rows:?}");
    assert_eq!(
        (rows[0][0].text(), rows[0][1].int()),
        ("succeeded".into(), 1)
    );
}
