//! `port-entity`: a hookgate plugin that turns Spacelift, Pulumi, HCP Packer and Nullstone
//! webhooks into [Port](https://www.getport.io) entities, one per stack, bucket or app.
//!
//! [`platforms`] holds one mapping per platform; [`entity`] the entity type and its helpers.
//! For Spacelift the mapping is the one in Port's Spacelift guide, so entities match those a
//! Port webhook integration would create. Config keys are described on [`Config`].

pub mod entity;
pub mod platforms;

use hookgate_plugin_sdk::{Event, Message, Platform, plugin};
use serde::Deserialize;

/// The route's `wasm.config`. Unknown keys are an error, so a typo can't go unnoticed.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The blueprint: one name for every platform, or a table per platform.
    pub blueprint: Option<Blueprint>,
    /// Skips platform detection: `spacelift`, `pulumi`, `hcp` or `nullstone`.
    pub platform: Option<Platform>,
}

/// `blueprint = "stack"` or `blueprint = { spacelift = "...", pulumi = "..." }`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Blueprint {
    /// This blueprint for every platform.
    All(String),
    /// Per platform; the ones not named keep their default.
    PerPlatform(PerPlatform),
}

/// Blueprint names per platform.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerPlatform {
    /// Default `space_lift_stack`, the blueprint of Port's Spacelift guide.
    pub spacelift: Option<String>,
    /// Default `pulumi_stack`.
    pub pulumi: Option<String>,
    /// Default `hcp_packer_bucket`.
    pub hcp: Option<String>,
    /// Default `nullstone_app`.
    pub nullstone: Option<String>,
}

impl Config {
    /// The blueprint to use for `platform`'s entities.
    pub fn blueprint(&self, platform: Platform) -> String {
        let chosen = match &self.blueprint {
            Some(Blueprint::All(name)) => Some(name),
            Some(Blueprint::PerPlatform(p)) => match platform {
                Platform::Spacelift => p.spacelift.as_ref(),
                Platform::Pulumi => p.pulumi.as_ref(),
                Platform::Hcp => p.hcp.as_ref(),
                Platform::Nullstone => p.nullstone.as_ref(),
            },
            None => None,
        };
        chosen
            .cloned()
            .unwrap_or_else(|| default_blueprint(platform).to_string())
    }
}

/// The blueprint used when the config names none.
pub fn default_blueprint(platform: Platform) -> &'static str {
    match platform {
        // Port's Spacelift guide names its blueprint this way; matching it means the guide's
        // blueprint works unchanged.
        Platform::Spacelift => "space_lift_stack",
        Platform::Pulumi => "pulumi_stack",
        Platform::Hcp => "hcp_packer_bucket",
        Platform::Nullstone => "nullstone_app",
    }
}

/// The plugin: the event's entity, or nothing when the event names none.
pub fn transform(event: Event, config: Config) -> Result<Vec<Message>, String> {
    let entity = platforms::entity(&event, config.platform, |p| config.blueprint(p))?;
    Ok(entity
        .map(|e| Message::json(&e.to_json()))
        .into_iter()
        .collect())
}

plugin!(transform);
