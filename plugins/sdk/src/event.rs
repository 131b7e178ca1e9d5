//! [`Event`]: the envelope hookgate hands a plugin, decoded.

use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// One received webhook, as every filter and transform of a route sees it.
///
/// Field names follow Port's webhook mappings (`queryParams`), as the envelope does.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Event {
    /// hookgate's id for the event (a ULID).
    pub id: String,
    /// The name of the source (as configured by the user) that received it.
    pub source: String,
    /// The event type resolved by the source's rule, e.g. `stack_update` (Pulumi),
    /// `run_state_changed_event` (Spacelift), `hashicorp.packer.version.complete` (HCP),
    /// `app-deployed` (Nullstone). `None` when the source has no rule or the rule found nothing.
    pub event_type: Option<String>,
    /// When hookgate received it (RFC 3339).
    pub received_at: String,
    /// Request headers with lower-case names; repeated headers are joined with `", "`.
    /// Credentials (`authorization`, `cookie`) are never included.
    pub headers: BTreeMap<String, String>,
    /// The request's query parameters.
    #[serde(rename = "queryParams")]
    pub query_params: BTreeMap<String, String>,
    /// The producer's body: its JSON, or a string for sources with `format = "raw"`.
    pub body: Value,
}

impl Event {
    /// Decodes the envelope's JSON text.
    pub fn from_json(text: &str) -> Result<Self, String> {
        serde_json::from_str(text).map_err(|e| format!("invalid event envelope: {e}"))
    }

    /// The value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        // Envelope names are already lower-case; the fallback scan covers hand-built events.
        self.headers
            .get(name)
            .or_else(|| {
                self.headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v)
            })
            .map(String::as_str)
    }

    /// The body's JSON object, or an error naming what the body is instead.
    pub fn body_object(&self) -> Result<&serde_json::Map<String, Value>, String> {
        self.body.as_object().ok_or_else(|| {
            let kind = match &self.body {
                Value::Null => "null",
                Value::Bool(_) => "a boolean",
                Value::Number(_) => "a number",
                Value::String(_) => "a string",
                Value::Array(_) => "an array",
                Value::Object(_) => "an object",
            };
            format!("event body is {kind}, not a JSON object")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_envelope() {
        let text = r#"{"id":"01J","source":"ci","event_type":"ping","received_at":"2025-06-12T14:03:22Z",
            "headers":{"pulumi-webhook-kind":"ping"},"queryParams":{"a":"1"},"body":{"x":1}}"#;
        let event = Event::from_json(text).unwrap_or_default();
        assert_eq!(event.event_type.as_deref(), Some("ping"));
        assert_eq!(event.header("Pulumi-Webhook-Kind"), Some("ping"));
        assert_eq!(event.query_params.get("a").map(String::as_str), Some("1"));
        assert!(event.body_object().is_ok());
    }

    #[test]
    fn reports_bad_json_and_non_object_bodies() {
        let err = Event::from_json("{").err().unwrap_or_default();
        assert!(err.starts_with("invalid event envelope: "), "{err}");
        let event = Event {
            body: Value::Array(vec![]),
            ..Event::default()
        };
        assert_eq!(
            event.body_object().err().as_deref(),
            Some("event body is an array, not a JSON object")
        );
    }
}
