//! The envelope: the JSON document every filter and transform sees for one event.
//!
//! `{id, source, event_type, received_at, headers, queryParams, body}`, named as in Port's webhook
//! mappings so those paste in unchanged. Header names are lower-cased; `authorization` and
//! `cookie` are never included (they are credentials, and mappings forward data to third parties).

use crate::store::StoredEvent;
use crate::transform::jq::JqProgram;
use crate::transform::predicate::Predicate;
use jaq_json::{Map, Val};

/// The envelope's keys, made once: a key is shared, not copied, into each event's envelope.
static KEYS: std::sync::LazyLock<[Val; 7]> = std::sync::LazyLock::new(|| {
    [
        "id",
        "source",
        "event_type",
        "received_at",
        "headers",
        "queryParams",
        "body",
    ]
    .map(|k| Val::utf8_str(k.as_bytes().to_vec()))
});

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
    /// The first of these top-level string fields of the JSON body that is present.
    BodyFields(Vec<String>),
    /// Spacelift: the body's `event_type`; error events (which have none) are `internal_error`.
    Spacelift,
    /// HCP: `<event_source>.<event_action>`.
    Hcp,
    /// HCP Terraform and Terraform Enterprise: the trigger (`run:completed`, `verification`),
    /// top-level in health and workspace notifications (payload version 2), else in the first of
    /// a run notification's `notifications` (version 1, which always holds exactly one). A change
    /// request notification names no trigger; its `change_request_url` makes it
    /// `change_request:created`, the trigger HCP Terraform's API gives it.
    Tfe,
    /// Pulumi: the `Pulumi-Webhook-Kind` header, with Pulumi's filter names (`update_failed`,
    /// `deployment_succeeded`, ...) as aliases that routes' `events` lists may use.
    Pulumi,
    /// A jq expression over the envelope (with `event_type` null), run in an evaluator child.
    Jq(JqProgram),
    /// A jq expression that is a predicate (a path, say: `.body.state`), evaluated in the
    /// gateway (`transform::predicate`); it names events exactly as [`EventTypeRule::Jq`] would.
    Native(Predicate),
}

impl EventTypeRule {
    /// A source's own `event_type = program`.
    pub(crate) fn of_program(program: JqProgram) -> Self {
        match Predicate::recognise(&program) {
            Some(p) => Self::Native(p),
            None => Self::Jq(program),
        }
    }
}

/// How deeply a JSON body may nest (arrays and objects). Real webhook payloads nest less than 20
/// levels; the parsers recurse once per level, so the bound keeps every stack small.
pub const MAX_DEPTH: usize = 128;

