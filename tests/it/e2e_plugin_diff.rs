//! `plugin diff` end to end: stored events through the active plugin and a candidate, through
//! the admin API and the binary, and proof that a diff sends, stores and activates nothing.

use crate::utils::admin::{ADMIN, TOKEN, admin, cli, upload_plugin as upload, with_body};
use crate::utils::wasm::{guest_bytes, plugin_bytes};
use crate::utils::{Gateway, Receiver, post_json, sample};
use std::time::Duration;

/// A Spacelift source `s` whose route `r` runs plugin `p`, and a passthrough route beside it.
fn config(receiver: &Receiver) -> String {
    format!(
        r##"
{ADMIN}
[plugins]
dir = "plugins"
timeout_ms = 2000

[sources.s]
kind = "spacelift"

[targets.t]
url = "{url}"

[[routes]]
name = "r"
source = "s"
wasm = {{ plugin = "p", config = {{}} }}
targets = ["t"]

[[routes]]
name = "plain"
source = "s"
targets = ["t"]
"##,
        url = receiver.url
    )
}

/// `POST /admin/v1/plugins/{name}/diff{query}` with `wasm` as the body.
async fn diff(gw: &Gateway, name: &str, query: &str, wasm: Vec<u8>) -> (u16, serde_json::Value) {
    let path = format!("/admin/v1/plugins/{name}/diff{query}");
    with_body(gw, reqwest::Method::POST, &path, wasm).await
}

/// Counts of what a diff must not change: deliveries stored, requests received, the active sha.
async fn untouched(gw: &Gateway, receiver: &Receiver) -> (usize, usize, String) {
    let deliveries = gw.db().rows("SELECT id FROM deliveries").await.len();
    let (_, plugins) = admin(gw, reqwest::Method::GET, "/admin/v1/plugins", Some(TOKEN)).await;
    let sha = plugins["data"][0]["sha256"]
        .as_str()
        .unwrap_or("none")
        .to_string();
    (deliveries, receiver.seen().len(), sha)
}

