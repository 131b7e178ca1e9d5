//! Several gateway instances on one PostgreSQL: what one instance is told (a plugin upload or
//! delete, a config reload, a target switched off) reaches the others, and an instance killed
//! with SIGKILL under load loses nothing. These run on PostgreSQL on every pass.

use crate::utils::admin::{ADMIN, TOKEN, admin};
use crate::utils::binary::Process;
use crate::utils::store::fresh_postgres_database;
use crate::utils::wasm::guest_bytes;
use crate::utils::{Gateway, Receiver, client, post_json};
use reqwest::Method;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Route `r` runs plugin `p` (the echo guest: the event's body back); route `m` maps to
/// `{v: version}`. Both to the receiver, told apart by a header.
fn config(receiver: &Receiver, version: u32) -> String {
    format!(
        r#"
{ADMIN}
[plugins]
dir = "plugins"

[sources.s]
kind = "generic"

[targets.plugin]
url = "{url}"
headers = {{ "X-Route" = "plugin" }}

[targets.mapped]
url = "{url}"
headers = {{ "X-Route" = "mapped" }}

[[routes]]
name = "r"
source = "s"
wasm = {{ plugin = "p", config = {{ quiet = true }} }}
targets = ["plugin"]

[[routes]]
name = "m"
source = "s"
jq = '{{v: {version}, n: .body.n}}'
targets = ["mapped"]
"#,
        url = receiver.url
    )
}

async fn put_plugin(gw: &Gateway, name: &str, wasm: Vec<u8>) -> (u16, serde_json::Value) {
    let url = format!(
        "{}/admin/v1/plugins/{name}",
        gw.admin_url.as_deref().expect("admin")
    );
    let resp = client()
        .put(url)
        .bearer_auth(TOKEN)
        .body(wasm)
        .send()
        .await
        .expect("upload");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or_default())
}

/// The sha256 of each plugin `gw` runs.
async fn plugins_of(gw: &Gateway) -> HashMap<String, String> {
    let (status, body) = admin(gw, Method::GET, "/admin/v1/plugins", Some(TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    body["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|p| {
            let field = |k: &str| p[k].as_str().unwrap_or_default().to_string();
            (field("name"), field("sha256"))
        })
        .collect()
}

/// Polls `check` every 50 ms until it holds, or fails with `what` after 15 s.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(15);
    while !check().await {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn plugin_uploads_reloads_and_target_switches_reach_every_instance() {
    let receiver = Receiver::start().await;
    let store = fresh_postgres_database("cluster").await;
    let a = Gateway::start_sharing(&config(&receiver, 1), &store).await;
    let b = Gateway::start_sharing(&config(&receiver, 1), &store).await;

    // An event reaches b before any instance has the plugin: its plugin route waits.
    post_json(&b.hook("s"), r#"{"n":1}"#, &[]).await;
    receiver.wait_for(1, Duration::from_secs(10)).await;

    // Uploaded to a only; b installs the same bytes itself, and the waiting route is delivered.
    let (status, body) = put_plugin(&a, "p", guest_bytes("echo")).await;
    assert_eq!(status, 200, "{body}");
    let sha = body["sha256"].as_str().expect("sha256").to_string();
    eventually("b runs the plugin uploaded to a", || async {
        plugins_of(&b).await.get("p") == Some(&sha)
    })
    .await;
    let seen = receiver.wait_for(2, Duration::from_secs(10)).await;
    let from_plugin: Vec<_> = seen
        .iter()
        .filter(|r| r.header("x-route") == "plugin")
        .collect();
    assert_eq!(from_plugin.len(), 1, "the waiting route ran once");
    assert_eq!(from_plugin[0].json()["n"], 1);
    // b runs it itself for its next event.
    receiver.clear();
    post_json(&b.hook("s"), r#"{"n":2}"#, &[]).await;
    let seen = receiver.wait_for(2, Duration::from_secs(10)).await;
    assert!(
        seen.iter()
            .any(|r| r.header("x-route") == "plugin" && r.json()["n"] == 2)
    );

    // An instance started later gets the plugin at start.
    let c = Gateway::start_sharing(&config(&receiver, 1), &store).await;
    assert_eq!(plugins_of(&c).await.get("p"), Some(&sha));

    // A reload asked of a reaches b and c: each re-reads its own (here: updated) file.
    for gw in [&a, &b, &c] {
        gw.rewrite_config(&config(&receiver, 2));
    }
    let (status, body) = admin(&a, Method::POST, "/admin/v1/reload", Some(TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    for gw in [&b, &c] {
        eventually("the other instances reload", || async {
            receiver.clear();
            post_json(&gw.hook("s"), r#"{"n":3}"#, &[]).await;
            let seen = receiver.wait_for(2, Duration::from_secs(10)).await;
            seen.iter()
                .any(|r| r.header("x-route") == "mapped" && r.json()["v"] == 2)
        })
        .await;
    }

    // A target switched off on a is off on b.
    let (status, _) = admin(
        &a,
        Method::POST,
        "/admin/v1/targets/mapped/disable",
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 200);
    eventually("b sees the target disabled", || async {
        let (_, body) = admin(&b, Method::GET, "/admin/v1/targets", Some(TOKEN)).await;
        body["data"].as_array().is_some_and(|ts| {
            ts.iter()
                .any(|t| t["name"] == "mapped" && t["disabled"] == true)
        })
    })
    .await;

    // A delete on a (once no route uses the plugin) unloads it everywhere.
    let without_plugin = config(&receiver, 2).replace(
        "wasm = { plugin = \"p\", config = { quiet = true } }",
        "jq = '.body'",
    );
    for gw in [&a, &b, &c] {
        gw.rewrite_config(&without_plugin);
    }
    let (status, body) = admin(&a, Method::POST, "/admin/v1/reload", Some(TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = admin(&a, Method::DELETE, "/admin/v1/plugins/p", Some(TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    for gw in [&b, &c] {
        eventually("the other instances unload the deleted plugin", || async {
            plugins_of(gw).await.is_empty()
        })
        .await;
    }
    // ... and it stays deleted for an instance that starts afterwards with the file still in its
    // folder (it was away when the delete happened).
    let d_dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(d_dir.path().join("plugins")).expect("mkdir");
    std::fs::write(d_dir.path().join("plugins/p.wasm"), guest_bytes("echo")).expect("write");
    let d = Gateway::start_sharing_in(&without_plugin, d_dir, &store).await;
    eventually(
        "a late instance drops a plugin deleted while it was away",
        || async { plugins_of(&d).await.is_empty() },
    )
    .await;
    assert!(plugins_of(&a).await.is_empty(), "nothing shared it again");
}
