//! Every event fixture through the plugin, checking what a reader of the channel would see.

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

#[path = "../../testutil/fixtures.rs"]
mod fixtures;

use hookgate_plugin_sdk::{Value, config_from_json, json};
use slack_notify::{Config, transform};

/// The Slack bodies the plugin sends for fixture `name` under config `config` (JSON text).
fn run(name: &str, config: &str) -> Vec<Value> {
    let config: Config = config_from_json(config).unwrap();
    transform(fixtures::event(name), config)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .iter()
        .map(|m| m.json_body().unwrap())
        .collect()
}

/// The single message for `name` with no config.
fn one(name: &str) -> Value {
    let mut out = run(name, "");
    assert_eq!(out.len(), 1, "{name}: expected one message");
    out.remove(0)
}

fn header(msg: &Value) -> &str {
    msg.pointer("/blocks/0/text/text")
        .and_then(Value::as_str)
        .unwrap()
}

fn color(msg: &Value) -> &str {
    msg.pointer("/attachments/0/color")
        .and_then(Value::as_str)
        .unwrap()
}

fn button_url(msg: &Value) -> Option<&str> {
    let blocks = msg.pointer("/attachments/0/blocks")?.as_array()?;
    let actions = blocks.iter().find(|b| b["type"] == "actions")?;
    actions.pointer("/elements/0/url")?.as_str()
}

/// `Title: value` for every field of the attachment's section.
fn fields(msg: &Value) -> Vec<String> {
    let blocks = msg
        .pointer("/attachments/0/blocks")
        .and_then(Value::as_array)
        .unwrap();
    blocks
        .iter()
        .filter_map(|b| b.get("fields")?.as_array())
        .flatten()
        .filter_map(|f| f["text"].as_str())
        .map(|t| t.replacen('\n', " ", 1).replace('*', ""))
        .collect()
}

const GOOD: &str = "#2eb886";
const DANGER: &str = "#a30200";
const WARNING: &str = "#daa038";
const INFO: &str = "#439fe0";

#[test]
fn every_event_fixture_is_handled() {
    for name in fixtures::EVENT_FIXTURES {
        let out = run(name, "");
        for msg in &out {
            assert!(
                msg["text"].as_str().is_some_and(|t| !t.is_empty()),
                "{name}: text fallback"
            );
            assert!(!header(msg).is_empty(), "{name}: header");
            assert!(
                header(msg).chars().count() <= 150,
                "{name}: header too long"
            );
        }
    }
}

#[test]
fn spacelift_finished_run() {
    let msg = one("spacelift_run_finished.json");
    assert_eq!(
        header(&msg),
        ":white_check_mark: Spacelift · payments-prod · run finished"
    );
    assert_eq!(color(&msg), GOOD);
    assert_eq!(
        button_url(&msg),
        Some(
            "https://acme-infra.app.spacelift.io/stack/payments-prod/run/01JXK4W2N8Q6ZC3T5V7B9D1F3H"
        )
    );
    let fields = fields(&msg);
    assert!(
        fields.contains(&"Triggered by avery.quill@example.com".to_string()),
        "{fields:?}"
    );
    assert!(
        fields.contains(&"Changes +1 added, ~2 changed, -0 deleted".to_string()),
        "{fields:?}"
    );
    assert!(
        fields.contains(&"Commit 3f9c2a7 on main by Avery Quill".to_string()),
        "{fields:?}"
    );
    assert_eq!(
        msg.pointer("/blocks/1/text/text"),
        Some(&json!("Bump RDS instance class for payments-db"))
    );
}

#[test]
fn spacelift_unconfirmed_run_needs_approval() {
    let msg = one("spacelift_run_unconfirmed.json");
    assert_eq!(
        header(&msg),
        ":raised_hand: Spacelift · security-baseline · run unconfirmed"
    );
    assert_eq!(color(&msg), WARNING);
    assert!(fields(&msg).contains(&"Triggered by API key 01JSMHTFM9TXWW1XK4AZN1SA8K".to_string()));
}

#[test]
fn spacelift_internal_error_is_a_failure_without_link() {
    let msg = one("spacelift_internal_error.json");
    assert_eq!(
        header(&msg),
        ":x: Spacelift · Invalid Stack Slug Triggered · internal error"
    );
    assert_eq!(color(&msg), DANGER);
    assert_eq!(button_url(&msg), None);
    assert!(
        fields(&msg).contains(&"Error policy triggered for Stack that doesn't exist".to_string())
    );
}

