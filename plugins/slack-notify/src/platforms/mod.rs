//! One module per platform turns its payloads into a [`Summary`]; this module picks the module
//! and covers everything else with a generic summary.

mod hcp;
mod nullstone;
mod pulumi;
mod spacelift;

use crate::outcome::Outcome;
use crate::summary::Summary;
use hookgate_plugin_sdk::{Event, Platform};

/// Event types that only check a webhook works: nobody wants them in a channel.
const CONTROL_EVENTS: &[&str] = &[
    "ping",
    "hashicorp.webhook.verification.test",
    "hookgate.ping",
];

/// The summary of `event`, `Ok(None)` for a ping, or `Err` if the body isn't a JSON object.
pub fn summarize(event: &Event, platform: Option<Platform>) -> Result<Option<Summary>, String> {
    let kind = event.event_type.as_deref();
    if kind.is_some_and(|k| CONTROL_EVENTS.contains(&k)) {
        return Ok(None);
    }
    event.body_object()?;
    let body = &event.body;
    Ok(match platform.or_else(|| Platform::detect(event)) {
        Some(Platform::Spacelift) => Some(spacelift::summarize(body)),
        Some(Platform::Pulumi) => pulumi::summarize(kind, body),
        Some(Platform::Hcp) => hcp::summarize(body),
        Some(Platform::Nullstone) => Some(nullstone::summarize(body)),
        None => Some(generic(event)),
    })
}

/// An event from a platform this plugin doesn't know: say that it arrived, and what it is.
fn generic(event: &Event) -> Summary {
    let platform = if event.source.is_empty() {
        "hookgate"
    } else {
        &event.source
    };
    let kind = event.event_type.as_deref().unwrap_or("event");
    let mut s = Summary::new(platform, kind, "received", Outcome::Info);
    s.context
        .extend((!event.id.is_empty()).then(|| format!("event {}", event.id)));
    s
}
