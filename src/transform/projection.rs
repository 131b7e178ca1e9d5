//! Projections: jq programs that only build objects out of paths, such as
//! `{seq: .body.seq, stack: {id: .body.stack.id}}` (and the Port-style maps that compile to them),
//! evaluated without jq's interpreter. They are the commonest mapping, and their work is bounded
//! by the program's and the event's size: no loops, no recursion, no allocation beyond the
//! output. So they need no evaluator child, and the route stage runs them in the gateway
//! ([`super::Transform::contained`]), saving the event's trip to a child and back.
//!
//! A projection must mean exactly what jq means. Each step is jaq's own indexing
//! (`jaq_core::ValT::index`: `null` for a missing key or a `null` input, jaq's error for anything
//! but an object), objects are built in jaq's map in jaq's order (a repeated key keeps its first
//! place and its last value), and the result is written by the same [`super::jq::to_json`]: the
//! tests run both on the same inputs. Anything the recogniser is unsure of stays a jq program.

use super::jq::{JqError, JqProgram, to_json};
use super::{Message, Transform, TransformError};
use bytes::Bytes;
use jaq_json::{Map, Val};

/// Deeper objects stay jq programs: the evaluation recurses once per level.
const MAX_DEPTH: usize = 32;

/// What a projection builds, its keys made jq values once, at load, rather than per event.
#[derive(Debug, Clone)]
enum Node {
    /// `.a.b.c`: keys looked up in turn; `.` alone is the whole envelope.
    Path(Vec<Val>),
    /// `{k: node, ...}`, in the program's order.
    Object(Vec<(Val, Node)>),
}

pub(super) fn key(k: &str) -> Val {
    Val::utf8_str(k.as_bytes().to_vec())
}

/// A jq program recognised as a projection; see the module docs.
#[derive(Debug, Clone)]
pub(crate) struct Projection {
    node: Node,
    /// Every path `node` looks up.
    paths: Vec<Vec<String>>,
}

impl Projection {
    /// `program` (which jaq compiled, so it is valid jq) as a projection, if it is one.
    pub(crate) fn recognise(program: &JqProgram) -> Option<Self> {
        let mut p = Parser::new(program.code());
        p.skip_space();
        let node = p.object(0)?;
        p.skip_space();
        if p.at != p.code.len() {
            return None;
        }
        Some(Self {
            node,
            paths: p.paths,
        })
    }
}

impl Transform for Projection {
    fn apply(&self, envelope: &Val) -> Result<Vec<Message>, TransformError> {
        let value = eval(&self.node, envelope)?;
        Ok(vec![Message {
            body: Bytes::from(to_json(&value)?),
            headers: Vec::new(),
            target: None,
        }])
    }

    fn contained(&self) -> bool {
        false
    }

    fn reads(&self) -> Option<&[Vec<String>]> {
        Some(&self.paths)
    }
}

/// The value at `keys` in `input`, step by step as jq indexes (`.a.b`).
pub(super) fn lookup(keys: &[Val], input: &Val) -> Result<Val, JqError> {
    let mut v = input.clone();
    for key in keys {
        v = jaq_core::ValT::index(v, key).map_err(|e| JqError::Runtime(e.to_string()))?;
    }
    Ok(v)
}

fn eval(node: &Node, input: &Val) -> Result<Val, JqError> {
    match node {
        Node::Path(keys) => lookup(keys, input),
        Node::Object(fields) => {
            let mut m = Map::default();
            for (key, node) in fields {
                m.insert(key.clone(), eval(node, input)?);
            }
            Ok(Val::obj(m))
        }
    }
}

/// jq's keywords: not taken as keys or path steps here, whatever jq makes of them.
const KEYWORDS: &[&str] = &[
    "def", "if", "then", "elif", "else", "end", "as", "reduce", "foreach", "try", "catch", "label",
    "import", "include", "and", "or", "not", "__loc__",
];