#[test]
fn spacelift_policy_input_counts_changes() {
    let msg = one("spacelift_policy_input_run_updated.json");
    assert_eq!(
        header(&msg),
        ":white_check_mark: Spacelift · payments-prod · run finished"
    );
    assert!(fields(&msg).contains(&"Changes +1 added, ~1 changed, -0 deleted".to_string()));
    assert_eq!(
        button_url(&msg),
        Some(
            "https://acme-infra.app.spacelift.io/stack/payments-prod/run/01JXK4W2N8Q6ZC3T5V7B9D1F3H"
        )
    );
}

#[test]
fn spacelift_drift_detection_with_changes_is_drift() {
    let mut event = fixtures::event("spacelift_run_finished.json");
    event.body["run"]["driftDetection"] = json!(true);
    let msg = transform(event, Config::default()).unwrap()[0]
        .json_body()
        .unwrap();
    assert_eq!(
        header(&msg),
        ":warning: Spacelift · payments-prod · drift detected"
    );
    assert_eq!(color(&msg), WARNING);
}

#[test]
fn pulumi_update_succeeded() {
    let msg = one("pulumi_stack_update.json");
    assert_eq!(
        header(&msg),
        ":white_check_mark: Pulumi · northwind-robotics/fleet-api/prod · update succeeded"
    );
    assert_eq!(color(&msg), GOOD);
    assert_eq!(
        button_url(&msg),
        Some("https://app.pulumi.com/northwind-robotics/fleet-api/prod/updates/87")
    );
    let fields = fields(&msg);
    assert!(
        fields.contains(&"User Avery Quill (aquill-dev)".to_string()),
        "{fields:?}"
    );
    assert!(
        fields.contains(&"Resource changes create 2, update 3, same 41".to_string()),
        "{fields:?}"
    );
}

#[test]
fn pulumi_failed_destroy_and_preview() {
    let msg = one("pulumi_stack_update_failed_destroy.json");
    assert_eq!(
        header(&msg),
        ":x: Pulumi · northwind-robotics/fleet-api/pr-412 · destroy failed"
    );
    assert_eq!(color(&msg), DANGER);
    let msg = one("pulumi_stack_preview.json");
    assert_eq!(
        header(&msg),
        ":x: Pulumi · northwind-robotics/fleet-api/prod · update preview failed"
    );
    assert!(fields(&msg).contains(&"Resource changes update 1, update-replace 1".to_string()));
}

#[test]
fn pulumi_deployment_running_is_started() {
    let msg = one("pulumi_deployment.json");
    assert_eq!(
        header(&msg),
        ":hourglass_flowing_sand: Pulumi · northwind-robotics/fleet-api/prod · deployment running"
    );
    assert_eq!(color(&msg), WARNING);
    assert_eq!(
        button_url(&msg),
        Some("https://app.pulumi.com/northwind-robotics/fleet-api/prod/deployments/214")
    );
}

#[test]
fn pulumi_drift() {
    let msg = one("pulumi_drift_detection.json");
    assert_eq!(
        header(&msg),
        ":warning: Pulumi · northwind-robotics/fleet-api/prod · drift detected"
    );
    assert_eq!(color(&msg), WARNING);
    let msg = one("pulumi_drift_remediation.json");
    assert_eq!(color(&msg), GOOD);
    assert_eq!(
        button_url(&msg),
        Some("https://app.pulumi.com/northwind-robotics/fleet-api/prod/deployments/216")
    );
}

#[test]
fn pulumi_stack_lifecycle_and_policy_violation() {
    let msg = one("pulumi_stack_deleted.json");
    assert_eq!(
        header(&msg),
        ":information_source: Pulumi · northwind-robotics/fleet-api/pr-412 · stack deleted"
    );
    assert_eq!(color(&msg), INFO);
    let msg = one("pulumi_policy_violation_INFERRED.json");
    assert_eq!(color(&msg), DANGER);
    assert_eq!(
        button_url(&msg),
        Some("https://app.pulumi.com/northwind-robotics/fleet-api/prod/updates/88")
    );
}

