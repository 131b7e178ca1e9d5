//! Nullstone: current webhooks (`{eventAction, eventStatus, block, environment, …}`) and the
//! legacy per-block format (`{event, blockId, envName, …}`).

use crate::outcome::Outcome;
use crate::summary::{Summary, humanize, short_sha, str_at, text_at};
use serde_json::Value;

/// Summarises a Nullstone body.
pub fn summarize(body: &Value) -> Summary {
    if body.get("eventAction").is_some() {
        current(body)
    } else {
        legacy(body)
    }
}

fn current(body: &Value) -> Summary {
    let app = str_at(body, "/block/name").unwrap_or("unknown app");
    let subject = match str_at(body, "/environment/name") {
        Some(env) => format!("{app} in {env}"),
        None => app.to_string(),
    };
    // `action` (`deployed`, `deploy-failed`) reads better than `eventAction` + `eventStatus`.
    let status = str_at(body, "/action")
        .or(str_at(body, "/eventAction"))
        .map_or_else(|| "event".to_string(), humanize);
    let outcome = str_at(body, "/eventStatus").map_or(Outcome::Info, Outcome::from_status);
    let mut s = Summary::new("Nullstone", &subject, &status, outcome);
    s.description = str_at(body, "/message").map(str::to_string);
    s.field("Version", text_at(body, "/appVersion"));
    s.field("Stack", text_at(body, "/stack/name"));
    s.field("Commit", commit(body));
    s.field("Triggered by", trigger(body));
    s.field("Module", module(body));
    s.link("View activity", str_at(body, "/targetUrl"));
    s.context
        .extend(str_at(body, "/stack/orgName").map(|o| format!("org {o}")));
    s.context
        .extend(str_at(body, "/eventAction").map(|a| format!("event {a}")));
    s
}

/// `9e8d7c6 on main`.
fn commit(body: &Value) -> Option<String> {
    let sha = short_sha(str_at(body, "/initiator/commitInfo/commitSha")?);
    Some(match str_at(body, "/initiator/commitInfo/branch") {
        Some(branch) => format!("{sha} on {branch}"),
        None => sha,
    })
}

/// `github (vcs-push)`.
fn trigger(body: &Value) -> Option<String> {
    let source = str_at(body, "/initiator/trigger/source");
    let event = str_at(body, "/initiator/trigger/event");
    match (source, event) {
        (Some(s), Some(e)) => Some(format!("{s} ({e})")),
        (s, e) => s.or(e).map(str::to_string),
    }
}

/// `nullstone/aws-fargate-service@0.12.4`.
fn module(body: &Value) -> Option<String> {
    let module = str_at(body, "/module")?;
    Some(match str_at(body, "/moduleVersion") {
        Some(v) => format!("{module}@{v}"),
        None => module.to_string(),
    })
}

/// The legacy body names blocks and stacks by id only and has no URL.
fn legacy(body: &Value) -> Summary {
    let event = str_at(body, "/event").unwrap_or("event");
    let block = text_at(body, "/blockId").unwrap_or_else(|| "?".into());
    let subject = match str_at(body, "/envName") {
        Some(env) => format!("block {block} in {env}"),
        None => format!("block {block}"),
    };
    let outcome = if event.contains("fail") {
        Outcome::Failed
    } else if event.ends_with("deployed") || event.ends_with("launched") {
        Outcome::Succeeded
    } else {
        Outcome::Info
    };
    let mut s = Summary::new("Nullstone", &subject, &humanize(event), outcome);
    s.field(
        "Stack",
        text_at(body, "/stackId").map(|id| format!("#{id}")),
    );
    s.field("Environment type", text_at(body, "/envType"));
    s.context
        .extend(str_at(body, "/orgName").map(|o| format!("org {o}")));
    s
}
