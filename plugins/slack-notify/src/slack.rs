//! Renders a [`Summary`] as a Slack incoming-webhook body: `text` fallback, a header block, and
//! a coloured attachment holding the fields, the link button and the small print.
//!
//! Slack rejects a whole message when one block breaks a limit, so every text is cut to its
//! block's limit here, and payload text is escaped for mrkdwn.

use crate::summary::Summary;
use serde_json::{Map, Value, json};

/// Block Kit limits (characters), from Slack's block reference.
const HEADER_MAX: usize = 150;
const SECTION_TEXT_MAX: usize = 3000;
const FIELD_MAX: usize = 2000;
const FIELDS_MAX: usize = 10;
const BUTTON_TEXT_MAX: usize = 75;
const BUTTON_URL_MAX: usize = 3000;
/// The notification text (mrkdwn, like the blocks' texts).
const TEXT_MAX: usize = 40_000;

/// Optional message-level settings from the route's config.
#[derive(Debug, Default, Clone, Copy)]
pub struct Envelope<'a> {
    /// Overrides the webhook's channel.
    pub channel: Option<&'a str>,
    /// Overrides the webhook's user name.
    pub username: Option<&'a str>,
    /// Overrides the webhook's icon.
    pub icon_emoji: Option<&'a str>,
}

/// The message body for `summary`.
pub fn render(summary: &Summary, envelope: Envelope<'_>) -> Value {
    let emoji = summary.outcome.emoji();
    let headline = summary.headline();
    let mut msg = Map::new();
    for (key, value) in [
        ("channel", envelope.channel),
        ("username", envelope.username),
        ("icon_emoji", envelope.icon_emoji),
    ] {
        if let Some(value) = value {
            msg.insert(key.into(), json!(value));
        }
    }
    // The notification text is mrkdwn too: payload text in it is escaped like the blocks'.
    let text = truncate(&format!("{emoji} {}", escape(&headline)), TEXT_MAX);
    msg.insert("text".into(), json!(text));
    msg.insert(
        "blocks".into(),
        Value::Array(top_blocks(summary, emoji, &headline)),
    );
    msg.insert(
        "attachments".into(),
        json!([{
            "color": summary.outcome.color(),
            "fallback": truncate(&escape(&headline), TEXT_MAX),
            "blocks": detail_blocks(summary),
        }]),
    );
    Value::Object(msg)
}

/// The header, and the description under it.
fn top_blocks(summary: &Summary, emoji: &str, headline: &str) -> Vec<Value> {
    let mut blocks = vec![json!({
        "type": "header",
        "text": {
            "type": "plain_text",
            "text": truncate(&format!("{emoji} {}", escape(headline)), HEADER_MAX),
            "emoji": true,
        },
    })];
    if let Some(description) = &summary.description {
        blocks.push(
            json!({"type": "section", "text": mrkdwn(&escape(description), SECTION_TEXT_MAX)}),
        );
    }
    blocks
}

/// The fields, the link button and the context line.
fn detail_blocks(summary: &Summary) -> Vec<Value> {
    let mut blocks = Vec::new();
    let fields: Vec<Value> = summary
        .fields
        .iter()
        .take(FIELDS_MAX)
        .map(|(title, value)| {
            mrkdwn(
                &format!("*{}*\n{}", escape(title), escape(value)),
                FIELD_MAX,
            )
        })
        .collect();
    if !fields.is_empty() {
        blocks.push(json!({"type": "section", "fields": fields}));
    }
    // A longer URL than Slack takes would get the whole message refused, and a cut one leads
    // nowhere: such a link is left out.
    if let Some(link) = summary
        .link
        .as_ref()
        .filter(|l| l.url.chars().count() <= BUTTON_URL_MAX)
    {
        blocks.push(json!({
            "type": "actions",
            "elements": [{
                "type": "button",
                "text": {"type": "plain_text", "text": truncate(&escape(&link.label), BUTTON_TEXT_MAX)},
                "url": link.url,
            }],
        }));
    }
    if !summary.context.is_empty() {
        let line = escape(&summary.context.join(" · "));
        blocks.push(json!({"type": "context", "elements": [mrkdwn(&line, FIELD_MAX)]}));
    }
    blocks
}

fn mrkdwn(text: &str, max: usize) -> Value {
    json!({"type": "mrkdwn", "text": truncate(text, max)})
}

/// Escapes the three characters Slack's mrkdwn treats as control characters, so payload text
/// such as `Merge <branch>` can't become a link or a mention.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `text` cut to `max` characters (not bytes), ending in `…` when cut, never inside one of
/// [`escape`]'s entities.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    if let Some(amp) = cut.rfind('&')
        && !cut[amp..].contains(';')
        && cut.len() - amp <= 4
    {
        cut.truncate(amp);
    }
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_mrkdwn_control_characters() {
        assert_eq!(escape("a <b> & c"), "a &lt;b&gt; &amp; c");
    }

    #[test]
    fn truncates_on_characters() {
        assert_eq!(truncate("ééé", 3), "ééé");
        assert_eq!(truncate("éééé", 3), "éé…");
        assert_eq!(truncate(&escape("ab<c"), 5), "ab…");
    }
}
