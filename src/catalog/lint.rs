//! Warnings for a route the catalog says can never match as written: an `events` name its
//! source's preset does not have, and a `.body…` path in its jq (filter, transform or map) that
//! no schema of the route's events documents.
//!
//! Warnings, not errors: a platform may send what its documentation has not caught up with, so
//! the config still loads. The path reader is a scanner, not a jq parser: it reads every path
//! that starts with `.body` where a path can start (`.body.a.b`, `.body.items[].id`, inside string
//! interpolation too), skips one after a variable or another step (`$e.body`, `.x.body`) and one
//! being assigned (`.body.seen = true`), and takes the rest as paths from the envelope. So a
//! `.body` read inside `map(…)` or after `.[] |`, relative to something else, is judged as if it
//! were the envelope's: rare in mappings, and only ever a warning.
//!
//! It judges only what the catalog can: no event names for a preset whose senders name their
//! own (Standard Webhooks), no paths where the route may take an event without a schema.

use crate::catalog::schema::{Step, documents};
use crate::catalog::{Event, Preset, closest, did_you_mean, schema_of};

/// One finding: the config key (`routes[2].filter`) and what is wrong there.
pub(crate) type Warning = (String, String);

/// What a route says, as far as the catalog can judge it.
pub(crate) struct RouteText<'a> {
    /// `routes[i]`.
    pub(crate) key: &'a str,
    pub(crate) events: Option<&'a [String]>,
    /// `(key, jq code)` of its filter, its jq transform or its map compiled to jq.
    pub(crate) code: Vec<(String, &'a str)>,
}