/// A recursive-descent recogniser of the projection grammar (and of its paths and strings for
/// [`super::predicate`]); `None` for anything else.
pub(super) struct Parser<'a> {
    pub(super) code: &'a [u8],
    pub(super) at: usize,
    /// Every path parsed so far, as written.
    pub(super) paths: Vec<Vec<String>>,
}

impl<'a> Parser<'a> {
    pub(super) fn new(code: &'a str) -> Self {
        Self {
            code: code.as_bytes(),
            at: 0,
            paths: Vec::new(),
        }
    }

    pub(super) fn peek(&self) -> Option<u8> {
        self.code.get(self.at).copied()
    }

    pub(super) fn eat(&mut self, b: u8) -> Option<()> {
        (self.peek() == Some(b)).then(|| self.at += 1)
    }

    pub(super) fn skip_space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// `{ key: value, ... }`, possibly empty.
    fn object(&mut self, depth: usize) -> Option<Node> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.eat(b'{')?;
        let mut fields = Vec::new();
        self.skip_space();
        if self.eat(b'}').is_some() {
            return Some(Node::Object(fields));
        }
        loop {
            self.skip_space();
            let name = match self.peek()? {
                b'"' => self.string()?,
                _ => self.ident()?,
            };
            self.skip_space();
            self.eat(b':')?;
            self.skip_space();
            fields.push((key(&name), self.value(depth)?));
            self.skip_space();
            match self.peek()? {
                b',' => self.at += 1,
                b'}' => {
                    self.at += 1;
                    return Some(Node::Object(fields));
                }
                _ => return None,
            }
        }
    }

    /// A path, a path in parentheses (as maps write them), or an object.
    fn value(&mut self, depth: usize) -> Option<Node> {
        match self.peek()? {
            b'{' => self.object(depth + 1),
            b'(' => {
                self.at += 1;
                self.skip_space();
                let path = self.path()?;
                self.skip_space();
                self.eat(b')')?;
                Some(path)
            }
            _ => self.path(),
        }
    }

    /// `.`, `.a.b` or `.a["b-c"].d`: no spaces, no quoted steps (`."a"`), and in brackets only a
    /// string without escapes.
    fn path(&mut self) -> Option<Node> {
        self.path_keys().map(Node::Path)
    }

    /// The keys of a path (see [`Parser::path`]), recorded in `paths`.
    pub(super) fn path_keys(&mut self) -> Option<Vec<Val>> {
        self.eat(b'.')?;
        let mut keys = Vec::new();
        match self.peek() {
            Some(b) if is_ident_start(b) => keys.push(self.ident()?),
            Some(b'[') => keys.push(self.bracket()?),
            // `.` alone: the whole input.
            _ => {}
        }
        while !keys.is_empty() {
            match (self.peek(), self.code.get(self.at + 1)) {
                (Some(b'.'), Some(&b)) if is_ident_start(b) => {
                    self.at += 1;
                    keys.push(self.ident()?);
                }
                (Some(b'['), _) => keys.push(self.bracket()?),
                _ => break,
            }
        }
        let vals = keys.iter().map(|k| key(k)).collect();
        self.paths.push(keys);
        Some(vals)
    }

    /// `["key"]`: a string key in brackets, as jq indexes with it.
    fn bracket(&mut self) -> Option<String> {
        self.eat(b'[')?;
        let key = self.string()?;
        self.eat(b']')?;
        Some(key)
    }

    fn ident(&mut self) -> Option<String> {
        let start = self.at;
        if !is_ident_start(self.peek()?) {
            return None;
        }
        while matches!(self.peek(), Some(b) if is_ident_start(b) || b.is_ascii_digit()) {
            self.at += 1;
        }
        let word = std::str::from_utf8(&self.code[start..self.at]).ok()?;
        (!KEYWORDS.contains(&word)).then(|| word.to_string())
    }

    /// A double-quoted string without escapes or interpolation.
    pub(super) fn string(&mut self) -> Option<String> {
        self.eat(b'"')?;
        let start = self.at;
        while !matches!(self.peek()?, b'"' | b'\\') {
            self.at += 1;
        }
        let text = std::str::from_utf8(&self.code[start..self.at])
            .ok()?
            .to_string();
        self.eat(b'"')?;
        Some(text)
    }
}

