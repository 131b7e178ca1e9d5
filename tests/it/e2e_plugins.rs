//! WebAssembly plugins end to end: upload at run time, routes that wait for their plugin, the real
//! slack-notify and port-entity plugins on every platform's fixtures, hostile guests, bad uploads,
//! hot swap under load, delete rules, and restart.

use crate::utils::admin::{ADMIN, TOKEN, admin, cli};
use crate::utils::wasm::{guest_bytes, plugin_bytes, plugin_path};
use crate::utils::{Gateway, Receiver, client, fixture, post_json, sample, sample_path};
use reqwest::Method;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

// 500 ms, not less: the hog guest must reach its memory cap before the time limit even on a
// machine busy compiling (zeroing 64 MiB took over 100 ms there).
const PLUGINS: &str = "[plugins]\ndir = \"plugins\"\ntimeout_ms = 500\nmemory_mb = 64\n";

use crate::utils::admin::upload_plugin as upload;

/// One generic source `s` whose route `r` runs plugin `plugin` with `config` (TOML inline table),
/// and a passthrough route `plain` beside it, both to the receiver.
fn one_route(receiver: &Receiver, plugin: &str, config: &str) -> String {
    format!(
        r#"
{ADMIN}
{PLUGINS}
[sources.s]
kind = "generic"

[targets.t]
url = "{url}"
retry = {{ max_attempts = 2, initial = "10ms", max = "10ms" }}

[targets.plain]
url = "{url}"
headers = {{ "X-Route" = "plain" }}

[[routes]]
name = "r"
source = "s"
wasm = {{ plugin = "{plugin}", config = {config} }}
targets = ["t"]

[[routes]]
name = "plain"
source = "s"
targets = ["plain"]
"#,
        url = receiver.url
    )
}

/// Every (route, target, status, error) of the delivery log.
async fn log(gw: &Gateway) -> Vec<(String, String, String, Option<String>)> {
    gw.db()
        .rows("SELECT route, target, status, last_error FROM deliveries ORDER BY seq")
        .await
        .iter()
        .map(|r| (r[0].text(), r[1].text(), r[2].text(), r[3].opt_text()))
        .collect()
}

async fn wait_log(gw: &Gateway, n: usize) -> Vec<(String, String, String, Option<String>)> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let l = log(gw).await;
        if l.len() >= n && l.iter().all(|d| d.2 != "pending") {
            return l;
        }
        assert!(Instant::now() < deadline, "deliveries so far: {l:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn events_wait_for_a_plugin_pushed_later_then_slack_messages_for_every_platform() {
    let receiver = Receiver::start().await;
    let mut config = format!(
        "{ADMIN}\n{PLUGINS}\n[targets.slack]\nurl = \"{}\"\n",
        receiver.url
    );
    for kind in ["spacelift", "pulumi", "hcp", "nullstone"] {
        config.push_str(&format!(
            "\n[sources.{kind}]\nkind = \"{kind}\"\n\n[[routes]]\nname = \"{kind}-to-slack\"\nsource = \"{kind}\"\n\
             wasm = {{ plugin = \"slack-notify\", config = {{ channel = \"#deploys\" }} }}\ntargets = [\"slack\"]\n"
        ));
    }
    let gw = Gateway::start(&config).await;
    let spacelift = sample("spacelift/run_finished.json");
    post_json(&gw.hook("spacelift"), spacelift, &[]).await;

    // Not uploaded yet: the route waits (no delivery, nothing dead), and says why.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(log(&gw).await.is_empty());
    let (_, events) = admin(&gw, Method::GET, "/admin/v1/events", Some(TOKEN)).await;
    let id = events["data"][0]["id"]
        .as_str()
        .expect("event id")
        .to_string();
    let (_, event) = admin(
        &gw,
        Method::GET,
        &format!("/admin/v1/events/{id}"),
        Some(TOKEN),
    )
    .await;
    assert_eq!(event["routes"][0]["outcome"], "waiting", "{event}");

    let file = plugin_path("slack-notify");
    let (code, out, err) = cli(
        &gw,
        TOKEN,
        &["plugin", "push", "slack-notify", &file.to_string_lossy()],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("slack-notify: active") && out.contains("spacelift-to-slack"),
        "{out}"
    );
    let first = receiver.wait_for(1, Duration::from_secs(10)).await;
    let msg = first[0].json();
    assert_eq!(msg["channel"], "#deploys");
    assert!(msg["text"].as_str().is_some_and(|t| !t.is_empty()), "{msg}");
    assert!(
        msg["blocks"][0]["type"] == "header"
            || msg["attachments"][0]["blocks"][0]["type"] == "header",
        "{msg}"
    );

    let cases = [
        (
            "pulumi",
            "pulumi/stack_update.json",
            &[("Pulumi-Webhook-Kind", "stack_update")][..],
        ),
        ("hcp", "hcp/packer_version_created.json", &[][..]),
        ("nullstone", "nullstone/deployed.json", &[][..]),
    ];
    for (source, name, headers) in cases {
        post_json(&gw.hook(source), sample(name), headers).await;
    }
    let all = receiver.wait_for(4, Duration::from_secs(10)).await;
    for r in &all {
        let text = r.json()["text"].as_str().unwrap_or_default().to_string();
        assert!(
            !text.is_empty(),
            "every message has a plain-text fallback: {}",
            r.json()
        );
    }
    let (code, out, _) = cli(&gw, TOKEN, &["plugin", "ls"]).await;
    assert!(
        code == 0 && out.contains("slack-notify") && out.contains("pulumi-to-slack"),
        "{out}"
    );
}

