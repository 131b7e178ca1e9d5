//! A payload against the schema of its event (a source's `validate`), and a path against the
//! fields the schemas document (`hookgate check`).
//!
//! Schemas are compiled on first use, one per event, and kept for the life of the process. What a
//! mismatch says names the path and the rule, never the producer's value (`masked`), so it is
//! safe to log and to answer with.

use crate::catalog::{CatalogError, Event, Preset, schema_of};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{LazyLock, OnceLock};

/// What checking a payload found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    Matches,
    /// The event is in the catalog, without a schema (the platform documents no payload).
    NoSchema,
    /// The preset has no event of this type.
    UnknownType,
    /// The first rule the payload breaks: `<json pointer>: <rule>`.
    Mismatch(String),
}

type Compiled = Result<jsonschema::Validator, CatalogError>;

/// One slot per event with a schema, keyed `<preset>/<type>`, filled on first use. (Only a
/// `Preset` from a catalog that parsed can be looked up here, so when it did not, no slot is
/// ever asked for.)
static COMPILED: LazyLock<HashMap<String, OnceLock<Compiled>>> = LazyLock::new(|| {
    let presets: &[Preset] = crate::catalog::presets().unwrap_or(&[]);
    presets
        .iter()
        .flat_map(|p| {
            p.events
                .iter()
                .filter(|e| e.schema.is_some())
                .map(move |e| (key(p, e), OnceLock::new()))
        })
        .collect()
});

fn key(preset: &Preset, event: &Event) -> String {
    format!("{}/{}", preset.preset, event.event_type)
}

/// Checks `body` against the schema of the event `event_type` of `preset`.
pub(crate) fn check(preset: &Preset, event_type: &str, body: &Value) -> Verdict {
    let Some(event) = preset.event(event_type) else {
        return Verdict::UnknownType;
    };
    let Some(slot) = COMPILED.get(&key(preset, event)) else {
        return Verdict::NoSchema;
    };
    match compiled(slot, preset, event) {
        // A catalog schema that does not compile is a bug the unit tests catch; say so rather
        // than pass every payload.
        Err(e) => Verdict::Mismatch(e.to_string()),
        Ok(validator) => match validator.validate(body) {
            Ok(()) => Verdict::Matches,
            Err(e) => {
                let at = e.instance_path().to_string();
                let at = if at.is_empty() { "/".to_string() } else { at };
                Verdict::Mismatch(format!("{at}: {}", e.masked()))
            }
        },
    }
}

fn compiled<'a>(slot: &'a OnceLock<Compiled>, preset: &Preset, event: &Event) -> &'a Compiled {
    slot.get_or_init(|| {
        let path = || {
            format!(
                "{}/{}",
                preset.preset,
                event.schema.as_deref().unwrap_or("")
            )
        };
        match schema_of(preset, event)? {
            Some(schema) => {
                jsonschema::validator_for(schema).map_err(|e| CatalogError::Uncompilable {
                    path: path(),
                    why: e.to_string(),
                })
            }
            None => Err(CatalogError::Missing {
                preset: preset.preset.clone(),
                path: path(),
            }),
        }
    })
}

/// Compiles every schema of `preset` now: the unit tests' proof that none fails at run time.
#[cfg(test)]
pub(crate) fn compile_all(preset: &Preset) -> Result<(), CatalogError> {
    for event in &preset.events {
        if let Some(slot) = COMPILED.get(&key(preset, event))
            && let Err(e) = compiled(slot, preset, event)
        {
            return Err(e.clone());
        }
    }
    Ok(())
}

/// Whether `schema` documents the object keys and array steps of `path`: `Ok`, or the index of
/// the first step it does not have, with the names documented there.
pub(crate) fn documents<'s>(schema: &'s Value, path: &[Step]) -> Result<(), (usize, Vec<&'s str>)> {
    walk(schema, path, 0)
}

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// `.name`, `."name"`, `["name"]`.
    Key(String),
    /// `[]`: every item of an array, or every value of an object.
    Iter,
    /// `[n]`: one item of an array.
    Nth,
}