#[tokio::test]
async fn plugin_diff_shows_what_an_upload_would_change_and_changes_nothing() {
    let receiver = Receiver::start().await;
    let gw = Gateway::start(&config(&receiver)).await;
    let (status, body) = upload(&gw, "p", plugin_bytes("slack-notify")).await;
    assert_eq!(status, 200, "{body}");
    let mut ids = Vec::new();
    for name in [
        "run_finished.json",
        "run_unconfirmed.json",
        "run_finished.json",
    ] {
        let (status, answer) =
            post_json(&gw.hook("s"), sample(&format!("spacelift/{name}")), &[]).await;
        assert_eq!(status, 202, "{answer}");
        ids.push(answer["id"].as_str().expect("id").to_string());
    }
    receiver.wait_for(6, Duration::from_secs(15)).await;
    // A routing is committed after its deliveries' first attempts (`route::late`): the receiver
    // may have them all before the store does.
    gw.wait_routed().await;
    let before = untouched(&gw, &receiver).await;

    // The API: every stored event, newest first, each with both versions' messages.
    let (status, d) = diff(&gw, "p", "?since=1h", plugin_bytes("port-entity")).await;
    assert_eq!(status, 200, "{d}");
    assert_eq!(d["plugin"], "p");
    assert_eq!(
        d["routes"],
        serde_json::json!(["r"]),
        "only the plugin's routes run"
    );
    assert_eq!(d["compared"], 3, "{d:#}");
    assert_eq!(d["active_sha256"].as_str(), Some(before.2.as_str()));
    assert_ne!(d["candidate_sha256"], d["active_sha256"]);
    assert!(
        d["candidate_mean_us"].as_u64().is_some_and(|us| us > 0),
        "{d}"
    );
    let differences = d["differences"].as_array().expect("differences");
    let newest_first: Vec<&str> = ids.iter().rev().map(String::as_str).collect();
    let listed: Vec<&str> = differences
        .iter()
        .map(|x| x["event_id"].as_str().expect("id"))
        .collect();
    assert_eq!(d["changed"], listed.len());
    assert!(!listed.is_empty(), "{d:#}");
    assert!(
        listed.iter().all(|id| newest_first.contains(id)),
        "{listed:?}"
    );
    assert!(
        listed.windows(2).all(|w| {
            let pos = |id| newest_first.iter().position(|x| *x == id);
            pos(w[0]) < pos(w[1])
        }),
        "newest first: {listed:?}"
    );
    let first = &differences[0];
    assert_eq!(first["route"], "r");
    assert_eq!(first["source"], "s");
    let active_body = first["active"]["messages"][0]["body"]
        .as_str()
        .expect("active body");
    let candidate_body = first["candidate"]["messages"][0]["body"]
        .as_str()
        .unwrap_or_else(|| panic!("{first:#}"));
    assert!(active_body.contains("\"blocks\""), "{active_body}");
    assert!(candidate_body.contains("\"blueprint\""), "{candidate_body}");
    assert_eq!(first["candidate"]["messages"][0]["target"], "t");

    // `since` bounds the events by age: none arrived in the last millisecond.
    let (status, recent) = diff(&gw, "p", "?since=1ms", plugin_bytes("port-entity")).await;
    assert_eq!(status, 200, "{recent}");
    assert_eq!(recent["compared"], 0, "{recent}");

    // The same version again: nothing differs.
    let (status, same) = diff(&gw, "p", "", plugin_bytes("slack-notify")).await;
    assert_eq!(status, 200, "{same}");
    assert_eq!(
        (same["compared"].as_u64(), same["changed"].as_u64()),
        (Some(3), Some(0))
    );

    // A candidate that refuses every event shows as failed, with its reason; `limit` holds.
    let (status, failing) = diff(&gw, "p", "?limit=2", guest_bytes("reject")).await;
    assert_eq!(status, 200, "{failing}");
    assert_eq!(failing["compared"], 2);
    let candidate = &failing["differences"][0]["candidate"];
    assert_eq!(candidate["outcome"], "failed", "{failing:#}");
    assert!(candidate["messages"].as_array().is_some_and(Vec::is_empty));
    assert!(
        candidate["detail"]
            .as_str()
            .is_some_and(|d| d.contains("rejected the event")),
        "{candidate}"
    );

    // The binary: a summary, then a unified diff of each message; exit 1 as diff(1) does.
    let dir = tempfile::tempdir().expect("tempdir");
    let candidate = dir.path().join("candidate.wasm");
    std::fs::write(&candidate, plugin_bytes("port-entity")).expect("write");
    let path = candidate.to_str().expect("utf-8 path");
    let (code, out, err) = cli(&gw, TOKEN, &["plugin", "diff", "p", path, "--since", "1h"]).await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.starts_with("plugin `p` on route(s) r: 3 stored event(s) compared,"),
        "{out}"
    );
    assert!(
        out.contains("  active:    delivered (1 message(s))"),
        "{out}"
    );
    assert!(out.contains("  --- active\n  +++ candidate\n"), "{out}");
    assert!(out.contains("  -  \"blocks\": ["), "{out}");
    assert!(out.contains("  +  \"blueprint\": "), "{out}");
    std::fs::write(&candidate, plugin_bytes("slack-notify")).expect("write");
    let (code, out, err) = cli(&gw, TOKEN, &["plugin", "diff", "p", path]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("3 stored event(s) compared, 0 differ"),
        "{out}"
    );

    // Nothing was sent, stored or activated by any of it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(untouched(&gw, &receiver).await, before);
}

#[tokio::test]
async fn plugin_diff_refuses_what_it_cannot_compare_with_the_reason() {
    let receiver = Receiver::start().await;
    let gw = Gateway::start(&config(&receiver)).await;
    let (status, body) = diff(&gw, "p", "", b"not a component".to_vec()).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("not a WebAssembly binary")),
        "{body}"
    );
    let (status, body) = diff(&gw, "unused", "", plugin_bytes("slack-notify")).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("no route")),
        "{body}"
    );
    for query in ["?limit=0", "?limit=1001", "?since=soon"] {
        let (status, body) = diff(&gw, "p", query, plugin_bytes("slack-notify")).await;
        assert_eq!(status, 400, "{query}: {body}");
    }
    // Not uploaded yet: the active side of every stored event is `waiting`.
    post_json(&gw.hook("s"), sample("spacelift/run_finished.json"), &[]).await;
    receiver.wait_for(1, Duration::from_secs(15)).await;
    let (status, d) = diff(&gw, "p", "", plugin_bytes("slack-notify")).await;
    assert_eq!(status, 200, "{d}");
    assert_eq!(d["active_sha256"], serde_json::Value::Null);
    assert_eq!(d["differences"][0]["active"]["outcome"], "waiting", "{d:#}");
    assert_eq!(
        d["differences"][0]["candidate"]["outcome"], "delivered",
        "{d:#}"
    );
    let (code, out, err) = cli(
        &gw,
        "wrong-token",
        &["plugin", "diff", "p", "/nonexistent.wasm"],
    )
    .await;
    assert_eq!(code, 2, "trouble is 2, as diff(1): {out}{err}");
    assert!(err.contains("/nonexistent.wasm"), "{out}{err}");
}
