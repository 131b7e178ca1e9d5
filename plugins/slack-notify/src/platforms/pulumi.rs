//! Pulumi Cloud: stack, update, preview, deployment, drift and policy-violation webhooks.
//!
//! The kind comes from the `Pulumi-Webhook-Kind` header (the envelope's `event_type`); when a
//! source has no event-type rule it is inferred from the body's fields.

use crate::outcome::Outcome;
use crate::summary::{Summary, humanize, str_at, text_at};
use serde_json::Value;

/// Summarises a Pulumi body of kind `kind`, or `None` for a ping.
pub fn summarize(kind: Option<&str>, body: &Value) -> Option<Summary> {
    let kind = kind.map_or_else(|| infer_kind(body), str::to_string);
    let mut s = match kind.as_str() {
        "ping" => return None,
        "stack" => stack_lifecycle(body),
        "stack_update" | "stack_preview" => update(&kind, body),
        "deployment" => deployment(body),
        "drift_detection" => drift_detection(body),
        "drift_remediation" => {
            let status = str_at(body, "/status").unwrap_or("unknown");
            let mut s = base(body, &format!("drift remediation {status}"));
            s.outcome = Outcome::from_status(status);
            s
        }
        k if k.starts_with("policy_violation") => policy_violation(k, body),
        other => other_kind(other, body),
    };
    s.field("Resource changes", resource_changes(body));
    s.link(link_label(&kind), link_url(body));
    s.context
        .extend(str_at(body, "/organization/name").map(|o| format!("organization {o}")));
    s.context.push(format!("kind {kind}"));
    Some(s)
}

/// The kind a body of unknown kind most likely is, from its distinctive fields.
fn infer_kind(body: &Value) -> String {
    let has = |k: &str| body.get(k).is_some();
    let kind = if has("deploymentUrl") {
        "deployment"
    } else if has("driftDetected") {
        "drift_detection"
    } else if has("referenceUrl") {
        "drift_remediation"
    } else if body.get("isPreview") == Some(&Value::Bool(true)) {
        "stack_preview"
    } else if has("updateUrl") {
        "stack_update"
    } else if has("action") {
        "stack"
    } else if has("message") && !has("stackName") {
        "ping"
    } else {
        "unknown"
    };
    kind.to_string()
}

/// A summary of `org/project/stack` with the user field; callers set status and outcome.
fn base(body: &Value, status: &str) -> Summary {
    let org = str_at(body, "/organization/githubLogin").or(str_at(body, "/organization/name"));
    let parts = [
        org,
        str_at(body, "/projectName"),
        str_at(body, "/stackName"),
    ];
    let subject = parts.into_iter().flatten().collect::<Vec<_>>().join("/");
    let subject = if subject.is_empty() {
        "unknown stack".to_string()
    } else {
        subject
    };
    let mut s = Summary::new("Pulumi", &subject, status, Outcome::Info);
    s.field("User", user(body));
    s
}

/// `Avery Quill (aquill-dev)`.
fn user(body: &Value) -> Option<String> {
    match (
        str_at(body, "/user/name"),
        str_at(body, "/user/githubLogin"),
    ) {
        (Some(name), Some(login)) if name != login => Some(format!("{name} ({login})")),
        (Some(name), _) => Some(name.to_string()),
        (None, login) => login.map(str::to_string),
    }
}

fn stack_lifecycle(body: &Value) -> Summary {
    let action = str_at(body, "/action").unwrap_or("changed");
    base(body, &format!("stack {action}"))
}

/// `stack_update` / `stack_preview`: `{kind: update|refresh|destroy|import, result, isPreview}`.
fn update(kind: &str, body: &Value) -> Summary {
    let op = str_at(body, "/kind").unwrap_or("update");
    let preview = kind == "stack_preview" || body.get("isPreview") == Some(&Value::Bool(true));
    let result = str_at(body, "/result").unwrap_or("unknown");
    let what = if preview {
        format!("{op} preview")
    } else {
        op.to_string()
    };
    let mut s = base(body, &format!("{what} {result}"));
    s.outcome = Outcome::from_status(result);
    s.field("Operation", Some(capitalize(&what)));
    s
}

fn deployment(body: &Value) -> Summary {
    let status = str_at(body, "/status").unwrap_or("unknown");
    let mut s = base(body, &format!("deployment {}", humanize(status)));
    s.outcome = Outcome::from_status(status);
    s.field("Operation", str_at(body, "/operation").map(capitalize));
    s.field(
        "Deployment",
        text_at(body, "/version").map(|v| format!("#{v}")),
    );
    s
}

/// Drift found is [`Outcome::Drift`] whatever the run's status; no drift is a success.
fn drift_detection(body: &Value) -> Summary {
    let status = str_at(body, "/status").unwrap_or("unknown");
    let detected = body.get("driftDetected").and_then(Value::as_bool);
    let (text, outcome) = match (detected, Outcome::from_status(status)) {
        (Some(true), _) => ("drift detected".to_string(), Outcome::Drift),
        (Some(false), Outcome::Succeeded) => ("no drift".to_string(), Outcome::Succeeded),
        (_, outcome) => (format!("drift detection {}", humanize(status)), outcome),
    };
    let mut s = base(body, &text);
    s.outcome = outcome;
    s.field("Drift run", text_at(body, "/driftRunId"));
    s
}

/// The payload of policy-violation webhooks is undocumented; this reads the update fields a
/// third-party consumer relies on. Advisory violations don't block anything, so they are info.
fn policy_violation(kind: &str, body: &Value) -> Summary {
    let level = kind.strip_prefix("policy_violation_").unwrap_or("");
    let status = if level.is_empty() {
        "policy violation".into()
    } else {
        format!("{level} policy violation")
    };
    let mut s = base(body, &status);
    s.outcome = if level == "advisory" {
        Outcome::Info
    } else {
        Outcome::Failed
    };
    s.field("Operation", str_at(body, "/kind").map(capitalize));
    s.field("Result", text_at(body, "/result"));
    s
}

fn other_kind(kind: &str, body: &Value) -> Summary {
    let status = str_at(body, "/result").or(str_at(body, "/status"));
    let mut s = base(body, &humanize(kind));
    s.outcome = status.map_or(Outcome::Info, Outcome::from_status);
    s.field("Result", status.map(str::to_string));
    s
}

/// `create 2, update 3, same 41`, in the payload's order.
fn resource_changes(body: &Value) -> Option<String> {
    let changes = body.get("resourceChanges")?.as_object()?;
    let parts: Vec<String> = changes.iter().map(|(op, n)| format!("{op} {n}")).collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

fn link_url(body: &Value) -> Option<&str> {
    ["/updateUrl", "/deploymentUrl", "/referenceUrl"]
        .into_iter()
        .find_map(|p| str_at(body, p))
}

fn link_label(kind: &str) -> &'static str {
    match kind {
        "stack_preview" => "View preview",
        "deployment" => "View deployment",
        "drift_detection" | "drift_remediation" => "View drift run",
        _ => "View update",
    }
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map_or_else(String::new, |c| c.to_uppercase().chain(chars).collect())
}
