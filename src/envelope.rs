//! The envelope: the JSON document every filter and transform sees for one event.
//!
//! `{id, source, event_type, received_at, headers, queryParams, body}`, named as in Port's webhook
//! mappings so those paste in unchanged. Header names are lower-cased; `authorization` and
//! `cookie` are never included (they are credentials, and mappings forward data to third parties).

use crate::store::StoredEvent;
use crate::transform::jq::JqProgram;
use jaq_json::{Map, Val};

/// Headers that never reach a mapping.
const HIDDEN_HEADERS: &[&str] = &["authorization", "cookie", "proxy-authorization"];

/// How a source's event bodies are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BodyFormat {
    /// The body must be JSON; it appears in the envelope as a value.
    #[default]
    Json,
    /// Any bytes; the body appears in the envelope as a string.
    Raw,
}

/// How a source names its events.
#[derive(Debug, Clone, Default)]
pub enum EventTypeRule {
    #[default]
    None,
    /// The value of a request header.
    Header(String),
    /// A top-level string field of the JSON body.
    BodyField(String),
    /// A jq expression over the envelope (with `event_type` null).
    Jq(JqProgram),
}

/// The body of an envelope could not be read.
#[derive(Debug, thiserror::Error)]
#[error("event body is not valid JSON: {0}")]
pub struct BodyError(String);

/// An event ready for filters and transforms.
#[derive(Debug, Clone)]
pub struct Envelope {
    val: Val,
    event_type: Option<String>,
}

impl Envelope {
    /// Builds the envelope of a stored event, resolving its event type by `rule`.
    pub fn build(
        event: &StoredEvent,
        format: BodyFormat,
        rule: &EventTypeRule,
    ) -> Result<Self, BodyError> {
        let body = match format {
            BodyFormat::Json => {
                jaq_json::read::parse_single(&event.body).map_err(|e| BodyError(e.to_string()))?
            }
            BodyFormat::Raw => Val::utf8_str(
                String::from_utf8_lossy(&event.body)
                    .into_owned()
                    .into_bytes(),
            ),
        };
        let headers: Map = merge_pairs(
            event
                .headers
                .iter()
                .filter(|(k, _)| !HIDDEN_HEADERS.contains(&k.as_str())),
        );
        let query: Map = merge_pairs(event.query.iter());
        let parts = Parts {
            id: &event.id,
            source: &event.source,
            received_at: crate::rfc3339(event.received_at),
            headers: Val::obj(headers),
            query: Val::obj(query),
            body,
        };
        let event_type = resolve_event_type(rule, event, &parts);
        let val = parts.into_val(event_type.as_deref());
        Ok(Self { val, event_type })
    }

    pub fn val(&self) -> &Val {
        &self.val
    }

    pub fn event_type(&self) -> Option<&str> {
        self.event_type.as_deref()
    }

    /// The envelope as JSON text (what wasm plugins receive).
    pub fn to_json(&self) -> String {
        self.val.to_string()
    }
}

struct Parts<'a> {
    id: &'a str,
    source: &'a str,
    received_at: String,
    headers: Val,
    query: Val,
    body: Val,
}

impl Parts<'_> {
    fn into_val(self, event_type: Option<&str>) -> Val {
        let s = |x: &str| Val::utf8_str(x.to_owned().into_bytes());
        let mut m = Map::default();
        m.insert(s("id"), s(self.id));
        m.insert(s("source"), s(self.source));
        m.insert(s("event_type"), event_type.map_or(Val::Null, s));
        m.insert(s("received_at"), s(&self.received_at));
        m.insert(s("headers"), self.headers);
        m.insert(s("queryParams"), self.query);
        m.insert(s("body"), self.body);
        Val::obj(m)
    }
}

/// Repeated names are joined with ", ", as HTTP does when it folds header lines.
fn merge_pairs<'a>(pairs: impl Iterator<Item = &'a (String, String)>) -> Map {
    let mut m: Map = Map::default();
    for (k, v) in pairs {
        let key = Val::utf8_str(k.clone().into_bytes());
        let joined = match m.get(&key) {
            Some(Val::TStr(prev)) => format!("{}, {v}", String::from_utf8_lossy(prev)),
            _ => v.clone(),
        };
        m.insert(key, Val::utf8_str(joined.into_bytes()));
    }
    m
}

fn resolve_event_type(
    rule: &EventTypeRule,
    event: &StoredEvent,
    parts: &Parts<'_>,
) -> Option<String> {
    match rule {
        EventTypeRule::None => None,
        EventTypeRule::Header(name) => event
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone()),
        EventTypeRule::BodyField(field) => match &parts.body {
            Val::Obj(map) => match map.get(&Val::utf8_str(field.clone().into_bytes())) {
                Some(Val::TStr(s)) => Some(String::from_utf8_lossy(s).into_owned()),
                _ => None,
            },
            _ => None,
        },
        EventTypeRule::Jq(program) => {
            let probe = Parts {
                id: parts.id,
                source: parts.source,
                received_at: parts.received_at.clone(),
                headers: parts.headers.clone(),
                query: parts.query.clone(),
                body: parts.body.clone(),
            }
            .into_val(None);
            match program.run(probe).ok()?.into_iter().next()? {
                Val::TStr(s) => Some(String::from_utf8_lossy(&s).into_owned()),
                Val::Null => None,
                other => Some(other.to_string()),
            }
        }
    }
}
