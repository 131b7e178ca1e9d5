//! `slack-notify`: a hookgate plugin that turns Spacelift, Pulumi, HCP (Packer) and Nullstone
//! webhooks into Slack Block Kit messages for an incoming webhook.
//!
//! The flow is `Event` → [`platforms`] (one module per platform) → [`summary::Summary`] →
//! [`slack`] (rendering). [`outcome::Outcome`] is the vocabulary routes filter on. Config keys
//! are described on [`Config`].

pub mod outcome;
pub mod platforms;
pub mod slack;
pub mod summary;

use hookgate_plugin_sdk::{Event, Message, Platform, log, plugin};
use outcome::Outcome;
use serde::Deserialize;

/// The route's `wasm.config`. Unknown keys are an error, so a typo can't silently disable a
/// filter.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Posts to this channel instead of the webhook's default, e.g. `#deploys`.
    pub channel: Option<String>,
    /// Only these outcomes are sent; the rest are filtered. All are sent when absent.
    pub outcomes: Option<Vec<Outcome>>,
    /// Skips platform detection: `spacelift`, `pulumi`, `hcp` or `nullstone`.
    pub platform: Option<Platform>,
    /// Overrides the webhook's user name.
    pub username: Option<String>,
    /// Overrides the webhook's icon, e.g. `:rocket:`.
    pub icon_emoji: Option<String>,
}

/// The plugin: one Slack message for the event, or none when it is a ping or filtered out.
pub fn transform(event: Event, config: Config) -> Result<Vec<Message>, String> {
    let Some(summary) = platforms::summarize(&event, config.platform)? else {
        log::debug("control event (ping/verification): nothing to send");
        return Ok(Vec::new());
    };
    if let Some(wanted) = &config.outcomes
        && !wanted.contains(&summary.outcome)
    {
        log::debug(&format!(
            "outcome {} is not in `outcomes`: filtered",
            summary.outcome.as_str()
        ));
        return Ok(Vec::new());
    }
    let envelope = slack::Envelope {
        channel: config.channel.as_deref(),
        username: config.username.as_deref(),
        icon_emoji: config.icon_emoji.as_deref(),
    };
    Ok(vec![Message::json(&slack::render(&summary, envelope))])
}

plugin!(transform);
