//! Every event fixture through the plugin; Spacelift is checked against Port's own mapping result.

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

#[path = "../../testutil/fixtures.rs"]
mod fixtures;

use hookgate_plugin_sdk::{Value, config_from_json, json};
use port_entity::{Config, transform};

/// The entities the plugin sends for fixture `name` under config `config` (JSON text).
fn run(name: &str, config: &str) -> Vec<Value> {
    let config: Config = config_from_json(config).unwrap();
    transform(fixtures::event(name), config)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .iter()
        .map(|m| m.json_body().unwrap())
        .collect()
}

fn one(name: &str) -> Value {
    let mut out = run(name, "");
    assert_eq!(out.len(), 1, "{name}: expected one entity");
    out.remove(0)
}

#[test]
fn every_event_fixture_is_handled() {
    for name in fixtures::EVENT_FIXTURES {
        for entity in run(name, "") {
            for key in ["identifier", "title", "blueprint"] {
                assert!(
                    entity[key].as_str().is_some_and(|s| !s.is_empty()),
                    "{name}: {key}"
                );
            }
            assert!(
                entity["properties"].is_object() && entity["relations"].is_object(),
                "{name}"
            );
        }
    }
}

#[test]
fn spacelift_matches_ports_mapping_result() {
    // port_spacelift_entity_result.json is what Port's mapping makes of spacelift_run_finished.json.
    assert_eq!(
        one("spacelift_run_finished.json"),
        fixtures::json("port_spacelift_entity_result.json")
    );
}

#[test]
fn spacelift_port_sample_maps_like_port() {
    let entity = one("spacelift_run_finished_port_sample.json");
    assert_eq!(
        entity,
        json!({
            "identifier": "ai-agent",
            "title": "ai-agent",
            "blueprint": "space_lift_stack",
            "properties": {
                "label": ["node"],
                "description": "here is the node",
                "link": "https://acme.app.spacelift.io/stack/ai-agent",
                "git_provider": "GITHUB",
                "repository": "acme-infra/argocd-app",
                "branch": "main",
                "state": "FINISHED"
            },
            "relations": {}
        })
    );
}

#[test]
fn spacelift_policy_input_and_internal_error() {
    let entity = one("spacelift_policy_input_run_updated.json");
    assert_eq!(entity["identifier"], "payments-prod");
    assert_eq!(
        entity["properties"]["link"],
        "https://acme-infra.app.spacelift.io/stack/payments-prod"
    );
    assert_eq!(entity["properties"]["state"], "FINISHED");
    assert!(
        run("spacelift_internal_error.json", "").is_empty(),
        "an internal error names no stack"
    );
}

#[test]
fn pulumi_stack_entities() {
    let entity = one("pulumi_stack_update.json");
    assert_eq!(entity["identifier"], "northwind-robotics/fleet-api/prod");
    assert_eq!(entity["title"], "fleet-api/prod");
    assert_eq!(entity["blueprint"], "pulumi_stack");
    let p = &entity["properties"];
    assert_eq!(p["last_event"], "stack_update");
    assert_eq!(p["last_operation"], "update");
    assert_eq!(p["last_result"], "succeeded");
    assert_eq!(
        p["last_url"],
        "https://app.pulumi.com/northwind-robotics/fleet-api/prod/updates/87"
    );
    assert_eq!(
        p["resource_changes"],
        json!({"create": 2, "update": 3, "same": 41})
    );
    assert_eq!(p["last_actor"], "Avery Quill");

    let p = &one("pulumi_stack_deleted.json")["properties"];
    assert_eq!(p["status"], "deleted");
    let p = &one("pulumi_drift_detection.json")["properties"];
    assert_eq!(p["drift_detected"], true);
    assert_eq!(p["last_operation"], "drift detection");
    let p = &one("pulumi_deployment.json")["properties"];
    assert_eq!(p["last_result"], "running");
    assert_eq!(p["last_operation"], "deployment update");
    assert!(run("pulumi_ping.json", "").is_empty());
}