/// Whether the JSON text `bytes` nests arrays and objects deeper than `max`. One pass, no
/// recursion and no allocation, so it is safe on any input; brackets inside strings do not count.
pub fn nests_deeper_than(bytes: &[u8], max: usize) -> bool {
    let (mut depth, mut at) = (0usize, 0);
    while let Some(&b) = bytes.get(at) {
        match b {
            b'"' => match string_end(bytes, at + 1) {
                Some(end) => at = end,
                // Unterminated: nothing after it counts.
                None => return false,
            },
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        at += 1;
    }
    false
}

/// Where the string whose text starts at `from` ends (its closing quote). Strings are most of a
/// payload's bytes, so they are skipped with a vectorised search rather than byte by byte.
fn string_end(bytes: &[u8], mut from: usize) -> Option<usize> {
    loop {
        let at = from + memchr::memchr2(b'"', b'\\', bytes.get(from..)?)?;
        if bytes.get(at) == Some(&b'"') {
            return Some(at);
        }
        // A backslash: the byte after it is escaped, whatever it is.
        from = at + 2;
    }
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
    /// Other names the event answers to in a route's `events` list.
    aliases: Vec<String>,
}

impl Envelope {
    /// Builds the envelope of a stored event, resolving its event type by `rule`.
    pub fn build(
        event: &StoredEvent,
        format: BodyFormat,
        rule: &EventTypeRule,
    ) -> Result<Self, BodyError> {
        Self::build_pruned(event, format, rule, &super::needs::Tree::all())
    }

    /// [`Envelope::build`], holding only what `needs` keeps ([`super::needs`]): values outside it
    /// are left out (`id`, `source` and `received_at` absent, `headers` and `queryParams` empty,
    /// `body` null or an object of only the kept keys), so a body is parsed only as far as its
    /// readers read it. Whatever a kept path reads is what the whole envelope holds there; a
    /// body that does not scan as an object of objects along the way is parsed whole, errors
    /// included.
    pub(crate) fn build_pruned(
        event: &StoredEvent,
        format: BodyFormat,
        rule: &EventTypeRule,
        needs: &super::needs::Tree,
    ) -> Result<Self, BodyError> {
        Ok(Self::of_parts(
            Parts::of(event, format, needs)?,
            event,
            rule,
        ))
    }

    /// The envelope of `parts`, its event type resolved by `rule`.
    fn of_parts(parts: Parts<'_>, event: &StoredEvent, rule: &EventTypeRule) -> Self {
        let event_type = resolve_event_type(rule, event, &parts);
        let aliases = match (rule, event_type.as_deref()) {
            (EventTypeRule::Pulumi, Some(kind)) => pulumi_filter_names(kind, &parts.body),
            _ => Vec::new(),
        };
        let val = parts.into_val(event_type.as_deref());
        Self {
            val,
            event_type,
            aliases,
        }
    }

    /// The envelope with an event type resolved earlier (by the contained evaluator): no jq runs.
    pub(crate) fn with_type(
        event: &StoredEvent,
        format: BodyFormat,
        event_type: Option<String>,
    ) -> Result<Self, BodyError> {
        let everything = super::needs::Tree::all();
        let val = Parts::of(event, format, &everything)?.into_val(event_type.as_deref());
        Ok(Self {
            val,
            event_type,
            aliases: Vec::new(),
        })
    }

    pub fn val(&self) -> &Val {
        &self.val
    }

    pub fn event_type(&self) -> Option<&str> {
        self.event_type.as_deref()
    }

    /// Whether the event's type, or one of its aliases, is `name`.
    pub fn is_named(&self, name: &str) -> bool {
        self.event_type.as_deref() == Some(name) || self.aliases.iter().any(|a| a == name)
    }

    /// The envelope as JSON text (what wasm plugins receive), written as jq writes it. Only a
    /// value a jq program built can hold a non-string key, so an envelope never fails here; the
    /// error is passed on all the same rather than assumed away.
    pub fn to_json(&self) -> Result<String, crate::transform::jq_text::KeyError> {
        crate::transform::jq_text::to_text(&self.val)
    }
}

struct Parts<'a> {
    /// `None` where no reader reads them (`needs`): an envelope leaves them out.
    id: Option<&'a str>,
    source: Option<&'a str>,
    received_at: Option<String>,
    headers: Val,
    query: Val,
    body: Val,
}

impl<'a> Parts<'a> {
    /// The parts `needs` keeps (everything for [`Envelope::build`]).
    fn of(
        event: &'a StoredEvent,
        format: BodyFormat,
        needs: &super::needs::Tree,
    ) -> Result<Self, BodyError> {
        let kept = |name: &str| {
            if needs.whole {
                Some(needs)
            } else {
                needs.child(name)
            }
        };
        let body = match (format, kept("body")) {
            (BodyFormat::Raw, _) => Val::utf8_str(
                String::from_utf8_lossy(&event.body)
                    .into_owned()
                    .into_bytes(),
            ),
            (BodyFormat::Json, None) => Val::Null,
            (BodyFormat::Json, Some(body)) => json_body(&event.body, body)?,
        };
        let headers = match kept("headers") {
            Some(_) => merge_pairs(
                event
                    .headers
                    .iter()
                    .filter(|(k, _)| !HIDDEN_HEADERS.contains(&k.as_str())),
            ),
            None => Map::default(),
        };
        let query = match kept("queryParams") {
            Some(_) => merge_pairs(event.query.iter()),
            None => Map::default(),
        };
        Ok(Parts {
            id: kept("id").map(|_| event.id.as_str()),
            source: kept("source").map(|_| event.source.as_str()),
            received_at: kept("received_at").map(|_| crate::rfc3339(event.received_at)),
            headers: Val::obj(headers),
            query: Val::obj(query),
            body,
        })
    }
}

