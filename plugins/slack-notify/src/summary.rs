//! [`Summary`]: a platform-neutral description of one event, which `slack` renders.
//!
//! Platform modules fill it with plain text taken from the payload; escaping for Slack is the
//! renderer's job, so nothing here knows about mrkdwn.

use crate::outcome::Outcome;
use serde_json::Value;

/// What a notification says about one event.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Who sent it, e.g. `Spacelift`, `HCP Packer`.
    pub platform: String,
    /// What it is about: the stack, app or image, e.g. `payments-prod`.
    pub subject: String,
    /// What happened to it, e.g. `run finished`, `update failed`.
    pub status: String,
    /// The normalised outcome (colour, emoji, filtering).
    pub outcome: Outcome,
    /// A sentence from the payload: commit message, error text, Nullstone's message.
    pub description: Option<String>,
    /// Labelled facts: who triggered it, what changed...
    pub fields: Vec<(String, String)>,
    /// Where to see it on the platform.
    pub link: Option<Link>,
    /// Small print: account, ids.
    pub context: Vec<String>,
}

/// A button back to the platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The button's text, e.g. `View run`.
    pub label: String,
    /// The URL, taken from the payload.
    pub url: String,
}

impl Summary {
    /// A summary with nothing but its headline.
    pub fn new(platform: &str, subject: &str, status: &str, outcome: Outcome) -> Self {
        Self {
            platform: platform.to_string(),
            subject: subject.to_string(),
            status: status.to_string(),
            outcome,
            description: None,
            fields: Vec::new(),
            link: None,
            context: Vec::new(),
        }
    }

    /// The one-line headline: `Spacelift · payments-prod · run finished`.
    pub fn headline(&self) -> String {
        format!("{} · {} · {}", self.platform, self.subject, self.status)
    }

    /// Adds a field if the value is known.
    pub fn field(&mut self, title: &str, value: Option<String>) {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            self.fields.push((title.to_string(), value));
        }
    }

    /// Sets the link if the payload has a web URL (Slack rejects a message whose button has
    /// any other scheme, so a bad URL would lose the whole notification).
    pub fn link(&mut self, label: &str, url: Option<&str>) {
        if let Some(url) = url.filter(|u| u.starts_with("https://") || u.starts_with("http://")) {
            self.link = Some(Link {
                label: label.to_string(),
                url: url.to_string(),
            });
        }
    }
}

pub use hookgate_plugin_sdk::str_at;

/// The value at `ptr` as display text: strings as is, numbers and booleans printed.
pub fn text_at(v: &Value, ptr: &str) -> Option<String> {
    match v.pointer(ptr)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `state_name` or `state-name` as words: `state name`.
pub fn humanize(s: &str) -> String {
    s.to_ascii_lowercase().replace(['_', '-'], " ")
}

/// The first seven characters of a commit hash.
pub fn short_sha(hash: &str) -> String {
    hash.chars().take(7).collect()
}