#[tokio::test]
async fn port_entity_plugin_builds_ports_entity_from_a_spacelift_run() {
    let receiver = Receiver::start().await;
    let gw = Gateway::start(
        &one_route(&receiver, "port-entity", "{}")
            .replace("kind = \"generic\"", "kind = \"spacelift\""),
    )
    .await;
    let (status, body) = upload(&gw, "port-entity", plugin_bytes("port-entity")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["routes"], serde_json::json!(["r"]));
    post_json(&gw.hook("s"), sample("spacelift/run_finished.json"), &[]).await;
    wait_log(&gw, 2).await;
    let entity = receiver
        .seen()
        .into_iter()
        .find(|r| r.header("x-route") != "plain")
        .expect("the entity")
        .json();
    let expected: serde_json::Value =
        serde_json::from_slice(&fixture("port_spacelift_entity_result.json")).expect("json");
    assert_eq!(entity, expected);
}

#[tokio::test]
async fn hostile_plugins_fail_their_own_deliveries_and_nothing_else() {
    let receiver = Receiver::start().await;
    let cases: [(&str, &str, &str); 6] = [
        ("spin", "{}", "500 ms"),
        ("hog", "{}", "64 MiB"),
        ("trap", "{}", "trapped"),
        ("reject", "{}", "reject"),
        ("flood", "{ mode = \"many\", count = 2000 }", "flood"),
        ("flood", "{ mode = \"big\", mb = 50 }", "flood"),
    ];
    for (guest, config, why) in cases {
        receiver.clear();
        let gw = Gateway::start(&one_route(&receiver, guest, config)).await;
        let (status, body) = upload(&gw, guest, guest_bytes(guest)).await;
        assert_eq!(status, 200, "{guest}: {body}");
        let started = Instant::now();
        post_json(&gw.hook("s"), "{\"n\":1}", &[]).await;
        let l = wait_log(&gw, 2).await;
        let failed = l.iter().find(|d| d.0 == "r").expect("route r");
        assert_eq!(failed.2, "failed", "{guest}: {l:?}");
        let error = failed.3.clone().unwrap_or_default();
        assert!(
            error.contains(guest) && error.contains(why),
            "{guest}: {error}"
        );
        let plain = l.iter().find(|d| d.0 == "plain").expect("route plain");
        assert_eq!(plain.2, "succeeded", "the other route carries on");
        if guest == "spin" {
            assert!(
                started.elapsed() < Duration::from_secs(3),
                "{:?}",
                started.elapsed()
            );
        }
        // The gateway is still up and the next event gets a fresh instance.
        post_json(&gw.hook("s"), "{\"n\":2}", &[]).await;
        wait_log(&gw, 4).await;
    }
}