/// A JSON body as a value holding what `kept` keeps: pruned where it scans as objects along the
/// kept paths, else parsed whole.
fn json_body(bytes: &[u8], kept: &super::needs::Tree) -> Result<Val, BodyError> {
    // The parser recurses per level: a deeper body would overflow the stack. Ingress refuses
    // such bodies; this guards events stored before it did.
    if nests_deeper_than(bytes, MAX_DEPTH) {
        return Err(BodyError(format!(
            "body nests deeper than {MAX_DEPTH} levels"
        )));
    }
    let pruned = (!kept.whole).then(|| pruned_value(bytes, kept)).flatten();
    match pruned {
        Some(v) => Ok(v),
        None => jaq_json::read::parse_single(bytes).map_err(|e| BodyError(e.to_string())),
    }
}

/// The JSON text `bytes` as a value holding only what `kept` keeps; `None` when it is not an
/// object (as far as `kept` goes into it) or does not parse: the caller then parses it whole, so
/// that values and errors are exactly the whole parse's.
fn pruned_value(bytes: &[u8], kept: &super::needs::Tree) -> Option<Val> {
    use serde::de::DeserializeSeed as _;
    if kept.whole {
        return jaq_json::read::parse_single(bytes).ok();
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let found = Picker(&kept.children).deserialize(&mut de).ok()?;
    de.end().ok()?;
    picked_value(kept, found)
}

/// The object of the values `found` for `kept`'s keys, each parsed by jaq where kept whole.
fn picked_value(kept: &super::needs::Tree, found: Vec<Option<Picked>>) -> Option<Val> {
    let mut m = Map::with_capacity_and_hasher(kept.keys.len(), Default::default());
    for (key, pick) in kept.keys.iter().zip(found) {
        let v = match pick {
            None => continue,
            Some(Picked::Raw(raw)) => jaq_json::read::parse_single(raw.get().as_bytes()).ok()?,
            Some(Picked::Object(kept, found)) => picked_value(kept, found)?,
        };
        m.insert(key.clone(), v);
    }
    Some(Val::obj(m))
}

/// Reads a JSON object in one pass, keeping the raw text of the values of the keys kept whole
/// and reading into the objects of the keys kept in part (of a repeated key, the last, as jq's
/// objects keep), skipping the rest without building them. A key with escapes does not borrow,
/// and a value kept in part that is not an object fails: either fails the read (the whole parse
/// then handles it).
struct Picker<'k>(&'k [(String, super::needs::Tree)]);