/// Of two failures, the one that got further (the names there are the useful suggestions).
fn further<'s>(
    a: Result<(), (usize, Vec<&'s str>)>,
    b: Result<(), (usize, Vec<&'s str>)>,
) -> Result<(), (usize, Vec<&'s str>)> {
    match (a, b) {
        (Ok(()), _) | (_, Ok(())) => Ok(()),
        (Err((i, mut n)), Err((j, m))) if i == j => {
            n.extend(m);
            Err((i, n))
        }
        (Err(a), Err(b)) => Err(if a.0 > b.0 { a } else { b }),
    }
}

fn walk<'s>(schema: &'s Value, path: &[Step], at: usize) -> Result<(), (usize, Vec<&'s str>)> {
    if at >= path.len() {
        return Ok(());
    }
    let Value::Object(node) = schema else {
        // `true`, or something this reader does not understand: anything goes.
        return Ok(());
    };
    // A path through any branch of a combination is a path the schema has.
    let branches: Vec<&Value> = ["anyOf", "oneOf", "allOf"]
        .iter()
        .filter_map(|k| node.get(*k)?.as_array())
        .flatten()
        .collect();
    if !branches.is_empty() {
        let mut names = Vec::new();
        let mut deepest = at;
        for b in branches {
            match walk(b, path, at) {
                Ok(()) => return Ok(()),
                Err((i, n)) if i > deepest => (deepest, names) = (i, n),
                Err((i, n)) if i == deepest => names.extend(n),
                Err(_) => {}
            }
        }
        // Branches that say nothing about properties leave this node's own to decide.
        if node.contains_key("properties") || node.contains_key("items") {
            return walk_own(node, path, at).or(Err((deepest, names)));
        }
        return Err((deepest, names));
    }
    walk_own(node, path, at)
}

fn walk_own<'s>(
    node: &'s serde_json::Map<String, Value>,
    path: &[Step],
    at: usize,
) -> Result<(), (usize, Vec<&'s str>)> {
    // A step into a value the schema types as something else (null, a string) goes nowhere.
    let can_be = |t: &str| match node.get("type") {
        Some(Value::String(s)) => s == t,
        Some(Value::Array(list)) => list.iter().any(|v| v == t),
        _ => true,
    };
    match &path[at] {
        Step::Key(_) if !can_be("object") => Err((at, Vec::new())),
        Step::Iter | Step::Nth => {
            let mut result = Err((at, Vec::new()));
            if can_be("array") {
                result = match node.get("items").or_else(|| node.get("prefixItems")) {
                    Some(Value::Array(items)) => items
                        .iter()
                        .map(|i| walk(i, path, at + 1))
                        .fold(Err((at, Vec::new())), further),
                    Some(items) => walk(items, path, at + 1),
                    None => Ok(()),
                };
            }
            // jq's `.[]` also iterates an object's values.
            if path[at] == Step::Iter && can_be("object") && result.is_err() {
                let values = match node.get("properties") {
                    Some(Value::Object(props)) => props
                        .values()
                        .chain(node.get("additionalProperties").filter(|v| v.is_object()))
                        .map(|v| walk(v, path, at + 1))
                        .fold(Err((at, Vec::new())), further),
                    _ => Ok(()),
                };
                result = further(result, values);
            }
            result
        }
        Step::Key(name) => {
            let Some(Value::Object(props)) = node.get("properties") else {
                // No documented fields (a map of the user's keys, or undescribed): any key.
                return Ok(());
            };
            if let Some(sub) = props.get(name) {
                return walk(sub, path, at + 1);
            }
            // Keys by pattern, or extra keys with a schema of their own: the user's keys.
            if node.contains_key("patternProperties")
                || node
                    .get("additionalProperties")
                    .is_some_and(Value::is_object)
            {
                return Ok(());
            }
            Err((at, props.keys().map(String::as_str).collect()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(s: &str) -> Step {
        Step::Key(s.into())
    }

    #[test]
    fn paths_follow_properties_items_and_branches_and_stop_at_open_maps() {
        let schema = json!({
            "type": "object",
            "properties": {
                "run": {"type": "object", "properties": {"state": {"type": "string"}}},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "builds": {"type": "array", "items": {"properties": {"id": {}}}},
                "either": {"anyOf": [{"type": "null"}, {"properties": {"a": {}}}]}
            }
        });
        assert_eq!(documents(&schema, &[key("run"), key("state")]), Ok(()));
        assert_eq!(documents(&schema, &[key("labels"), key("team")]), Ok(()));
        assert_eq!(
            documents(&schema, &[key("builds"), Step::Nth, key("id")]),
            Ok(())
        );
        // `.[]` of an object: its values.
        assert_eq!(documents(&schema, &[key("run"), Step::Iter]), Ok(()));
        assert!(documents(&schema, &[key("run"), Step::Nth]).is_err());
        assert_eq!(documents(&schema, &[key("either"), key("a")]), Ok(()));
        assert_eq!(
            documents(&schema, &[key("run"), key("stat")]),
            Err((1, vec!["state"]))
        );
        assert!(documents(&schema, &[key("either"), key("b")]).is_err());
    }
}