#[test]
fn pulumi_kind_is_inferred_without_the_header() {
    let mut event = fixtures::event("pulumi_deployment.json");
    event.headers.clear();
    event.event_type = None;
    let msg = transform(event, Config::default()).unwrap()[0]
        .json_body()
        .unwrap();
    assert!(
        header(&msg).ends_with("deployment running"),
        "{}",
        header(&msg)
    );
}

#[test]
fn pings_send_nothing() {
    assert!(run("pulumi_ping.json", "").is_empty());
    assert!(run("hcp_verification.json", "").is_empty());
}

#[test]
fn hcp_packer_versions() {
    let msg = one("hcp_packer_version_completed.json");
    assert_eq!(
        header(&msg),
        ":white_check_mark: HCP Packer · ubuntu-jammy-base v7 · Completed version"
    );
    assert_eq!(color(&msg), GOOD);
    assert_eq!(button_url(&msg), None, "HCP payloads have no URL");
    let fields = fields(&msg);
    assert!(
        fields.contains(&"Actor Avery Quill &lt;avery.quill@example.com&gt;".to_string()),
        "{fields:?}"
    );
    assert!(
        fields
            .iter()
            .any(|f| f.contains("aws ami-0c4f2a9e7b1d3f5a6 (us-west-2)")),
        "{fields:?}"
    );
    let msg = one("hcp_packer_version_created.json");
    assert_eq!(
        header(&msg),
        ":hourglass_flowing_sand: HCP Packer · ubuntu-jammy-base · Created version"
    );
    let msg = one("hcp_packer_iteration.json");
    assert_eq!(
        header(&msg),
        ":hourglass_flowing_sand: HCP Packer · ubuntu-jammy-base v0 · Created iteration"
    );
}

#[test]
fn nullstone_deployments() {
    let msg = one("nullstone_deployed.json");
    assert_eq!(
        header(&msg),
        ":white_check_mark: Nullstone · checkout-web in prod · deployed"
    );
    assert_eq!(color(&msg), GOOD);
    assert_eq!(
        button_url(&msg),
        Some(
            "https://app.nullstone.io/orgs/acme-labs/stacks/4821/envs/220318/blocks/120377/activity"
        )
    );
    assert!(fields(&msg).contains(&"Version 2025.06.12-3".to_string()));
    let msg = one("nullstone_deploy_failed.json");
    assert_eq!(
        header(&msg),
        ":x: Nullstone · checkout-web in prod · deploy failed"
    );
    assert_eq!(color(&msg), DANGER);
    let msg = one("nullstone_legacy_first_deployed.json");
    assert_eq!(
        header(&msg),
        ":white_check_mark: Nullstone · block 120377 in dev · first deployed"
    );
}

#[test]
fn outcomes_filter() {
    let only_failures = r#"{"outcomes": ["failed"]}"#;
    assert!(run("spacelift_run_finished.json", only_failures).is_empty());
    assert!(run("pulumi_stack_update.json", only_failures).is_empty());
    assert_eq!(
        run("pulumi_stack_update_failed_destroy.json", only_failures).len(),
        1
    );
    assert_eq!(run("nullstone_deploy_failed.json", only_failures).len(), 1);
    let approvals = r#"{"outcomes": ["needs_approval", "drift"]}"#;
    assert_eq!(run("spacelift_run_unconfirmed.json", approvals).len(), 1);
    assert_eq!(run("pulumi_drift_detection.json", approvals).len(), 1);
    assert!(run("hcp_packer_version_completed.json", approvals).is_empty());
}

#[test]
fn channel_username_and_icon() {
    let config = r##"{"channel": "#deploys", "username": "infra-bot", "icon_emoji": ":rocket:"}"##;
    let msg = &run("spacelift_run_finished.json", config)[0];
    assert_eq!(msg["channel"], "#deploys");
    assert_eq!(msg["username"], "infra-bot");
    assert_eq!(msg["icon_emoji"], ":rocket:");
    assert!(one("spacelift_run_finished.json").get("channel").is_none());
}

