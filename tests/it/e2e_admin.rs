//! The admin API: bearer auth, the delivery log with filters and pagination, attempts, retry.

use crate::utils::admin::{ADMIN, TOKEN, admin, cli};
use crate::utils::{Gateway, Receiver, Reply, post_json};
use std::time::Duration;

#[tokio::test]
async fn delivery_log_pages_shows_attempts_and_retries() {
    let receiver = Receiver::start().await;
    receiver.default_reply(Reply::status(400));
    let config = format!(
        r#"
{ADMIN}

[sources.s]
kind = "generic"

[targets.t]
url = "{}"

[[routes]]
name = "r"
source = "s"
targets = ["t"]
"#,
        receiver.url
    );
    let gw = Gateway::start(&config).await;
    for n in 0..5 {
        post_json(&gw.hook("s"), format!(r#"{{"n":{n}}}"#), &[]).await;
    }
    gw.wait_deliveries(Duration::from_secs(5), |d| {
        d.len() == 5 && d.iter().all(|x| x.2 == "failed")
    })
    .await;

    // Refused without the token, or with another one, and nothing leaks.
    for token in [None, Some("admin-token-wrong-000000")] {
        let (status, body) = admin(&gw, reqwest::Method::GET, "/admin/v1/deliveries", token).await;
        assert_eq!(status, 401);
        assert!(!body.to_string().contains(TOKEN));
    }

    // Who shares the store: no one on SQLite; on PostgreSQL, this instance alone.
    let (status, body) = admin(
        &gw,
        reqwest::Method::GET,
        "/admin/v1/instances",
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let instances = body["data"].as_array().expect("data").len();
    match crate::utils::store::backend() {
        crate::utils::store::Backend::Sqlite => {
            assert_eq!((body["shared"].clone(), instances), (false.into(), 0))
        }
        crate::utils::store::Backend::Postgres => {
            assert_eq!((body["shared"].clone(), instances), (true.into(), 1));
            assert_eq!(body["data"][0]["this"], true);
        }
    }

    // Pages of two, newest first, until the cursor runs out.
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..5 {
        let path = match &cursor {
            Some(c) => format!("/admin/v1/deliveries?status=failed&limit=2&cursor={c}"),
            None => "/admin/v1/deliveries?status=failed&limit=2".to_string(),
        };
        let (status, page) = admin(&gw, reqwest::Method::GET, &path, Some(TOKEN)).await;
        assert_eq!(status, 200, "{page}");
        ids.extend(
            page["data"]
                .as_array()
                .expect("data")
                .iter()
                .map(|d| d["id"].as_str().expect("id").to_string()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(ids.len(), 5, "{ids:?}");
    assert_eq!(
        ids.iter().collect::<std::collections::HashSet<_>>().len(),
        5,
        "no item twice"
    );
    let (_, none) = admin(
        &gw,
        reqwest::Method::GET,
        "/admin/v1/deliveries?status=dead",
        Some(TOKEN),
    )
    .await;
    assert_eq!(none["data"], serde_json::json!([]));
    let (status, _) = admin(
        &gw,
        reqwest::Method::GET,
        "/admin/v1/deliveries?status=bogus",
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 400);

    // One delivery with its attempt: status code, error, response body.
    let id = &ids[0];
    let (status, d) = admin(
        &gw,
        reqwest::Method::GET,
        &format!("/admin/v1/deliveries/{id}"),
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(d["status"], "failed");
    assert_eq!(d["attempts"][0]["status_code"], 400);
    assert_eq!(d["attempts"][0]["response_body"], "receiver says hi");
    let (status, _) = admin(
        &gw,
        reqwest::Method::GET,
        "/admin/v1/deliveries/dlv_nope",
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 404);

    // Retry it once the receiver is fixed: a second attempt, same delivery id, succeeded.
    receiver.default_reply(Reply::status(200));
    let (status, _) = admin(
        &gw,
        reqwest::Method::POST,
        &format!("/admin/v1/deliveries/{id}/retry"),
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 202);
    let seen = receiver.wait_for(6, Duration::from_secs(5)).await;
    let last = seen.last().expect("retried request");
    assert_eq!(last.header("x-hookgate-delivery"), id);
    assert_eq!(last.header("x-hookgate-attempt"), "2");
    gw.wait_deliveries(Duration::from_secs(5), |d| {
        d.iter().filter(|x| x.2 == "succeeded").count() == 1
    })
    .await;
}

#[tokio::test]
async fn bulk_retry_by_filter_and_replay_of_an_event() {
    let receiver = Receiver::start().await;
    receiver.default_reply(Reply::status(422));
    let config = format!(
        r#"
{ADMIN}

[sources.s]
kind = "generic"

[targets.t]
url = "{}"

[[routes]]
name = "r"
source = "s"
jq = '{{n: .body.n}}'
targets = ["t"]
"#,
        receiver.url
    );
    let gw = Gateway::start(&config).await;
    let mut event_ids = Vec::new();
    for n in 0..3 {
        let (_, json) = post_json(&gw.hook("s"), format!(r#"{{"n":{n}}}"#), &[]).await;
        event_ids.push(json["id"].as_str().expect("id").to_string());
    }
    gw.wait_deliveries(Duration::from_secs(5), |d| {
        d.len() == 3 && d.iter().all(|x| x.2 == "failed")
    })
    .await;

    // Every failed delivery of target t in the last hour, queued again in one call.
    receiver.default_reply(Reply::status(200));
    let path = "/admin/v1/deliveries/retry?status=failed&target=t&since=1h";
    let (status, body) = admin(&gw, reqwest::Method::POST, path, Some(TOKEN)).await;
    assert_eq!((status, body["queued"].as_u64()), (202, Some(3)), "{body}");
    gw.wait_deliveries(Duration::from_secs(5), |d| {
        d.iter().all(|x| x.2 == "succeeded")
    })
    .await;
    let (_, body) = admin(
        &gw,
        reqwest::Method::POST,
        "/admin/v1/deliveries/retry?target=nowhere",
        Some(TOKEN),
    )
    .await;
    assert_eq!(body["queued"], 0);

    // Replay: the event runs through the routes again, making a new delivery linked to it.
    let id = &event_ids[1];
    let (status, _) = admin(
        &gw,
        reqwest::Method::POST,
        &format!("/admin/v1/events/{id}/replay"),
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 202);
    gw.wait_deliveries(Duration::from_secs(5), |d| {
        d.len() == 4 && d.iter().all(|x| x.2 == "succeeded")
    })
    .await;
    let (status, event) = admin(
        &gw,
        reqwest::Method::GET,
        &format!("/admin/v1/events/{id}"),
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        event["deliveries"].as_array().map(Vec::len),
        Some(2),
        "{event}"
    );
    assert_eq!(event["body"], r#"{"n":1}"#);
    let replayed: Vec<_> = receiver
        .seen()
        .into_iter()
        .filter(|r| r.header("x-hookgate-event") == id)
        .collect();
    let deliveries: std::collections::HashSet<&str> = replayed
        .iter()
        .map(|r| r.header("x-hookgate-delivery"))
        .collect();
    assert_eq!(
        deliveries.len(),
        2,
        "a replay is a new delivery of the same event"
    );
    let (status, _) = admin(
        &gw,
        reqwest::Method::POST,
        "/admin/v1/events/evt_nope/replay",
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 404);
}

/// Runs `hookgate <args>` against the gateway's admin API; returns (exit code, stdout, stderr).

#[tokio::test]
async fn cli_lists_shows_retries_and_replays() {
    let receiver = Receiver::start().await;
    receiver.default_reply(Reply::status(422));
    let config = format!(
        "{ADMIN}\n[sources.s]\nkind = \"generic\"\n\n[targets.t]\nurl = \"{}\"\n\n[[routes]]\nname = \"r\"\nsource = \"s\"\ntargets = [\"t\"]\n",
        receiver.url
    );
    let gw = Gateway::start(&config).await;
    let (_, ev) = post_json(&gw.hook("s"), r#"{"n":1}"#, &[]).await;
    gw.wait_deliveries(Duration::from_secs(5), |d| {
        d.len() == 1 && d[0].2 == "failed"
    })
    .await;

    let (code, out, err) = cli(&gw, TOKEN, &["deliveries", "ls", "--status", "failed"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("ID") && out.contains("failed") && out.contains("HTTP 422"),
        "{out}"
    );
    let id = out
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().next())
        .expect("a row")
        .to_string();
    let (code, out, _) = cli(&gw, TOKEN, &["deliveries", "ls", "--json"]).await;
    assert_eq!(code, 0);
    let json: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(json["data"][0]["id"], id.as_str());
    let (code, out, _) = cli(&gw, TOKEN, &["deliveries", "show", &id]).await;
    assert_eq!(code, 0);
    assert!(out.contains("ATTEMPT") && out.contains("422"), "{out}");

    receiver.default_reply(Reply::status(200));
    let (code, out, _) = cli(&gw, TOKEN, &["deliveries", "retry", &id]).await;
    assert_eq!(code, 0, "{out}");
    gw.wait_deliveries(Duration::from_secs(5), |d| {
        d.len() == 1 && d[0].2 == "succeeded"
    })
    .await;
    let (code, _, _) = cli(
        &gw,
        TOKEN,
        &["events", "replay", ev["id"].as_str().expect("id")],
    )
    .await;
    assert_eq!(code, 0);
    gw.wait_deliveries(Duration::from_secs(5), |d| d.len() == 2)
        .await;

    let (code, _, err) = cli(&gw, "wrong-token-000000000", &["deliveries", "ls"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("401"), "{err}");
    let (code, _, err) = cli(&gw, TOKEN, &["deliveries", "show", "dlv_nope"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("404"), "{err}");
}

/// Finished records older than `store.retention` are pruned in the background; owed work is not.
#[tokio::test]
async fn retention_prunes_finished_records_and_keeps_pending_ones() {
    let done = Receiver::start().await;
    let down = Receiver::start().await;
    down.default_reply(Reply::status(503));
    let config = format!(
        r#"
[sources.s]
kind = "generic"

[targets.done]
url = "{}"

[targets.down]
url = "{}"
retry = {{ max_attempts = 100, initial = "1h", max = "1h" }}

[[routes]]
name = "to-done"
source = "s"
filter = '.body.to == "done"'
targets = ["done"]

[[routes]]
name = "to-down"
source = "s"
filter = '.body.to == "down"'
targets = ["down"]
"#,
        done.url, down.url
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let gw = Gateway::start_with_store(&config, dir, "retention = \"1s\"").await;
    post_json(&gw.hook("s"), r#"{"to":"done"}"#, &[]).await;
    post_json(&gw.hook("s"), r#"{"to":"down"}"#, &[]).await;
    done.wait_for(1, Duration::from_secs(5)).await;
    down.wait_for(1, Duration::from_secs(5)).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while gw.db().count("SELECT COUNT(*) FROM events").await > 1 {
        assert!(std::time::Instant::now() < deadline, "nothing pruned");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let d = gw.deliveries().await;
    assert_eq!(
        d,
        vec![(
            "to-down".to_string(),
            "down".to_string(),
            "pending".to_string()
        )]
    );
    assert_eq!(
        gw.db().count("SELECT COUNT(*) FROM attempts").await,
        1,
        "the pending delivery keeps its attempt log"
    );
}

/// A delivery whose route's mapping failed has no body of its own: retrying it once sent the raw
/// event to the target, past the filter and the mapping that existed to drop fields. A retry is
/// refused with the way out (replay), bulk retries leave it alone, and a replay routes the event
/// again under the current config.
#[tokio::test]
async fn a_delivery_that_failed_in_routing_is_never_retried_raw() {
    let receiver = Receiver::start().await;
    let config = |jq: &str| {
        format!(
            "{ADMIN}\n[sources.s]\nkind = \"generic\"\n\n[targets.t]\nurl = \"{}\"\n\n\
             [[routes]]\nname = \"r\"\nsource = \"s\"\njq = '{jq}'\ntargets = [\"t\"]\n",
            receiver.url
        )
    };
    let gw = Gateway::start(&config(r#"{n: .body.n, secret: (.body.secret + 1)}"#)).await;
    let (status, answer) = post_json(&gw.hook("s"), r#"{"n": 1, "secret": "s3cr3t"}"#, &[]).await;
    assert_eq!(status, 202);
    let event_id = answer["id"].as_str().expect("id").to_string();
    let delivery = gw
        .wait_deliveries(Duration::from_secs(10), |d| {
            d.iter().any(|x| x.2 == "failed")
        })
        .await;
    assert_eq!(delivery.len(), 1);
    let id = gw
        .db()
        .one("SELECT id FROM deliveries WHERE status = 'failed'")
        .await
        .text();

    let path = format!("/admin/v1/deliveries/{id}/retry");
    let (status, body) = admin(&gw, reqwest::Method::POST, &path, Some(TOKEN)).await;
    assert_eq!(status, 409, "{body}");
    let error = body["error"].as_str().unwrap_or_default();
    assert!(error.contains("failed in routing"), "{error}");
    assert!(
        error.contains(&format!("/admin/v1/events/{event_id}/replay")),
        "{error}"
    );
    let (status, body) = admin(
        &gw,
        reqwest::Method::POST,
        "/admin/v1/deliveries/retry?status=failed",
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["queued"], 0, "{body}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(receiver.seen().is_empty(), "nothing is sent raw");

    // Fixed mapping, then replay: the event is routed again, through the mapping.
    gw.rewrite_config(&config("{n: .body.n}"));
    let (status, body) = admin(&gw, reqwest::Method::POST, "/admin/v1/reload", Some(TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    let path = format!("/admin/v1/events/{event_id}/replay");
    let (status, body) = admin(&gw, reqwest::Method::POST, &path, Some(TOKEN)).await;
    assert!(status == 200 || status == 202, "{status} {body}");
    let seen = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(seen[0].json(), serde_json::json!({"n": 1}));
    assert!(!String::from_utf8_lossy(&seen[0].body).contains("s3cr3t"));
}
