//! The pagerduty plugin (`plugins/pagerduty`, Python) end to end: `hookgate plugin build` makes
//! it from the repository (its `hookgate_sdk` a link to `plugins/sdk-python`), a real gateway
//! process takes the routing key from its environment through `${VAR}` in the routes'
//! `wasm.config`, `hookgate plugin push` installs it, and signed failed then finished runs of
//! Spacelift, Pulumi Cloud, HCP Terraform and Nullstone reach a receiver as PagerDuty Events API
//! v2 triggers and resolves sharing their `dedup_key`, each held to PagerDuty's rules by the
//! plugin's own check (`plugins/pagerduty/check_events_v2.py`). And Python plugins swapped under
//! load: every event delivered once, by one version or the other, none failed.

use crate::utils::admin::{ADMIN, TOKEN, cli_at, upload_plugin};
use crate::utils::binary::{Process, run};
use crate::utils::receiver::Recorded;
use crate::utils::wasm::{toolchain_bin, toolchain_path};
use crate::utils::{
    Gateway, Receiver, client, post_json, sample, sample_headers, sha256_header, store,
};
use hookgate::testing::{Algorithm, Encoding, hmac};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// An Events API v2 integration key's shape (32 characters); never a real one.
const ROUTING_KEY: &str = "e2e0pagerduty0routing0key0000032";
const NULLSTONE_TOKEN: &str = "nullstone-e2e-token";

fn plugin_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("plugins/pagerduty")
}

/// The component, built once per test process with the pinned Python toolchain.
fn built() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let path = toolchain_path("HOOKGATE_PLUGIN_PY_BIN");
        let dir = plugin_dir().display().to_string();
        let (code, out, err) = run(&["plugin", "build", &dir], &[("PATH", &path)]);
        assert_eq!(code, 0, "plugin build: {out}{err}");
        assert!(out.contains("the gateway loads it"), "{out}");
        plugin_dir().join("pagerduty.wasm")
    })
}

/// A fixture of the plugin's (a producer's body), byte for byte.
fn fixture(name: &str) -> Vec<u8> {
    let path = plugin_dir().join("fixtures").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The headers `source` (named for its preset) sends with `body`, signed with the secret the
/// gateway below is configured with (the catalog's sample secrets), as each platform signs.
fn signed(source: &str, body: &[u8]) -> Vec<(String, String)> {
    let hex = |algorithm, secret: &str| {
        Encoding::Hex.encode(&hmac(algorithm, secret.as_bytes(), &[body]))
    };
    let h = |k: &str, v: String| (k.to_string(), v);
    match source {
        "spacelift" => vec![h(
            "X-Signature-256",
            sha256_header("spacelift-fixture-secret", body),
        )],
        "pulumi" => vec![
            h(
                "Pulumi-Webhook-Signature",
                hex(Algorithm::Sha256, "pulumi-fixture-secret"),
            ),
            h("Pulumi-Webhook-Kind", "stack_update".into()),
        ],
        "hcp-terraform" => vec![h(
            "X-TFE-Notification-Signature",
            hex(Algorithm::Sha512, "tfe-sample-token"),
        )],
        "hcp" => vec![h(
            "X-HCP-Webhook-Signature",
            hex(Algorithm::Sha512, "hcp-fixture-token"),
        )],
        "nullstone" => vec![h("X-Hookgate-Token", NULLSTONE_TOKEN.into())],
        other => panic!("no signer for {other}"),
    }
}

/// A source per platform (and HCP's Packer events, which carry no run), each with a route through
/// the plugin to the receiver; the routing key is `${PAGERDUTY_ROUTING_KEY}`.
fn config(dir: &Path, store_url: &str, receiver: &str) -> PathBuf {
    let mut c = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n\n[store]\nurl = \"{store_url}\"\n\n\
         [admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"{TOKEN}\"\n\n\
         [plugins]\ndir = \"plugins\"\ntimeout_ms = 2000\n\n\
         [targets.pagerduty]\nurl = \"{receiver}\"\n"
    );
    for (source, kind, secret) in [
        ("spacelift", "spacelift", "spacelift-fixture-secret"),
        ("pulumi", "pulumi", "pulumi-fixture-secret"),
        ("hcp-terraform", "tfe", "tfe-sample-token"),
        ("nullstone", "nullstone", NULLSTONE_TOKEN),
        ("hcp", "hcp", "hcp-fixture-token"),
    ] {
        c.push_str(&format!(
            "\n[sources.{source}]\nkind = \"{kind}\"\nsecret = \"{secret}\"\n\n\
             [[routes]]\nname = \"{source}-to-pagerduty\"\nsource = \"{source}\"\n\
             wasm = {{ plugin = \"pagerduty\", config = {{ routing_key = \"${{PAGERDUTY_ROUTING_KEY}}\", severity = \"critical\" }} }}\n\
             targets = [\"pagerduty\"]\n"
        ));
    }
    let file = dir.join("hookgate.toml");
    std::fs::write(&file, c).expect("write config");
    file
}