#[test]
fn platform_override_wins_over_detection() {
    // A Nullstone-shaped body read as Pulumi still renders (generic Pulumi view), proving the
    // override is used rather than detection.
    let msg = &run("nullstone_deployed.json", r#"{"platform": "pulumi"}"#)[0];
    assert!(
        header(msg).starts_with(":information_source: Pulumi · "),
        "{}",
        header(msg)
    );
}

#[test]
fn bad_config_and_bodies_are_errors() {
    let err = config_from_json::<Config>(r#"{"outcome": ["failed"]}"#).unwrap_err();
    assert!(err.contains("unknown field `outcome`"), "{err}");
    let err = config_from_json::<Config>(r#"{"outcomes": ["broken"]}"#).unwrap_err();
    assert!(err.contains("unknown variant `broken`"), "{err}");
    let mut event = fixtures::event("pulumi_stack_update.json");
    event.body = fixtures::json("pulumi_delivery_log.json");
    let err = transform(event, Config::default()).unwrap_err();
    assert_eq!(err, "event body is an array, not a JSON object");
}

#[test]
fn unknown_platforms_get_a_generic_message() {
    let mut event = fixtures::event("pulumi_stack_update.json");
    event.headers.clear();
    event.event_type = Some("push".into());
    event.source = "github".into();
    event.body = json!({"ref": "refs/heads/main"});
    let msg = transform(event, Config::default()).unwrap()[0]
        .json_body()
        .unwrap();
    assert_eq!(
        header(&msg),
        ":information_source: github · push · received"
    );
    assert_eq!(color(&msg), INFO);
}

#[test]
fn payload_text_is_escaped() {
    let mut event = fixtures::event("spacelift_run_finished.json");
    event.body["run"]["commit"]["message"] = json!("Merge <@U123> & <!channel>");
    let msg = transform(event, Config::default()).unwrap()[0]
        .json_body()
        .unwrap();
    assert_eq!(
        msg.pointer("/blocks/1/text/text"),
        Some(&json!("Merge &lt;@U123&gt; &amp; &lt;!channel&gt;"))
    );
}

/// Prints the output for every fixture (or `FIXTURE=name.json`), for READMEs and eyeballing:
/// `cargo test -p slack-notify --test fixtures print_outputs -- --ignored --nocapture`.
#[test]
#[ignore]
fn print_outputs() {
    let only = std::env::var("FIXTURE").ok();
    for name in fixtures::EVENT_FIXTURES
        .iter()
        .filter(|n| only.as_deref().is_none_or(|o| o == **n))
    {
        println!("=== {name}");
        for msg in run(name, "") {
            println!("{}", serde_json::to_string_pretty(&msg).unwrap());
        }
    }
}

/// Every string of the payload made long and hostile.
fn poison(v: &mut Value) {
    match v {
        Value::String(s) => {
            let hostile = " <!channel> & <@U0123ABC|boss> ";
            *s = format!("{s}{hostile}{}{hostile}", "é".repeat(4000));
        }
        Value::Array(items) => items.iter_mut().for_each(poison),
        Value::Object(map) => map.values_mut().for_each(poison),
        _ => {}
    }
}

/// Every fixture with long and hostile strings: what the plugin sends stays within Slack's limits
/// and no payload text becomes a mention (the gateway's tests/it/slack_limits.rs does the same for
/// the jq examples).
#[test]
fn hostile_payloads_stay_within_slack_limits_and_notify_no_one() {
    let count = |v: Option<&Value>| v.and_then(Value::as_str).map_or(0, |s| s.chars().count());
    for name in fixtures::EVENT_FIXTURES {
        let mut event = fixtures::event(name);
        poison(&mut event.body);
        let Ok(messages) = transform(event, config_from_json("").unwrap()) else {
            continue;
        };
        for m in messages {
            let msg = m.json_body().unwrap();
            let text = msg.to_string();
            assert!(
                !text.contains("<!channel") && !text.contains("<@U0123"),
                "{name}: {text:.300}"
            );
            assert!(count(msg.get("text")) <= 40_000, "{name}");
            let blocks = msg["blocks"].as_array().into_iter().flatten();
            let details = msg
                .pointer("/attachments/0/blocks")
                .and_then(Value::as_array);
            for b in blocks.chain(details.into_iter().flatten()) {
                let fields = b["fields"].as_array().cloned().unwrap_or_default();
                assert!(fields.len() <= 10, "{name}");
                for f in &fields {
                    assert!(count(f.get("text")) <= 2000, "{name}: field");
                }
                let max = if b["type"] == "header" { 150 } else { 3000 };
                assert!(
                    count(b.pointer("/text/text")) <= max,
                    "{name}: {}",
                    b["type"]
                );
                for e in b["elements"].as_array().into_iter().flatten() {
                    assert!(count(e.get("url")) <= 3000, "{name}: button url");
                }
            }
        }
    }
}
