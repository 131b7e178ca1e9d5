//! Port's webhook configuration, pasted as Port exports it (`port = '''{ … }'''`, or the same as a
//! TOML table), evaluated the way Port evaluates it:
//!
//! - `mappings[]` in order; each names a literal `blueprint`, an `operation` (`"create"`, the
//!   default, `"delete"`, or `{type = "delete", deleteDependents}`), an optional `filter` and
//!   `itemsToParse`, and an `entity` (`identifier`, `title`, `icon`, `team`, `properties`,
//!   `relations`, search relations included: every string leaf is jq).
//! - Each leaf runs on its own and gives its first output; an error or no output is `null`. One
//!   failing leaf does not fail the entity, and a leaf with two outputs does not make two.
//! - `itemsToParse` makes one entity per item of the array it yields, the item at `.item`; the
//!   filter then runs per item. A filter passes when its first output is `true`.
//! - `'text'` is a constant, as Port's docs write them: single-quoted strings in a leaf are read as
//!   jq strings.
//! - `security` is Port's check of the sender; hookgate's source checks it (`sources.*.secret`), so
//!   the block is accepted and not used.
//!
//! Every entity becomes one message: `{operation, blueprint, entity}` (and `deleteDependents` for a
//! delete). Pure; no I/O.

use super::jq::JqProgram;
use super::{Message, Transform, TransformError};
use crate::validate::Validator;
use bytes::Bytes;
use jaq_json::Val;
use serde_json::Value;

/// A compiled Port configuration.
#[derive(Debug)]
pub(crate) struct PortTransform {
    mappings: Vec<Mapping>,
}

#[derive(Debug)]
struct Mapping {
    key: String,
    blueprint: String,
    /// `Some(delete_dependents)` for a delete.
    delete: Option<bool>,
    filter: Option<JqProgram>,
    items: Option<JqProgram>,
    entity: Vec<(String, Leaf)>,
}

/// A leaf of `entity`: jq, a constant, or a table of leaves (properties, relations, search rules).
#[derive(Debug)]
enum Leaf {
    Jq(JqProgram),
    Const(Val),
    Table(Vec<(String, Leaf)>),
    List(Vec<Leaf>),
}

const MAPPING_KEYS: &[&str] = &["blueprint", "operation", "filter", "itemsToParse", "entity"];
const ENTITY_KEYS: &[&str] = &[
    "identifier",
    "title",
    "icon",
    "team",
    "properties",
    "relations",
];

/// `routes[i].port`: Port's JSON text, or the same as a TOML table. Problems go to `v`.
pub(crate) fn compile(v: &mut Validator, key: &str, value: &toml::Value) -> Option<PortTransform> {
    let config: Value = match value {
        toml::Value::String(_) if v.interpolated_jq(key).is_some() => {
            let why = v.interpolated_jq(key).unwrap_or_default();
            v.problem(key, why);
            return None;
        }
        toml::Value::String(text) => match serde_json::from_str(text) {
            Ok(c) => c,
            Err(e) => {
                v.problem(key, format!("not Port's JSON configuration: {e}"));
                return None;
            }
        },
        other => match serde_json::to_value(other) {
            Ok(c) => c,
            Err(e) => {
                v.problem(key, format!("cannot be read as JSON: {e}"));
                return None;
            }
        },
    };
    if config.get("security").is_some() {
        v.warning(
            format!("{key}.security"),
            "Port's check of the sender is not used: hookgate's source checks it \
             (`sources.*.secret`), so this block, and the secret in it, can be left out",
        );
    }
    let Some(mappings) = config.get("mappings").and_then(Value::as_array) else {
        v.problem(key, "Port's configuration needs `mappings`, an array");
        return None;
    };
    let before = v.problems.len();
    let mappings: Vec<Mapping> = mappings
        .iter()
        .enumerate()
        .filter_map(|(i, m)| mapping(v, &format!("{key}.mappings[{i}]"), m))
        .collect();
    (v.problems.len() == before).then_some(PortTransform { mappings })
}

fn mapping(v: &mut Validator, key: &str, m: &Value) -> Option<Mapping> {
    let Some(m) = m.as_object() else {
        v.problem(key, "a mapping is an object");
        return None;
    };
    for k in m.keys().filter(|k| !MAPPING_KEYS.contains(&k.as_str())) {
        v.problem(
            format!("{key}.{k}"),
            format!("not a key of Port's mappings (one of {MAPPING_KEYS:?})"),
        );
    }
    let Some(blueprint) = m.get("blueprint").and_then(Value::as_str) else {
        v.problem(
            format!("{key}.blueprint"),
            "the blueprint's identifier, a string",
        );
        return None;
    };
    let delete = match m.get("operation") {
        None => None,
        Some(Value::String(op)) if op == "create" => None,
        Some(Value::String(op)) if op == "delete" => Some(false),
        Some(Value::Object(op)) if op.get("type").and_then(Value::as_str) == Some("create") => None,
        Some(Value::Object(op)) if op.get("type").and_then(Value::as_str) == Some("delete") => {
            Some(
                op.get("deleteDependents")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            )
        }
        Some(other) => {
            v.problem(
                format!("{key}.operation"),
                format!("`create`, `delete` or {{type, deleteDependents}}, not {other}"),
            );
            return None;
        }
    };
    let mut program = |name: &str| -> Option<JqProgram> {
        let code = m.get(name)?;
        match code.as_str() {
            Some(code) => v.jq(&format!("{key}.{name}"), &port_quotes(code)),
            None => {
                v.problem(format!("{key}.{name}"), "a jq expression (a string)");
                None
            }
        }
    };
    let filter = program("filter");
    let items = program("itemsToParse");
    let Some(entity) = m.get("entity").and_then(Value::as_object) else {
        v.problem(format!("{key}.entity"), "an object");
        return None;
    };
    let mut fields = Vec::new();
    for (k, value) in entity {
        if !ENTITY_KEYS.contains(&k.as_str()) {
            v.problem(
                format!("{key}.entity.{k}"),
                format!("not a key of Port's entities (one of {ENTITY_KEYS:?})"),
            );
            continue;
        }
        fields.push((k.clone(), leaf(v, &format!("{key}.entity.{k}"), value)));
    }
    if !entity.contains_key("identifier") {
        v.problem(format!("{key}.entity.identifier"), "an entity needs one");
    }
    Some(Mapping {
        key: key.to_string(),
        blueprint: blueprint.to_string(),
        delete,
        filter,
        items,
        entity: fields,
    })
}

