//! The TypeScript `teams` plugin end to end: `hookgate plugin build plugins/teams` (the plugin's
//! own tsc, then componentize-js, with its `hookgate_sdk` a link to `plugins/sdk-js`), pushed to
//! a running gateway with `hookgate plugin push`, and each platform's signed sample sent through
//! ingress: the receiver gets one Microsoft Teams message per run, its Adaptive Card valid against
//! the official schema (checked here by a second validator, the Rust one, not the plugin test's),
//! and nothing for a ping.

use crate::utils::admin::{ADMIN, TOKEN, cli};
use crate::utils::binary::BIN;
use crate::utils::{Gateway, Receiver, post_json, sample, sample_headers};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// (source and preset, sample, what the card's title says, the button's URL).
const RUNS: &[(&str, &str, &str, Option<&str>)] = &[
    (
        "spacelift",
        "run_finished.json",
        "✅ Spacelift · payments-prod · run finished",
        Some(
            "https://acme-infra.app.spacelift.io/stack/payments-prod/run/01JXK4W2N8Q6ZC3T5V7B9D1F3H",
        ),
    ),
    (
        "pulumi",
        "stack_update_failed_destroy.json",
        "❌ Pulumi · northwind-robotics/fleet-api/pr-412 · destroy failed",
        Some("https://app.pulumi.com/northwind-robotics/fleet-api/pr-412/updates/5"),
    ),
    (
        "hcp",
        "packer_version_completed.json",
        "✅ HCP Packer · ubuntu-jammy-base v7 · completed version",
        None,
    ),
    (
        "tfe",
        "run_errored.json",
        "❌ HCP Terraform · network-core · run errored",
        Some("https://app.terraform.io/app/acme-org/network-core/runs/run-ZyXwVu987TsRq65n"),
    ),
    (
        "nullstone",
        "deployed.json",
        "✅ Nullstone · checkout-web in prod · deployed",
        Some(
            "https://app.nullstone.io/orgs/acme-labs/stacks/4821/envs/220318/blocks/120377/activity",
        ),
    ),
];

/// The secret each preset's samples were signed with (`catalog/<preset>/catalog.json`); Nullstone
/// signs nothing.
fn secret(preset: &str) -> Option<&'static str> {
    match preset {
        "spacelift" => Some("spacelift-fixture-secret"),
        "pulumi" => Some("pulumi-fixture-secret"),
        "hcp" => Some("hcp-fixture-token"),
        "tfe" => Some("tfe-sample-token"),
        _ => None,
    }
}

/// `hookgate plugin build plugins/teams`, with the suite's toolchain on `PATH` and the plugin's
/// own node_modules (tsc, @types/node, ajv) that `scripts/test` installs with `npm ci`.
fn build_teams() -> String {
    let bin = std::env::var("HOOKGATE_PLUGIN_JS_BIN").unwrap_or_else(|_| {
        panic!(
            "HOOKGATE_PLUGIN_JS_BIN is not set: run the suite with ./scripts/test, which installs \
             the plugin toolchains of tests/plugins/ and runs `npm ci` in plugins/teams"
        )
    });
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("plugins/teams");
    assert!(
        dir.join("node_modules/.bin/tsc").is_file(),
        "plugins/teams has no node_modules: run `npm ci` there (./scripts/test does)"
    );
    let path = format!("{bin}:{}", std::env::var("PATH").unwrap_or_default());
    let out = Command::new(BIN)
        .args(["plugin", "build"])
        .arg(&dir)
        .env("PATH", path)
        .output()
        .expect("run hookgate plugin build");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("the gateway loads it"),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir.join("teams.wasm").display().to_string()
}

fn config(receiver: &Receiver) -> String {
    let mut config = format!(
        "{ADMIN}\n[plugins]\ndir = \"plugins\"\ntimeout_ms = 2000\n\n[targets.teams]\nurl = \"{}\"\n",
        receiver.url
    );
    for (preset, ..) in RUNS {
        let secret = secret(preset).map_or(String::new(), |s| format!("secret = \"{s}\"\n"));
        config.push_str(&format!(
            "\n[sources.{preset}]\nkind = \"{preset}\"\n{secret}\n[[routes]]\nname = \"{preset}-to-teams\"\n\
             source = \"{preset}\"\nwasm = {{ plugin = \"teams\", config = {{ title_prefix = \"[ops] \" }} }}\n\
             targets = [\"teams\"]\n"
        ));
    }
    config
}

async fn send(gw: &Gateway, preset: &str, file: &str) {
    let name = format!("{preset}/{file}");
    let headers = sample_headers(&name);
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (status, answer) = post_json(&gw.hook(preset), sample(&name), &headers).await;
    assert_eq!(status, 202, "{name}: {answer}");
}

#[tokio::test]
async fn the_teams_plugin_built_from_typescript_sends_an_adaptive_card_per_platform() {
    let wasm = build_teams();
    let schema: Value = serde_json::from_slice(
        &std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("plugins/teams/schema/adaptive-card-1.5.json"),
        )
        .expect("the vendored Adaptive Card schema"),
    )
    .expect("schema JSON");
    let schema = jsonschema::validator_for(&schema).expect("the schema compiles");
    // The check below can fail: a FactSet without facts is not a card.
    let broken = serde_json::json!({"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "FactSet"}]});
    assert!(!schema.is_valid(&broken));

    let receiver = Receiver::start().await;
    let gw = Gateway::start(&config(&receiver)).await;
    let (code, out, err) = cli(&gw, TOKEN, &["plugin", "push", "teams", &wasm]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("teams: active"), "{out}");

    // A ping goes nowhere; each run gives one card.
    send(&gw, "pulumi", "ping.json").await;
    for (preset, file, ..) in RUNS {
        send(&gw, preset, file).await;
    }
    let seen = receiver.wait_for(RUNS.len(), Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.seen().len(), RUNS.len(), "the ping sent nothing");

    for (preset, file, title, url) in RUNS {
        let message = seen
            .iter()
            .map(|r| r.json())
            .find(|m| m.to_string().contains(title))
            .unwrap_or_else(|| panic!("no card titled {title} ({preset}/{file})"));
        assert_eq!(message["type"], "message", "{message}");
        let attachment = &message["attachments"][0];
        assert_eq!(
            attachment["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        assert_eq!(attachment["contentUrl"], Value::Null);
        let card = &attachment["content"];
        let problems: Vec<String> = schema.iter_errors(card).map(|e| e.to_string()).collect();
        assert!(problems.is_empty(), "{preset}/{file}: {problems:?}\n{card}");
        assert_eq!(card["version"], "1.5");
        assert_eq!(
            card["body"][0]["items"][0]["text"].as_str(),
            Some(format!("[ops] {title}").as_str())
        );
        let facts = card["body"]
            .as_array()
            .and_then(|b| b.iter().find(|e| e["type"] == "FactSet"))
            .unwrap_or_else(|| panic!("{preset}/{file}: no FactSet in {card}"));
        assert!(facts["facts"].as_array().is_some_and(|f| !f.is_empty()));
        let button = card["actions"][0]["url"].as_str();
        assert_eq!(button, *url, "{preset}/{file}");
    }
    for r in &seen {
        assert!(r.body.len() <= 28 * 1024, "over Teams' 28 KB");
        assert!(r.header("content-type").starts_with("application/json"));
    }
}
