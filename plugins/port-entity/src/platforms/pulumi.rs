//! Pulumi stacks: one entity per `org/project/stack`, updated by every kind of stack event.
//!
//! Each event kind fills the same small set of `last_*` properties, so one blueprint covers all.

use crate::entity::{Entity, identifier, str_at};
use serde_json::{Value, json};

/// The stack entity, or `None` for pings and bodies that name no stack.
pub fn entity(kind: Option<&str>, body: &Value, blueprint: &str) -> Option<Entity> {
    let kind = kind.unwrap_or("unknown");
    if kind == "ping" {
        return None;
    }
    let org = str_at(body, "/organization/githubLogin").or(str_at(body, "/organization/name"))?;
    let project = str_at(body, "/projectName")?;
    let stack = str_at(body, "/stackName")?;
    let id = identifier(&format!("{org}/{project}/{stack}"));
    let mut e = Entity::new(&id, &format!("{project}/{stack}"), blueprint);
    e.set_str("organization", Some(org));
    e.set_str("project", Some(project));
    e.set_str("stack", Some(stack));
    e.set_str("last_event", Some(kind));
    e.set_str(
        "last_actor",
        str_at(body, "/user/name").or(str_at(body, "/user/githubLogin")),
    );
    e.set_str("last_operation", operation(kind, body).as_deref());
    e.set("last_result", body.get("result").or(body.get("status")));
    e.set(
        "last_url",
        ["updateUrl", "deploymentUrl", "referenceUrl"]
            .iter()
            .find_map(|k| body.get(*k)),
    );
    e.set("resource_changes", body.get("resourceChanges"));
    e.set("drift_detected", body.get("driftDetected"));
    if kind == "stack" {
        let status = if str_at(body, "/action") == Some("deleted") {
            "deleted"
        } else {
            "active"
        };
        e.set("status", Some(&json!(status)));
    }
    Some(e)
}

/// `update`, `destroy`, `preview`, `deployment update`, `drift detection`...
fn operation(kind: &str, body: &Value) -> Option<String> {
    let preview = kind == "stack_preview" || body.get("isPreview") == Some(&Value::Bool(true));
    match kind {
        "stack_update" | "stack_preview" if preview => Some("preview".into()),
        "stack_update" => str_at(body, "/kind").map(str::to_string),
        "deployment" => Some(
            str_at(body, "/operation").map_or("deployment".into(), |op| format!("deployment {op}")),
        ),
        "drift_detection" => Some("drift detection".into()),
        "drift_remediation" => Some("drift remediation".into()),
        "stack" => str_at(body, "/action").map(|a| format!("stack {a}")),
        _ => str_at(body, "/kind").map(str::to_string),
    }
}
