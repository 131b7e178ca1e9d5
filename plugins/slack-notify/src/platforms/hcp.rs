//! HashiCorp Cloud Platform: HCP Packer version (and legacy iteration) events, plus a plain
//! rendering of other HCP services' events. HCP payloads carry no web URL, so there is no link.

use crate::outcome::Outcome;
use crate::summary::{Summary, str_at, text_at};
use serde_json::Value;

/// Summarises an HCP body, or `None` for the verification ping sent when a webhook is saved.
pub fn summarize(body: &Value) -> Option<Summary> {
    let source = str_at(body, "/event_source").unwrap_or("");
    let action = str_at(body, "/event_action").unwrap_or("");
    if source == "hashicorp.webhook.verification" {
        return None;
    }
    let mut s = if source.starts_with("hashicorp.packer.") {
        packer(body, action)
    } else {
        let subject = str_at(body, "/resource_name").or(str_at(body, "/resource_id"));
        let status = str_at(body, "/event_description").unwrap_or(action);
        Summary::new("HCP", subject.unwrap_or(source), status, Outcome::Info)
    };
    s.field("Actor", actor(body));
    s.context
        .extend(str_at(body, "/event_payload/project_id").map(|p| format!("project {p}")));
    s.context
        .extend(str_at(body, "/event_id").map(|id| format!("event {id}")));
    Some(s)
}

fn packer(body: &Value, action: &str) -> Summary {
    // Current events describe a `version`; older ones an `iteration` with the same fields.
    let version = ["/event_payload/version", "/event_payload/iteration"]
        .into_iter()
        .find_map(|p| body.pointer(p))
        .unwrap_or(&Value::Null);
    let bucket = str_at(body, "/event_payload/bucket/name")
        .or(str_at(body, "/event_payload/bucket/slug"))
        .unwrap_or("unknown bucket");
    let name = str_at(version, "/name").or(str_at(version, "/version"));
    let subject = name.map_or_else(|| bucket.to_string(), |n| format!("{bucket} {n}"));
    let status = str_at(body, "/event_description").unwrap_or(action);
    let mut s = Summary::new(
        "HCP Packer",
        &subject,
        status,
        packer_outcome(action, version),
    );
    s.field("Version status", text_at(version, "/status"));
    s.field("Fingerprint", text_at(version, "/fingerprint"));
    s.field("Artifacts", artifacts(body));
    s.field("Revocation", text_at(version, "/revocation_message"));
    s
}

fn packer_outcome(action: &str, version: &Value) -> Outcome {
    let status = str_at(version, "/status")
        .unwrap_or("")
        .to_ascii_uppercase();
    if status.contains("FAIL") || status.contains("CANCEL") {
        return Outcome::Failed;
    }
    match action {
        "complete" => Outcome::Succeeded,
        "create" => Outcome::Started,
        _ => Outcome::Info,
    }
}

/// `Avery Quill <avery.quill@example.com>`, or the principal for service principals.
fn actor(body: &Value) -> Option<String> {
    let name = str_at(body, "/event_payload/actor/user/name");
    let email = str_at(body, "/event_payload/actor/user/email");
    match (name, email) {
        (Some(n), Some(e)) => Some(format!("{n} <{e}>")),
        (n, e) => n
            .or(e)
            .or(str_at(body, "/event_payload/actor/principal_id"))
            .map(str::to_string),
    }
}

/// One line per build artifact: `aws ami-0c4f2a9e7b1d3f5a6 (us-west-2)`.
fn artifacts(body: &Value) -> Option<String> {
    let builds = body.pointer("/event_payload/builds")?.as_array()?;
    let lines: Vec<String> = builds
        .iter()
        .flat_map(|b| {
            let platform = str_at(b, "/platform").unwrap_or("?");
            let list = b
                .get("artifacts")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            list.iter().map(move |a| {
                let id = str_at(a, "/external_identifier").unwrap_or("?");
                match str_at(a, "/region") {
                    Some(region) => format!("{platform} {id} ({region})"),
                    None => format!("{platform} {id}"),
                }
            })
        })
        .collect();
    (!lines.is_empty()).then(|| lines.join("\n"))
}
