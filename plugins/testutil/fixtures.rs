//! Test support shared by the plugins' integration tests (included with `#[path]`): builds the
//! envelope hookgate would hand a plugin for each payload in the repo's `tests/fixtures`.
//!
//! Headers come from the fixtures' `signatures.json` (lower-cased, as the envelope has them);
//! `event_type` follows the gateway's built-in rule for the platform the file name names.

#![allow(dead_code, clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use hookgate_plugin_sdk::{Event, Value};
use std::path::PathBuf;

/// Every webhook body among the fixtures (not the Port/Slack examples or the delivery log).
pub const EVENT_FIXTURES: &[&str] = &[
    "spacelift_run_finished.json",
    "spacelift_run_finished_port_sample.json",
    "spacelift_run_unconfirmed.json",
    "spacelift_internal_error.json",
    "spacelift_policy_input_run_updated.json",
    "pulumi_stack_created.json",
    "pulumi_stack_deleted.json",
    "pulumi_stack_update.json",
    "pulumi_stack_update_failed_destroy.json",
    "pulumi_stack_preview.json",
    "pulumi_deployment.json",
    "pulumi_drift_detection.json",
    "pulumi_drift_remediation.json",
    "pulumi_policy_violation_INFERRED.json",
    "pulumi_ping.json",
    "hcp_verification.json",
    "hcp_packer_version_created.json",
    "hcp_packer_version_completed.json",
    "hcp_packer_iteration.json",
    "nullstone_deployed.json",
    "nullstone_deploy_failed.json",
    "nullstone_legacy_first_deployed.json",
];

/// The repo's `tests/fixtures`, found from the crate's directory.
pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

/// The parsed JSON of fixture `name`.
pub fn json(name: &str) -> Value {
    let path = dir().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {name}: {e}"))
}

/// The envelope of fixture `name`, as the gateway would build it.
pub fn event(name: &str) -> Event {
    let body = json(name);
    let signatures = json("signatures.json");
    let headers = signatures
        .get(name)
        .and_then(Value::as_object)
        .map(|h| {
            h.iter()
                .filter(|(k, _)| !k.starts_with('_'))
                .filter_map(|(k, v)| Some((k.to_ascii_lowercase(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default();
    let mut event = Event {
        id: "01JXTESTEVENT0000000000000".into(),
        source: "fixtures".into(),
        received_at: "2025-06-12T14:03:22Z".into(),
        headers,
        body,
        ..Event::default()
    };
    event.event_type = event_type(name, &event);
    event
}

/// The gateway's event-type rule for the platform named by the file's prefix.
fn event_type(name: &str, event: &Event) -> Option<String> {
    let body = &event.body;
    let s = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
    match name.split('_').next()? {
        "spacelift" => s("event_type").or_else(|| s("error").map(|_| "internal_error".into())),
        "pulumi" => event.header("pulumi-webhook-kind").map(str::to_string),
        "hcp" => Some(format!("{}.{}", s("event_source")?, s("event_action")?)),
        "nullstone" => s("eventAction").or_else(|| s("event")),
        _ => None,
    }
}
