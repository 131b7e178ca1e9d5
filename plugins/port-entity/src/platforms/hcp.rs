//! HCP Packer buckets: one entity per bucket, carrying the version its last event was about.
//! Other HCP services' events, and the verification ping, name no bucket and map to nothing.

use crate::entity::{Entity, identifier, str_at};
use serde_json::{Value, json};

/// The bucket entity of an HCP Packer event.
pub fn entity(body: &Value, blueprint: &str) -> Option<Entity> {
    if !str_at(body, "/event_source")?.starts_with("hashicorp.packer.") {
        return None;
    }
    let payload = body.get("event_payload")?;
    let bucket = str_at(payload, "/bucket/name").or(str_at(payload, "/bucket/slug"))?;
    // Current events describe a `version`; older ones an `iteration` with the same fields.
    let version = payload
        .get("version")
        .or(payload.get("iteration"))
        .unwrap_or(&Value::Null);
    let mut e = Entity::new(&identifier(bucket), bucket, blueprint);
    e.set("bucket_id", payload.pointer("/bucket/id"));
    e.set("registry_id", payload.pointer("/registry/id"));
    e.set("project_id", payload.get("project_id"));
    e.set("organization_id", payload.get("organization_id"));
    e.set(
        "last_event",
        body.get("event_description").or(body.get("event_action")),
    );
    e.set(
        "last_actor",
        payload
            .pointer("/actor/user/email")
            .or(payload.pointer("/actor/principal_id")),
    );
    e.set("version", version.get("name").or(version.get("version")));
    e.set("version_id", version.get("id"));
    e.set("version_status", version.get("status"));
    e.set("fingerprint", version.get("fingerprint"));
    e.set("artifacts", artifacts(payload).as_ref());
    Some(e)
}

/// Builds flattened to one object per artifact (what a Port table can show).
fn artifacts(payload: &Value) -> Option<Value> {
    let builds = payload.get("builds")?.as_array()?;
    let list: Vec<Value> = builds
        .iter()
        .flat_map(|b| {
            let items = b
                .get("artifacts")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            items.iter().map(move |a| {
                json!({
                    "platform": b.get("platform"),
                    "component_type": b.get("component_type"),
                    "region": a.get("region"),
                    "external_identifier": a.get("external_identifier"),
                })
            })
        })
        .collect();
    (!list.is_empty()).then_some(Value::Array(list))
}
