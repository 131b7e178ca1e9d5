//! [`Message`]: what a plugin asks the gateway to send.

use crate::bindings;
use serde_json::Value;

/// One request body for the route's targets (all of them, or one with [`Message::to_target`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    /// The body: JSON text, unless a `content-type` header says otherwise.
    pub body: String,
    /// Headers added to the target's own for this message.
    pub headers: Vec<(String, String)>,
    /// Only this target of the route; `None` sends to every target.
    pub target: Option<String>,
}

impl Message {
    /// A message whose body is `value` as compact JSON.
    pub fn json(value: &Value) -> Self {
        // Serialising a `Value` cannot fail (its map keys are always strings).
        Self::raw(value.to_string())
    }

    /// A message with this body text as is. Set a `content-type` header if it isn't JSON.
    pub fn raw(body: impl Into<String>) -> Self {
        Self {
            body: body.into(),
            ..Self::default()
        }
    }

    /// Adds a header to the request for this message.
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sends this message to the route's target named `name` only.
    #[must_use]
    pub fn to_target(mut self, name: impl Into<String>) -> Self {
        self.target = Some(name.into());
        self
    }

    /// The body parsed back as JSON (handy in tests).
    pub fn json_body(&self) -> Result<Value, String> {
        serde_json::from_str(&self.body).map_err(|e| format!("message body is not JSON: {e}"))
    }

    pub(crate) fn into_wit(self) -> bindings::Message {
        bindings::Message {
            body: self.body,
            headers: self.headers,
            target: self.target,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn builds_a_targeted_json_message() {
        let m = Message::json(&json!({"a": 1}))
            .header("x-k", "v")
            .to_target("slack");
        assert_eq!(m.body, r#"{"a":1}"#);
        assert_eq!(m.headers, vec![("x-k".to_string(), "v".to_string())]);
        assert_eq!(m.target.as_deref(), Some("slack"));
        assert_eq!(m.json_body(), Ok(json!({"a": 1})));
    }
}
