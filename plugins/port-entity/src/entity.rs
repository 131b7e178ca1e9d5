//! [`Entity`]: the Port entity a plugin emits, and helpers to fill it from a payload.

use serde_json::{Map, Value, json};

/// A Port entity: `{identifier, title, blueprint, properties, relations}`, the body Port's
/// entity API (`POST /v1/blueprints/{blueprint}/entities?upsert=true`) takes.
#[derive(Debug, Clone, PartialEq)]
pub struct Entity {
    /// The entity's id in its blueprint (see [`identifier`]).
    pub identifier: String,
    /// What Port displays.
    pub title: String,
    /// The blueprint the entity belongs to.
    pub blueprint: String,
    /// Properties found in the payload; missing ones are left out, so an upsert with `merge`
    /// keeps what Port already has.
    pub properties: Map<String, Value>,
    /// Relations to other entities (none of the payloads name related Port entities).
    pub relations: Map<String, Value>,
}

impl Entity {
    /// An entity with no properties yet.
    pub fn new(identifier: &str, title: &str, blueprint: &str) -> Self {
        Self {
            identifier: identifier.to_string(),
            title: title.to_string(),
            blueprint: blueprint.to_string(),
            properties: Map::new(),
            relations: Map::new(),
        }
    }

    /// Sets property `name` to `value` unless it is missing, null or an empty string.
    pub fn set(&mut self, name: &str, value: Option<&Value>) {
        match value {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s.is_empty() => {}
            Some(v) => {
                self.properties.insert(name.to_string(), v.clone());
            }
        }
    }

    /// Sets property `name` to a string, if there is one.
    pub fn set_str(&mut self, name: &str, value: Option<&str>) {
        self.set(name, value.map(|s| json!(s)).as_ref());
    }

    /// The entity as JSON, keys in Port's documented order.
    pub fn to_json(&self) -> Value {
        json!({
            "identifier": self.identifier,
            "title": self.title,
            "blueprint": self.blueprint,
            "properties": self.properties,
            "relations": self.relations,
        })
    }
}

/// `raw` made a valid Port identifier: Port allows `A-Z a-z 0-9 @ _ . + : / = -`; anything else
/// becomes `-`.
pub fn identifier(raw: &str) -> String {
    raw.chars()
        .map(|c| {
            let allowed = c.is_ascii_alphanumeric() || "@_.+:/=-".contains(c);
            if allowed { c } else { '-' }
        })
        .collect()
}

pub use hookgate_plugin_sdk::str_at;

/// The value at `ptr` as text: strings as is, numbers printed (ids are numbers in Nullstone).
pub fn text_at(v: &Value, ptr: &str) -> Option<String> {
    match v.pointer(ptr)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_made_valid() {
        assert_eq!(identifier("acme/fleet-api/prod"), "acme/fleet-api/prod");
        assert_eq!(identifier("my stack (eu)"), "my-stack--eu-");
    }

    #[test]
    fn empty_values_are_left_out() {
        let mut e = Entity::new("i", "t", "b");
        e.set("a", Some(&json!("")));
        e.set("b", Some(&Value::Null));
        e.set("c", None);
        e.set("d", Some(&json!([])));
        assert_eq!(e.properties.keys().collect::<Vec<_>>(), vec!["d"]);
    }
}