pub(super) fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transform::JqTransform;

    fn program(code: &str) -> JqProgram {
        JqProgram::compile(code).expect("compiles")
    }

    /// Only what jaq compiles reaches the recogniser.
    fn recognised(code: &str) -> bool {
        JqProgram::compile(code)
            .ok()
            .and_then(|p| Projection::recognise(&p))
            .is_some()
    }

    /// Both engines' messages, or both errors, as text.
    fn both(code: &str, input: &str) -> (String, String) {
        let input = jaq_json::read::parse_single(input.as_bytes()).expect("json");
        let show = |r: Result<Vec<Message>, TransformError>| match r {
            Ok(ms) => ms
                .iter()
                .map(|m| String::from_utf8_lossy(&m.body).into_owned())
                .collect::<Vec<_>>()
                .join("\n"),
            Err(e) => format!("error: {e}"),
        };
        let p = program(code);
        let projection = Projection::recognise(&p).expect("a projection");
        (
            show(projection.apply(&input)),
            show(JqTransform(p).apply(&input)),
        )
    }

    #[test]
    fn objects_of_paths_are_projections_and_anything_else_is_not() {
        for code in [
            "{seq: .body.seq, stack: .body.stack.id}",
            " { a : . , b:{c: .x.y_2}, \"d e\": .z } ",
            "{}",
            "{\"identifier\": (.body.stack.id\n), \"relations\": {}}",
            "{a: .a, a: .b}",
            "{a: .[\"a\"], b: .headers[\"x-github-event\"], c: .a[\"b\"].c[\"\"]}",
        ] {
            assert!(recognised(code), "{code}");
        }
        for code in [
            ".body",
            "{a: .a | tostring}",
            "{a: .a[0]}",
            "{a: .a.[\"b\"]}",
            "{a: .a [\"b\"]}",
            "{a: .a[\"b\\n\"]}",
            "{a: .a[\"b\"]?}",
            "{a: .a[]}",
            "{a: .\"a\"}",
            "{a: .a?}",
            "{a: 1}",
            "{a: \"x\"}",
            "{a}",
            "{(.k): .v}",
            "{\"a\\n\": .a}",
            "{\"\\(.k)\": .a}",
            "{a: .a} | .a",
            "{a: .a}, {b: .b}",
            "{if: .a}",
            "{a: .a.end}",
            "{a: .a # comment\n}",
            "{a: $__loc__}",
            "{a: . a}",
        ] {
            assert!(!recognised(code), "{code}");
        }
        let deep = format!("{}{}", "{a: ".repeat(40), "}".repeat(40)).replace("{a: }", "{}");
        assert!(!recognised(&deep));
    }

    #[test]
    fn a_projection_answers_exactly_what_jq_answers() {
        let code = "{seq: .body.seq, stack: {id: .body.stack.id, all: .body[\"stack\"]}, whole: ., \
                    missing: .body.nope[\"deeper\"], \"k k\": .body.s, seq: .body.last}";
        for input in [
            r#"{"body": {"seq": 1.50, "stack": {"id": "é\u00e9\ud83d\ude00", "x": [1, {"y": null}]}, "s": "a\"b", "last": 1e400}}"#,
            r#"{"body": {"seq": 12345678901234567890123, "stack": null}}"#,
            r#"{"body": {"seq": 1, "seq": 2, "stack": {}}}"#,
            r#"{"body": null}"#,
            r#"{}"#,
            r#"null"#,
            r#"{"body": {"stack": 3}}"#,
            r#"{"body": {"stack": "s"}}"#,
            r#"{"body": {"stack": [1, 2]}}"#,
            r#"{"body": [1]}"#,
            r#"{"body": true, "x": 1}"#,
            r#"7"#,
        ] {
            let (projection, jq) = both(code, input);
            assert_eq!(projection, jq, "on {input}");
        }
        let (projection, jq) = both("{}", "1");
        assert_eq!(projection, jq);
    }
}