fn leaf(v: &mut Validator, key: &str, value: &Value) -> Leaf {
    match value {
        Value::String(code) => match v.jq(key, &port_quotes(code)) {
            Some(p) => Leaf::Jq(p),
            None => Leaf::Const(Val::Null),
        },
        Value::Object(table) => Leaf::Table(
            table
                .iter()
                .map(|(k, x)| (k.clone(), leaf(v, &format!("{key}.{k}"), x)))
                .collect(),
        ),
        Value::Array(items) => Leaf::List(
            items
                .iter()
                .enumerate()
                .map(|(i, x)| leaf(v, &format!("{key}[{i}]"), x))
                .collect(),
        ),
        // null, a boolean or a number: read once, as jq reads it (number literals kept).
        constant => match jaq_json::read::parse_single(constant.to_string().as_bytes()) {
            Ok(c) => Leaf::Const(c),
            Err(e) => {
                v.problem(key, format!("cannot be read as a jq value: {e}"));
                Leaf::Const(Val::Null)
            }
        },
    }
}

/// Port's single-quoted constants as jq strings: `'Success'` is `"Success"`, in a whole leaf or
/// inside one (`.x // 'none'`); text in double-quoted strings is left alone.
fn port_quotes(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut chars = code.chars();
    let mut in_double = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' if in_double => {
                out.push(c);
                out.extend(chars.next());
            }
            '"' => {
                in_double = !in_double;
                out.push(c);
            }
            '\'' if !in_double => {
                let text: String = chars.by_ref().take_while(|c| *c != '\'').collect();
                out.push_str(&Value::from(text).to_string());
            }
            c => out.push(c),
        }
    }
    out
}

impl Transform for PortTransform {
    fn apply(&self, envelope: &Val) -> Result<Vec<Message>, TransformError> {
        let mut messages = Vec::new();
        for m in &self.mappings {
            for input in m.inputs(envelope)? {
                if let Some(filter) = &m.filter
                    && !filter
                        .run(input.clone())
                        .is_ok_and(|out| super::jq::passes(&out))
                {
                    continue;
                }
                messages.push(m.entity_message(&input)?);
            }
        }
        Ok(messages)
    }
}

impl Mapping {
    /// The envelope, or one copy per item of `itemsToParse` with the item at `.item`.
    fn inputs(&self, envelope: &Val) -> Result<Vec<Val>, TransformError> {
        let Some(items) = &self.items else {
            return Ok(vec![envelope.clone()]);
        };
        let fail = |why: String| TransformError::Port(format!("{}.itemsToParse {why}", self.key));
        let first = items
            .run(envelope.clone())
            .map_err(|e| fail(format!("failed: {e}")))?
            .into_iter()
            .next();
        let Some(Val::Arr(list)) = first else {
            return Err(fail("did not yield an array".into()));
        };
        list.iter()
            .map(|item| {
                let mut input = envelope.clone();
                if let Val::Obj(map) = &mut input {
                    jaq_json::Rc::make_mut(map)
                        .insert(Val::utf8_str("item".to_string()), item.clone());
                }
                Ok(input)
            })
            .collect()
    }

    fn entity_message(&self, input: &Val) -> Result<Message, TransformError> {
        let entity = table(&self.entity, input);
        let text = |s: &str| Val::utf8_str(s.to_string());
        let mut fields = vec![
            (
                text("operation"),
                text(if self.delete.is_some() {
                    "delete"
                } else {
                    "create"
                }),
            ),
            (text("blueprint"), text(&self.blueprint)),
        ];
        if let Some(dependents) = self.delete {
            fields.push((text("deleteDependents"), Val::from(dependents)));
        }
        fields.push((text("entity"), entity));
        let message = Val::obj(fields.into_iter().collect());
        Ok(Message {
            body: Bytes::from(super::jq::to_json(&message)?),
            headers: Vec::new(),
            target: None,
        })
    }
}

fn table(fields: &[(String, Leaf)], input: &Val) -> Val {
    Val::obj(
        fields
            .iter()
            .map(|(k, leaf)| (Val::utf8_str(k.clone()), value(leaf, input)))
            .collect(),
    )
}

/// A leaf's value: its first output, `null` when it fails or yields nothing.
fn value(leaf: &Leaf, input: &Val) -> Val {
    match leaf {
        Leaf::Jq(p) => p
            .run(input.clone())
            .ok()
            .and_then(|out| out.into_iter().next())
            .unwrap_or(Val::Null),
        Leaf::Const(c) => c.clone(),
        Leaf::Table(fields) => table(fields, input),
        Leaf::List(items) => items.iter().map(|l| value(l, input)).collect(),
    }
}

#[cfg(test)]
mod tests;