#[test]
fn hcp_packer_bucket_entities() {
    let entity = one("hcp_packer_version_completed.json");
    assert_eq!(entity["identifier"], "ubuntu-jammy-base");
    assert_eq!(entity["blueprint"], "hcp_packer_bucket");
    let p = &entity["properties"];
    assert_eq!(p["version"], "v7");
    assert_eq!(p["version_status"], "ACTIVE");
    assert_eq!(p["last_event"], "Completed version");
    assert_eq!(
        p["artifacts"][1]["external_identifier"],
        "ami-07e9b1d3f5a7c9e2b"
    );
    assert_eq!(p["artifacts"][1]["region"], "eu-west-1");
    let p = &one("hcp_packer_version_created.json")["properties"];
    assert!(
        p.get("version").is_none(),
        "an unnamed version leaves `version` alone"
    );
    assert_eq!(
        one("hcp_packer_iteration.json")["identifier"],
        "ubuntu-jammy-base"
    );
    assert!(run("hcp_verification.json", "").is_empty());
}

#[test]
fn nullstone_app_entities_share_ids_across_formats() {
    let entity = one("nullstone_deployed.json");
    assert_eq!(entity["identifier"], "4821-120377-220318");
    assert_eq!(entity["title"], "checkout-web (prod)");
    assert_eq!(entity["blueprint"], "nullstone_app");
    assert_eq!(entity["properties"]["app_version"], "2025.06.12-3");
    assert_eq!(entity["properties"]["status"], "completed");
    assert_eq!(
        one("nullstone_deploy_failed.json")["properties"]["status"],
        "failed"
    );
    let legacy = one("nullstone_legacy_first_deployed.json");
    assert_eq!(legacy["identifier"], "4821-120377-220301");
    assert_eq!(legacy["properties"]["last_event"], "first-deployed");
}

#[test]
fn blueprint_overrides() {
    let all = run("pulumi_stack_update.json", r#"{"blueprint": "iac_stack"}"#);
    assert_eq!(all[0]["blueprint"], "iac_stack");
    let per = r#"{"blueprint": {"spacelift": "spacelift_stack"}}"#;
    assert_eq!(
        run("spacelift_run_finished.json", per)[0]["blueprint"],
        "spacelift_stack"
    );
    assert_eq!(
        run("pulumi_stack_update.json", per)[0]["blueprint"],
        "pulumi_stack"
    );
    assert!(config_from_json::<Config>(r#"{"blueprint": {"spacelfit": "x"}}"#).is_err());
    assert!(config_from_json::<Config>(r#"{"blueprints": "x"}"#).is_err());
}

#[test]
fn non_object_bodies_are_errors_and_unknown_platforms_are_skipped() {
    let mut event = fixtures::event("pulumi_stack_update.json");
    event.body = fixtures::json("pulumi_delivery_log.json");
    let err = transform(event, Config::default()).unwrap_err();
    assert_eq!(err, "event body is an array, not a JSON object");
    let mut event = fixtures::event("pulumi_stack_update.json");
    event.headers.clear();
    event.body = json!({"ref": "refs/heads/main"});
    assert_eq!(transform(event, Config::default()), Ok(vec![]));
}

/// Prints the output for every fixture (or `FIXTURE=name.json`), for READMEs and eyeballing:
/// `cargo test -p port-entity --test fixtures print_outputs -- --ignored --nocapture`.
#[test]
#[ignore]
fn print_outputs() {
    let only = std::env::var("FIXTURE").ok();
    for name in fixtures::EVENT_FIXTURES
        .iter()
        .filter(|n| only.as_deref().is_none_or(|o| o == **n))
    {
        println!("=== {name}");
        for entity in run(name, "") {
            println!("{}", serde_json::to_string_pretty(&entity).unwrap());
        }
    }
}