/// What a [`Picker`] found for one kept key.
enum Picked<'de, 'k> {
    Raw(&'de serde_json::value::RawValue),
    Object(&'k super::needs::Tree, Vec<Option<Picked<'de, 'k>>>),
}

impl<'de, 'k> serde::de::DeserializeSeed<'de> for Picker<'k> {
    type Value = Vec<Option<Picked<'de, 'k>>>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, 'k> serde::de::Visitor<'de> for Picker<'k> {
    type Value = Vec<Option<Picked<'de, 'k>>>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found: Self::Value = (0..self.0.len()).map(|_| None).collect();
        while let Some(key) = map.next_key::<&'de str>()? {
            match self.0.iter().position(|(k, _)| k == key) {
                Some(i) if self.0[i].1.whole => found[i] = Some(Picked::Raw(map.next_value()?)),
                Some(i) => {
                    let below = &self.0[i].1;
                    let inner = map.next_value_seed(Picker(&below.children))?;
                    found[i] = Some(Picked::Object(below, inner));
                }
                None => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(found)
    }
}

impl Parts<'_> {
    fn into_val(self, event_type: Option<&str>) -> Val {
        let s = |x: &str| Val::utf8_str(x.to_owned().into_bytes());
        let [id, source, kind, received_at, headers, query, body] = &*KEYS;
        let mut m = Map::with_capacity_and_hasher(KEYS.len(), Default::default());
        if let Some(v) = self.id {
            m.insert(id.clone(), s(v));
        }
        if let Some(v) = self.source {
            m.insert(source.clone(), s(v));
        }
        m.insert(kind.clone(), event_type.map_or(Val::Null, s));
        if let Some(v) = self.received_at {
            m.insert(received_at.clone(), Val::utf8_str(v.into_bytes()));
        }
        m.insert(headers.clone(), self.headers);
        m.insert(query.clone(), self.query);
        m.insert(body.clone(), self.body);
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
        EventTypeRule::Header(name) => header(event, name),
        EventTypeRule::BodyFields(fields) => fields.iter().find_map(|f| body_str(&parts.body, f)),
        EventTypeRule::Spacelift => body_str(&parts.body, "event_type")
            .or_else(|| body_str(&parts.body, "error").map(|_| "internal_error".to_string())),
        EventTypeRule::Hcp => {
            let source = body_str(&parts.body, "event_source")?;
            let action = body_str(&parts.body, "event_action")?;
            Some(format!("{source}.{action}"))
        }
        EventTypeRule::Tfe => body_str(&parts.body, "trigger")
            .or_else(|| {
                let Val::Obj(map) = &parts.body else {
                    return None;
                };
                match map.get(&Val::utf8_str(b"notifications".to_vec()))? {
                    Val::Arr(list) => list.first().and_then(|n| body_str(n, "trigger")),
                    _ => None,
                }
            })
            .or_else(|| {
                body_str(&parts.body, "change_request_url").map(|_| "change_request:created".into())
            }),
        EventTypeRule::Pulumi => header(event, "pulumi-webhook-kind"),
        EventTypeRule::Jq(program) => named(program.run(probe(parts)).ok()?.into_iter().next()?),
        EventTypeRule::Native(predicate) => named(predicate.eval(&probe(parts)).ok()?),
    }
}

/// The envelope a jq rule reads: the event's, with `event_type` null.
fn probe(parts: &Parts) -> Val {
    Parts {
        id: parts.id,
        source: parts.source,
        received_at: parts.received_at.clone(),
        headers: parts.headers.clone(),
        query: parts.query.clone(),
        body: parts.body.clone(),
    }
    .into_val(None)
}

/// The event type a jq rule's first output names.
fn named(output: Val) -> Option<String> {
    match output {
        Val::TStr(s) => Some(String::from_utf8_lossy(&s).into_owned()),
        Val::Null => None,
        other => Some(other.to_string()),
    }
}

fn header(event: &StoredEvent, name: &str) -> Option<String> {
    event
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone())
}

/// A top-level field of an object body, as text (strings as they are, booleans as `true`/`false`).
fn body_str(body: &Val, field: &str) -> Option<String> {
    let Val::Obj(map) = body else { return None };
    match map.get(&Val::utf8_str(field.as_bytes().to_vec()))? {
        Val::TStr(s) => Some(String::from_utf8_lossy(s).into_owned()),
        Val::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Pulumi's webhook filter names for an event of kind `kind`, read from its body.
fn pulumi_filter_names(kind: &str, body: &Val) -> Vec<String> {
    let field = |f: &str| body_str(body, f);
    let mut names = Vec::new();
    match kind {
        "stack" => names.extend(field("action").map(|a| format!("stack_{a}"))),
        "stack_update" => {
            if let (Some(k), Some(r)) = (field("kind"), field("result")) {
                names.push(format!("{k}_{r}"));
            }
        }
        "stack_preview" => names.extend(field("result").map(|r| format!("preview_{r}"))),
        "deployment" => names.extend(field("status").map(|s| {
            // The payload says `running` where the filter says `started`.
            let s = if s == "running" {
                "started".to_string()
            } else {
                s
            };
            format!("deployment_{s}")
        })),
        "drift_detection" => {
            if field("driftDetected").as_deref() == Some("true") {
                names.push("drift_detected".into());
            }
            names.extend(field("status").map(|s| format!("drift_detection_{s}")));
        }
        "drift_remediation" => {
            names.extend(field("status").map(|s| format!("drift_remediation_{s}")))
        }
        // Pulumi ESC: the filter is the kind and the action (`environment_tag_updated`).
        "environment" | "environment_revision" | "environment_revision_tag" | "environment_tag" => {
            names.extend(field("action").map(|a| format!("{kind}_{a}")))
        }
        _ => {}
    }
    names
}

#[cfg(test)]
#[path = "envelope_tests.rs"]
mod tests;