/// Posts the signed fixture to `source`; returns the stored event's id.
async fn send(gw: &Process, source: &str, name: &str) -> String {
    let body = fixture(name);
    let mut req = client()
        .post(format!("{}/hooks/{source}", gw.url))
        .header("content-type", "application/json")
        .body(body.clone());
    for (k, v) in signed(source, &body) {
        req = req.header(k, v);
    }
    let resp = req.send().await.expect("send");
    assert_eq!(resp.status(), 202, "{source} {name}");
    let answer: serde_json::Value = resp.json().await.expect("json");
    answer["id"].as_str().expect("event id").to_string()
}

/// The outcome the route loop recorded for the event's one route, once it has one.
async fn outcome(gw: &Process, id: &str) -> String {
    let admin = gw.admin_url.as_deref().expect("admin");
    for _ in 0..400 {
        let event: serde_json::Value = client()
            .get(format!("{admin}/admin/v1/events/{id}"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("get event")
            .json()
            .await
            .expect("json");
        if let Some(o) = event["routes"][0]["outcome"].as_str() {
            return o.to_string();
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("event {id} was never routed");
}

/// Runs the plugin's Events API v2 check on what arrived; fails with its findings.
fn check_events_v2(arrived: &[Recorded]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut args = vec![
        plugin_dir()
            .join("check_events_v2.py")
            .display()
            .to_string(),
    ];
    for (i, r) in arrived.iter().enumerate() {
        let file = dir.path().join(format!("{i}.json"));
        std::fs::write(&file, &r.body).expect("write");
        args.push(file.display().to_string());
    }
    let bin = toolchain_bin("HOOKGATE_PLUGIN_PY_BIN");
    let out = std::process::Command::new(Path::new(&bin).join("python"))
        .args(&args)
        .output()
        .expect("run the check");
    assert!(
        out.status.success(),
        "PagerDuty's rules broken:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn failed_then_finished_runs_trigger_then_resolve_one_pagerduty_alert_per_platform() {
    let wasm = built().display().to_string();
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store_url = store::url_for(dir.path()).await;
    let file = config(dir.path(), &store_url, &receiver.url);
    let gw = Process::serve_with_env(&file, &[("PAGERDUTY_ROUTING_KEY", ROUTING_KEY)]);
    let admin = gw.admin_url.clone().expect("admin listener");

    let (code, out, err) = cli_at(&admin, TOKEN, &["plugin", "push", "pagerduty", &wasm]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("pagerduty: active"), "{out}");

    // What is not a run's end gives no message: the route is `filtered`, nothing is sent.
    for (source, name) in [
        ("spacelift", "spacelift_run_unconfirmed.json"),
        ("hcp-terraform", "tfe_run_planning.json"),
        ("hcp", "hcp_packer_version_completed.json"),
    ] {
        let id = send(&gw, source, name).await;
        assert_eq!(outcome(&gw, &id).await, "filtered", "{name}");
    }

    let pairs = [
        (
            "spacelift",
            "spacelift_run_failed.json",
            "spacelift_run_finished.json",
        ),
        (
            "pulumi",
            "pulumi_stack_update_failed.json",
            "pulumi_stack_update.json",
        ),
        (
            "hcp-terraform",
            "tfe_run_errored.json",
            "tfe_run_completed_network_core.json",
        ),
        (
            "nullstone",
            "nullstone_deploy_failed.json",
            "nullstone_deployed.json",
        ),
    ];
    let mut keys = Vec::new();
    for (source, failed, finished) in pairs {
        let n = receiver.seen().len();
        // The resolve is sent only once the trigger arrived, as a run's failure and the next
        // success come minutes apart.
        send(&gw, source, failed).await;
        let trigger = receiver.wait_for(n + 1, Duration::from_secs(20)).await[n].json();
        send(&gw, source, finished).await;
        let resolve = receiver.wait_for(n + 2, Duration::from_secs(20)).await[n + 1].json();

        assert_eq!(trigger["event_action"], "trigger", "{source}: {trigger}");
        assert_eq!(trigger["routing_key"], ROUTING_KEY, "{source}");
        assert_eq!(trigger["payload"]["severity"], "critical", "{source}");
        assert!(
            trigger["links"][0]["href"]
                .as_str()
                .is_some_and(|h| h.starts_with("https://")),
            "{source}: {trigger}"
        );
        let key = trigger["dedup_key"].as_str().expect("dedup_key");
        assert_eq!(
            resolve,
            serde_json::json!({
                "routing_key": ROUTING_KEY,
                "event_action": "resolve",
                "dedup_key": key,
            }),
            "{source}"
        );
        keys.push(key.to_string());
    }
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 4, "one alert per platform: {keys:?}");

    let arrived = receiver.expect_exactly(8, Duration::from_millis(300)).await;
    for r in &arrived {
        assert_eq!(r.header("content-type"), "application/json");
    }
    check_events_v2(&arrived);

    // The key reaches PagerDuty, but a dry run of the same event shows it masked: the gateway
    // shows nothing `${VAR}` put into its config, even where a plugin copied it into a body.
    let body = String::from_utf8(fixture("spacelift_run_failed.json")).expect("utf-8");
    let tried = client()
        .post(format!("{admin}/admin/v1/try"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"source": "spacelift", "body": body}))
        .send()
        .await
        .expect("try");
    assert_eq!(tried.status(), 200);
    let shown = tried.text().await.expect("text");
    assert!(!shown.contains(ROUTING_KEY), "{shown}");
    assert!(shown.contains(r#"\"routing_key\":\"***\""#), "{shown}");
}

/// The fixtures the plugin keeps that are the catalog's samples byte for byte are signed here as
/// `catalog/sign.py` signed them: the signer above is the platforms', not a guess.
#[test]
fn the_signer_agrees_with_the_catalogs_recorded_signatures() {
    for (source, fixture_name, sample_name, header) in [
        (
            "spacelift",
            "spacelift_run_finished.json",
            "spacelift/run_finished.json",
            "X-Signature-256",
        ),
        (
            "pulumi",
            "pulumi_stack_update.json",
            "pulumi/stack_update.json",
            "Pulumi-Webhook-Signature",
        ),
        (
            "hcp-terraform",
            "tfe_run_errored.json",
            "tfe/run_errored.json",
            "X-TFE-Notification-Signature",
        ),
        (
            "hcp",
            "hcp_packer_version_completed.json",
            "hcp/packer_version_completed.json",
            "X-HCP-Webhook-Signature",
        ),
    ] {
        let body = fixture(fixture_name);
        assert_eq!(body, sample(sample_name), "{fixture_name} is the catalog's");
        let ours = signed(source, &body);
        let recorded = sample_headers(sample_name);
        let find =
            |hs: &[(String, String)]| hs.iter().find(|(k, _)| k == header).map(|(_, v)| v.clone());
        assert_eq!(find(&ours), find(&recorded), "{source}");
        assert!(find(&ours).is_some(), "{source}");
    }
}

/// A second Python plugin, the one `hookgate plugin new --lang python` writes (its messages are
/// `{"text": ...}`, the pagerduty plugin's carry `event_action`), built once per test process.
fn built_scaffold() -> &'static Path {
    static BUILT: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, wasm) = BUILT.get_or_init(|| {
        let path = toolchain_path("HOOKGATE_PLUGIN_PY_BIN");
        let dir = tempfile::tempdir().expect("tempdir");
        let parent = dir.path().display().to_string();
        let (code, out, err) = run(
            &[
                "plugin", "new", "notes", "--lang", "python", "--dir", &parent,
            ],
            &[],
        );
        assert_eq!(code, 0, "plugin new: {out}{err}");
        let project = dir.path().join("notes");
        let (code, out, err) = run(
            &["plugin", "build", &project.display().to_string()],
            &[("PATH", &path)],
        );
        assert_eq!(code, 0, "plugin build: {out}{err}");
        let wasm = project.join("notes.wasm");
        (dir, wasm)
    });
    wasm
}

/// Which plugin wrote a message.
fn version(message: &serde_json::Value) -> &'static str {
    match (message.get("event_action"), message.get("text")) {
        (Some(_), None) => "pagerduty",
        (None, Some(_)) => "notes",
        _ => panic!("a message of neither version: {message}"),
    }
}

#[tokio::test]
async fn hot_swapping_python_plugins_under_load_loses_and_fails_nothing() {
    let (v1, v2) = (
        std::fs::read(built()).expect("pagerduty.wasm"),
        std::fs::read(built_scaffold()).expect("notes.wasm"),
    );
    let receiver = Receiver::start().await;
    let gw = Gateway::start(&format!(
        "{ADMIN}\n[plugins]\ndir = \"plugins\"\ntimeout_ms = 2000\n\n\
         [sources.spacelift]\nkind = \"spacelift\"\n\n[targets.t]\nurl = \"{}\"\n\n\
         [[routes]]\nname = \"r\"\nsource = \"spacelift\"\n\
         wasm = {{ plugin = \"p\", config = {{ routing_key = \"{ROUTING_KEY}\", prefix = \"\" }} }}\n\
         targets = [\"t\"]\n",
        receiver.url
    ))
    .await;
    let (status, answer) = upload_plugin(&gw, "p", v1.clone()).await;
    assert_eq!(status, 200, "{answer}");

    // Senders keep going until the last upload is done, so events are in flight across every
    // swap whatever each upload's compile takes (a first upload compiles about 18 MB of CPython:
    // seconds, more in a debug build).
    let stop = Arc::new(AtomicBool::new(false));
    let body = fixture("spacelift_run_failed.json");
    let hook = gw.hook("spacelift");
    let senders: Vec<_> = (0..4)
        .map(|_| {
            let (hook, body, stop) = (hook.clone(), body.clone(), stop.clone());
            tokio::spawn(async move {
                let mut ids = Vec::new();
                while !stop.load(Ordering::Relaxed) && ids.len() < 2000 {
                    let (status, answer) = post_json(&hook, body.clone(), &[]).await;
                    assert_eq!(status, 202, "{answer}");
                    ids.push(answer["id"].as_str().expect("id").to_string());
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                ids
            })
        })
        .collect();
    for next in [&v2, &v1, &v2] {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (status, answer) = upload_plugin(&gw, "p", next.clone()).await;
        assert_eq!(status, 200, "{answer}");
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    let mut acked = BTreeSet::new();
    for s in senders {
        acked.extend(s.await.expect("sender"));
    }

    let deliveries = gw
        .wait_deliveries(Duration::from_secs(120), |d| {
            d.len() >= acked.len() && d.iter().all(|(_, _, status)| status != "pending")
        })
        .await;
    assert_eq!(deliveries.len(), acked.len(), "one delivery per event");
    assert!(
        deliveries
            .iter()
            .all(|(_, _, status)| status == "succeeded"),
        "{:?}",
        deliveries.iter().find(|d| d.2 != "succeeded")
    );
    let arrived = receiver
        .wait_for(acked.len(), Duration::from_secs(30))
        .await;
    let mut by_event: BTreeMap<String, Vec<&'static str>> = BTreeMap::new();
    for r in &arrived {
        by_event
            .entry(r.header("x-hookgate-event").to_string())
            .or_default()
            .push(version(&r.json()));
    }
    let events: BTreeSet<String> = by_event.keys().cloned().collect();
    assert_eq!(
        events, acked,
        "every event acknowledged arrived, and nothing else"
    );
    assert!(
        by_event.values().all(|v| v.len() == 1),
        "each event delivered once, by one version"
    );
    let used: BTreeSet<&str> = by_event.values().flatten().copied().collect();
    assert_eq!(
        used,
        BTreeSet::from(["notes", "pagerduty"]),
        "both versions ran"
    );

    // The last upload was the second plugin: a new event gets its message.
    let n = receiver.seen().len();
    post_json(&hook, body, &[]).await;
    let last = receiver.wait_for(n + 1, Duration::from_secs(60)).await;
    assert_eq!(version(&last[n].json()), "notes");
}
