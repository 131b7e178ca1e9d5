//! Nullstone apps: one entity per app *in an environment*, identified by
//! `<stack id>-<block id>-<env id>` so that current and legacy events land on the same entity
//! (legacy events carry ids only) and renames don't fork it.

use crate::entity::{Entity, identifier, str_at, text_at};
use serde_json::Value;

/// The app-in-environment entity, or `None` when the ids are missing.
pub fn entity(body: &Value, blueprint: &str) -> Option<Entity> {
    if body.get("eventAction").is_some() {
        current(body, blueprint)
    } else {
        legacy(body, blueprint)
    }
}

fn current(body: &Value, blueprint: &str) -> Option<Entity> {
    let ids = [
        text_at(body, "/stack/id").or_else(|| text_at(body, "/workspace/stackId"))?,
        text_at(body, "/block/id").or_else(|| text_at(body, "/workspace/blockId"))?,
        text_at(body, "/environment/id").or_else(|| text_at(body, "/workspace/envId"))?,
    ];
    let app = str_at(body, "/block/name");
    let env = str_at(body, "/environment/name");
    let title = match (app, env) {
        (Some(a), Some(e)) => format!("{a} ({e})"),
        (a, _) => a.unwrap_or("Nullstone app").to_string(),
    };
    let mut e = Entity::new(&identifier(&ids.join("-")), &title, blueprint);
    e.set("org", body.pointer("/stack/orgName"));
    e.set("stack", body.pointer("/stack/name"));
    e.set("app", body.pointer("/block/name"));
    e.set("environment", body.pointer("/environment/name"));
    e.set("is_prod", body.pointer("/environment/isProd"));
    e.set("app_version", body.get("appVersion"));
    e.set("status", body.get("eventStatus"));
    e.set("last_event", body.get("action").or(body.get("eventAction")));
    e.set("module", body.get("module"));
    e.set("module_version", body.get("moduleVersion"));
    e.set("repo", body.pointer("/block/repo"));
    e.set("commit", body.pointer("/initiator/commitInfo/commitSha"));
    e.set("branch", body.pointer("/initiator/commitInfo/branch"));
    e.set("link", body.get("targetUrl"));
    Some(e)
}

fn legacy(body: &Value, blueprint: &str) -> Option<Entity> {
    let ids = [
        text_at(body, "/stackId")?,
        text_at(body, "/blockId")?,
        text_at(body, "/envId")?,
    ];
    let title = match str_at(body, "/envName") {
        Some(env) => format!("block {} ({env})", ids[1]),
        None => format!("block {}", ids[1]),
    };
    let mut e = Entity::new(&identifier(&ids.join("-")), &title, blueprint);
    e.set("org", body.get("orgName"));
    e.set("environment", body.get("envName"));
    e.set("last_event", body.get("event"));
    Some(e)
}
