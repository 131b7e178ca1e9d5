//! Port's webhook configuration, pasted as Port exports it (`port = '''{ … }'''`, or the same as a
//! TOML table), evaluated the way Port evaluates it:
//!
//! - `mappings[]` in order (the whole configuration, its `mappings` array alone, or one mapping
//!   may be pasted); each names a literal `blueprint`, an `operation` (`"create"`, the
//!   default, `"delete"`, or `{type = "delete", deleteDependents}`), an optional `filter` and
//!   `itemsToParse`, and an `entity` (`identifier`, `title`, `icon`, `team`, `properties`,
//!   `relations`, search relations included: every string leaf is jq).
//! - Each leaf runs on its own and gives its first output; an error or no output is `null`. One
//!   failing leaf does not fail the entity, and a leaf with two outputs does not make two. A leaf
//!   that does not even compile is `null` too (a warning at load; Port's docs have such leaves),
//!   while a `filter` or `itemsToParse` that does not compile refuses the configuration.
//! - `itemsToParse` makes one entity per item of the array it yields, the item at `.item`; the
//!   filter then runs per item. A filter passes when its first output is `true`.
//! - A numeric identifier is written as a string (Port's identifiers are strings).
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
    // An empty block (`{}`, as Port exports a webhook without one) says nothing worth a warning.
    if config.get("security").is_some_and(|s| {
        s.as_object()
            .is_none_or(|o| o.values().any(|v| !v.is_null()))
    }) {
        v.warning(
            format!("{key}.security"),
            "Port's check of the sender is not used: hookgate's source checks it \
             (`sources.*.secret`), so this block, and the secret in it, can be left out",
        );
    }
    let Some(mappings) = mappings_of(&config) else {
        v.problem(
            key,
            "Port's configuration needs `mappings`, an array (or is that array, or one mapping)",
        );
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

/// The mappings of what was pasted: a whole webhook configuration as Port exports it, the
/// `mappings` array as Port's mapping editor shows it, or one mapping as Port's API docs give it.
fn mappings_of(config: &Value) -> Option<std::borrow::Cow<'_, [Value]>> {
    match config {
        Value::Array(list) => Some(list.as_slice().into()),
        Value::Object(o) if o.contains_key("mappings") => {
            o.get("mappings")?.as_array().map(|l| l.as_slice().into())
        }
        Value::Object(o) if o.contains_key("blueprint") => Some(vec![config.clone()].into()),
        _ => None,
    }
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
        Value::String(code) => entity_jq(v, key, code),
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

/// An entity leaf's jq. One that does not compile is `null` in Port (as any failing leaf is), so
/// it is a warning here, not a refused configuration: the entity is still written, as Port would.
fn entity_jq(v: &mut Validator, key: &str, code: &str) -> Leaf {
    if let Some(why) = v.interpolated_jq(key) {
        v.problem(key, why);
        return Leaf::Const(Val::Null);
    }
    match JqProgram::compile(&port_quotes(code)) {
        Ok(p) => Leaf::Jq(p),
        Err(why) => {
            v.warning(
                key,
                format!("jq does not compile, so this field is always null (as in Port): {why}"),
            );
            Leaf::Const(Val::Null)
        }
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
        let mut entity = table(&self.entity, input);
        // Port's identifiers are strings: a number is written as one, as Port's own ingestion does.
        if let Val::Obj(fields) = &mut entity {
            let key = Val::utf8_str("identifier".to_string());
            if let Some(id @ Val::Num(_)) = jaq_json::Rc::make_mut(fields).get_mut(&key) {
                let text = super::jq::to_json(id)?;
                *id = Val::utf8_str(String::from_utf8_lossy(&text).into_owned());
            }
        }
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

/// What a `port` route makes of `request` (`{body, headers, queryParams}` as JSON text): each
/// message's JSON text and the configuration's warnings, or its problems / the route's failure.
/// For the suite's comparison with Port's semantics on real jq (`tests/it/port_docs.rs`).
pub fn messages_for(config: &str, request: &str) -> Result<(Vec<String>, Vec<String>), String> {
    let mut v = Validator::default();
    let port = compile(&mut v, "port", &toml::Value::String(config.into()));
    let port = match port {
        Some(p) if v.problems.is_empty() => p,
        _ => return Err(format!("refused: {:?}", v.problems)),
    };
    let request = jaq_json::read::parse_single(request.as_bytes()).map_err(|e| e.to_string())?;
    let messages = port.apply(&request).map_err(|e| e.to_string())?;
    let warnings = v.warnings.into_iter().map(|(k, _)| k).collect();
    Ok((
        messages
            .iter()
            .map(|m| String::from_utf8_lossy(&m.body).into_owned())
            .collect(),
        warnings,
    ))
}

#[cfg(test)]
mod tests;