#[tokio::test]
async fn a_plugin_gets_no_files_environment_or_network() {
    let receiver = Receiver::start().await;
    let gw = Gateway::start(&one_route(&receiver, "snoop", "{}")).await;
    upload(&gw, "snoop", guest_bytes("snoop")).await;
    post_json(&gw.hook("s"), "{}", &[]).await;
    wait_log(&gw, 2).await;
    let report = receiver
        .seen()
        .into_iter()
        .map(|r| r.json())
        .find(|j| j.get("file").is_some())
        .expect("snoop's report");
    assert!(
        report["file"]
            .as_str()
            .is_some_and(|s| s.starts_with("err")),
        "{report}"
    );
    assert!(
        report["dir"].as_str().is_some_and(|s| s.starts_with("err")),
        "{report}"
    );
    assert_eq!(report["env"], serde_json::json!([]), "{report}");
    assert!(
        report["tcp"].as_str().is_some_and(|s| s.starts_with("err")),
        "{report}"
    );
}

#[tokio::test]
async fn bad_uploads_are_refused_with_the_reason_and_change_nothing() {
    let receiver = Receiver::start().await;
    let gw = Gateway::start(&one_route(&receiver, "p", "{}")).await;
    let (status, _) = upload(&gw, "p", guest_bytes("echo")).await;
    assert_eq!(status, 200);
    let (_, before) = admin(&gw, Method::GET, "/admin/v1/plugins", Some(TOKEN)).await;
    let cases: [(&str, Vec<u8>, &str); 4] = [
        (
            "garbage",
            b"definitely not wasm".to_vec(),
            "not a WebAssembly",
        ),
        ("core module", b"\0asm\x01\0\0\0".to_vec(), "core module"),
        (
            "wrong world",
            guest_bytes("wrong-world"),
            "not a hookgate plugin",
        ),
        ("empty", Vec::new(), "not a WebAssembly"),
    ];
    for (what, bytes, why) in cases {
        let (status, body) = upload(&gw, "p", bytes).await;
        assert_eq!(status, 400, "{what}: {body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(
            error.to_lowercase().contains(&why.to_lowercase()),
            "{what}: {error}"
        );
    }
    let (status, _) = upload(&gw, "../escape", guest_bytes("echo")).await;
    assert!(status == 400 || status == 404, "{status}");
    let (_, after) = admin(&gw, Method::GET, "/admin/v1/plugins", Some(TOKEN)).await;
    assert_eq!(before, after);
    // The good version still runs.
    post_json(&gw.hook("s"), "{\"n\":1}", &[]).await;
    let l = wait_log(&gw, 2).await;
    assert!(l.iter().all(|d| d.2 == "succeeded"), "{l:?}");
    let (status, _) = upload(&gw, "p", guest_bytes("echo")).await;
    assert_eq!(status, 200);
    let (status, _) = admin(&gw, Method::GET, "/admin/v1/plugins", None).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn hot_swap_under_load_loses_and_fails_nothing() {
    let receiver = Receiver::start().await;
    let gw = Gateway::start(
        &one_route(&receiver, "p", "{}").replace("kind = \"generic\"", "kind = \"spacelift\""),
    )
    .await;
    upload(&gw, "p", plugin_bytes("slack-notify")).await;
    let body = sample("spacelift/run_finished.json");
    let hook = gw.hook("s");
    let senders: Vec<_> = (0..4)
        .map(|_| {
            let (hook, body) = (hook.clone(), body.clone());
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for _ in 0..60 {
                    let resp = client()
                        .post(&hook)
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                        .await
                        .expect("send");
                    assert_eq!(resp.status(), 202);
                    let v: serde_json::Value = resp.json().await.expect("json");
                    ids.push(v["id"].as_str().expect("id").to_string());
                }
                ids
            })
        })
        .collect();
    for i in 0..6 {
        tokio::time::sleep(Duration::from_millis(60)).await;
        let next = if i % 2 == 0 {
            "port-entity"
        } else {
            "slack-notify"
        };
        let (status, b) = upload(&gw, "p", plugin_bytes(next)).await;
        assert_eq!(status, 200, "{b}");
    }
    let mut acked = BTreeSet::new();
    for s in senders {
        acked.extend(s.await.expect("sender"));
    }
    let l = wait_log(&gw, 2 * acked.len()).await;
    assert!(
        l.iter().all(|d| d.2 == "succeeded"),
        "{:?}",
        l.iter().find(|d| d.2 != "succeeded")
    );
    let from_plugin: Vec<serde_json::Value> = receiver
        .seen()
        .into_iter()
        .filter(|r| r.header("x-route") != "plain")
        .map(|r| r.json())
        .filter(|j| j.get("blueprint").is_some() || j.get("text").is_some())
        .collect();
    assert_eq!(
        from_plugin.len(),
        acked.len(),
        "one message per event, from either version"
    );
    // The last upload was slack-notify: a new event gets its shape.
    let n = receiver.seen().len();
    post_json(&gw.hook("s"), sample("spacelift/run_finished.json"), &[]).await;
    let last = receiver.wait_for(n + 2, Duration::from_secs(5)).await;
    let newest = last[n..]
        .iter()
        .find(|r| r.header("x-route") != "plain")
        .expect("plugin's");
    assert!(newest.json().get("text").is_some(), "{}", newest.json());
}

