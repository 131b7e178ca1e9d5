//! Spacelift stacks, mapped as Port's Spacelift guide does (`port_spacelift_webhook_config`):
//! `identifier = .body.stack.id`, `title = .body.stack.name`, and the same seven properties.

use crate::entity::{Entity, identifier, str_at};
use serde_json::{Value, json};

/// The stack entity of a run webhook or notification-policy input; `None` for internal errors.
pub fn entity(body: &Value, blueprint: &str) -> Option<Entity> {
    if let Some(input) = body.get("run_updated") {
        return from_policy_input(input, blueprint);
    }
    let id = str_at(body, "/stack/id")?;
    let mut e = Entity::new(
        &identifier(id),
        str_at(body, "/stack/name").unwrap_or(id),
        blueprint,
    );
    e.set("label", body.pointer("/stack/labels"));
    e.set("description", body.pointer("/stack/description"));
    e.set("link", body.pointer("/stack/url"));
    e.set("git_provider", body.pointer("/stack/vcs"));
    e.set("repository", body.pointer("/stack/repository"));
    e.set("branch", body.pointer("/run/branch"));
    e.set("state", body.pointer("/state"));
    Some(e)
}

/// The policy input has no stack URL, description or VCS; the stack's link is the run URL
/// without its `/run/<id>` tail.
fn from_policy_input(input: &Value, blueprint: &str) -> Option<Entity> {
    let id = str_at(input, "/stack/id")?;
    let mut e = Entity::new(
        &identifier(id),
        str_at(input, "/stack/name").unwrap_or(id),
        blueprint,
    );
    e.set("label", input.pointer("/stack/labels"));
    let stack_url = str_at(input, "/urls/run")
        .and_then(|u| u.split_once("/run/"))
        .map(|(s, _)| s);
    e.set_str("link", stack_url);
    e.set("repository", input.pointer("/stack/repository"));
    e.set(
        "branch",
        input
            .pointer("/run/branch")
            .or(input.pointer("/stack/branch")),
    );
    let state = str_at(input, "/state").or(str_at(input, "/run/state"));
    e.set("state", state.map(|s| json!(s)).as_ref());
    Some(e)
}
