//! Test support shared by the plugins' integration tests (included with `#[path]`): builds the
//! envelope hookgate would hand a plugin for each platform payload in the repo's event catalog.
//!
//! A fixture is named `<preset>_<file>`: the catalog's sample `catalog/<preset>/samples/<file>`,
//! or, for what is not a platform event (Port's results, a policy input), `tests/fixtures/<name>`.
//! Headers come from the sample's `headers.json` (lower-cased, as the envelope has them);
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

/// The repository, found from the crate's directory.
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Where fixture `name` lives: a catalog sample if there is one by that name, else tests/fixtures.
fn path(name: &str) -> PathBuf {
    if let Some((preset, file)) = name.split_once('_') {
        let sample = root()
            .join("catalog")
            .join(preset)
            .join("samples")
            .join(file);
        if sample.exists() {
            return sample;
        }
    }
    root().join("tests/fixtures").join(name)
}

fn read_json(path: &std::path::Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// The parsed JSON of fixture `name`.
pub fn json(name: &str) -> Value {
    read_json(&path(name))
}

/// The headers the platform sends with fixture `name` (none for what is not a catalog sample).
fn headers(name: &str) -> std::collections::BTreeMap<String, String> {
    let Some((preset, file)) = name.split_once('_') else {
        return Default::default();
    };
    let signed = root()
        .join("catalog")
        .join(preset)
        .join("samples/headers.json");
    if !signed.exists() || !path(name).starts_with(root().join("catalog")) {
        return Default::default();
    }
    read_json(&signed)
        .get(file)
        .and_then(Value::as_object)
        .map(|h| {
            h.iter()
                .filter_map(|(k, v)| Some((k.to_ascii_lowercase(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// The envelope of fixture `name`, as the gateway would build it.
pub fn event(name: &str) -> Event {
    let body = json(name);
    let headers = headers(name);
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