/// The warnings for `route`, whose source has the preset `preset`.
pub(crate) fn route(preset: &Preset, route: &RouteText<'_>) -> Vec<Warning> {
    let mut out = Vec::new();
    // The events the route can take; `None` when that is not known (an open preset's own names).
    let relevant: Option<Vec<&Event>> = match route.events {
        None if preset.open => None,
        None => Some(
            preset
                .events
                .iter()
                .filter(|e| e.schema.is_some())
                .collect(),
        ),
        Some(names) => {
            let mut relevant: Vec<&Event> = Vec::new();
            let mut all_known = true;
            for name in names {
                let named: Vec<&Event> = preset.events_named(name).collect();
                if named.is_empty() {
                    all_known = false;
                    if !preset.open {
                        out.push((
                            format!("{}.events", route.key),
                            format!(
                                "`{name}` is not an event of the {} preset{}",
                                preset.preset,
                                did_you_mean(&closest(name, preset.names()))
                            ),
                        ));
                    }
                }
                for e in named {
                    if !relevant.iter().any(|r| std::ptr::eq(*r, e)) {
                        relevant.push(e);
                    }
                }
            }
            // In an open preset a name the catalog lacks is still a real event that could carry
            // any field (in a closed one it can never match, and was reported); so could an
            // event the platform documents no payload for.
            let all_typed = relevant.iter().all(|e| e.schema.is_some());
            ((all_known || !preset.open) && all_typed).then_some(relevant)
        }
    };
    let Some(relevant) = relevant.filter(|r| !r.is_empty()) else {
        return out;
    };
    // A schema that cannot be read judges nothing (the catalog's tests fail on it; `validate`
    // refuses to load with it).
    let schemas: Vec<&serde_json::Value> = relevant
        .iter()
        .filter_map(|e| schema_of(preset, e).ok().flatten())
        .collect();
    if schemas.len() != relevant.len() {
        return out;
    }
    for (key, code) in &route.code {
        for (text, steps) in body_paths(code) {
            if let Some(why) = unmatched(preset, &relevant, &schemas, &text, &steps) {
                out.push((key.clone(), why));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Why no schema has `steps` (the path after `.body`), or `None` when one has it.
fn unmatched(
    preset: &Preset,
    events: &[&Event],
    schemas: &[&serde_json::Value],
    text: &str,
    steps: &[Step],
) -> Option<String> {
    let mut furthest: Option<(usize, Vec<&str>)> = None;
    for schema in schemas {
        match (documents(schema, steps), &mut furthest) {
            (Ok(()), _) => return None,
            (Err(e), None) => furthest = Some(e),
            (Err((at, n)), Some((deepest, names))) if at == *deepest => names.extend(n),
            (Err((at, n)), Some((deepest, _))) if at > *deepest => furthest = Some((at, n)),
            (Err(_), Some(_)) => {}
        }
    }
    let (deepest, mut names) = furthest?;
    names.sort_unstable();
    names.dedup();
    let Step::Key(missing) = &steps[deepest] else {
        return None;
    };
    let parent = render(&steps[..deepest]);
    let which = match events {
        [one] => format!(
            "the `{}` event ({} catalog) has no",
            one.event_type, preset.preset
        ),
        _ => format!(
            "none of the {} events this route takes ({} catalog) has a",
            events.len(),
            preset.preset
        ),
    };
    Some(format!(
        "`{text}`: {which} `{missing}` under `.body{parent}`{}",
        did_you_mean(&closest(missing, names.into_iter()))
    ))
}

fn render(steps: &[Step]) -> String {
    steps
        .iter()
        .map(|s| match s {
            Step::Key(k) if is_ident(k) => format!(".{k}"),
            Step::Key(k) => format!(".{k:?}"),
            Step::Iter | Step::Nth => "[]".into(),
        })
        .collect()
}

fn is_ident(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Every `.body…` path in jq `code` that starts at the envelope: its text and the steps after
/// `.body`. Skips string literals (but reads their `\(…)` interpolations) and comments.
pub(crate) fn body_paths(code: &str) -> Vec<(String, Vec<Step>)> {
    let b = code.as_bytes();
    let mut out = Vec::new();
    // Open interpolations: the paren depth at which each `\(` returns to its string.
    let mut returns: Vec<usize> = Vec::new();
    let (mut depth, mut in_string, mut i) = (0usize, false, 0usize);
    while i < b.len() {
        let c = b[i];
        if in_string {
            match c {
                b'\\' if b.get(i + 1) == Some(&b'(') => {
                    returns.push(depth);
                    depth += 1;
                    in_string = false;
                    i += 2;
                    continue;
                }
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        match c {
            b'"' => in_string = true,
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'(' => depth += 1,
            b')' => {
                depth = depth.saturating_sub(1);
                if returns.last() == Some(&depth) {
                    returns.pop();
                    in_string = true;
                }
            }
            b'.' if starts_term(b, i) => {
                if let Some((end, steps)) = path_at(code, i) {
                    if !assigned(&code[end..]) {
                        out.push((code[i..end].to_string(), steps));
                    }
                    i = end;
                    continue;
                }
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// Whether what follows a path assigns to it (`=`, `|=`, `+=`, `//=` …, not `==`): a path being
/// written may be one the payload does not have yet.
fn assigned(rest: &str) -> bool {
    let rest = rest.trim_start();
    ["|=", "+=", "-=", "*=", "/=", "%=", "//="]
        .iter()
        .any(|op| rest.starts_with(op))
        || (rest.starts_with('=') && !rest.starts_with("=="))
}

/// Whether the `.` at `i` begins a path from the input, not a step of something before it.
fn starts_term(b: &[u8], i: usize) -> bool {
    match i.checked_sub(1).map(|p| b[p]) {
        None => true,
        Some(p) => !(p.is_ascii_alphanumeric() || b"_$)]}\".?".contains(&p)),
    }
}

/// The path `.body…` at `start`: where it ends and its steps after `.body`.
fn path_at(code: &str, start: usize) -> Option<(usize, Vec<Step>)> {
    let rest = &code[start..];
    let after = rest.strip_prefix(".body")?;
    if after.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
        return None;
    }
    let mut steps = Vec::new();
    let mut at = start + ".body".len();
    loop {
        let tail = &code[at..];
        if let Some(t) = tail.strip_prefix('?') {
            at = code.len() - t.len();
        } else if let Some(t) = tail.strip_prefix("[]") {
            steps.push(Step::Iter);
            at = code.len() - t.len();
        } else if let Some((key, len)) = key_step(tail) {
            steps.push(Step::Key(key));
            at += len;
        } else if let Some(len) = index_step(tail) {
            steps.push(Step::Nth);
            at += len;
        } else {
            break;
        }
    }
    (!steps.is_empty()).then_some((at, steps))
}

/// `.name`, `."name"` or `["name"]` at the start of `tail`: the key and the length read.
fn key_step(tail: &str) -> Option<(String, usize)> {
    if let Some(t) = tail.strip_prefix('.') {
        let len = t
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(t.len());
        if len > 0 && !t.starts_with(|c: char| c.is_ascii_digit()) {
            return Some((t[..len].to_string(), 1 + len));
        }
        if let Some(q) = t.strip_prefix('"') {
            let end = q.find(['"', '\\'])?;
            return (q.as_bytes()[end] == b'"').then(|| (q[..end].to_string(), 3 + end));
        }
        return None;
    }
    let q = tail.strip_prefix("[\"")?;
    let end = q.find(['"', '\\'])?;
    (q[end..].starts_with("\"]")).then(|| (q[..end].to_string(), 4 + end))
}

/// `[N]` (a literal index) at the start of `tail`: the length read.
fn index_step(tail: &str) -> Option<usize> {
    let t = tail.strip_prefix('[')?;
    let digits = t
        .find(|c: char| !(c.is_ascii_digit() || c == '-'))
        .filter(|&n| n > 0)?;
    t[digits..].starts_with(']').then_some(digits + 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(code: &str) -> Vec<String> {
        body_paths(code).into_iter().map(|(t, _)| t).collect()
    }

    #[test]
    fn reads_paths_from_the_envelope_in_code_and_interpolation_only() {
        assert_eq!(
            texts(r#".body.run.state == "FINISHED" and (.body.stack.labels | index("x"))"#),
            [".body.run.state", ".body.stack.labels"]
        );
        assert_eq!(
            texts(r#""run \(.body.run.id) on \(.body["stack"].name)" # .body.comment"#),
            [".body.run.id", r#".body["stack"].name"#]
        );
        assert_eq!(
            texts(r#".body.builds[0].id, .body.items[]?.x, ."body".a"#),
            [".body.builds[0].id", ".body.items[]?.x"]
        );
        // After a variable, a call or another step, `.body` is not the envelope's.
        assert!(texts(r#"$e.body.x, .item.body.x, f.body.x, ".body.x""#).is_empty());
        // Written, not read.
        assert_eq!(
            texts(".body.seen = true | .body.a |= 1 | .body.b == 2"),
            [".body.b"]
        );
        let steps = &body_paths(".body.a[].b")[0].1;
        assert_eq!(
            steps,
            &[Step::Key("a".into()), Step::Iter, Step::Key("b".into())]
        );
    }
}
