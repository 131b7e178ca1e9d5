//! [`Platform`]: which IaC platform sent an event, recognised from the event itself.
//!
//! The source's name is the user's choice, so it says nothing; the event type, headers and body
//! shape do. Plugins should let a route's config override the guess (`platform = "pulumi"`).

use crate::Event;
use serde::Deserialize;
use serde_json::{Map, Value};

/// A platform hookgate has built-in event-type rules for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    /// Spacelift run-state webhooks, internal-error events and notification-policy inputs.
    Spacelift,
    /// Pulumi Cloud webhooks (`Pulumi-Webhook-Kind` header).
    Pulumi,
    /// HashiCorp Cloud Platform webhooks (HCP Packer and friends).
    Hcp,
    /// Nullstone webhooks, current and legacy formats.
    Nullstone,
}

impl Platform {
    /// All platforms, in detection order.
    pub const ALL: [Platform; 4] = [Self::Spacelift, Self::Pulumi, Self::Hcp, Self::Nullstone];

    /// The lower-case name used in configs, e.g. `"hcp"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Spacelift => "spacelift",
            Self::Pulumi => "pulumi",
            Self::Hcp => "hcp",
            Self::Nullstone => "nullstone",
        }
    }

    /// The platform's display name, e.g. `"HCP"`.
    pub fn display_name(self) -> &'static str {
        match self {
            Self::Spacelift => "Spacelift",
            Self::Pulumi => "Pulumi",
            Self::Hcp => "HCP",
            Self::Nullstone => "Nullstone",
        }
    }

    /// Recognises the sender of `event`, or `None` for anything else.
    pub fn detect(event: &Event) -> Option<Self> {
        // Headers first: only Pulumi and HCP send distinctive ones, and they are unambiguous.
        if event.header("pulumi-webhook-kind").is_some() {
            return Some(Self::Pulumi);
        }
        if event.header("x-hcp-webhook-signature").is_some()
            || event
                .event_type
                .as_deref()
                .is_some_and(|t| t.starts_with("hashicorp."))
        {
            return Some(Self::Hcp);
        }
        let body = event.body.as_object()?;
        Self::ALL.into_iter().find(|p| p.matches_body(body))
    }

    /// Whether `body` has this platform's shape.
    fn matches_body(self, body: &Map<String, Value>) -> bool {
        let has = |key: &str| body.contains_key(key);
        let str_field = |key: &str| body.get(key).and_then(Value::as_str);
        match self {
            Self::Spacelift => {
                str_field("event_source") == Some("spacelift")
                    || (has("run") && has("stack") && has("state"))
                    || has("run_updated")
                    || (has("error") && has("severity") && has("account"))
            }
            Self::Pulumi => has("organization") && (has("stackName") || has("projectName")),
            Self::Hcp => str_field("event_source").is_some_and(|s| s.starts_with("hashicorp.")),
            Self::Nullstone => has("eventAction") || (has("event") && has("blockId")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(event_type: Option<&str>, body: Value) -> Event {
        Event {
            event_type: event_type.map(str::to_string),
            body,
            ..Event::default()
        }
    }

    #[test]
    fn detects_by_header_event_type_and_shape() {
        let mut pulumi = event(None, json!({"timestamp": 1, "message": "ping"}));
        pulumi
            .headers
            .insert("pulumi-webhook-kind".into(), "ping".into());
        assert_eq!(Platform::detect(&pulumi), Some(Platform::Pulumi));
        let hcp = event(Some("hashicorp.webhook.verification.test"), json!({}));
        assert_eq!(Platform::detect(&hcp), Some(Platform::Hcp));
        let spacelift = event(
            None,
            json!({"error": "x", "severity": "ERROR", "account": "a"}),
        );
        assert_eq!(Platform::detect(&spacelift), Some(Platform::Spacelift));
        let nullstone = event(None, json!({"event": "first-deployed", "blockId": 1}));
        assert_eq!(Platform::detect(&nullstone), Some(Platform::Nullstone));
        assert_eq!(Platform::detect(&event(None, json!({"a": 1}))), None);
        assert_eq!(Platform::detect(&event(None, json!([1]))), None);
    }
}