#[tokio::test]
async fn delete_is_refused_while_a_route_uses_the_plugin_and_plugins_survive_restart() {
    let receiver = Receiver::start().await;
    let config = one_route(&receiver, "p", "{}");
    let gw = Gateway::start(&config).await;
    upload(&gw, "p", guest_bytes("echo")).await;
    upload(&gw, "spare", guest_bytes("echo")).await;
    let (status, body) = admin(&gw, Method::DELETE, "/admin/v1/plugins/p", Some(TOKEN)).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"].as_str().unwrap_or_default().contains('r'),
        "{body}"
    );
    let (status, _) = admin(&gw, Method::DELETE, "/admin/v1/plugins/spare", Some(TOKEN)).await;
    assert_eq!(status, 200);
    let (status, _) = admin(&gw, Method::DELETE, "/admin/v1/plugins/spare", Some(TOKEN)).await;
    assert_eq!(status, 404);
    assert!(!gw.path().join("plugins/spare.wasm").exists());

    // Restart on the same folder: `p` is back without an upload and runs.
    let dir = gw.stop().await;
    let gw = Gateway::start_in(&config, dir).await;
    let (_, list) = admin(&gw, Method::GET, "/admin/v1/plugins", Some(TOKEN)).await;
    let names: Vec<&str> = list["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(names, ["p"]);
    post_json(&gw.hook("s"), "{\"n\":1}", &[]).await;
    let l = wait_log(&gw, 2).await;
    assert!(l.iter().all(|d| d.2 == "succeeded"), "{l:?}");
}

/// `hookgate check` loads every plugin a route names; `try` runs it.
#[test]
fn check_and_try_load_the_plugins_routes_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("hookgate.toml");
    std::fs::write(
        &config,
        "[sources.spacelift]\nkind = \"spacelift\"\n\n[targets.slack]\nurl = \"http://127.0.0.1:9/\"\n\n\
         [[routes]]\nname = \"to-slack\"\nsource = \"spacelift\"\n\
         wasm = { plugin = \"slack-notify\", config = { channel = \"#deploys\" } }\ntargets = [\"slack\"]\n",
    )
    .expect("write config");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(crate::utils::binary::BIN)
            .args(args)
            .output()
            .expect("run hookgate");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let cfg = config.to_string_lossy().into_owned();
    // Not uploaded yet: fine, and said.
    let (ok, out, err) = run(&["check", "--config", &cfg]);
    assert!(ok, "{err}");
    assert!(
        out.contains("not in") && out.contains("slack-notify"),
        "{out}"
    );

    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).expect("mkdir");
    std::fs::write(plugins.join("slack-notify.wasm"), b"\0asm\x01\0\0\0").expect("write");
    let (ok, _, err) = run(&["check", "--config", &cfg]);
    assert!(!ok);
    assert!(
        err.contains("slack-notify") && err.contains("core module"),
        "{err}"
    );

    std::fs::copy(
        plugin_path("slack-notify"),
        plugins.join("slack-notify.wasm"),
    )
    .expect("copy");
    let (ok, _, err) = run(&["check", "--config", &cfg]);
    assert!(ok, "{err}");
    let body = sample_path("spacelift/run_finished.json");
    let (ok, out, err) = run(&[
        "try",
        "--config",
        &cfg,
        "--source",
        "spacelift",
        "--body",
        &body.to_string_lossy(),
    ]);
    assert!(ok, "{err}");
    assert!(
        out.contains("route `to-slack`: delivered") && out.contains("\"blocks\""),
        "{out}"
    );
}
