//! One module per platform maps its payloads to an [`Entity`]; this module picks the module.

mod hcp;
mod nullstone;
mod pulumi;
mod spacelift;

use crate::entity::Entity;
use hookgate_plugin_sdk::{Event, Platform, log};

/// The entity `event` describes, or `None` when it names none (pings, Spacelift internal
/// errors, events of unknown platforms). `blueprint` is the blueprint to use for a platform.
pub fn entity(
    event: &Event,
    platform: Option<Platform>,
    blueprint: impl Fn(Platform) -> String,
) -> Result<Option<Entity>, String> {
    event.body_object()?;
    let Some(platform) = platform.or_else(|| Platform::detect(event)) else {
        log::info("event is from no platform this plugin knows: nothing to send");
        return Ok(None);
    };
    let body = &event.body;
    let kind = event.event_type.as_deref();
    let bp = blueprint(platform);
    let entity = match platform {
        Platform::Spacelift => spacelift::entity(body, &bp),
        Platform::Pulumi => pulumi::entity(kind, body, &bp),
        Platform::Hcp => hcp::entity(body, &bp),
        Platform::Nullstone => nullstone::entity(body, &bp),
    };
    if entity.is_none() {
        log::debug(&format!(
            "{} event names no entity: nothing to send",
            platform.as_str()
        ));
    }
    Ok(entity)
}
